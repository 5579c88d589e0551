"""A worker's claimed run follows the store's steering live (DESIGN §8, issue 15).

Real worker processes (tests/_worker_child.py) on PostgreSQL and SQLite; this test's
process is the other one, deciding and cancelling through its own store. A decision for
the barrier a claimed run waits at is applied in place, in the same claim (the job's
epoch stays 1, nothing parked); ``store.cancel`` stops a claimed run within a bound far
below the lease renewal. In-process tests pin the race of a decision arriving just as
the run parks (taken exactly once) and the worker's ``on_event`` / output log lines.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
import trio
from _pg import SKIP_WITHOUT_SERVER, Child, PostgresBackend, SQLiteBackend

from trio_graph import Approve, BarrierId, GraphBuilder, NodeContext
from trio_graph import events as ev
from trio_graph.stores.queue import Job, JobStatus, QueueStore
from trio_graph.worker import Worker

Backend = PostgresBackend | SQLiteBackend
BOUND = 5.0
"""Seconds a live decision or cancel may take to reach a worker's run on a loaded test
machine (the design's "about a second"; the lease renewal, every 10 s here, is slower)."""


@pytest.fixture(
    params=[pytest.param("postgres", marks=SKIP_WITHOUT_SERVER), pytest.param("sqlite")]
)
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    chosen: Backend = PostgresBackend() if request.param == "postgres" else SQLiteBackend(tmp_path)
    yield chosen
    chosen.close()


@pytest.fixture
async def store(backend: Backend) -> AsyncIterator[Any]:
    async with backend.store() as opened:
        await trio.to_thread.run_sync(backend.create_side_table)
        yield opened


@pytest.fixture
def children() -> Iterator[list[Child]]:
    started: list[Child] = []
    yield started
    for child in started:
        child.kill()


async def start(children: list[Child], backend: Backend, *args: str) -> Child:
    child = Child(*backend.child_args(), *args)
    children.append(child)
    await child.ready()
    return child


async def until(predicate: Any, limit: float = 30, what: str = "condition") -> Any:
    deadline = time.monotonic() + limit
    while True:
        value = await predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await trio.sleep(0.02)


async def waiting_live(store: QueueStore, job: str) -> Job | None:
    """The job, once its claimed run waits at its barrier (checkpointed there)."""
    info = await store.job(job)
    if info is None or info.status != JobStatus.RUNNING:
        return None
    latest = await store.latest(job)
    return info if latest is not None and latest.pending_barrier is not None else None


async def test_a_decision_reaches_a_claimed_run_in_place(
    store: QueueStore, backend: Backend, children: list[Child]
) -> None:
    """A worker's run waiting at a barrier takes a decision sent from another process
    within the bound and completes in the same claim: epoch 1, never parked."""
    job = await store.submit("hitl", {})
    worker = await start(
        children, backend, "--lease", "30", "--park-after", "60", "--until-idle", "--poll", "0.2"
    )
    await until(lambda: waiting_live(store, job), what="the run waiting at review")
    sent = time.monotonic()
    await store.decide(job, BarrierId("review", 1), Approve())

    async def completed() -> Job | None:
        info = await store.job(job)
        return info if info is not None and info.status == JobStatus.COMPLETED else None

    info = await until(completed, limit=BOUND, what="the decided run to complete")
    took = time.monotonic() - sent
    assert took < BOUND
    assert info.epoch == 1  # the same claim: no park and unpark round trip
    stats = await worker.wait(limit=30)
    assert (stats["claimed"], stats["completed"], stats["parked"]) == (1, 1, 0)
    latest = await store.latest(job)
    assert latest is not None and latest.state == {"a": 1, "review.approved": True, "b": 2}


async def test_a_cancel_stops_a_claimed_run_within_the_bound(
    store: QueueStore, backend: Backend, children: list[Child]
) -> None:
    """``store.cancel`` of a job a worker is running: the job is ``cancelled`` at once, its
    steps stop within the bound (the lease renewal is 10 s away), the worker counts it
    cancelled, not as a lost lease, and no worker claims it again."""
    state = {"job": "c", "n": 0, "steps": 10_000, "path": [], "record": True}
    job = await store.submit("count", state)
    worker = await start(children, backend, "--lease", "30", "--delay", "0.05", "--until-idle")

    async def stepping() -> bool:
        return len(await trio.to_thread.run_sync(backend.steps, "c")) >= 2

    await until(stepping, what="the run's first steps")
    sent = time.monotonic()
    await store.cancel(job)
    stats = await worker.wait(limit=30)  # --until-idle: it exits once the run has stopped
    assert time.monotonic() - sent < BOUND
    assert (stats["cancelled"], stats["lease_lost"], stats["completed"]) == (1, 0, 0)
    info = await store.job(job)
    assert info is not None and (info.status, info.epoch) == (JobStatus.CANCELLED, 1)
    [row] = [r for r in await store.runs() if r.run_id == job]
    assert row.status == "cancelled"
    steps = len(await trio.to_thread.run_sync(backend.steps, "c"))
    assert steps < 10_000
    again = await start(children, backend, "--until-idle")
    assert (await again.wait(limit=30))["claimed"] == 0


# -- in process ----------------------------------------------------------------------------
def hitl() -> Any:
    return (
        GraphBuilder("hitl")
        .task("a", lambda s: {"a": 1})
        .barrier("review")
        .task("b", lambda s: {"b": 2})
        .edge("a", "review")
        .edge("review", "b")
        .start("a")
        .end("b")
        .build()
    )


async def test_a_decision_arriving_as_the_run_parks_is_taken_once(store: QueueStore) -> None:
    """A decision committed while the worker parks its run (between the barrier and the
    park's transaction) is not lost: the job is queued instead of parked, the next claim
    takes the decision, and the barrier is resolved exactly once over both claims."""
    job = await store.submit("hitl", {})
    park = store.park
    parks = 0

    async def decide_then_park(*args: Any, **kwargs: Any) -> bool:
        nonlocal parks
        parks += 1
        if parks == 1:
            await store.decide(job, BarrierId("review", 1), Approve())
        return await park(*args, **kwargs)

    store.park = decide_then_park  # type: ignore[method-assign]
    resolved: list[ev.BarrierResolved] = []

    def seen(job_id: str, event: ev.Event) -> None:
        if isinstance(event, ev.BarrierResolved):
            resolved.append(event)

    worker = Worker(store, [hitl()], poll_interval=0.05, lease=5, park_after=0, on_event=seen)
    with trio.fail_after(30):
        await worker.serve(until_idle=True)
    info = await store.job(job)
    assert info is not None and info.status == JobStatus.COMPLETED
    assert [(e.barrier_id, type(e.decision)) for e in resolved] == [
        (BarrierId("review", 1), Approve)
    ]
    assert (worker.stats.claimed, worker.stats.parked, worker.stats.completed) == (2, 1, 1)


async def test_a_decision_within_park_after_needs_no_second_claim(store: QueueStore) -> None:
    """In process: a decision sent while the claimed run waits (``park_after`` not over)
    is applied by the run's follower; one claim, nothing parked."""
    job = await store.submit("hitl", {})
    worker = Worker(store, [hitl()], poll_interval=0.05, lease=5, park_after=30)

    async def decide_when_waiting() -> None:
        await until(lambda: waiting_live(store, job), what="the run waiting at review")
        await store.decide(job, BarrierId("review", 1), Approve())

    with trio.fail_after(BOUND * 3):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(decide_when_waiting)
            await worker.serve(until_idle=True)
    info = await store.job(job)
    assert info is not None and (info.status, info.epoch) == (JobStatus.COMPLETED, 1)
    assert (worker.stats.claimed, worker.stats.parked) == (1, 0)


async def test_the_worker_shows_what_nodes_stream(
    store: QueueStore, caplog: pytest.LogCaptureFixture
) -> None:
    """Every ``ctx.emit`` of a served run reaches ``on_event`` as a ``NodeOutput`` (with
    its job id), in order, and is logged at INFO as one shortened line."""

    async def talk(state: Any, ctx: NodeContext) -> dict[str, Any]:
        await ctx.emit("hello\nworld")
        await ctx.emit({"tokens": list(range(500))})
        return {"done": True}

    graph = GraphBuilder("talk").task("talk", talk).start("talk").end("talk").build()
    job = await store.submit("talk", {})
    outputs: list[tuple[str, Any]] = []

    def seen(job_id: str, event: ev.Event) -> None:
        if isinstance(event, ev.NodeOutput):
            outputs.append((job_id, event.data))

    caplog.set_level(logging.INFO, logger="trio_graph.worker")
    worker = Worker(store, [graph], poll_interval=0.05, lease=5, on_event=seen)
    with trio.fail_after(30):
        await worker.serve(until_idle=True)
    assert outputs == [(job, "hello\nworld"), (job, {"tokens": list(range(500))})]
    lines = [r.getMessage() for r in caplog.records if " > " in r.getMessage()]
    assert lines[0] == f"job {job}: talk > hello world"
    assert lines[1].startswith(f"job {job}: talk > " + '{"tokens": [0, 1, 2')
    assert lines[1].endswith("...") and len(lines[1]) < 260
