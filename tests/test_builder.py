"""GraphBuilder validation (every problem at once), cycle analysis and Mermaid export."""

from __future__ import annotations

import itertools
import re
from typing import Any

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from trio_graph import GraphBuilder, GraphError, InvalidGraph, RetryPolicy
from trio_graph._model.analysis import CycleInfo
from trio_graph._model.graph import Edge, Graph, TaskNode, index_edges, structural_hash
from trio_graph.testing import TASKS_AND_CONDITIONS, GraphSpec, build_graph, graphs


def f(state: Any) -> None:
    return None


def problems_of(builder: GraphBuilder) -> list[str]:
    with pytest.raises(InvalidGraph) as info:
        builder.build()
    assert isinstance(info.value, GraphError)
    assert info.value.graph == builder.name
    return info.value.problems


def test_every_problem_is_reported_at_once() -> None:
    """One build() lists all of: non-callable task and condition, duplicate node, unknown
    edge endpoints (from and to), dead end, unreachable from start, cannot reach end."""
    b = (
        GraphBuilder("bad")
        .task("a", f)
        .task("a", f)
        .task("b", 3)  # type: ignore[arg-type]
        .task("dead", f)
        .task("island", f)
        .task("loop", f)
        .edge("a", "b")
        .edge_if("a", "ghost", "notcallable")  # type: ignore[arg-type]
        .edge("phantom", "b")
        .edge("island", "b")
        .edge("a", "loop")
        .edge("loop", "loop")
        .edge("a", "dead")
        .start("a")
        .end("b")
    )
    assert sorted(problems_of(b)) == sorted(
        [
            "node 'b': task function is not callable (3)",
            "edge 'a' -> 'ghost': condition is not callable ('notcallable')",
            "duplicate node 'a'",
            "edge 'a' -> 'ghost': to unknown node 'ghost'",
            "edge 'phantom' -> 'b': from unknown node 'phantom'",
            "node 'dead' has no outgoing edge and is not the end node",
            "node 'island' is unreachable from start 'a'",
            "node 'dead' cannot reach the end node 'b'",
            "node 'loop' cannot reach the end node 'b'",
        ]
    )


def test_message_lists_every_problem() -> None:
    """str(InvalidGraph) is one line naming the graph, the count and each problem."""
    b = GraphBuilder("x").task("a", f).edge("a", "zz")
    with pytest.raises(InvalidGraph) as info:
        b.build()
    assert str(info.value) == (
        "graph 'x' is invalid (4 problem(s)): edge 'a' -> 'zz': to unknown node 'zz'; "
        "missing start node (call .start(name)); missing end node (call .end(name)); "
        "node 'a' has no outgoing edge and is not the end node"
    )


def test_missing_start_and_end() -> None:
    """No start() and no end(): both reported, along with the other problems."""
    problems = problems_of(GraphBuilder("x").task("a", f).task("b", f).edge("a", "b"))
    assert "missing start node (call .start(name))" in problems
    assert "missing end node (call .end(name))" in problems
    assert "node 'b' has no outgoing edge and is not the end node" in problems


def test_start_and_end_not_nodes() -> None:
    """start()/end() naming unknown nodes are both reported."""
    problems = problems_of(
        GraphBuilder("x").task("a", f).task("b", f).edge("a", "b").start("s").end("e")
    )
    assert "start node 's' is not a node" in problems
    assert "end node 'e' is not a node" in problems


def test_condition_node_with_non_callable_predicate() -> None:
    """A condition node branch whose predicate is not callable, and a malformed branch."""
    b = (
        GraphBuilder("x")
        .task("a", f)
        .task("b", f)
        .condition("c", [("b", 5), "oops"])  # type: ignore[list-item]
        .edge("a", "c")
        .edge("c", "b")
        .start("a")
        .end("b")
    )
    assert sorted(problems_of(b)) == [
        "edge 'c' -> 'b': condition is not callable (5)",
        "node 'c': condition branch 1 must be a (target, predicate) pair",
    ]


