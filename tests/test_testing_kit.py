"""The fuzz kit's own pieces that tests lean on (trio_graph.testing)."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest
from hypothesis import given, settings

from trio_graph.testing import (
    Cond,
    GraphSpec,
    Unsupported,
    build_graph,
    graph_and_state,
    graphs,
    interpret,
    summarize,
)

SPECS, STATES = graph_and_state()


@settings(max_examples=60)
@given(spec=graphs())
def test_spec_out_lists_edges_as_the_built_graph_registered_them(spec: GraphSpec) -> None:
    """GraphSpec.out(node) is the node's edges in the built graph's registration order,
    condition-node branches first."""
    graph = build_graph(spec)
    for name in graph.nodes:
        built = [(e.to, e.kind) for e in graph.edges if e.frm == name]
        assert [(e.to, e.kind) for e in spec.out(name)] == built


@settings(max_examples=60)
@given(spec=SPECS, state=STATES)
def test_calls_counter_counts_every_node_function_call(
    spec: GraphSpec, state: dict[str, Any]
) -> None:
    """build_graph(calls=) counts each task node's calls, as many as the reference ran it;
    the shared state holds only the drawn graph's keys."""
    assert set(state) <= {k for k, _ in spec.keys}
    calls: Counter[str] = Counter()
    try:
        trace = interpret(build_graph(spec, calls=calls), state)
    except Unsupported:  # a barrier nobody answers, simultaneous branches: skip
        return
    tasks = {n.name for n in spec.nodes if n.kind == "task"}
    ran = Counter(name for name, _ in summarize(trace).nodes if name in tasks)
    assert {k: v for k, v in calls.items() if k in tasks} == dict(ran)


def test_raise_condition_raises_runtime_error() -> None:
    """Cond("raise", value=msg) always raises RuntimeError(msg)."""
    with pytest.raises(RuntimeError, match=r"^kaput$"):
        Cond("raise", value="kaput")({})
