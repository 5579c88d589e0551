"""``build()`` rejects every invalid graph and lists each problem (DESIGN §2).

Property tests over ``invalid_graphs()``: a valid random graph with one to four
problems injected (duplicate nodes, edges to or from unknown nodes, start/end missing
or not a node, non-callable conditions, tasks, branches and reducers, dead ends,
unreachable nodes, nodes that cannot reach the end, bad options...).
"""

from __future__ import annotations

import pytest
from _campaign import explore, sizes
from hypothesis import strategies as st

from trio_graph import InvalidGraph
from trio_graph.testing import (
    Behaviour,
    ConditionSpec,
    EdgeSpec,
    GraphSpec,
    InvalidGraphCase,
    TaskSpec,
    build_graph,
    graphs,
    invalid_graphs,
)
from trio_graph.testing.invalid import INJECTIONS, injections_for


@pytest.mark.parametrize("examples", sizes(400))
def test_generated_graphs_are_valid(examples: int) -> None:
    """Every graph graphs() draws builds, with the nodes, edges and reducers of its spec."""
    explore(graphs(), examples, builds_as_specified)


def builds_as_specified(spec: GraphSpec) -> None:
    graph = build_graph(spec)
    assert list(graph.nodes) == spec.node_names()
    assert (graph.start, graph.end) == (spec.start, spec.end)
    assert set(graph.reducers) == {k for k, _ in spec.reducers}
    registered = [
        (n.name, target, "conditional")
        for n in spec.nodes
        if isinstance(n, ConditionSpec)
        for target, _ in n.branches
    ] + [(e.frm, e.to, e.kind) for e in spec.edges]
    assert [(e.frm, e.to, e.kind) for e in graph.edges] == registered


@pytest.mark.parametrize("examples", sizes(600))
def test_invalid_graphs_list_every_problem(examples: int) -> None:
    """build() raises InvalidGraph listing each injected problem, and nothing else."""
    explore(invalid_graphs(), examples, lists_every_problem)


def lists_every_problem(case: InvalidGraphCase) -> None:
    with pytest.raises(InvalidGraph) as info:
        case.builder().build()
    assert info.value.problems, "InvalidGraph with no problems"
    assert case.check(info.value.problems) == []
    assert str(len(info.value.problems)) in str(info.value)


@pytest.mark.parametrize("examples", sizes(200))
def test_two_problems_are_both_listed(examples: int) -> None:
    """Two different problems at once: both listed (build() does not stop at the first)."""
    kinds = st.lists(st.sampled_from(INJECTIONS), min_size=2, max_size=2, unique=True)
    explore(st.tuples(graphs(), kinds), examples, both_listed)


def both_listed(drawn: tuple[GraphSpec, list[str]]) -> None:
    case = injections_for(*drawn)
    with pytest.raises(InvalidGraph) as info:
        case.builder().build()
    assert case.check(info.value.problems) == []


@pytest.mark.parametrize("kind", INJECTIONS)
def test_each_injection_alone_is_rejected(kind: str) -> None:
    """Each kind of problem alone makes build() fail, with exactly the expected problems."""
    base = GraphSpec(
        "g",
        (TaskSpec("a", (Behaviour(None),)), TaskSpec("b", (Behaviour(None),))),
        (EdgeSpec("a", "b"),),
        "a",
        "b",
    )
    case = injections_for(base, [kind])
    with pytest.raises(InvalidGraph) as info:
        case.builder().build()
    assert case.check(info.value.problems) == []
    assert len(info.value.problems) == len(case.expected())
