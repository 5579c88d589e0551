"""The worker's parts, without a queue store: error classification and stored decisions."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from trio_graph import Approve, BarrierId, Executor, GraphBuilder, Reject, Reroute
from trio_graph._model.decisions import EVERY, DecisionEntry
from trio_graph._worker.failures import lease_lost_in, outage_in
from trio_graph._worker.stored_decisions import StoredDecisions
from trio_graph.errors import LeaseLost, StoreUnavailable


def _caused_by(cause: BaseException) -> RuntimeError:
    try:
        raise RuntimeError("wrapped") from cause
    except RuntimeError as exc:
        return exc


def test_failures_are_found_bare_in_groups_and_in_causes() -> None:
    """A lost lease or an outage counts bare, inside a nested group, or as a cause."""
    lost, outage = LeaseLost("t1", 2), StoreUnavailable("down")
    group = ExceptionGroup("g", [ValueError("x"), ExceptionGroup("inner", [lost])])
    assert lease_lost_in(lost) and lease_lost_in(group) and lease_lost_in(_caused_by(lost))
    assert outage_in(outage) and outage_in(_caused_by(ExceptionGroup("g", [outage])))
    assert not lease_lost_in(outage) and not outage_in(group)
    assert not lease_lost_in(None) and not outage_in(ValueError("x"))


def test_stored_decisions_ahead_of_a_checkpoint_drop_the_passed_ones() -> None:
    """Exact entries for arrivals the run passed are dropped; wildcards and later ones stay."""
    entries = [
        DecisionEntry("review", 1, Approve()),
        DecisionEntry("review", 2, Reject("no")),
        DecisionEntry("other", 1, Approve()),
        DecisionEntry("review", EVERY, Approve()),
    ]
    latest: Any = SimpleNamespace(occurrences={"review": 1}, pending_barrier=None)
    decisions = StoredDecisions.ahead_of(entries, latest)
    assert decisions.exact == {
        BarrierId("review", 2): Reject("no"),
        BarrierId("other", 1): Approve(),
    }
    assert decisions.wild == {"review": Approve()}
    assert decisions.answers(BarrierId("review", 7)) and not decisions.answers(BarrierId("x", 1))
    fresh = StoredDecisions.ahead_of(entries, None)
    assert len(fresh.exact) == 3


async def test_decisions_the_graph_refuses_are_set_aside_and_the_rest_taken() -> None:
    """A decision for a task node or a Reroute without an edge is refused, not fatal;
    the barrier's own decision is taken, and a later entry can still be handed over."""
    graph = (
        GraphBuilder("g")
        .task("a", lambda s: {"x": 1})
        .barrier("review")
        .task("b", lambda s: {"y": 2})
        .edge("a", "review")
        .edge("review", "b")
        .start("a")
        .end("b")
        .build()
    )
    async with Executor().stream(graph, {}) as run:
        decisions = StoredDecisions(
            {BarrierId("a", 1): Approve(), BarrierId("review", 1): Reroute("nowhere")},
            {"a": Approve()},
        )
        decisions.hand_to(run)
        assert decisions.exact == {} and decisions.wild == {}
        assert decisions.refused == [
            DecisionEntry("a", 1, Approve()),
            DecisionEntry("review", 1, Reroute("nowhere")),
            DecisionEntry("a", EVERY, Approve()),
        ]
        assert decisions.take(run, DecisionEntry("review", 1, Approve()))
        assert decisions.exact == {BarrierId("review", 1): Approve()}
        result = await run.wait()
    assert result.state["review.approved"] is True
    assert result.state["y"] == 2
