"""Graphs as plain data, the scripted human, and traces: what both sides of a
differential test share.

A :class:`GraphSpec` describes a graph (nodes, edges in registration order, reducers)
whose task nodes and parallel branches follow scripted :class:`Behaviour` s, one per
call. :func:`build_graph` turns it into a real :class:`~trio_graph.Graph` with fresh
node functions (they count their own calls, so build one graph per run).

A :class:`DecisionScript` is what a person at the keyboard does; :class:`Human` plays
it against a run, identically for the Trio executor and the reference interpreter.
A :class:`Trace` is what a run did, comparable across the two.

This module uses no Trio except inside the async node functions it builds.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal

import attrs

from .. import events as ev
from .. import reducers as builtin_reducers
from .._model.builder import GraphBuilder
from .._model.decisions import Approve, BarrierId, Decision
from .._model.graph import Graph
from ..reducers import Reducer

# -- behaviours ---------------------------------------------------------------------------


class BehaviourError(Exception):
    """What a node with a ``raises`` behaviour raises."""


@attrs.frozen
class Behaviour:
    """One call of a task node or branch: sleep ``sleep`` seconds (async functions only),
    then raise ``BehaviourError(raises)`` if ``raises`` is set, else return ``result``.

    ``result`` is returned as is (a deep copy): a mapping of updates, None, a ``Goto``,
    a ``Fallback``, or anything malformed (``42``, ``{1: 2}``, ``Goto(7)``).
    """

    result: Any = None
    raises: str | None = None
    sleep: float = 0.0

    def perform(self) -> Any:
        """The node's return value (a fresh copy), or raise ``BehaviourError``."""
        if self.raises is not None:
            raise BehaviourError(self.raises)
        return copy.deepcopy(self.result)


class BehaviourFn:
    """A plain node function following ``behaviours`` in turn (call ``i`` uses
    ``behaviours[i % len(behaviours)]``).

    ``reference(state)`` is the same call without sleeping: the reference interpreter
    calls it instead of ``fn(state)`` (any node function may offer one).
    ``delay`` tells the reference when a parallel branch completes.
    """

    is_async = False

    def __init__(self, name: str, behaviours: Sequence[Behaviour], *, delay: float = 0.0) -> None:
        if not behaviours:
            raise ValueError(f"{name}: at least one behaviour is needed")
        self.name = name
        self.behaviours = tuple(behaviours)
        self.delay = delay
        self.calls = 0

    def _next(self) -> Behaviour:
        behaviour = self.behaviours[self.calls % len(self.behaviours)]
        self.calls += 1
        return behaviour

    def reference(self, state: Mapping[str, Any]) -> Any:
        """The call, without the sleep."""
        return self._next().perform()

    def __call__(self, state: Mapping[str, Any]) -> Any:
        return self._next().perform()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name} call {self.calls}>"


class AsyncBehaviourFn(BehaviourFn):
    """An async node function: sleeps ``delay`` plus the behaviour's ``sleep``
    (``trio.sleep``, so a ``MockClock`` controls it), then behaves."""

    is_async = True

    async def __call__(self, state: Mapping[str, Any]) -> Any:
        import trio  # only the executor side ever awaits this

        behaviour = self._next()
        pause = self.delay + behaviour.sleep
        if pause > 0:
            await trio.sleep(pause)
        return behaviour.perform()


# -- conditions ---------------------------------------------------------------------------

CondOp = Literal["true", "false", "has", "eq", "lt", "odd"]


@attrs.frozen
class Cond:
    """A printable, deterministic edge condition on one key.

    ``has``: key present; ``eq``: ``state.get(key) == value``; ``lt``:
    ``state.get(key, 0) < value``; ``odd``: ``state.get(key, 0) % 2 == 1``;
    ``true``/``false``: constant. ``lt`` and ``odd`` raise ``TypeError`` on values
    of the wrong type, like real conditions do.
    """

    op: CondOp
    key: str = ""
    value: Any = None

    def __call__(self, state: Mapping[str, Any]) -> bool:
        op = self.op
        if op == "true":
            return True
        if op == "false":
            return False
        if op == "has":
            return self.key in state
        if op == "eq":
            return bool(state.get(self.key) == self.value)
        if op == "lt":
            return bool(state.get(self.key, 0) < self.value)
        return bool(state.get(self.key, 0) % 2 == 1)


# -- custom reducers (user-defined reducers in generated graphs) ---------------------------


def concat(old: Any, new: Any) -> str:
    """A custom reducer: ``f"{old}|{new}"`` (never fails)."""
    return f"{old}|{new}"


def inc_only(old: Any, new: Any) -> Any:
    """A custom reducer that rejects updates not larger than the current value."""
    if not new > old:
        raise ValueError(f"inc_only: {new!r} is not larger than {old!r}")
    return new


