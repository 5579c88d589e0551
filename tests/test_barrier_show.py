"""What a person decides on and who decided (DESIGN §6): ``.barrier(show=fn)`` gives
``BarrierWaiting.payload``, stored with the waiting checkpoint; every decision has a
keyword ``by``, kept through serde and every store, and ``BarrierResolved`` carries it
with the wall-clock time of the resolution.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import trio
import trio.lowlevel
import trio.testing
from _pg import SKIP_WITHOUT_SERVER, throwaway_store
from hypothesis import given
from hypothesis import strategies as st
from test_store_conformance import STORE_FACTORIES, StoreFactory

from trio_graph import (
    Approve,
    BarrierError,
    BarrierId,
    Checkpoint,
    CheckpointError,
    Executor,
    GraphBuilder,
    InvalidGraph,
    Modify,
    NodeExecutionFailed,
    Reject,
    Reroute,
    serde,
)
from trio_graph import events as ev
from trio_graph._model.decisions import Decision, DecisionEntry, describe_decision
from trio_graph._model.graph import Graph
from trio_graph.stores import SQLiteStore, Store


class WallClock:
    """A wall clock the test sets (epoch seconds)."""

    def __init__(self, now: float = 1_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def review(show: Callable[[Any], Any] | None = None, **barrier: Any) -> Graph:
    """draft -> review (barrier, shows the draft) -> publish."""
    return (
        GraphBuilder("review")
        .task("draft", lambda s: {"text": "v1", "words": 2})
        .barrier("review", show=show, **barrier)
        .task("publish", lambda s: {"published": True})
        .edge("draft", "review")
        .edge("review", "publish")
        .start("draft")
        .end("publish")
        .build()
    )


def show_draft(state: Any) -> Any:
    return {"draft": state["text"], "options": ["approve", "reject"], "words": state["words"]}


async def leave_waiting(executor: Executor, graph: Graph) -> tuple[str, ev.BarrierWaiting]:
    """Start ``graph``, leave at its first BarrierWaiting (the run stops, checkpointed)."""
    async with executor.stream(graph, {}) as run:
        async for event in run:
            if isinstance(event, ev.BarrierWaiting):
                return run.trace_id, event
    raise AssertionError("the run never waited")


@pytest.fixture(params=STORE_FACTORIES)
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> Any:
    factory: StoreFactory = request.param
    async with factory(tmp_path) as opened:
        yield opened


# -- show: the payload -------------------------------------------------------------------------
async def test_payload_is_in_the_event_and_the_stored_waiting_checkpoint(store: Store) -> None:
    """show(state) is BarrierWaiting.payload and the pending_payload of both the waiting
    checkpoint and the one written when the run is left there."""
    trace, waiting = await leave_waiting(Executor(store=store), review(show_draft))
    expected = {"draft": "v1", "options": ["approve", "reject"], "words": 2}
    assert waiting.payload == expected
    stored = await store.list(trace)
    pending = [cp for cp in stored if cp.pending_barrier == BarrierId("review", 1)]
    assert len(pending) == 2  # barrier-waiting, then the cancel checkpoint
    assert [cp.pending_payload for cp in pending] == [expected, expected]
    latest = await store.latest(trace)
    assert latest is not None and latest.pending_payload == expected


async def test_payload_survives_reopening_the_sqlite_file(tmp_path: Path) -> None:
    """The stored payload is read back by a new SQLiteStore on the same file."""
    path = tmp_path / "runs.db"
    async with SQLiteStore(path) as store:
        trace, _ = await leave_waiting(Executor(store=store), review(show_draft))
    async with SQLiteStore(path) as again:
        latest = await again.latest(trace)
    assert latest is not None
    assert latest.pending_payload == {"draft": "v1", "options": ["approve", "reject"], "words": 2}


async def test_no_show_means_no_payload(store: Store) -> None:
    """A barrier without show: payload None in the event and the checkpoint."""
    trace, waiting = await leave_waiting(Executor(store=store), review())
    latest = await store.latest(trace)
    assert waiting.payload is None and latest is not None and latest.pending_payload is None


async def test_async_show_and_any_value_without_a_store() -> None:
    """An async show is awaited; without a store any value may be shown (nothing checks it)."""

    async def show(state: Any) -> Any:
        await trio.lowlevel.checkpoint()
        return (state["text"], {1, 2})

    _, waiting = await leave_waiting(Executor(), review(show))
    assert waiting.payload == ("v1", {1, 2})


async def test_a_non_json_payload_is_refused_naming_the_barrier(store: Store) -> None:
    """With a store, a payload the store would not give back ends the run with a
    CheckpointError naming the barrier; nothing waits and nothing is shown."""
    async with Executor(store=store).stream(review(lambda s: {"t": (1, 2)}), {}) as run:
        seen = [e async for e in run]
    assert isinstance(run.error, CheckpointError)
    assert re.match(
        r"^show of barrier 'review' returned a value the store cannot give back: "
        r"'payload\.t' got tuple",
        str(run.error),
    )
    assert not [e for e in seen if isinstance(e, ev.BarrierWaiting)]
    assert [e.success for e in seen if isinstance(e, ev.NodeEnd)] == [True, False]


async def test_a_show_that_raises_fails_the_barrier_node() -> None:
    """show raising is the barrier node's NodeExecutionFailed, its exception the cause."""

    def show(state: Any) -> Any:
        raise KeyError("missing")

    with pytest.raises(NodeExecutionFailed) as info:
        await Executor().run(review(show), {}, decisions={"review": Approve()})
    assert info.value.node == "review" and info.value.error_type == "KeyError"
    assert isinstance(info.value.__cause__, KeyError)


