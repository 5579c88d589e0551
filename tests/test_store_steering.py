"""The SQL stores' steering (DESIGN §8): ``steering(run_id)`` reads a run's kept
decisions once; ``wait_for_steering`` returns on another connection's change (SQLite:
``PRAGMA data_version``; PostgreSQL: a decision's NOTIFY); a run executing on the store
is held, so a decision for it is recorded without waking a worker and reaches it through
its follower. The stores' shared wait (``Feed``) looks once at a time for all waiters.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import trio
import trio.lowlevel

from trio_graph import Approve, BarrierId, Executor, GraphBuilder, Reject
from trio_graph import events as ev
from trio_graph._model.decisions import EVERY, DecisionEntry
from trio_graph._model.graph import Graph
from trio_graph._runtime.steering import Steered, Steering
from trio_graph.stores.queue import JobStatus
from trio_graph.stores.queue.feed import Feed
from trio_graph.stores.sqlite import SQLiteStore


def review(gate: trio.Event | None = None) -> Graph:
    async def publish(state: Any) -> dict[str, Any]:
        if gate is not None:
            await gate.wait()
        return {"published": state["ok.approved"]}

    return (
        GraphBuilder("review")
        .task("draft", lambda s: {"text": "hello"})
        .barrier("ok")
        .task("publish", publish)
        .edge("draft", "ok")
        .edge("ok", "publish")
        .start("draft")
        .end("publish")
        .build()
    )


async def _until_waiting(run: Any) -> None:
    async for event in run:
        if isinstance(event, ev.BarrierWaiting):
            return
    raise AssertionError("the run never waited")


async def test_steering_reads_a_live_runs_kept_decisions(store: Any) -> None:
    """A queue store is Steered: nothing for an unknown run; for a live run, the decisions
    kept for it (by run id or its segment's trace id), oldest first, a wildcard with
    occurrence EVERY."""
    assert isinstance(store, Steered)
    assert await store.steering("nope") == Steering()
    with trio.fail_after(30):  # a hang guard
        async with Executor(store=store).stream(review(), {}) as run:
            await _until_waiting(run)
            await store.decide(run.trace_id, BarrierId("ok", 2), Reject("never reached"))
            await store.decide_all(run.run_id, "ok", Approve())
            seen = await store.steering(run.trace_id)
            await run.wait()
    assert seen.decisions == [
        DecisionEntry("ok", 2, Reject("never reached")),
        DecisionEntry("ok", EVERY, Approve()),
    ]
    assert not seen.cancelled
    assert run.result is not None and run.result.state["published"] is True


async def test_wait_for_steering_returns_on_another_connections_decision(
    backend: Any, store: Any
) -> None:
    """A wait with a long timeout returns once another store object (its own connections,
    as another process has) records a decision for the run."""
    with trio.fail_after(30):  # a hang guard: the wait's own timeout is an hour
        async with Executor(store=store).stream(review(), {}) as run:
            await _until_waiting(run)
            returned = trio.Event()

            async def wait() -> None:
                await store.wait_for_steering(run.run_id, 3600)
                returned.set()

            async with trio.open_nursery() as nursery:
                nursery.start_soon(wait)
                await trio.lowlevel.checkpoint()  # the wait has taken its baseline
                async with backend.store() as other:
                    await other.decide(run.run_id, BarrierId("ok", 1), Approve())
                await returned.wait()
            await run.wait()
    assert run.result is not None and run.result.state["published"] is True


async def test_a_quiet_sqlite_wait_runs_to_its_timeout(tmp_path: Path, autojump_clock: Any) -> None:
    """With nobody writing, wait_for_steering returns after its seconds, not before."""
    async with SQLiteStore(tmp_path / "q.db") as store:
        await store.jobs()  # the file and the queue's tables exist
        start = trio.current_time()
        await store.wait_for_steering("run", 5.0)
        assert trio.current_time() - start == pytest.approx(5.0, abs=0.2)


async def test_a_live_run_is_held_and_a_decision_for_it_wakes_no_worker(store: Any) -> None:
    """While a run executes on the store its job is held (no worker claims it); a
    decision for it leaves it held (recorded, not queued) and reaches the run itself;
    afterwards the job is gone, as for any run outside the queue."""
    gate = trio.Event()
    with trio.fail_after(30):  # a hang guard
        async with Executor(store=store).stream(review(gate), {}) as run:
            await _until_waiting(run)
            job = await store.job(run.run_id)
            assert job is not None and job.status == JobStatus.RUNNING
            assert (job.owner or "").startswith("hold:")
            assert await store.claim("w", ["review"], 1, 30.0) == []
            await store.decide(run.run_id, BarrierId("ok", 1), Approve())
            async for event in run:  # the run itself takes the decision
                if isinstance(event, ev.NodeStart) and event.node == "publish":
                    break
            assert await store.claim("w", ["review"], 1, 30.0) == []
            after = await store.job(run.run_id)
            assert after is not None and after.status == JobStatus.RUNNING
            gate.set()
            result = await run.wait()
    assert result.state["published"] is True
    assert await store.job(run.run_id) is None
    assert await store.live_owner(run.run_id) is None


async def test_the_feed_looks_once_at_a_time_for_every_waiter(autojump_clock: Any) -> None:
    """Three waiters share one look: never two looks at once, and one change wakes all
    three; a waiter whose time runs out hands the looking on to the others."""
    looking = 0
    most = 0
    change = trio.Event()

    async def look(seconds: float) -> bool:
        nonlocal looking, most
        looking += 1
        most = max(most, looking)
        try:
            with trio.move_on_after(seconds):
                await change.wait()
                return True
            return False
        finally:
            looking -= 1

    feed = Feed(look)
    woken: list[str] = []

    async def waiter(name: str, seconds: float) -> None:
        await feed.wait(seconds)
        woken.append(name)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(waiter, "short", 1.0)
        nursery.start_soon(waiter, "a", 100.0)
        nursery.start_soon(waiter, "b", 100.0)
        await trio.sleep(10)  # "short" has timed out; the others still wait
        assert woken == ["short"]
        change.set()
    assert sorted(woken) == ["a", "b", "short"]
    assert most == 1
    assert trio.current_time() < 20  # woken by the change, not by their timeouts
