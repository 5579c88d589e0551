"""`executor.run(graph, state, decisions=...)` keyed by name or `BarrierId` (issue 13, item 9).

A ``BarrierId`` key answers one occurrence (docs/running.md), so it lets ``run()`` start
when it answers the only arrival the barrier can have: occurrence 1 of a barrier that no
cycle (of its graph, or of a graph holding its subgraph) brings back. A barrier that may
be reached again still needs a timeout or a wildcard: ``run()`` could not answer its
next arrival and would wait forever. A key that names no barrier is a ``BarrierError``
naming that key, before the run starts.
"""

from __future__ import annotations

from typing import Any

import pytest

from trio_graph import (
    Approve,
    BarrierError,
    BarrierId,
    Executor,
    GraphBuilder,
    InvalidGraph,
    Reject,
)
from trio_graph._model.graph import Graph
from trio_graph.stores import MemoryStore


def publish() -> Graph:
    """draft -> review (no timeout) -> publish: review is reached once."""
    return (
        GraphBuilder("publish")
        .task("draft", lambda s: {"text": "v1"})
        .barrier("review")
        .task("publish", lambda s: {"published": s["review.approved"]})
        .edge("draft", "review")
        .edge("review", "publish")
        .start("draft")
        .end("publish")
        .build()
    )


def sub_in(*, looped: bool) -> Graph:
    """outer: a -> s(sub: gate barrier -> t) -> z; with ``looped``, s -> a while n < 2."""
    inner = (
        GraphBuilder("inner")
        .barrier("gate")
        .task("t", lambda s: {"n": s.get("n", 0) + 1})
        .edge("gate", "t")
        .start("gate")
        .end("t")
        .build()
    )
    builder = (
        GraphBuilder("outer")
        .task("a", lambda s: None)
        .subgraph("s", inner)
        .task("z", lambda s: None)
        .edge("a", "s")
        .start("a")
        .end("z")
    )
    if looped:
        builder = builder.edge_if("s", "a", lambda s: s.get("n", 0) < 2)
    return builder.edge("s", "z").build()


async def test_an_exact_decision_answers_a_barrier_reached_once() -> None:
    """run() with {BarrierId("review", 1): Approve()} runs the graph through its barrier."""
    result = await Executor().run(publish(), {}, decisions={BarrierId("review", 1): Approve()})
    assert result.state == {"text": "v1", "review.approved": True, "published": True}


async def test_an_exact_decision_answers_a_subgraph_barrier_reached_once() -> None:
    """A BarrierId for a subgraph barrier's path is enough when nothing loops back to it."""
    executor = Executor(store=MemoryStore())
    result = await executor.run(
        sub_in(looped=False), {}, decisions={BarrierId("s/gate", 1): Reject("no")}
    )
    assert result.state["n"] == 1


async def test_a_subgraph_on_a_cycle_needs_more_than_occurrence_one() -> None:
    """The subgraph node is on a cycle, so s/gate may come back: run() refuses to start."""
    with pytest.raises(InvalidGraph) as info:
        await Executor().run(sub_in(looped=True), {}, decisions={BarrierId("s/gate", 1): Approve()})
    assert info.value.problems == [
        "barrier 's/gate' has no timeout and no decision for its arrivals after s/gate#1: it "
        "is on a cycle, so run() cannot answer them; use executor.stream() and run.decide(), "
        "give it a timeout, or pass decisions={'s/gate': Approve()}"
    ]


async def test_a_wildcard_answers_a_subgraph_barrier_on_a_cycle() -> None:
    """A name key answers every arrival, cycle or not."""
    result = await Executor().run(sub_in(looped=True), {}, decisions={"s/gate": Approve()})
    assert result.state["n"] == 2


async def test_only_a_later_occurrence_leaves_the_first_unanswered() -> None:
    """A BarrierId for occurrence 2 alone cannot answer the first arrival."""
    with pytest.raises(
        InvalidGraph,
        match=r"\): barrier 'review' has no timeout and no decision for review#1: run\(\) "
        r"cannot answer it; ",
    ):
        await Executor().run(publish(), {}, decisions={BarrierId("review", 2): Approve()})


@pytest.mark.parametrize("key", ["bb", BarrierId("bb", 1), "review/x", "draft"])
async def test_a_key_naming_no_barrier_is_an_error_naming_it(key: Any) -> None:
    """A typo'd key is a BarrierError naming that key, not a complaint about another barrier."""
    name = key.node if isinstance(key, BarrierId) else key
    message = (
        r"^decision for a node that is not a barrier; graph 'publish' has barrier\(s\) "
        rf"'review' \(node '{name}'\)$"
    )
    with pytest.raises(BarrierError, match=message):
        await Executor().run(publish(), {}, decisions={key: Approve()})


async def test_a_key_of_another_type_is_refused() -> None:
    """Keys are barrier names or BarrierIds; anything else is named in the error."""
    with pytest.raises(
        BarrierError, match=r"^decisions= keys are barrier names or BarrierIds, got int 3$"
    ):
        await Executor().run(publish(), {}, decisions={3: Approve()})  # type: ignore[dict-item]


async def test_a_bad_occurrence_is_refused_before_the_run_starts() -> None:
    """BarrierId("review", 0) is refused up front; with a store nothing is written."""
    store = MemoryStore()
    with pytest.raises(BarrierError, match=r"^barrier occurrence must be an int >= 1, got 0 "):
        await Executor(store=store).run(
            publish(), {}, decisions={BarrierId("review", 0): Approve()}
        )
    assert await store.runs() == []


async def test_a_malformed_decision_is_refused_before_the_run_starts() -> None:
    """A value that is not a decision is refused naming the barrier, before any step."""
    store = MemoryStore()
    with pytest.raises(BarrierError, match=r"^malformed decision: .* got str \(node 'review'\)$"):
        await Executor(store=store).run(publish(), {}, decisions={"review": "yes"})  # type: ignore[dict-item]
    assert await store.runs() == []
