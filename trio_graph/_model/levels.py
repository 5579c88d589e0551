"""The levels of a run: the run itself and each subgraph it is inside, and their steps.

Model layer: no trio import. :class:`~trio_graph._model.run_state.RunState` keeps a stack
of :class:`Level` s (innermost last); a :class:`Step` is one node execution of a level.
A subgraph's level starts from its stored frame when the run resumes inside it, else
from its ``input`` mapping (or a copy of its parent's state), and hands its output (or
every update it collected) up when it completes.
"""

from __future__ import annotations

import types
from collections.abc import Mapping, Sequence
from typing import Any

import attrs

from ..errors import Cancelled, CheckpointError, GraphError, LeaseLost
from ..events import Event, Observed, ObservedError
from .checkpoint import BranchResult, Frame, RunStatus
from .decisions import BarrierId
from .graph import Graph, Node, ParallelNode, SubgraphNode
from .jsonvalue import check_update, check_value, json_problem
from .mapping import fanout_records
from .results import Outcome, normalise
from .schema import StateView
from .state import check_state, reduce_updates

Fanout = tuple[ParallelNode, dict[str, Mapping[str, Any]]]
"""A fork in progress (a map node's over its items) and its finished branches."""


@attrs.frozen
class Interruption:
    """The checkpoint a failure or cancel writes: status, barrier waited at, branches."""

    status: RunStatus
    pending: BarrierId | None
    branches: list[BranchResult] | None


@attrs.frozen
class Wait:
    """How a barrier occurrence waits: what it shows, its deadline and this process's wait.

    ``deadline`` is wall-clock epoch seconds (None: no timeout), kept across a resume at
    the same occurrence; ``limit`` is how long this process waits for a decision (None:
    forever): the barrier's timeout on arrival, what is left of the deadline on a resume
    (0 once it has passed: the default applies at once).
    """

    payload: Any = None
    deadline: float | None = None
    limit: float | None = None


@attrs.define(slots=True, eq=False)
class Step:
    """One node execution: opened by :meth:`RunState.begin`, closed once."""

    level: Level
    node: Node
    number: int
    """The level's step count once this step is done (from 1)."""
    span: int
    path: str
    """The node's name as events carry it (``"sub/node"`` inside a subgraph)."""
    started: float = 0.0
    committed: float | None = None
    """When its updates were committed (it succeeded; its ``NodeEnd`` may be owed)."""


@attrs.define(slots=True)
class Finished:
    """What ``RunState.finish`` settled: the events to send before and after ``ended``,
    whether the run is complete, the routing error to raise once the events are out, and
    the checkpoint the policy wants (its site) before the next step."""

    events: list[Event]
    after: Sequence[Event]
    complete: bool
    error: GraphError | None
    save: str | None


@attrs.define(slots=True, eq=False)
class Level:
    """The run itself, or a subgraph it is inside: a graph, its state and where it is."""

    graph: Graph
    state: dict[str, Any]
    current: str
    step: int
    max_steps: int
    prefix: str = ""
    """This level's path from the root, ``"outer/inner/"`` (``""`` for the run)."""
    collected: list[tuple[str, Any]] | None = None
    """A subgraph's updates so far, handed up when it completes (None for the run)."""
    frames: list[Frame] = attrs.field(factory=list)
    """Stored subgraph levels to resume inside, outermost first."""
    view: Mapping[str, Any] = attrs.field(init=False)
    """The read-only state nodes get."""
    open: Step | None = None
    waiting: BarrierId | None = None
    wait: Wait = Wait()
    """How the barrier ``waiting`` waits (its payload and deadline)."""
    fanout: Fanout | None = None
    """The fan-out in progress and its finished branches."""
    resumable: bool = True
    """False once a step's deltas are applied and it has nowhere to go."""

    def __attrs_post_init__(self) -> None:
        typed = self.graph.schema is not None
        self.view = StateView(self.state) if typed else types.MappingProxyType(self.state)

    def commit(
        self, node: str, items: Sequence[tuple[str, Any]], *, durable: bool
    ) -> dict[str, Any]:
        """Fold ``node``'s updates through the reducers and commit them at once (all or
        nothing); ``durable``: refuse first what a store would not give back. Returns
        the merged values written."""
        reducers, schema = self.graph.reducers, self.graph.schema
        if schema is not None:  # checked and structured first (docs/state.md)
            items = schema.check_items(self.prefix + node, items, reducers)
        merged = reduce_updates(self.state, reducers, node, items)
        if schema is not None:
            schema.check_merged(self.prefix + node, merged, reducers)
        elif durable:  # (docs/state.md)
            check_update(items, merged, reducers, f"node {self.prefix + node!r} wrote")
        self.state.update(merged)
        if self.collected is not None:
            self.collected.extend(items)
        return merged

    def frame(self) -> Frame:
        """This subgraph level as a checkpoint's frame."""
        return Frame(
            self.name, self.current, self.step, dict(self.state), list(self.collected or ())
        )

    def cancelled(self) -> Cancelled:
        """The ``Cancelled`` error naming where this level was: the barrier or the node."""
        if self.waiting is not None:
            return Cancelled(node=self.waiting.node, barrier=str(self.waiting))
        return Cancelled(node=self.open.path if self.open is not None else "")

    def interruption(self, error: GraphError, *, final: bool = False) -> Interruption:
        """The checkpoint a failure (FAILED) or cancel (WAITING at a barrier, else
        RUNNING: resumable; ``final``, a cancel sent through the store: CANCELLED) writes,
        with the finished branches of a fan-out in progress."""
        status = RunStatus.FAILED
        if isinstance(error, Cancelled):
            status = RunStatus.WAITING if self.waiting is not None else RunStatus.RUNNING
            status = RunStatus.CANCELLED if final else status
        branches = None
        if self.fanout is not None:
            branches = fanout_records(*self.fanout)
        return Interruption(status, self.waiting, branches)

    @property
    def name(self) -> str:
        """The subgraph node this level runs (``""`` for the run)."""
        return self.prefix.rstrip("/").rpartition("/")[2]