def test_show_must_be_callable() -> None:
    """A show that is not callable is a problem of InvalidGraph."""
    with pytest.raises(InvalidGraph) as info:
        review(show="nope")  # type: ignore[arg-type]
    assert "barrier 'review': show must be callable, got 'nope'" in info.value.problems


# -- by and at -----------------------------------------------------------------------------------
async def test_by_and_at_arrive_on_barrier_resolved() -> None:
    """BarrierResolved carries the decision's by and the wall-clock time it was resolved."""
    clock = WallClock(5_000.0)

    async def decide(run: Any, event: ev.Event) -> None:
        if isinstance(event, ev.BarrierWaiting):
            clock.now = 5_042.5
            run.decide(event.barrier_id, Approve(by="ana"))

    async with Executor(wall_clock=clock).stream(review(), {}) as run:
        resolved = []
        async for event in run:
            await decide(run, event)
            if isinstance(event, ev.BarrierResolved):
                resolved.append(event)
    [event] = resolved
    assert (event.decision, event.by, event.at) == (Approve(by="ana"), "ana", 5_042.5)
    assert run.result is not None and run.result.state["review.approved"] is True


async def test_a_timeout_has_no_by(autojump_clock: trio.testing.MockClock) -> None:
    """The default applied on a timeout names nobody; its time is still given."""
    clock = WallClock(7.0)
    async with Executor(wall_clock=clock).stream(review(timeout=5), {}) as run:
        events = [e async for e in run]
    [event] = [e for e in events if isinstance(e, ev.BarrierResolved)]
    assert (event.timed_out, event.by, event.at) == (True, None, 7.0)


async def test_by_of_a_resume_decision_arrives_on_barrier_resolved(store: Store) -> None:
    """A decision given to resume() keeps its by through the resumed run's event."""
    trace, waiting = await leave_waiting(Executor(store=store), review(show_draft))
    async with Executor(store=store).resume(
        review(show_draft), trace, decisions={waiting.barrier_id: Reject("long", by="bo")}
    ) as run:
        events = [e async for e in run]
    [event] = [e for e in events if isinstance(e, ev.BarrierResolved)]
    assert event.by == "bo" and event.decision == Reject("long", by="bo")


