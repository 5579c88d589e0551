"""Routing (DESIGN §3): conditional in order, then first normal, then first fallback, else
Unrouted listing every condition tried; a named target needs an edge of any class."""

from __future__ import annotations

import copy
import types
from collections.abc import Sequence
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from trio_graph import Executor, Goto, GraphBuilder, MissingEdge, NodeExecutionFailed, Unrouted
from trio_graph import events as ev
from trio_graph._model.graph import Edge, OutEdges
from trio_graph._model.routing import check_target, route, route_fallback
from trio_graph.errors import ConditionResult
from trio_graph.testing import (
    TASKS_AND_CONDITIONS,
    Cond,
    EdgeSpec,
    GraphSpec,
    build_graph,
    conditions,
    graph_and_state,
    key_states,
    route_edges,
)

SPECS, STATES = graph_and_state(
    node_kinds=TASKS_AND_CONDITIONS, max_extra_edges=12, raising_conditions=8
)
"""Random graphs of task and condition nodes (runs that need nobody), and a state for each."""
ROUTE_KEYS = (("a", "int"), ("b", "int"), ("n", "int"))
"""The keys the conditions of random edge lists test."""

T, F = Cond("true"), Cond("false")


def out_of(edges: Sequence[Edge]) -> OutEdges:
    """The OutEdges index of one node's edges (registration order kept per class)."""
    return OutEdges(
        conditional=tuple(e for e in edges if e.kind == "conditional"),
        normal=tuple(e for e in edges if e.kind == "normal"),
        fallback=tuple(e for e in edges if e.kind == "fallback"),
        targets=frozenset(e.to for e in edges),
    )


def cond(to: str, c: Any) -> Edge:
    return Edge("n", to, "conditional", c)


def normal(to: str) -> Edge:
    return Edge("n", to, "normal")


def fallback(to: str) -> Edge:
    return Edge("n", to, "fallback")


def test_true_condition_beats_earlier_normal_and_fallback() -> None:
    """A true conditional edge wins even if normal/fallback edges were registered first."""
    out = out_of([fallback("fb"), normal("x"), cond("c1", F), cond("c2", T)])
    assert route("n", out, {}) == "c2"


def test_first_true_condition_in_registration_order_wins() -> None:
    """Of several true conditions the first registered wins; later ones are not evaluated."""
    calls: list[str] = []

    def spy(name: str, value: bool) -> Any:
        def c(state: Any) -> bool:
            calls.append(name)
            return value

        return c

    out = out_of([cond("a", spy("a", False)), cond("b", spy("b", True)), cond("c", spy("c", True))])
    assert route("n", out, {}) == "b"
    assert calls == ["a", "b"]


def test_truthy_condition_values_count() -> None:
    """A condition returning a truthy non-bool value selects its edge; a falsy one does not."""
    out = out_of([cond("a", lambda s: 0), cond("b", lambda s: "yes"), normal("x")])
    assert route("n", out, {}) == "b"


def test_no_true_condition_takes_first_normal() -> None:
    """No condition holds: the first normal edge, even when a fallback was registered first."""
    out = out_of([fallback("fb"), cond("c", F), normal("x"), normal("y")])
    assert route("n", out, {}) == "x"


def test_no_normal_edge_takes_first_fallback() -> None:
    """No condition holds and no normal edge: the first fallback edge."""
    out = out_of([cond("c", F), fallback("f1"), fallback("f2")])
    assert route("n", out, {}) == "f1"
    assert route_fallback("n", out) == "f1"


def test_unrouted_lists_every_condition_tried() -> None:
    """Only false conditions: Unrouted names the node and every condition, in order."""
    out = out_of([cond("a", F), cond("b", Cond("eq", "k", 1)), cond("a", F)])
    with pytest.raises(Unrouted) as info:
        route("n", out, {"k": 2})
    err = info.value
    assert err.node == "n"
    assert err.attempted == [
        ConditionResult("a", False),
        ConditionResult("b", False),
        ConditionResult("a", False),
    ]
    assert str(err) == "no route from node 'n' (conditions tried: a=False, b=False, a=False)"


