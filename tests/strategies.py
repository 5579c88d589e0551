"""Hypothesis strategies for the core tests: random valid graphs, node behaviours, states.

A graph is drawn as plain data (:class:`GraphSpec`) and turned into a real
:class:`~trio_graph.Graph` by :func:`build_graph`, with fresh node functions each
time (they count their own visits). :func:`simulate` is a brute-force reference
interpreter of DESIGN §3-5 over the same spec: the runtime must agree with it.
"""

from __future__ import annotations

import functools
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import attrs
import trio
from hypothesis import strategies as st

from trio_graph import Fallback, Goto, GraphBuilder, reducers
from trio_graph._model.graph import Graph

KEYS = ("a", "b", "n", "log")
"""State keys the random nodes write: ``n`` has the ``add`` reducer, ``log`` ``append``."""
REDUCERS = {"n": reducers.add, "log": reducers.append}


# -- conditions: deterministic, printable callables of the state ---------------------------
@attrs.frozen
class Const:
    value: bool

    def __call__(self, state: Mapping[str, Any]) -> bool:
        return self.value


@attrs.frozen
class KeyIs:
    key: str
    value: Any

    def __call__(self, state: Mapping[str, Any]) -> bool:
        return bool(state.get(self.key) == self.value)


@attrs.frozen
class KeyMod:
    """``state[key] % m == r`` for an int value; False when the key is missing or not an int."""

    key: str
    m: int
    r: int

    def __call__(self, state: Mapping[str, Any]) -> bool:
        v = state.get(self.key)
        return isinstance(v, int) and not isinstance(v, bool) and v % self.m == self.r


@attrs.frozen
class Boom:
    """A condition that raises."""

    message: str = "condition exploded"

    def __call__(self, state: Mapping[str, Any]) -> bool:
        raise RuntimeError(self.message)


Cond = Const | KeyIs | KeyMod | Boom

small_ints = st.integers(-3, 6)


def weighted(*pairs: tuple[int, st.SearchStrategy[Any]]) -> st.SearchStrategy[Any]:
    """Choose among strategies with integer weights (``st.one_of`` dedupes repeats)."""
    table = [strategy for weight, strategy in pairs for _ in range(weight)]
    return st.integers(0, len(table) - 1).flatmap(lambda i: table[i])


conditions: st.SearchStrategy[Cond] = st.one_of(
    st.builds(Const, st.booleans()),
    st.builds(KeyIs, st.sampled_from(("a", "b")), small_ints),
    st.builds(KeyMod, st.just("n"), st.integers(1, 4), st.integers(0, 3)),
)
conditions_or_boom: st.SearchStrategy[Cond] = weighted(
    (12, conditions), (1, st.builds(Boom, st.sampled_from(("boom", "kaput"))))
)


# -- node behaviours (one action per visit, cycling) -----------------------------------------
@attrs.frozen
class Updates:
    updates: dict[str, Any]


@attrs.frozen
class ReturnNone:
    pass


@attrs.frozen
class GotoAct:
    target: str
    updates: dict[str, Any]


@attrs.frozen
class FallbackAct:
    reason: str
    updates: dict[str, Any]


@attrs.frozen
class Raise:
    message: str


@attrs.frozen
class Bad:
    """Return something that is not a node result."""

    value: Any


@attrs.frozen
class Sleep:
    """Sleep (async nodes only, under MockClock), then return the updates."""

    seconds: float
    updates: dict[str, Any]


Action = Updates | ReturnNone | GotoAct | FallbackAct | Raise | Bad | Sleep


def update_values(key: str) -> st.SearchStrategy[Any]:
    if key == "n":  # add reducer: an occasional str is a type mismatch (StateError)
        return weighted((12, small_ints), (1, st.just("x")))
    return small_ints


updates_st: st.SearchStrategy[dict[str, Any]] = st.fixed_dictionaries(
    {}, optional={k: update_values(k) for k in KEYS}
)


# -- graphs -----------------------------------------------------------------------------
@attrs.frozen
class EdgeSpec:
    frm: str
    to: str
    kind: str  # "conditional" | "normal" | "fallback"
    cond: Cond | None = None


@attrs.frozen
class NodeSpec:
    name: str
    kind: str  # "task" | "condition"
    is_async: bool = False
    actions: tuple[Action, ...] = ()


@attrs.frozen
class GraphSpec:
    nodes: tuple[NodeSpec, ...]
    edges: tuple[EdgeSpec, ...]
    start: str
    end: str

    def node(self, name: str) -> NodeSpec:
        return next(n for n in self.nodes if n.name == name)

    def out(self, name: str) -> list[EdgeSpec]:
        return [e for e in self.edges if e.frm == name]