def barrier_wait(
    path: str,
    timeout: float | None,
    kept: tuple[BarrierId, float] | None,
    bid: BarrierId,
    now: float,
    payload: Any,
    durable: bool,
) -> Wait:
    """How occurrence ``bid`` of barrier ``path`` waits, arriving at wall-clock ``now``:
    the deadline ``kept`` by the checkpoint a resume continues when it is for ``bid``,
    else ``now`` plus the timeout. With a store (``durable``) a payload the store would
    not give back is refused (``CheckpointError`` naming the barrier)."""
    if durable and payload is not None:
        problem = json_problem(payload, "payload")
        if problem is not None:
            raise CheckpointError(
                f"show of barrier {path!r} returned a value the store cannot give back: {problem}"
            )
    if timeout is None:
        return Wait(payload)
    if kept is not None and kept[0] == bid:
        return Wait(payload, kept[1], max(0.0, kept[1] - now))
    return Wait(payload, now + timeout, timeout)


def subgraph_level(parent: Level, node: SubgraphNode, *, durable: bool) -> Level:
    """The level of subgraph ``node`` entered from ``parent``: resumed from the parent's
    first stored frame when it is this node's (the rest go with it), else new."""
    frames = parent.frames
    prefix = f"{parent.prefix}{node.name}/"
    max_steps = node.max_steps or parent.max_steps
    if frames and frames[0].node == node.name:
        frame = frames[0]
        level = Level(node.graph, dict(frame.state), frame.next_node, frame.step, max_steps, prefix)
        level.collected, level.frames = list(frame.collected), frames[1:]
        parent.frames = []
        return level
    start = node.input(parent.view) if node.input is not None else parent.view
    schema = node.graph.schema
    if schema is not None:  # without input=, the parent's keys that are its fields
        given = (
            start
            if node.input is not None
            else {k: v for k, v in start.items() if k in schema.fields}
        )
        return Level(node.graph, schema.initial(given), node.graph.start, 0, max_steps, prefix, [])
    state = check_state(start)
    if durable and node.input is not None:  # new values: refuse as a node's
        where = f"the input of subgraph {prefix[:-1]!r} holds"
        for key, value in state.items():
            check_value(key, value, where)
    return Level(node.graph, state, node.graph.start, 0, max_steps, prefix, [])


def subgraph_outcome(level: Level, node: SubgraphNode) -> Outcome:
    """What a completed subgraph level hands up: its ``output``, or its collected updates."""
    if node.output is not None:
        return normalise(node.name, node.output(level.view))
    return Outcome(list(level.collected or ()))


def unsaved_terminal(
    trace_id: str, node: str, error: GraphError, exc: GraphError
) -> tuple[GraphError, ObservedError | None]:
    """The failure/cancel checkpoint of ``error`` was not saved (``exc``): the terminal
    error (the first; only a lost lease wins, so a worker learns it no longer owns the
    run) and the warning (at ``node``) to send before it (also a note on the error)."""
    cancelled = isinstance(error, Cancelled)
    if isinstance(exc, LeaseLost) and not cancelled:
        return exc, None
    message = f"the {'cancel' if cancelled else 'failure'} checkpoint was not saved: {exc}"
    error.add_note(message)
    warning = Observed("Warning", message)
    return error, ObservedError(trace_id, node, warning)
