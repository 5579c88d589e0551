"""Graphs as plain data: what both sides of a differential test run.

A :class:`GraphSpec` describes a graph (nodes, edges in registration order, reducers)
whose task nodes and parallel branches follow scripted :class:`Behaviour` s, one per
call. :func:`build_graph` turns it into a real :class:`~trio_graph.Graph` with fresh
node functions (they count their own calls, so build one graph per run; pass a
``Counter`` as ``calls`` to read the counts afterwards).

The scripted person is in :mod:`~trio_graph.testing.script`, traces in
:mod:`~trio_graph.testing.traces`.

This module uses no Trio except inside the async node functions it builds.
"""

from __future__ import annotations

import copy
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal

import attrs

from .. import reducers as builtin_reducers
from .._model.builder import GraphBuilder
from .._model.graph import Graph
from ..reducers import Reducer

StrategyName = Literal["fail_fast", "collect_all", "first_completed", "quorum"]

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
    ``delay`` tells the reference when a parallel branch completes; ``counter``, when
    given, counts the calls too (under ``name``).
    """

    is_async = False

    def __init__(
        self,
        name: str,
        behaviours: Sequence[Behaviour],
        *,
        delay: float = 0.0,
        counter: Counter[str] | None = None,
    ) -> None:
        if not behaviours:
            raise ValueError(f"{name}: at least one behaviour is needed")
        self.name = name
        self.behaviours = tuple(behaviours)
        self.delay = delay
        self.calls = 0
        self.counter = counter

    def _next(self) -> Behaviour:
        behaviour = self.behaviours[self.calls % len(self.behaviours)]
        self.calls += 1
        if self.counter is not None:
            self.counter[self.name] += 1
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


class MapItemFn:
    """A map node's ``fn(item, state)``: item ``i`` (an int) follows ``fns[i]`` (its own
    behaviours, delay and call count); ``reference(item, state)`` skips the sleep and
    ``delay_of(item)`` says when the item completes (for the reference interpreter)."""

    def __init__(self, fns: Sequence[BehaviourFn]) -> None:
        self.fns = tuple(fns)

    def reference(self, item: int, state: Mapping[str, Any]) -> Any:
        return self.fns[item].reference(state)

    def delay_of(self, item: int) -> float:
        return self.fns[item].delay

    async def __call__(self, item: int, state: Mapping[str, Any]) -> Any:
        fn = self.fns[item]
        return (await fn(state)) if fn.is_async else fn(state)


@attrs.frozen
class Over:
    """A map node's ``over``: the items ``0 .. count-1``, as a list (or, to test the
    refusal, as a tuple)."""

    count: int
    kind: Literal["list", "tuple"] = "list"

    def __call__(self, state: Mapping[str, Any]) -> Any:
        items = list(range(self.count))
        return items if self.kind == "list" else tuple(items)


class EmittingBehaviourFn(AsyncBehaviourFn):
    """An async node function taking a ``NodeContext``: emits ``emits`` outputs
    (``"name#0"``, ``"name#1"``, ...) through ``ctx.emit``, then behaves as
    :class:`AsyncBehaviourFn`. The reference (``reference(state)``) emits nothing: outputs
    change no state and no route."""

    def __init__(self, name: str, behaviours: Sequence[Behaviour], *, emits: int, **kw: Any):
        super().__init__(name, behaviours, **kw)
        self.emits = emits

    async def __call__(self, state: Mapping[str, Any], ctx: Any) -> Any:  # type: ignore[override]
        for i in range(self.emits):
            await ctx.emit(f"{self.name}#{i}")
        return await super().__call__(state)


# -- conditions ---------------------------------------------------------------------------

CondOp = Literal["true", "false", "has", "eq", "lt", "odd", "raise"]


@attrs.frozen
class Cond:
    """A printable, deterministic edge condition on one key.

    ``has``: key present; ``eq``: ``state.get(key) == value``; ``lt``:
    ``state.get(key, 0) < value``; ``odd``: ``state.get(key, 0) % 2 == 1``;
    ``true``/``false``: constant; ``raise``: raises ``RuntimeError(value)`` (a broken
    condition). ``lt`` and ``odd`` raise ``TypeError`` on values of the wrong type, like
    real conditions do.
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
        if op == "raise":
            raise RuntimeError(self.value)
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
    strategy: StrategyName = "fail_fast"
    kind: Literal["parallel"] = "parallel"
    quorum: int | None = None