async def test_by_round_trips_through_every_store(store: Store) -> None:
    """Kept decisions of every type keep their by (and a None by) in a stored checkpoint."""
    decisions: list[Decision] = [
        Approve(by="ana"),
        Reject("no", by="bo"),
        Modify("k", [1, {"a": None}], by="cy"),
        Reroute("draft", by="dee"),
        Approve(),
    ]
    checkpoint = Checkpoint(
        checkpoint_id="c1",
        trace_id="t1",
        graph_name="g",
        graph_hash="h",
        next_node="review",
        step=1,
        state={"x": 1},
        decisions=[DecisionEntry("review", i + 1, d) for i, d in enumerate(decisions)],
    )
    await store.save(checkpoint)
    loaded = await store.load("c1")
    assert [e.decision for e in loaded.decisions] == decisions
    assert [e.decision.by for e in loaded.decisions] == ["ana", "bo", "cy", "dee", None]


@pytest.mark.parametrize("kind", ["sqlite", pytest.param("postgres", marks=SKIP_WITHOUT_SERVER)])
async def test_by_round_trips_through_store_decide(kind: str, tmp_path: Path) -> None:
    """store.decide keeps a decision's by in the queue's decisions (SQLite, PostgreSQL)."""
    opened = throwaway_store(tmp_path) if kind == "postgres" else SQLiteStore(tmp_path / "q.db")
    async with opened as store:
        trace, waiting = await leave_waiting(Executor(store=store), review())
        await store.decide(trace, waiting.barrier_id, Reject("late", by="ana"))
        job = await store.job(trace)
        assert job is not None
        [entry] = await store.decisions(job.job_id)
    assert entry.decision == Reject("late", by="ana")


async def test_a_by_that_is_not_a_str_is_refused() -> None:
    """decide() with a non-str by is a BarrierError naming the barrier."""
    async with Executor().stream(review(), {}) as run:
        with pytest.raises(BarrierError, match=r"^a decision's by must be a str or None, got int"):
            run.decide(BarrierId("review", 1), Approve(by=3))  # type: ignore[arg-type]
        run.cancel()


def test_describe_decision_says_who() -> None:
    """A decision described for a person names who made it, when it says."""
    assert describe_decision(Reject("too long", by="ana")) == "reject (too long) by ana"
    assert describe_decision(Approve()) == "approve"


def test_repr_names_by_only_when_said() -> None:
    """A decision's repr shows by when it is said, and is unchanged without it."""
    assert repr(Approve()) == "Approve()"
    assert repr(Modify("k", 1, by="ana")) == "Modify(key='k', value=1, by='ana')"


def test_a_decision_without_by_is_the_document_it_always_was() -> None:
    """by is written only when said: stored decisions without it keep their JSON."""
    assert serde.to_json(Approve(), Decision) == '{"type":"Approve"}'
    assert serde.to_json(Reject("r", by="ana"), Decision) == (
        '{"reason":"r","by":"ana","type":"Reject"}'
    )


_BY = st.none() | st.text(max_size=8)
_DECISIONS = st.one_of(
    st.builds(Approve, by=_BY),
    st.builds(Reject, st.text(max_size=8), by=_BY),
    st.builds(Modify, st.text(max_size=5), st.integers() | st.text(max_size=5), by=_BY),
    st.builds(Reroute, st.text(min_size=1, max_size=5), by=_BY),
)


@given(decision=_DECISIONS)
def test_by_survives_serde_for_every_decision_type(decision: Decision) -> None:
    """Each decision type keeps its by through the Decision union, as itself, and kept in a
    checkpoint."""
    back = serde.from_json(serde.to_json(decision, Decision), Decision)
    assert type(back) is type(decision) and back == decision and back.by == decision.by
    assert serde.from_json(serde.to_json(decision), type(decision)) == decision
    checkpoint = Checkpoint(
        "c", "t", "g", "h", "n", 1, {}, decisions=[DecisionEntry("n", 1, decision)]
    )
    [entry] = serde.from_json(serde.to_json(checkpoint), Checkpoint).decisions
    assert entry.decision.by == decision.by