REDUCERS: dict[str, Reducer | Callable[[Any, Any], Any]] = {
    **builtin_reducers.BUILTINS,
    "concat": concat,
    "inc_only": inc_only,
}
"""Reducers a spec may name: the built-ins and two custom functions."""

# -- nodes and edges ----------------------------------------------------------------------


@attrs.frozen
class TaskSpec:
    """A task node; ``is_async`` picks an async function (which may sleep)."""

    name: str
    behaviours: tuple[Behaviour, ...]
    is_async: bool = False
    kind: Literal["task"] = "task"


@attrs.frozen
class ConditionSpec:
    """A condition node: ``(target, condition)`` branches, registered as conditional edges
    when the node is declared."""

    name: str
    branches: tuple[tuple[str, Cond], ...]
    kind: Literal["condition"] = "condition"


@attrs.frozen
class BarrierSpec:
    """A barrier node (``timeout`` in virtual seconds; None waits for a decision)."""

    name: str
    timeout: float | None = None
    default: Literal["reject", "approve", "skip"] = "reject"
    approved_key: str | None = None
    reason_key: str | None = None
    kind: Literal["barrier"] = "barrier"


@attrs.frozen
class BranchSpec:
    """A parallel branch that completes ``delay`` virtual seconds after the fork."""

    name: str
    behaviours: tuple[Behaviour, ...]
    delay: float = 0.0
    is_async: bool = False


@attrs.frozen
class ParallelSpec:
    """A parallel node."""

    name: str
    branches: tuple[BranchSpec, ...]
    strategy: Literal["fail_fast", "collect_all"] = "fail_fast"
    kind: Literal["parallel"] = "parallel"


NodeSpec = TaskSpec | ConditionSpec | BarrierSpec | ParallelSpec


@attrs.frozen
class EdgeSpec:
    """An edge; ``cond`` for conditional edges; ``max_visits`` is a hint only."""

    frm: str
    to: str
    kind: Literal["normal", "conditional", "fallback"] = "normal"
    cond: Cond | None = None
    max_visits: int | None = None


@attrs.frozen
class GraphSpec:
    """A whole graph as data. ``keys`` names the state keys the generator uses and the
    kind of value each holds (``int``, ``str``, ``list``, ``dict``); ``reducers`` maps
    keys to names in :data:`REDUCERS`."""

    name: str
    nodes: tuple[NodeSpec, ...]
    edges: tuple[EdgeSpec, ...]
    start: str
    end: str
    reducers: tuple[tuple[str, str], ...] = ()
    keys: tuple[tuple[str, str], ...] = ()
    max_steps: int = 20

    def node_names(self) -> list[str]:
        return [n.name for n in self.nodes]

    def barrier_names(self) -> list[str]:
        return [n.name for n in self.nodes if isinstance(n, BarrierSpec)]


def build_graph(spec: GraphSpec, builder: GraphBuilder | None = None) -> Graph:
    """A real graph following ``spec``, with fresh node functions (build one per run)."""
    return declare(spec, builder).build()


def declare(
    spec: GraphSpec,
    builder: GraphBuilder | None = None,
    *,
    start: bool = True,
    end: bool = True,
) -> GraphBuilder:
    """Declare ``spec`` on a builder (nodes, then edges, reducers, start, end); not built.

    ``start=False`` / ``end=False`` leave the start / end node undeclared."""
    b = builder or GraphBuilder(spec.name)
    for node in spec.nodes:
        if isinstance(node, TaskSpec):
            cls = AsyncBehaviourFn if node.is_async else BehaviourFn
            b.task(node.name, cls(node.name, node.behaviours))
        elif isinstance(node, ConditionSpec):
            b.condition(node.name, list(node.branches))
        elif isinstance(node, BarrierSpec):
            b.barrier(
                node.name,
                timeout=node.timeout,
                default=node.default,
                approved_key=node.approved_key,
                reason_key=node.reason_key,
            )
        else:
            fns: dict[str, BehaviourFn] = {}
            for br in node.branches:
                cls = AsyncBehaviourFn if br.is_async or br.delay > 0 else BehaviourFn
                fns[br.name] = cls(f"{node.name}.{br.name}", br.behaviours, delay=br.delay)
            b.parallel(node.name, fns, strategy=node.strategy)
    for e in spec.edges:
        if e.kind == "conditional":
            assert e.cond is not None
            b.edge_if(e.frm, e.to, e.cond, max_visits=e.max_visits)
        elif e.kind == "fallback":
            b.edge_fallback(e.frm, e.to, max_visits=e.max_visits)
        else:
            b.edge(e.frm, e.to, max_visits=e.max_visits)
    for key, name in spec.reducers:
        b.reducer(key, REDUCERS[name])
    if start:
        b.start(spec.start)
    if end:
        b.end(spec.end)
    return b


