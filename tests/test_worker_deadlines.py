"""Workers and durable barrier deadlines, and ``max_attempts`` (DESIGN §8, §11), on the
SQL queue stores (SQLite, and PostgreSQL when ``TRIO_GRAPH_PG_DSN`` is set).

A run parked at a barrier keeps its deadline on the job row: no worker claims it before
the deadline, a worker claims it once the deadline has passed (the worker's wall clock,
injected here) and the resumed run applies the barrier's default at once. A job whose
workers keep stopping without letting go of it fails after ``max_attempts`` claims in
a row, with its last error; parking starts the count again.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
import trio

from trio_graph import Approve, BarrierId, GraphBuilder
from trio_graph._model.checkpoint import RunStatus
from trio_graph._model.graph import Graph
from trio_graph.stores.queue import JobStatus
from trio_graph.stores.sqlite import SQLiteStore
from trio_graph.worker import Worker

BOUND = 30.0


def review(timeout: float | None = 3600.0) -> Graph:
    return (
        GraphBuilder("review")
        .task("draft", lambda s: {"text": "hello"})
        .barrier("ok", timeout=timeout, default="approve")
        .task("publish", lambda s: {"published": s["ok.approved"]})
        .edge("draft", "ok")
        .edge("ok", "publish")
        .start("draft")
        .end("publish")
        .build()
    )


class Clock:
    """A wall clock the test moves (epoch seconds)."""

    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


async def test_a_parked_barrier_whose_deadline_passed_is_claimed_and_defaulted(
    store: Any,
) -> None:
    """Parked with an hour's deadline: a worker draining the queue leaves it parked;
    two hours later (the worker's clock) a worker claims it, the run applies the
    barrier's default (approve) at once and completes."""
    clock = Clock()
    job = await store.submit("review", {})
    with trio.fail_after(BOUND):
        await Worker(store, [review()], wall_clock=clock).serve(until_idle=True)
        parked = await store.job(job)
        assert (parked.status, parked.pending_barrier) == (JobStatus.WAITING, BarrierId("ok", 1))
        assert await store.claim("x", ["review"], 5, 30.0, now=clock.now + 3500) == []
        clock.now += 7200
        worker = Worker(store, [review()], wall_clock=clock)
        await worker.serve(until_idle=True)
    assert (await store.job(job)).status is JobStatus.COMPLETED
    latest = await store.latest(job)
    assert latest.status is RunStatus.COMPLETED and latest.state["published"] is True
    assert worker.stats.completed == 1


async def test_a_barrier_with_no_deadline_stays_parked(store: Any) -> None:
    """A barrier with no timeout is parked for good: no clock makes it claimable; a
    decision does."""
    job = await store.submit("review", {})
    with trio.fail_after(BOUND):
        await Worker(store, [review(None)]).serve(until_idle=True)
        assert await store.claim("x", ["review"], 5, 30.0, now=time.time() + 10**9) == []
        await store.decide(job, BarrierId("ok", 1), Approve())
        await Worker(store, [review(None)], max_attempts=1).serve(until_idle=True)
    assert (await store.job(job)).status is JobStatus.COMPLETED


async def test_a_job_whose_workers_keep_dying_fails_after_max_attempts(store: Any) -> None:
    """Two claims whose workers never let go (their leases lapse): a worker with
    max_attempts=2 fails the job on the third claim, saying why; the run never runs."""
    job = await store.submit("review", {})
    for _ in range(2):  # a worker claims and dies: its lease lapses at once
        [claim] = await store.claim("dying", ["review"], 1, 0.0)
    assert claim.attempts == 2
    worker = Worker(store, [review()], max_attempts=2)
    with trio.fail_after(BOUND):
        await worker.serve(until_idle=True)
    failed = await store.job(job)
    assert failed.status is JobStatus.FAILED and failed.attempts == 3
    assert failed.error == (
        "gave up after 2 attempts (its workers stopped without finishing it); "
        "last error: none recorded"
    )
    assert await store.latest(job) is None and worker.stats.failed == 1


def test_max_attempts_must_be_positive(tmp_path: Path) -> None:
    """max_attempts is a positive int or None."""
    with pytest.raises(ValueError, match=r"^max_attempts must be a positive int or None"):
        Worker(SQLiteStore(tmp_path / "x.db"), [review()], max_attempts=0)


async def test_submit_of_a_graph_no_worker_serves_warns(
    store: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """No worker has announced graph 'review': submit queues the job and warns, naming
    the graph and the job. Once a worker serving it has run (it announces its graph
    names), submit is silent; a name it does not serve still warns."""
    caplog.set_level("WARNING", logger="trio_graph.queue")
    job = await store.submit("review", {})
    [record] = [r for r in caplog.records if r.name == "trio_graph.queue"]
    assert record.getMessage() == (
        f"no worker serves graph 'review' (none announced it in the last 120 s): job {job} "
        "waits until one does"
    )
    with trio.fail_after(BOUND):
        await Worker(store, [review()], worker_id="w1").serve(until_idle=True)
    caplog.clear()
    await store.submit("review", {})
    assert [r for r in caplog.records if r.name == "trio_graph.queue"] == []
    await store.submit("other", {})
    assert "graph 'other'" in caplog.records[-1].getMessage()
    assert await store.served("review") and not await store.served("review", within=-1.0)
