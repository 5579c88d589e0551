"""One run's bookkeeping as a pure state machine: what the run does next (DESIGN §1, §5).

Model layer: no trio, no I/O, no clock (the caller passes ``now``). The runtime loop
(``_runtime/loop.py``) drives a :class:`RunState` the way httpcore drives h11's
connection: it asks what is next, does the I/O (calls the node, sends the events, saves
the checkpoint), and tells the state what happened. Everything the run *decides* is here,
so one step rule of DESIGN §5 can be read, changed and tested without an event loop.

Rules
-----
- The run is a stack of :class:`Level` s: the run itself, then one per subgraph it is
  inside (innermost last). A step always belongs to the innermost level; a subgraph node
  pushes a level (:meth:`RunState.enter`) and pops it when the subgraph completes
  (:meth:`RunState.leave`). Each level has its own state, next node, step count and step
  budget; the run shares one span counter, one decision registry and one checkpoint chain.
- A step is opened by :meth:`begin` (budget, lookup, span) and :meth:`opened` (its
  ``NodeStart`` went out), and closed exactly once: by
  :meth:`finish` then :meth:`ended` (its ``NodeEnd`` went out), or by :meth:`close_spans`
  when the run stops in the middle. The state, step and next node are settled by
  ``finish`` *before* any of its events is sent, so a cancel while sending leaves a
  consistent point to checkpoint, and a span committed but not yet announced still ends
  with ``success=True``.
- Only the root level's steps go into the execution log (a subgraph is one entry there).
- A checkpoint is always of the whole run: the root's state and next node, the levels
  below as frames, the barrier waited at, the finished branches of a fan-out in progress.

Theory of operation
-------------------
::

    begin() -> Step                         budget counted, node looked up, span taken
    opened(step, now)                       NodeStart sent: its NodeEnd is owed
    finish(step, outcome, now) -> Finished  committed; send Finished.events, then
    ended(step)                             NodeEnd sent; send Finished.after
    arrive(node) -> BarrierId               waiting (a cancel checkpoints WAITING here)
    resolve(node, decision, timed_out) -> Outcome
    enter(node) / leave(node) -> Outcome    a subgraph level
    close_spans(now) -> [NodeEnd]           interrupted: every span still owed
    interruption(error) -> Interruption     the failure/cancel checkpoint to write
    checkpoint(...) -> (Checkpoint, Changes), then saved(...) or unsaved(...)
"""

from __future__ import annotations

import types
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import attrs

from .. import events as ev
from ..errors import Cancelled, GraphError, NodeExecutionFailed, NodeNotFound, StepsExceeded
from .checkpoint import (
    BranchResult,
    ChangeLog,
    Changes,
    Checkpoint,
    CheckpointPolicy,
    Frame,
    RunStatus,
    new_id,
)
from .decisions import Approve, BarrierId, Decision, DecisionRegistry, Reject, decision_updates
from .graph import BarrierNode, Graph, Node, ParallelNode, SubgraphNode
from .jsonvalue import check_update, check_value
from .results import NEXT, Outcome, normalise
from .routing import check_target, route, route_fallback
from .state import check_state, reduce_updates
from .steering import check_steering


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
    fanout: tuple[ParallelNode, dict[str, Mapping[str, Any]]] | None = None
    """The fan-out in progress and its finished branches."""
    resumable: bool = True
    """False once a step's deltas are applied and it has nowhere to go."""

    def __attrs_post_init__(self) -> None:
        self.view = types.MappingProxyType(self.state)

    @property
    def name(self) -> str:
        """The subgraph node this level runs (``""`` for the run)."""
        return self.prefix.rstrip("/").rpartition("/")[2]


@attrs.define(slots=True)
class Finished:
    """What :meth:`RunState.finish` settled: the events to send before and after ``ended``,
    whether the run is complete, the routing error to raise once the events are out, and
    the checkpoint the policy wants (its site) before the next step."""

    events: list[ev.Event]
    after: Sequence[ev.Event]
    complete: bool
    error: GraphError | None
    save: str | None


@attrs.frozen
class Interruption:
    """The checkpoint a failure or cancel writes: status, barrier waited at, branches."""

    status: RunStatus
    pending: BarrierId | None
    branches: list[BranchResult] | None


# A barrier's ``default`` when its timeout passes with no decision (None: skip, go on).
TIMEOUT_DEFAULTS: dict[str, Callable[[BarrierNode], Decision | None]] = {
    "approve": lambda node: Approve(),
    "skip": lambda node: None,
    "reject": lambda node: Reject(f"timed out after {node.timeout}s"),
}