# -- the scripted human -------------------------------------------------------------------

SendTarget = Literal["exact", "all", "this", "this_all", "earlier"]


@attrs.frozen
class Send:
    """One decision a person sends.

    ``exact``: ``run.decide(BarrierId(node, occurrence), decision)``; ``all``:
    ``run.decide_all(node, decision)``. Only in responses: ``this`` answers the
    occurrence the run is waiting at, ``this_all`` its node (wildcard), ``earlier``
    an occurrence already resolved (the ``occurrence``-th earlier wait, modulo their
    number; skipped when there is none). ``decision`` may be malformed on purpose.
    """

    target: SendTarget
    decision: Any
    node: str = ""
    occurrence: int = 1


@attrs.frozen
class DecisionScript:
    """What the person does during a run.

    - ``before``: sent as soon as the run starts, before any event is read;
    - ``responses[i]``: sent when the run **blocks** at its i-th waiting barrier, that
      is at a ``BarrierWaiting`` for which no decision was sent yet (no exact decision
      for that occurrence, no wildcard for that node). Decisions are sent only while
      the run is blocked, so what the run sees never depends on scheduling;
    - ``answer``: sent (exact) to a blocked barrier with no timeout that the responses
      left undecided, so a run never waits forever;
    - ``after_end``: sent on the terminal event (a finished run refuses them);
    - ``cancel_at``: at its ``cancel_at``-th blocked wait, if the responses left the
      barrier undecided, the person cancels the run (``run.cancel()``) instead.
    """

    before: tuple[Send, ...] = ()
    responses: tuple[tuple[Send, ...], ...] = ()
    answer: Decision = attrs.field(factory=Approve)
    after_end: tuple[Send, ...] = ()
    cancel_at: int | None = None


@attrs.frozen
class Call:
    """A resolved send: ``barrier_id`` for ``decide``, else ``node`` for ``decide_all``."""

    decision: Any
    barrier_id: BarrierId | None = None
    node: str = ""


Perform = Callable[[Call], str | None]
"""Carries out a call; returns the error type name it raised, or None."""


class Human:
    """Plays a :class:`DecisionScript`; ``perform`` is the side (executor or reference).

    It remembers what was accepted, to know which waits block: a wait blocks when no
    accepted exact decision names its occurrence and no accepted wildcard its node.
    ``results`` lists, per call, the error type it raised or None.
    """

    def __init__(
        self,
        script: DecisionScript,
        timeouts: Mapping[str, float | None],
        perform: Perform,
        cancel: Callable[[], None] | None = None,
    ) -> None:
        self.script = script
        self.timeouts = timeouts
        self.perform = perform
        self.cancel = cancel
        self.cancelled = False
        self.results: list[str | None] = []
        self.exact: set[BarrierId] = set()
        self.wildcards: set[str] = set()
        self.waits: list[BarrierId] = []
        self.blocked = 0

    def _do(self, call: Call) -> None:
        error = self.perform(call)
        self.results.append(error)
        if error is None:
            if call.barrier_id is not None:
                self.exact.add(call.barrier_id)
            else:
                self.wildcards.add(call.node)

    def _resolve(self, send: Send, current: BarrierId | None) -> Call | None:
        if send.target == "exact":
            return Call(send.decision, barrier_id=BarrierId(send.node, send.occurrence))
        if send.target == "all":
            return Call(send.decision, node=send.node)
        if current is None:
            return None
        if send.target == "this":
            return Call(send.decision, barrier_id=current)
        if send.target == "this_all":
            return Call(send.decision, node=current.node)
        if not self.waits:
            return None
        return Call(send.decision, barrier_id=self.waits[send.occurrence % len(self.waits)])

    def _send_all(self, sends: Sequence[Send], current: BarrierId | None) -> None:
        for send in sends:
            call = self._resolve(send, current)
            if call is not None:
                self._do(call)

    def decided(self, bid: BarrierId) -> bool:
        return bid in self.exact or bid.node in self.wildcards

    def start(self) -> None:
        """The run has just started."""
        self._send_all(self.script.before, None)

    def waiting(self, bid: BarrierId) -> None:
        """The run reached barrier occurrence ``bid`` (a ``BarrierWaiting`` was seen)."""
        if not self.decided(bid):
            i = self.blocked
            self.blocked += 1
            if i < len(self.script.responses):
                self._send_all(self.script.responses[i], bid)
            if not self.decided(bid) and i == self.script.cancel_at and self.cancel is not None:
                self.cancelled = True
                self.cancel()
            elif not self.decided(bid) and self.timeouts.get(bid.node) is None:
                self._do(Call(self.script.answer, barrier_id=bid))
        self.waits.append(bid)

    def finished(self) -> None:
        """The terminal event was seen."""
        self._send_all(self.script.after_end, None)