def edge_specs(
    names: Sequence[str], conds: st.SearchStrategy[Cond] = conditions
) -> st.SearchStrategy[EdgeSpec]:
    kinds = st.sampled_from(("conditional", "normal", "fallback"))

    @st.composite
    def one(draw: st.DrawFn) -> EdgeSpec:
        frm = draw(st.sampled_from(names))
        to = draw(st.sampled_from(names))
        kind = draw(kinds)
        return EdgeSpec(frm, to, kind, draw(conds) if kind == "conditional" else None)

    return one()


@st.composite
def graph_specs(
    draw: st.DrawFn,
    *,
    max_nodes: int = 6,
    allow_condition_nodes: bool = True,
    allow_sleep: bool = True,
    allow_failures: bool = True,
) -> GraphSpec:
    """A valid graph: a spine n0 -> ... -> end (so every node is reachable and can reach the
    end) of random edge classes, plus random extra edges (back edges and self loops make
    cycles), in a shuffled registration order; each task node has 1-3 drawn actions."""
    k = draw(st.integers(2, max_nodes))
    names = [f"n{i}" for i in range(k)]
    conds = conditions_or_boom if allow_failures else conditions
    spine = []
    for i in range(k - 1):
        kind = draw(st.sampled_from(("normal", "normal", "conditional", "fallback")))
        cond = draw(conds) if kind == "conditional" else None
        spine.append(EdgeSpec(names[i], names[i + 1], kind, cond))
    extra = draw(st.lists(edge_specs(names, conds), max_size=2 * k))
    edges = tuple(draw(st.permutations([*spine, *extra])))
    end = names[-1]
    nodes = []
    for name in names:
        kind = "task"
        if allow_condition_nodes and name != end and draw(st.integers(0, 5)) == 0:
            kind = "condition"
        if kind == "condition":
            nodes.append(NodeSpec(name, "condition"))
            continue
        is_async = draw(st.booleans())
        targets = sorted({e.to for e in edges if e.frm == name})
        missing = sorted(set(names) - set(targets)) or ["nowhere"]
        options: list[tuple[int, st.SearchStrategy[Action]]] = [
            (8, st.builds(Updates, updates_st)),
            (3, st.just(ReturnNone())),
        ]
        # Goto/Fallback are honoured at the end node too.
        if targets:
            options.append((3, st.builds(GotoAct, st.sampled_from(targets), updates_st)))
        options.append((2, st.builds(FallbackAct, st.sampled_from(("slow", "bad")), updates_st)))
        if allow_failures:
            options += [
                (1, st.builds(GotoAct, st.sampled_from(missing), updates_st)),
                (1, st.builds(Raise, st.sampled_from(("oops", "broken")))),
                (1, st.builds(Bad, st.sampled_from((42, "text", [1, 2], ("a", 1))))),
            ]
        if is_async and allow_sleep:
            options.append((2, st.builds(Sleep, st.sampled_from((0.0, 0.5, 3.0)), updates_st)))
        actions = draw(st.lists(weighted(*options), min_size=1, max_size=3))
        nodes.append(NodeSpec(name, "task", is_async, tuple(actions)))
    return GraphSpec(tuple(nodes), edges, names[0], end)


states: st.SearchStrategy[dict[str, Any]] = st.fixed_dictionaries(
    {"n": small_ints, "log": st.just([])},
    optional={"a": small_ints, "b": small_ints},
)


# -- turning specs into graphs --------------------------------------------------------------
class NodeError(Exception):
    """What a ``Raise`` action raises."""


def _result(action: Action) -> Any:
    if isinstance(action, Updates):
        return dict(action.updates)
    if isinstance(action, ReturnNone):
        return None
    if isinstance(action, GotoAct):
        return Goto(action.target, updates=action.updates)
    if isinstance(action, FallbackAct):
        return Fallback(action.reason, updates=action.updates)
    if isinstance(action, Raise):
        raise NodeError(action.message)
    if isinstance(action, Bad):
        return action.value
    assert isinstance(action, Sleep)
    return dict(action.updates)


def make_fn(spec: NodeSpec, calls: Counter[str]) -> Callable[[Mapping[str, Any]], Any]:
    """The node function for ``spec``; ``calls[name]`` counts its executions."""
    actions = spec.actions
    name = spec.name

    def pick() -> Action:
        i = calls[name]
        calls[name] += 1
        return actions[i % len(actions)]

    if spec.is_async:

        async def afn(state: Mapping[str, Any]) -> Any:
            action = pick()
            if isinstance(action, Sleep):
                await trio.sleep(action.seconds)
            else:
                await trio.lowlevel.checkpoint()
            return _result(action)

        return afn

    def fn(state: Mapping[str, Any]) -> Any:
        return _result(pick())

    return fn