@attrs.frozen
class MapSpec:
    """A map node over the items ``0 .. len(items)-1``; item ``i`` behaves as
    ``items[i]`` (its name is unused: the branch is ``"name[i]"``); ``over_kind="tuple"``
    makes ``over`` return a tuple, which the node refuses."""

    name: str
    items: tuple[BranchSpec, ...]
    strategy: StrategyName = "fail_fast"
    quorum: int | None = None
    over_kind: Literal["list", "tuple"] = "list"
    kind: Literal["map"] = "map"


NodeSpec = TaskSpec | ConditionSpec | BarrierSpec | ParallelSpec | MapSpec


@attrs.frozen
class EdgeSpec:
    """An edge; ``cond`` for conditional edges; ``max_visits`` is a hint only."""

    frm: str
    to: str
    kind: Literal["normal", "conditional", "fallback"] = "normal"
    cond: Cond | None = None
    max_visits: int | None = None

    @property
    def condition(self) -> Cond | None:
        """``cond``, under the name :class:`~trio_graph._model.graph.Edge` gives it."""
        return self.cond


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

    def out(self, name: str) -> list[EdgeSpec]:
        """The edges leaving ``name`` in registration order, as the built graph has them:
        a condition node's branches first (declared with the node), then ``edges``."""
        first: list[EdgeSpec] = []
        for node in self.nodes:
            if isinstance(node, ConditionSpec) and node.name == name:
                first = [EdgeSpec(name, to, "conditional", c) for to, c in node.branches]
        return [*first, *(e for e in self.edges if e.frm == name)]


def build_graph(
    spec: GraphSpec,
    builder: GraphBuilder | None = None,
    calls: Counter[str] | None = None,
    *,
    emits: int = 0,
) -> Graph:
    """A real graph following ``spec``, with fresh node functions (build one per run).

    ``calls``, when given, counts each task node's calls under its name (each branch's
    under ``"node.branch"``); ``emits > 0`` makes every task node take a ``NodeContext``
    and emit that many outputs per call (:class:`EmittingBehaviourFn`)."""
    return declare(spec, builder, calls=calls, emits=emits).build()


def declare(
    spec: GraphSpec,
    builder: GraphBuilder | None = None,
    *,
    start: bool = True,
    end: bool = True,
    calls: Counter[str] | None = None,
    emits: int = 0,
) -> GraphBuilder:
    """Declare ``spec`` on a builder (nodes, then edges, reducers, start, end); not built.

    ``start=False`` / ``end=False`` leave the start / end node undeclared; ``calls`` and
    ``emits`` are as for :func:`build_graph`."""
    b = builder or GraphBuilder(spec.name)
    for node in spec.nodes:
        if isinstance(node, TaskSpec):
            if emits:
                fn: BehaviourFn = EmittingBehaviourFn(
                    node.name, node.behaviours, emits=emits, counter=calls
                )
            else:
                cls = AsyncBehaviourFn if node.is_async else BehaviourFn
                fn = cls(node.name, node.behaviours, counter=calls)
            b.task(node.name, fn)
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
        elif isinstance(node, MapSpec):
            items = [_branch_fn(f"{node.name}[{i}]", br, calls) for i, br in enumerate(node.items)]
            over = Over(len(items), node.over_kind)
            b.map(
                node.name, MapItemFn(items), over=over, strategy=node.strategy, quorum=node.quorum
            )
        else:
            fns = {br.name: _branch_fn(f"{node.name}.{br.name}", br, calls) for br in node.branches}
            b.parallel(node.name, fns, strategy=node.strategy, quorum=node.quorum)
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


def _branch_fn(name: str, br: BranchSpec, calls: Counter[str] | None) -> BehaviourFn:
    cls = AsyncBehaviourFn if br.is_async or br.delay > 0 else BehaviourFn
    return cls(name, br.behaviours, delay=br.delay, counter=calls)