def test_bad_reducer_and_bad_max_visits() -> None:
    """A non-callable reducer, two reducers for one key and a bad max_visits are reported."""
    b = (
        GraphBuilder("x")
        .task("a", f)
        .edge("a", "a", max_visits=0)
        .reducer("k", "nope")  # type: ignore[arg-type]
        .reducer("j", lambda o, n: n)
        .reducer("j", lambda o, n: o)
        .start("a")
        .end("a")
    )
    assert sorted(problems_of(b)) == [
        "edge 'a' -> 'a': max_visits must be a positive int, got 0",
        "key 'j' has two reducers",
        "reducer for key 'k' is not callable ('nope')",
    ]


def test_valid_graph_with_cycles_builds() -> None:
    """Cycles are legal; the end node may have outgoing edges."""
    g = (
        GraphBuilder("ok")
        .task("a", f)
        .task("b", f)
        .edge("a", "b")
        .edge("b", "a")
        .edge("b", "b")
        .start("a")
        .end("b")
        .build()
    )
    assert g.start == "a" and g.end == "b"
    assert [(e.frm, e.to) for e in g.edges] == [("a", "b"), ("b", "a"), ("b", "b")]


def test_out_index_keeps_registration_order_per_class() -> None:
    """graph.out splits edges by class, each in registration order."""
    g = (
        GraphBuilder("x")
        .task("a", f)
        .task("b", f)
        .task("c", f)
        .edge_fallback("a", "c")
        .edge("a", "c")
        .edge_if("a", "c", bool)
        .edge("a", "b")
        .edge_if("a", "b", bool)
        .edge("b", "c")
        .start("a")
        .end("c")
        .build()
    )
    out = g.out["a"]
    assert [e.to for e in out.conditional] == ["c", "b"]
    assert [e.to for e in out.normal] == ["c", "b"]
    assert [e.to for e in out.fallback] == ["c"]
    assert out.targets == {"b", "c"}


# -- cycle analysis --------------------------------------------------------------------------
def brute_cycles(graph: Graph) -> dict[tuple[str, ...], CycleInfo]:
    """Every elementary cycle by trying every ordered subset (graphs here have <= 6 nodes)."""
    names = list(graph.nodes)
    order = {n: i for i, n in enumerate(names)}
    pairs = {(e.frm, e.to) for e in graph.edges}
    found: dict[tuple[str, ...], CycleInfo] = {}
    for k in range(1, len(names) + 1):
        for perm in itertools.permutations(names, k):
            if order[perm[0]] != min(order[n] for n in perm):
                continue  # canonical rotation: smallest declaration index first
            hops = [(perm[i], perm[(i + 1) % k]) for i in range(k)]
            if not all(h in pairs for h in hops):
                continue
            members = set(perm)
            hint = any(e.max_visits is not None for e in graph.edges if (e.frm, e.to) in hops)
            leaves = any(e.frm in members and e.to not in members for e in graph.edges)
            found[perm] = CycleInfo(perm, hint, leaves or graph.end in members)
    return found


@st.composite
def hinted_graphs(draw: st.DrawFn) -> Graph:
    spec: GraphSpec = draw(graphs(max_extra_edges=12, failures=0, malformed=False))
    g = build_graph(spec)
    hints = draw(st.lists(st.one_of(st.none(), st.integers(1, 5)), min_size=len(g.edges)))
    b = GraphBuilder("h")
    for node in g.nodes.values():
        b.task(node.name, f)
    for e, hint in zip(g.edges, hints, strict=False):
        if e.kind == "conditional":
            b.edge_if(e.frm, e.to, bool, max_visits=hint)
        elif e.kind == "normal":
            b.edge(e.frm, e.to, max_visits=hint)
        else:
            b.edge_fallback(e.frm, e.to, max_visits=hint)
    return b.start(g.start).end(g.end).build()