def build_graph(spec: GraphSpec, calls: Counter[str] | None = None, name: str = "g") -> Graph:
    calls = Counter() if calls is None else calls
    b = GraphBuilder(name)
    for node in spec.nodes:
        if node.kind == "condition":
            b.condition(node.name, [])
        else:
            b.task(node.name, make_fn(node, calls))
    for e in spec.edges:
        if e.kind == "conditional":
            assert e.cond is not None
            b.edge_if(e.frm, e.to, e.cond)
        elif e.kind == "normal":
            b.edge(e.frm, e.to)
        else:
            b.edge_fallback(e.frm, e.to)
    for key, reducer in REDUCERS.items():
        b.reducer(key, reducer)
    return b.start(spec.start).end(spec.end).build()


# -- the brute-force reference interpreter -----------------------------------------------
def brute_route(edges: Sequence[EdgeSpec], state: Mapping[str, Any]) -> tuple[str, Any]:
    """("ok", target) | ("unrouted", [(to, False)...]) | ("raised", exc), re-derived from
    the mixed, registration-ordered edge list of one node."""
    tried = []
    for e in edges:
        if e.kind == "conditional":
            assert e.cond is not None
            try:
                ok = bool(e.cond(state))
            except Exception as exc:
                return "raised", exc
            if ok:
                return "ok", e.to
            tried.append((e.to, False))
    for kind in ("normal", "fallback"):
        for e in edges:
            if e.kind == kind:
                return "ok", e.to
    return "unrouted", tried


@attrs.frozen
class Expected:
    """What a run of a spec must produce."""

    nodes: list[tuple[str, bool]]
    """Every node execution as (node, success), in order (one per NodeStart/NodeEnd)."""
    outcome: str
    """"complete" or the name of the terminal error class."""
    state: dict[str, Any]
    changes: list[tuple[str, str, Any]]
    """Every StateChanged as (node, key, value), in order."""
    degraded: list[str]
    """Nodes that took a fallback (ObservedError Degraded), in order."""


def _fold(state: dict[str, Any], items: Sequence[tuple[str, Any]]) -> dict[str, Any] | None:
    merged: dict[str, Any] = {}
    for key, value in items:
        r = REDUCERS.get(key)
        if r is None:
            merged[key] = value
            continue
        if key in merged:
            old = merged[key]
        elif key in state:
            old = state[key]
        elif r.initial is not None:
            old = r.initial()
        else:
            merged[key] = value
            continue
        try:
            merged[key] = r.fn(old, value)
        except Exception:
            return None
    return merged


def simulate(spec: GraphSpec, initial: Mapping[str, Any], max_steps: int) -> Expected:
    """Run ``spec`` by the book (DESIGN §3-5), without the engine."""
    state = dict(initial)
    visits: Counter[str] = Counter()
    nodes: list[tuple[str, bool]] = []
    changes: list[tuple[str, str, Any]] = []
    degraded: list[str] = []
    done = functools.partial(Expected, nodes, state=state, changes=changes, degraded=degraded)
    step, cur = 0, spec.start
    while True:
        if step + 1 > max_steps:
            return done("StepsExceeded")
        step += 1
        node = spec.node(cur)
        out = spec.out(cur)
        items: list[tuple[str, Any]] = []
        goto = fallback = None
        if node.kind == "task":
            action = node.actions[visits[cur] % len(node.actions)]
            visits[cur] += 1
            if isinstance(action, Raise):
                nodes.append((cur, False))
                return done("NodeExecutionFailed")
            if isinstance(action, Bad):
                nodes.append((cur, False))
                return done("StateError")
            if isinstance(action, Updates | Sleep):
                items = list(action.updates.items())
            elif isinstance(action, GotoAct):
                items, goto = list(action.updates.items()), action.target
            elif isinstance(action, FallbackAct):
                items, fallback = list(action.updates.items()), action.reason
        fallback_to = None
        if fallback is not None:
            fb = [e for e in out if e.kind == "fallback"]
            if not fb:
                nodes.append((cur, False))
                return done("NodeExecutionFailed")
            fallback_to = fb[0].to
        merged = _fold(state, items)
        if merged is None:
            nodes.append((cur, False))
            return done("StateError")
        state.update(merged)
        nodes.append((cur, True))
        changes.extend((cur, k, v) for k, v in items)
        if fallback_to is not None:
            degraded.append(cur)
            cur = fallback_to
            continue
        if goto is not None:  # honoured even at the end node (an edge must lead there)
            if goto not in {e.to for e in out}:
                return done("MissingEdge")
            cur = goto
            continue
        if cur == spec.end:
            return done("complete")
        how, what = brute_route(out, state)
        if how == "raised":
            return done("NodeExecutionFailed")
        if how == "unrouted":
            return done("Unrouted")
        cur = what