def test_unrouted_with_no_edges() -> None:
    """No edges at all: Unrouted with an empty attempted list."""
    with pytest.raises(Unrouted, match=r"^no route from node 'n' \(conditions tried: none\)$"):
        route("n", OutEdges(), {})
    assert route_fallback("n", OutEdges()) is None


def test_condition_that_raises_is_a_node_failure() -> None:
    """A condition raising is NodeExecutionFailed naming the node and the edge."""
    out = out_of([cond("a", Cond("raise", value="kaput")), normal("x")])
    with pytest.raises(NodeExecutionFailed) as info:
        route("n", out, {})
    assert info.value.node == "n"
    assert info.value.error_type == "RuntimeError"
    assert str(info.value) == (
        "node 'n' failed: RuntimeError: condition of edge 'n' -> 'a' raised: kaput"
    )
    assert isinstance(info.value.__cause__, RuntimeError)


@pytest.mark.parametrize("kind", ["conditional", "normal", "fallback"])
def test_check_target_accepts_an_edge_of_any_class(kind: str) -> None:
    """A named target is fine through an edge of any class (even a false conditional)."""
    out = out_of([Edge("n", "t", kind, F if kind == "conditional" else None), normal("x")])
    assert check_target("n", out, "t") == "t"


def test_check_target_without_edge_is_missing_edge() -> None:
    """A named target with no edge from the node: MissingEdge(from, to)."""
    out = out_of([normal("x")])
    with pytest.raises(MissingEdge) as info:
        check_target("n", out, "t")
    assert (info.value.frm, info.value.to) == ("n", "t")
    assert str(info.value) == "no edge from 'n' to 't' (Goto/Reroute needs an edge of any class)"


# -- through a real run ---------------------------------------------------------------------
def _goto_graph(target: str) -> Any:
    return (
        GraphBuilder("goto")
        .task("a", lambda s: Goto(target, updates={"went": target}))
        .task("b", lambda s: None)
        .task("c", lambda s: None)
        .task("end", lambda s: None)
        .edge_if("a", "b", lambda s: False)
        .edge("a", "end")
        .edge_fallback("a", "c")
        .edge("b", "end")
        .edge("c", "end")
        .start("a")
        .end("end")
        .build()
    )


@pytest.mark.parametrize("target", ["b", "c", "end"])
async def test_goto_follows_any_edge_class(target: str) -> None:
    """Goto to the target of a (false) conditional, fallback or normal edge is taken."""
    result = await Executor().run(_goto_graph(target), {})
    assert [x.node for x in result.execution_log] == ["a", target, "end"][
        : 3 if target != "end" else 2
    ]
    assert result.state == {"went": target}


async def test_goto_without_edge_is_missing_edge() -> None:
    """Goto to a node with no edge from the current one ends with MissingEdge naming both,
    after the node's updates were applied and its NodeEnd sent."""
    async with Executor().stream(_goto_graph("nowhere"), {}) as run:
        events = [e async for e in run]
    terminal = events[-1]
    assert isinstance(terminal, ev.GraphError)
    assert isinstance(terminal.error, MissingEdge)
    assert (terminal.error.frm, terminal.error.to) == ("a", "nowhere")
    assert terminal.state == {"went": "nowhere"}
    assert [(type(e).__name__, getattr(e, "success", None)) for e in events[1:-1]] == [
        ("NodeStart", None),
        ("StateChanged", None),
        ("NodeEnd", True),
    ]
    with pytest.raises(MissingEdge, match=r"^no edge from 'a' to 'nowhere' "):
        await Executor().run(_goto_graph("nowhere"), {})


