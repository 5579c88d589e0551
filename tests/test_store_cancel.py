"""``store.cancel(run_id)`` on the SQL queue stores (DESIGN §8), in one process: a run
nobody executes ends ``cancelled`` at once (``runs()`` and ``jobs()`` say so, no worker
claims it, no resume continues it); a run executing on another store object of the same
database ends ``cancelled`` through its follower; a finished or unknown run is a clear
``CheckpointError``. On SQLite, and on PostgreSQL when ``TRIO_GRAPH_PG_DSN`` is set.
"""

from __future__ import annotations

from typing import Any

import attrs
import pytest
import trio

from trio_graph import Approve, BarrierId, Executor, GraphBuilder
from trio_graph import events as ev
from trio_graph._model.checkpoint import Checkpoint, RunStatus
from trio_graph._model.graph import Graph
from trio_graph.errors import CheckpointError
from trio_graph.stores.queue import JobStatus


def review() -> Graph:
    return (
        GraphBuilder("review")
        .task("draft", lambda s: {"text": "hello"})
        .barrier("ok")
        .task("publish", lambda s: {"published": s["ok.approved"]})
        .edge("draft", "ok")
        .edge("ok", "publish")
        .start("draft")
        .end("publish")
        .build()
    )


async def left_waiting(store: Any) -> str:
    """A run of ``review`` stopped at its barrier (nobody executes it); its run id."""
    async with Executor(store=store).stream(review(), {}) as run:
        async for event in run:
            if isinstance(event, ev.BarrierWaiting):
                run.cancel()
    return run.run_id


async def status_of(store: Any, run_id: str) -> RunStatus:
    [row] = [r for r in await store.runs() if r.run_id == run_id]
    return row.status


async def test_a_queued_job_cancelled_is_never_claimed(store: Any) -> None:
    """A submitted job cancelled before any worker took it is ``cancelled`` in jobs()
    and a claim passes over it."""
    job = await store.submit("review", {})
    await store.cancel(job)
    assert (await store.job(job)).status is JobStatus.CANCELLED
    assert await store.claim("w1", ["review"], 5, 30.0) == []
    assert (await store.steering(job)).cancelled


async def test_a_parked_job_cancelled_is_never_woken_or_claimed(store: Any) -> None:
    """A job parked at a barrier, cancelled: a later decision is refused (the run has
    finished), and nothing claims it."""
    job = await store.submit("review", {})
    [claim] = await store.claim("w1", ["review"], 1, 30.0)
    assert await store.park(job, claim.epoch, BarrierId("ok", 1))
    await store.cancel(job)
    assert (await store.job(job)).status is JobStatus.CANCELLED
    with pytest.raises(Exception, match="has finished"):
        await store.decide(job, BarrierId("ok", 1), Approve())
    assert await store.claim("w1", ["review"], 5, 30.0) == []


async def test_a_stored_run_nobody_executes_is_cancelled_at_once(store: Any) -> None:
    """A run left waiting, cancelled through the store: runs() says cancelled at once
    (its checkpoint still says waiting), and a resume refuses to continue it."""
    run_id = await left_waiting(store)
    assert await status_of(store, run_id) is RunStatus.WAITING
    await store.cancel(run_id)
    assert await status_of(store, run_id) is RunStatus.CANCELLED
    assert (await store.job(run_id)).status is JobStatus.CANCELLED
    await store.cancel(run_id)  # again: it stays cancelled, no error
    with pytest.raises(CheckpointError, match=f"run {run_id!r} was cancelled"):
        async with Executor(store=store).resume(review(), run_id):
            pass  # pragma: no cover


async def test_cancelling_a_finished_or_unknown_run_is_a_clear_error(store: Any) -> None:
    """A completed run cannot be cancelled (CheckpointError naming it and its status);
    neither can a run the store does not know."""
    result = await Executor(store=store).run(review(), {}, decisions={"ok": Approve()})
    with pytest.raises(CheckpointError, match=r"has already completed; nothing to cancel"):
        await store.cancel(result.run_id)
    assert await status_of(store, result.run_id) is RunStatus.COMPLETED
    with pytest.raises(CheckpointError, match=r"^no run 'nope' in the store$"):
        await store.cancel("nope")


async def test_a_live_run_cancelled_through_another_store_object_ends_cancelled(
    backend: Any,
) -> None:
    """A run executing on one store object waits at its barrier; cancel through a second
    store object on the same database (as another process would) ends it with status
    cancelled, its job settled cancelled, runs() saying so."""
    async with backend.store() as mine, backend.store() as other:
        ended: list[ev.Event] = []
        with trio.fail_after(20):
            async with Executor(store=mine).stream(review(), {}) as run:
                async for event in run:
                    if isinstance(event, ev.BarrierWaiting):
                        await other.cancel(run.run_id)
                    ended.append(event)
        assert run.result is None
        assert (await mine.latest(run.run_id)).status is RunStatus.CANCELLED
        assert (await other.job(run.run_id)).status is JobStatus.CANCELLED
        assert await status_of(other, run.run_id) is RunStatus.CANCELLED
        assert not any(isinstance(e, ev.NodeStart) and e.node == "publish" for e in ended)


async def test_a_claim_whose_lease_lapsed_reports_interrupted(store: Any) -> None:
    """A worker's claim that nobody renews (its lease lapsed) with a checkpoint that is
    not terminal: runs() says interrupted; cancelled once cancelled; a new claim takes
    the job over again (before the cancel) and the run is running once more."""
    job = await store.submit("review", {})
    [claim] = await store.claim("w1", ["review"], 1, 0.0)
    checkpoint = Checkpoint("c1", job, "review", "h", "ok", 1, state={})
    await store.save_fenced(attrs.evolve(checkpoint, run_id=job), job, claim.epoch)
    assert await status_of(store, job) is RunStatus.INTERRUPTED
    [again] = await store.claim("w2", ["review"], 1, 30.0)
    assert await status_of(store, job) is RunStatus.RUNNING
    await store.cancel(job)
    assert await status_of(store, job) is RunStatus.CANCELLED
    assert not await store.renew(job, again.epoch, 30.0)  # the worker's claim is gone