# -- traces -------------------------------------------------------------------------------


@attrs.frozen
class ErrorInfo:
    """An error's type and the attributes that identify it (messages are not compared)."""

    type: str
    fields: tuple[tuple[str, Any], ...] = ()

    def __str__(self) -> str:
        inner = ", ".join(f"{k}={v!r}" for k, v in self.fields)
        return f"{self.type}({inner})"


Record = tuple[Any, ...]
"""One event as a comparable tuple: the event's class name, then its fields without
``trace_id``, ``span_id`` and durations (see :func:`trio_graph.testing.harness.record`)."""


@attrs.frozen
class Trace:
    """What a run did: events, the nodes run (in order), the final state (or the state
    at the error), the error if any, and what each decision call raised."""

    events: tuple[Record, ...]
    nodes: tuple[str, ...]
    state: dict[str, Any]
    error: ErrorInfo | None
    decisions: tuple[str | None, ...] = ()
    raw: tuple[Any, ...] = attrs.field(default=(), eq=False, repr=False)
    """The executor's events themselves (empty for the reference)."""


ERROR_FIELDS: dict[str, tuple[tuple[str, Any], ...]] = {
    "NodeNotFound": (("node", ""),),
    "MissingEdge": (("frm", ""), ("to", "")),
    "Unrouted": (("node", ""), ("attempted", ())),
    "StepsExceeded": (("limit", 0), ("node", "")),
    "NodeExecutionFailed": (("node", ""), ("error_type", ""), ("branch", None), ("failures", ())),
    "StateError": (("node", ""), ("key", ""), ("branches", ())),
    "BarrierError": (("node", ""),),
    "Cancelled": (("node", ""), ("barrier", "")),
}
"""The attributes compared for each error type, with their defaults."""


def error_info(type_name: str, **fields: Any) -> ErrorInfo:
    """An :class:`ErrorInfo` with the compared fields of ``type_name`` (defaults filled in)."""
    known = ERROR_FIELDS.get(type_name, ())
    unknown = set(fields) - {k for k, _ in known}
    if unknown:
        raise ValueError(f"{type_name} has no compared field(s) {sorted(unknown)}")
    return ErrorInfo(type_name, tuple((k, fields.get(k, default)) for k, default in known))


def _plain(value: Any) -> Any:
    if isinstance(value, list | tuple):
        return tuple(_plain(v) for v in value)
    if attrs.has(type(value)):
        return tuple(_plain(v) for v in attrs.astuple(value, recurse=False))
    return value


def describe_error(error: BaseException) -> ErrorInfo:
    """The :class:`ErrorInfo` of a real error (lists become tuples, attempted conditions
    ``(to, result)`` pairs, branch failures ``(branch, error_type, message)`` triples
    cut to ``(branch, error_type)``)."""
    name = type(error).__name__
    fields: dict[str, Any] = {}
    for key, default in ERROR_FIELDS.get(name, ()):
        value = getattr(error, key, default)
        if key == "failures":
            value = tuple((f.branch, f.error_type) for f in value)
        fields[key] = _plain(value)
    return error_info(name, **fields)


def record(event: ev.Event) -> Record:
    """A real event as a :data:`Record`: no trace id, span id or duration.

    ``GraphComplete`` keeps the final state and the execution log as ``(step, node,
    success)`` triples; ``GraphError`` the :class:`ErrorInfo` and the state.
    """
    name = type(event).__name__
    if isinstance(event, ev.GraphStart):
        return (name, event.graph, event.node, event.step, event.resumed_from)
    if isinstance(event, ev.NodeStart):
        return (name, event.node, event.step)
    if isinstance(event, ev.StateChanged):
        return (name, event.node, event.key, copy.deepcopy(event.value))
    if isinstance(event, ev.NodeEnd):
        return (name, event.node, event.success)
    if isinstance(event, ev.ObservedError):
        return (name, event.node, event.error.kind, event.error.message)
    if isinstance(event, ev.BarrierWaiting):
        return (name, event.node, event.barrier_id)
    if isinstance(event, ev.BarrierResolved):
        return (name, event.node, event.barrier_id, event.decision, event.timed_out)
    if isinstance(event, ev.ParallelStarted):
        return (name, event.node, event.branch_count)
    if isinstance(event, ev.BranchCompleted):
        return (name, event.node, event.branch, event.success)
    if isinstance(event, ev.ParallelCompleted):
        return (name, event.node)
    if isinstance(event, ev.CheckpointSaved):
        return (name, event.node, event.step)
    if isinstance(event, ev.GraphComplete):
        log = tuple((e.step, e.node, e.success) for e in event.result.execution_log)
        return (name, copy.deepcopy(event.result.state), log)
    if isinstance(event, ev.GraphError):
        return (name, describe_error(event.error), copy.deepcopy(event.state))
    return (name,)