async def test_unrouted_in_a_run() -> None:
    """A run reaching a node whose conditions are all false and that has no other edge
    ends with Unrouted naming the node and the conditions tried."""
    g = (
        GraphBuilder("u")
        .task("a", lambda s: {"x": 1})
        .task("end", lambda s: None)
        .edge_if("a", "end", lambda s: s["x"] > 5)
        .start("a")
        .end("end")
        .build()
    )
    with pytest.raises(Unrouted) as info:
        await Executor().run(g, {})
    assert info.value.node == "a"
    assert info.value.attempted == [ConditionResult("end", False)]


# -- properties ------------------------------------------------------------------------------
@st.composite
def edge_lists(draw: st.DrawFn) -> list[EdgeSpec]:
    targets = st.sampled_from(["t0", "t1", "t2", "t3"])
    kinds = st.sampled_from(["conditional", "normal", "fallback"])
    out = []
    for _ in range(draw(st.integers(0, 7))):
        kind = draw(kinds)
        out.append(
            EdgeSpec(
                "n",
                draw(targets),
                kind,
                draw(conditions(ROUTE_KEYS, raising=8)) if kind == "conditional" else None,
            )
        )
    return out


def route_outcome(node: str, out: OutEdges, state: Any) -> tuple[str, Any]:
    try:
        return "ok", route(node, out, state)
    except Unrouted as exc:
        return "unrouted", [(a.to, a.result) for a in exc.attempted]
    except NodeExecutionFailed as exc:
        return "raised", exc.__cause__


def same(a: tuple[str, Any], b: tuple[str, Any]) -> bool:
    if a[0] == b[0] == "raised":
        return type(a[1]) is type(b[1]) and str(a[1]) == str(b[1])
    return a == b


@settings(max_examples=300)
@given(edges=edge_lists(), state=key_states(ROUTE_KEYS))
def test_route_matches_brute_force_and_is_pure(
    edges: list[EdgeSpec], state: dict[str, Any]
) -> None:
    """On random edge sets and states, route() equals a brute-force re-implementation over the
    mixed registration-ordered edge list, gives the same answer every time, and leaves the
    state untouched (also through a read-only view)."""
    out = out_of([Edge(e.frm, e.to, e.kind, e.cond) for e in edges])
    before = copy.deepcopy(state)
    expected = route_edges(edges, state)
    first = route_outcome("n", out, state)
    assert same(first, expected), (first, expected)
    assert same(route_outcome("n", out, state), first)
    assert same(route_outcome("n", out, types.MappingProxyType(state)), first)
    assert state == before


@settings(max_examples=100)
@given(spec=SPECS, state=STATES)
def test_route_on_built_graphs_matches_brute_force(spec: GraphSpec, state: dict[str, Any]) -> None:
    """For every node of a random built graph, route(node, graph.out[node], state) matches the
    brute force over the edges as they were registered (so the builder's index keeps order),
    and check_target accepts exactly the targets of the node's edges."""
    graph = build_graph(spec)
    for name in graph.nodes:
        raw = spec.out(name)
        assert same(route_outcome(name, graph.out[name], state), route_edges(raw, state))
        targets = {e.to for e in raw}
        for other in [*graph.nodes, "ghost"]:
            if other in targets:
                assert check_target(name, graph.out[name], other) == other
            else:
                with pytest.raises(MissingEdge):
                    check_target(name, graph.out[name], other)


async def test_max_visits_is_only_a_hint() -> None:
    """An edge's max_visits never changes routing: a loop edge with max_visits=1 is taken as
    often as its condition holds."""
    g = (
        GraphBuilder("hint")
        .task("a", lambda s: {"i": s["i"] + 1})
        .task("end", lambda s: None)
        .edge_if("a", "a", lambda s: s["i"] < 5, max_visits=1)
        .edge("a", "end", max_visits=1)
        .start("a")
        .end("end")
        .build()
    )
    result = await Executor().run(g, {"i": 0})
    assert [x.node for x in result.execution_log] == ["a"] * 5 + ["end"]