@settings(max_examples=120)
@given(graph=hinted_graphs())
def test_analyze_cycles_matches_brute_force(graph: Graph) -> None:
    """analyze_cycles finds every elementary cycle exactly once, with the right
    max_visits hint and exit flags (checked against an exhaustive enumeration)."""
    cycles = graph.analyze_cycles()
    assert len({c.nodes for c in cycles}) == len(cycles), "a cycle is reported twice"
    assert {c.nodes: c for c in cycles} == brute_cycles(graph)


def test_analyze_cycles_known_graph() -> None:
    """A graph with a self loop, a hinted 2-cycle and a 3-cycle reports exactly those."""
    g = (
        GraphBuilder("c")
        .task("a", f)
        .task("b", f)
        .task("c", f)
        .task("end", f)
        .edge("a", "b", max_visits=3)
        .edge("b", "a")
        .edge("b", "c")
        .edge("c", "c")
        .edge("c", "a")
        .edge_if("c", "end", bool)
        .start("a")
        .end("end")
        .build()
    )
    assert g.analyze_cycles() == [
        CycleInfo(("a", "b"), has_max_visits=True, has_exit=True),
        CycleInfo(("a", "b", "c"), has_max_visits=True, has_exit=True),
        CycleInfo(("c",), has_max_visits=False, has_exit=True),
    ]


def test_no_exit_cycle_is_reported() -> None:
    """A cycle no edge leaves is flagged has_exit=False by analysis, and build() refuses
    the same structure because its nodes cannot reach the end (only max_steps would stop
    it)."""
    fns = {n: TaskNode(n, f) for n in ("s", "a", "b", "end")}
    edges = (Edge("s", "a"), Edge("s", "end"), Edge("a", "b"), Edge("b", "a", max_visits=2))
    raw = Graph(
        name="trap",
        nodes=fns,
        edges=edges,
        start="s",
        end="end",
        reducers={},
        out=index_edges(fns, edges),
        hash=structural_hash(fns, edges, "s", "end", {}),
    )
    assert raw.analyze_cycles() == [CycleInfo(("a", "b"), has_max_visits=True, has_exit=False)]
    b = GraphBuilder("trap")
    for n in fns:
        b.task(n, f)
    b.edge("s", "a").edge("s", "end").edge("a", "b").edge("b", "a", max_visits=2)
    assert sorted(problems_of(b.start("s").end("end"))) == [
        "node 'a' cannot reach the end node 'end'",
        "node 'b' cannot reach the end node 'end'",
    ]


def test_cycle_through_end_counts_as_exit() -> None:
    """Reaching the end completes the run, so a cycle through the end node has an exit."""
    g = GraphBuilder("e").task("a", f).task("z", f).edge("a", "z").edge("z", "a")
    (info,) = g.start("a").end("z").build().analyze_cycles()
    assert info == CycleInfo(("a", "z"), has_max_visits=False, has_exit=True)


# -- Mermaid ---------------------------------------------------------------------------------
_DECL = re.compile(r"^    (n_\w+)(\[\[|\{\{|\[|\{)\"(.*)\"(\]\]|\}\}|\]|\})$")
_EDGE = re.compile(r"^    (n_\w+) (-->|-\.->)(?:\|\"([^\"]*)\"\|)? (n_\w+)$")


def parse_mermaid(text: str) -> tuple[dict[str, str], list[tuple[str, str, str]]]:
    """({ident: label}, [(from ident, to ident, kind)]) from our flowchart text."""
    lines = text.splitlines()
    assert lines[0] == "flowchart TD"
    decls: dict[str, str] = {}
    edges = []
    for line in lines[1:]:
        if "start((start))" in line or "stop((end))" in line:
            continue
        if m := _DECL.match(line):
            assert m.group(1) not in decls, f"node {m.group(1)} declared twice"
            decls[m.group(1)] = m.group(3)
        elif m := _EDGE.match(line):
            label = m.group(3) or ""
            kind = (
                "fallback" if m.group(2) == "-.->" else "conditional" if "if" in label else "normal"
            )
            edges.append((m.group(1), m.group(4), kind))
        else:
            raise AssertionError(f"unexpected Mermaid line {line!r}")
    return decls, edges