class RunState:
    """The bookkeeping of one run; see the module docstring for its rules."""

    def __init__(
        self,
        graph: Graph,
        state: dict[str, Any],
        *,
        trace_id: str,
        max_steps: int,
        policy: CheckpointPolicy,
        durable: bool,
        current: str | None = None,
        step: int = 0,
        registry: DecisionRegistry | None = None,
        resumed: Checkpoint | None = None,
        log_limit: int = 1000,
    ) -> None:
        self.trace_id = trace_id
        self.graph = graph
        self.policy = policy
        self.durable = durable
        """A store keeps this run: values are checked and checkpoints are written."""
        root = Level(graph, state, current or graph.start, step, max_steps)
        self.levels = [root]
        self.registry = registry or DecisionRegistry()
        self.resumed_from = resumed.trace_id if resumed is not None else None
        self.resume_count = resumed.resume_count + 1 if resumed is not None else 0
        self.resumed_branches: dict[str, Mapping[str, Any]] = {}
        if resumed is not None:
            root.frames = list(resumed.frames)
            self.resumed_branches = {b.branch: b.updates for b in resumed.branches}
        # The last ``log_limit`` entries and a count: memory O(1) in steps (DESIGN §13).
        self.log: deque[ev.ExecutionEntry] = deque(maxlen=log_limit)
        self.log_count = 0
        self.changes = ChangeLog() if durable else None
        self.last_checkpoint: str | None = None
        self.saved_branches: list[BranchResult] = []
        self.spans = 0
        self.checkpoint_requested = False

    @property
    def root(self) -> Level:
        return self.levels[0]

    @property
    def inner(self) -> Level:
        return self.levels[-1]

    # -- steps ---------------------------------------------------------------------
    def begin(self) -> Step:
        """The next step of the innermost level (``StepsExceeded``, ``NodeNotFound``)."""
        level = self.levels[-1]
        number = level.step + 1
        name = level.current
        if number > level.max_steps:
            raise StepsExceeded(level.max_steps, name)
        node = level.graph.nodes.get(name)
        if node is None:
            raise NodeNotFound(name)
        self.spans += 1
        return Step(level, node, number, self.spans, level.prefix + name)

    def opened(self, step: Step, now: float) -> None:
        """The step's ``NodeStart`` went out: from now on its ``NodeEnd`` is owed."""
        step.started = now
        step.level.open = step
        step.level.resumable = True

    def finish(self, step: Step, outcome: Outcome, now: float) -> Finished:
        """Commit the step's updates, route, and say what to send and save."""
        level, name = step.level, step.node.name
        out = level.graph.out[name]
        target: str | None = None
        if outcome.fallback is not None:
            target = route_fallback(name, out)
            if target is None:
                raise NodeExecutionFailed(
                    name,
                    "Fallback",
                    f"Fallback({outcome.fallback!r}) but the node has no fallback edge",
                )
        items = outcome.items
        if items:
            self.commit(level, name, items)
        level.step = step.number
        error: GraphError | None = None
        try:
            if target is not None:
                pass
            elif outcome.goto is not None:  # honoured even at the end node (needs an edge)
                target = check_target(name, out, outcome.goto)
            elif name != level.graph.end:
                target = route(name, out, level.view)
        except GraphError as exc:
            error = exc
        level.resumable = target is not None
        if target is not None:
            level.current = target
        step.committed = now
        took = now - step.started
        if level is self.levels[0]:
            self.log.append(ev.ExecutionEntry(step.number, name, step.started, now, True))
            self.log_count += 1
        trace, path, span = self.trace_id, step.path, step.span
        events: list[ev.Event] = [ev.StateChanged(trace, path, span, k, v) for k, v in items]
        events.append(ev.NodeEnd(trace, path, span, True, took))
        after: Sequence[ev.Event] = ()
        if outcome.fallback is not None:
            after = [ev.ObservedError(trace, path, ev.Observed("Degraded", outcome.fallback))]
        save = self._wanted(step.node, took) if self.durable and target is not None else None
        return Finished(events, after, target is None and error is None, error, save)

    def ended(self, step: Step) -> None:
        """The step's ``NodeEnd`` went out: nothing is owed for it."""
        step.level.open = None

    def _wanted(self, node: Node, took: float) -> str | None:
        """The checkpoint the policy wants after a step that goes on (its site), if any."""
        policy = self.policy
        if policy.every_step:
            return "every-step"
        if policy.on_barrier and type(node) is BarrierNode:
            return "barrier-resolved"
        adaptive = policy.adaptive
        if adaptive is not None and adaptive.wants(
            took, node.meta.token_cost, node.meta.side_effects
        ):
            return "adaptive"
        return None

    def commit(self, level: Level, node: str, items: Sequence[tuple[str, Any]]) -> None:
        """Fold updates through the reducers and commit them at once (all or nothing)."""
        reducers = level.graph.reducers
        merged = reduce_updates(level.state, reducers, node, items)
        if self.durable:  # refuse what the store would not give back (docs/state.md)
            check_update(items, merged, reducers, f"node {level.prefix + node!r} wrote")
        level.state.update(merged)
        if level.collected is not None:
            level.collected.extend(items)
        changes = self.changes
        if changes is not None and level is self.levels[0]:
            resolved: set[str] = set()
            for key, value in items:
                r = reducers.get(key)
                if r is None or r.builtin:
                    changes.record(key, value, r.name if r is not None else None)
                elif key not in resolved:  # custom reducer: store the merged value once
                    resolved.add(key)
                    changes.record(key, merged[key])

    def _log(self, entry: ev.ExecutionEntry) -> None:
        self.log.append(entry)
        self.log_count += 1

    def close_spans(self, now: float) -> list[ev.NodeEnd]:
        """End every open span, innermost first: ``success=True`` for a step committed
        while its events were being sent, else ``False`` (and a failed log entry)."""
        ends = []
        for level in reversed(self.levels):
            step = level.open
            if step is None:
                continue
            level.open = None
            if step.committed is not None:
                took, ok = step.committed - step.started, True
            else:
                took, ok = now - step.started, False
                if level is self.levels[0]:
                    self._log(
                        ev.ExecutionEntry(step.number, step.node.name, step.started, now, False)
                    )
            ends.append(ev.NodeEnd(self.trace_id, step.path, step.span, ok, took))
        return ends

    # -- barriers ------------------------------------------------------------------
    def arrive(self, node: BarrierNode) -> BarrierId:
        """Count an arrival at barrier ``node`` of the innermost level: it now waits."""
        level = self.levels[-1]
        bid = self.registry.next_id(level.prefix + node.name)
        level.waiting = bid
        return bid

    def waiting(self) -> BarrierId | None:
        """The barrier occurrence the run waits at, if any."""
        return self.levels[-1].waiting

    def time_out(self, node: BarrierNode, bid: BarrierId) -> Decision | None:
        """The barrier's timeout passed with no decision: its default (None: skip)."""
        self.registry.mark_resolved(bid)
        return TIMEOUT_DEFAULTS[node.default](node)

    def resolve(self, node: BarrierNode, decision: Decision | None) -> Outcome:
        """The barrier is resolved: what its decision writes and where it goes."""
        self.levels[-1].waiting = None
        if decision is None:
            return NEXT
        updates, target = decision_updates(
            node.name, decision, approved_key=node.approved_key, reason_key=node.reason_key
        )
        return Outcome(list(updates.items()), goto=target)

    def check_decision(self, node: str, decision: Decision) -> None:
        """Refuse a decision the graph could never take (``BarrierError``, ``MissingEdge``)."""
        check_steering(self.graph, node, decision, durable=self.durable)

    # -- fan-out -------------------------------------------------------------------
    def fan_out(self, node: ParallelNode) -> dict[str, Mapping[str, Any]]:
        """A fan-out starts: its finished branches so far (those of a resumed run)."""
        done = dict(self.resumed_branches)
        self.resumed_branches = {}
        self.levels[-1].fanout = (node, done)
        return done

    def fanned_in(self) -> None:
        """Every branch of the fan-out in progress succeeded."""
        self.levels[-1].fanout = None

    # -- subgraphs -----------------------------------------------------------------
    def enter(self, node: SubgraphNode) -> Level:
        """Push the level of subgraph ``node``: resumed from its stored frame, else new."""
        parent = self.levels[-1]
        frames = parent.frames
        prefix = f"{parent.prefix}{node.name}/"
        max_steps = node.max_steps or parent.max_steps
        if frames and frames[0].node == node.name:
            frame = frames[0]
            level = Level(
                node.graph, dict(frame.state), frame.next_node, frame.step, max_steps, prefix
            )
            level.collected, level.frames = list(frame.collected), frames[1:]
            parent.frames = []
        else:
            start = node.input(parent.view) if node.input is not None else parent.view
            state = check_state(start)
            if self.durable and node.input is not None:  # new values: refuse as a node's
                where = f"the input of subgraph {prefix[:-1]!r} holds"
                for key, value in state.items():
                    check_value(key, value, where)
            level = Level(node.graph, state, node.graph.start, 0, max_steps, prefix, [])
        self.levels.append(level)
        return level

    def leave(self, node: SubgraphNode) -> Outcome:
        """Pop the completed subgraph level: its output, or the updates it collected."""
        level = self.levels.pop()
        if node.output is not None:
            return normalise(node.name, node.output(level.view))
        return Outcome(list(level.collected or ()))

    # -- checkpoints ---------------------------------------------------------------
    def interruption(self, error: GraphError) -> Interruption:
        """The checkpoint a failure (FAILED) or cancel (WAITING at a barrier, else
        RUNNING: resumable) writes, with the finished branches of a fan-out in progress."""
        inner = self.levels[-1]
        status = RunStatus.FAILED
        if isinstance(error, Cancelled):
            status = RunStatus.WAITING if inner.waiting is not None else RunStatus.RUNNING
        branches = None
        if inner.fanout is not None:
            node, done = inner.fanout
            branches = [
                BranchResult(b.name, dict(done[b.name])) for b in node.branches if b.name in done
            ]
        return Interruption(status, inner.waiting, branches)

    def cancelled(self) -> Cancelled:
        """The ``Cancelled`` error naming where the run was: the barrier or the node."""
        inner = self.levels[-1]
        if inner.waiting is not None:
            return Cancelled(node=inner.waiting.node, barrier=str(inner.waiting))
        return Cancelled(node=inner.open.path if inner.open is not None else "")

    def next_node(self, *, done: bool = False) -> str | None:
        """The run's next node as a checkpoint records it (None once it has none)."""
        return None if done or not self.levels[0].resumable else self.levels[0].current

    def checkpoint(
        self,
        next_node: str | None,
        *,
        status: RunStatus = RunStatus.RUNNING,
        pending: BarrierId | None = None,
        branches: list[BranchResult] | None = None,
        error: str | None = None,
    ) -> tuple[Checkpoint, Changes]:
        """The checkpoint of the whole run now, and the store's hint of what changed."""
        assert self.changes is not None, "a checkpoint needs a store"
        saved = branches or []
        changes = self.changes.take(self.last_checkpoint, new_branches(self.saved_branches, saved))
        root = self.levels[0]
        checkpoint = Checkpoint(
            checkpoint_id=new_id(),
            trace_id=self.trace_id,
            graph_name=self.graph.name,
            graph_hash=self.graph.hash(),
            next_node=next_node,
            step=root.step,
            state=root.state,
            status=status,
            pending_barrier=pending,
            occurrences=dict(self.registry.occurrences),
            decisions=self.registry.entries(),
            branches=saved,
            resumed_from=self.resumed_from,
            resume_count=self.resume_count,
            error=error,
            frames=[
                Frame(lv.name, lv.current, lv.step, dict(lv.state), list(lv.collected or ()))
                for lv in self.levels[1:]
            ],
        )
        return checkpoint, changes

    def saved(self, checkpoint: Checkpoint) -> ev.CheckpointSaved:
        """``checkpoint`` is in the store: the next one's hint names it."""
        self.last_checkpoint = checkpoint.checkpoint_id
        self.saved_branches = checkpoint.branches
        return ev.CheckpointSaved(
            self.trace_id, checkpoint.checkpoint_id, checkpoint.next_node or "", checkpoint.step
        )

    def unsaved(self, changes: Changes) -> None:
        """A save failed: its deltas are owed to the next one (whose hint keeps naming the
        last checkpoint saved; a store that holds something else writes in full)."""
        assert self.changes is not None
        self.changes.put_back(changes)


def new_branches(
    previous: list[BranchResult], branches: list[BranchResult]
) -> tuple[int, ...] | None:
    """Where in ``branches`` the records not in ``previous`` are, when ``previous``'s very
    records are all in it, in order (a fan-out's records grow by one); else None."""
    if not previous:
        return None
    new, j = [], 0
    for i, branch in enumerate(branches):
        if j < len(previous) and branch is previous[j]:
            j += 1
        else:
            new.append(i)
    return tuple(new) if j == len(previous) else None