@settings(max_examples=60)
@given(spec=graphs(node_kinds=TASKS_AND_CONDITIONS, max_extra_edges=12, raising_conditions=8))
def test_mermaid_contains_every_node_and_edge(spec: GraphSpec) -> None:
    """The Mermaid text declares each node once (labelled with its name, shaped by kind) and
    has one line per edge with its class, plus start and end markers."""
    g = build_graph(spec)
    text = g.to_mermaid()
    decls, edges = parse_mermaid(text)
    assert sorted(decls.values()) == sorted(g.nodes)
    ident = {label: i for i, label in decls.items()}
    assert sorted(edges) == sorted((ident[e.frm], ident[e.to], e.kind) for e in g.edges)
    assert f"start((start)) --> {ident[g.start]}" in text
    assert f"{ident[g.end]} --> stop((end))" in text
    for node in g.nodes.values():
        shape = {"task": "[", "condition": "{"}[node.kind]
        assert f'    {ident[node.name]}{shape}"{node.name}"' in text


def test_mermaid_escapes_quotes_and_odd_names() -> None:
    """Names with spaces and quotes become valid identifiers and escaped labels."""
    g = (
        GraphBuilder("m")
        .task('say "hi"', f)
        .task("two words", f)
        .edge('say "hi"', "two words", max_visits=2)
        .start('say "hi"')
        .end("two words")
        .build()
    )
    text = g.to_mermaid()
    assert '    n_say_20__22_hi_22_["say #quot;hi#quot;"]' in text
    assert '    n_two_20_words["two words"]' in text
    (edge,) = [line for line in text.splitlines() if line.startswith("    n_say_20__22_hi_22_ -->")]
    assert re.fullmatch(r'    n_say_20__22_hi_22_ -->\|"[^"]*2"\| n_two_20_words', edge), edge


def test_mermaid_distinct_nodes_get_distinct_ids() -> None:
    """Two nodes whose names differ only in punctuation stay two nodes in the diagram."""
    g = (
        GraphBuilder("m")
        .task("a-b", f)
        .task("a_b", f)
        .edge("a-b", "a_b")
        .start("a-b")
        .end("a_b")
        .build()
    )
    decls, _ = parse_mermaid(g.to_mermaid())
    assert len(decls) == 2


def test_task_node_is_plain_only_without_options() -> None:
    """``TaskNode.plain`` (the step loop's inline call) is set only for a node called as
    ``fn(state)``: any context, retry, timeout, thread or fallback option clears it, and
    a rebuilt node (``attrs.evolve``) recomputes it."""

    def fn(state: Any) -> None:
        return None

    def with_ctx(state: Any, ctx: Any) -> None:
        return None

    assert TaskNode("a", fn).plain
    assert TaskNode("a", fn, limiter="db").plain  # the slot is the loop's, not the call's
    not_plain = [
        TaskNode("a", with_ctx, takes_context=True),
        TaskNode("a", fn, retry=RetryPolicy(max_attempts=2)),
        TaskNode("a", fn, timeout=1.0),
        TaskNode("a", fn, blocking=True),
        TaskNode("a", fn, fallback_on=(ValueError,)),
    ]
    assert [node.plain for node in not_plain] == [False] * 5
    assert not attrs.evolve(TaskNode("a", fn), timeout=2.0).plain
    graph = GraphBuilder("g").task("a", fn, timeout=1.0).start("a").end("a").build()
    node = graph.nodes["a"]
    assert isinstance(node, TaskNode) and not node.plain
