"""Workers sharing runs through a queue store: contention, failover, fencing, durable HITL.

Every test runs on both queue stores: PostgreSQL (the ``TRIO_GRAPH_PG_DSN`` server;
skipped without it, failed without it under CI) and SQLite (one file shared by the
processes of one machine). Real worker processes (tests/_worker_child.py) run on the
wall clock (other processes and the database decide the leases), so these tests poll
the database in short sleeps and keep leases at 1 s so the suite stays fast. In-process
tests at the end cover the worker's handling of decisions, failures and graph changes.
"""

from __future__ import annotations

import itertools
import os
import signal
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
import trio
from _pg import SKIP_WITHOUT_SERVER, Child, PostgresBackend, SQLiteBackend

from trio_graph import Approve, BarrierId, GraphBuilder, Reject, Reroute
from trio_graph._model.checkpoint import Checkpoint
from trio_graph.stores.queue import FencedStore, Job, JobStatus, QueueStore
from trio_graph.worker import Worker

FENCING_TRIALS = int(os.environ.get("TRIO_GRAPH_FENCING_TRIALS", "3"))

Backend = PostgresBackend | SQLiteBackend


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
    """Poll ``predicate`` (an async callable) until it returns something truthy."""
    deadline = time.monotonic() + limit
    while True:
        value = await predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await trio.sleep(0.05)


async def recorded(backend: Backend, job: str, test: Any) -> bool:
    rows = await trio.to_thread.run_sync(backend.steps, job)
    return bool(test(rows))


async def job_where(store: QueueStore, job: str, test: Any) -> Job | None:
    info = await store.job(job)
    return info if info is not None and test(info) else None


async def final_state(store: QueueStore, job: Job) -> dict[str, Any]:
    latest = await store.latest(job.trace_id)
    assert latest is not None
    return latest.state


def count_job(tag: str, steps: int) -> dict[str, Any]:
    return {"job": tag, "n": 0, "steps": steps, "path": [], "record": True}


def expected_count(tag: str, steps: int) -> dict[str, Any]:
    path = list(range(1, steps + 1))
    return {**count_job(tag, steps), "n": steps, "path": path, "finished": True}


# -- contention -------------------------------------------------------------------------------
@pytest.mark.slow
async def test_four_workers_share_200_runs(
    store: QueueStore, backend: Backend, children: list[Child]
) -> None:
    """4 worker processes, 200 runs: each completes exactly once, no step of a run runs in
    two places at once, every final state is right."""
    runs, steps = 200, 3
    ids = {await store.submit("count", count_job(f"j{i}", steps)): f"j{i}" for i in range(runs)}
    workers = [
        await start(children, backend, "--concurrency", "4", "--lease", "2", "--until-idle")
        for _ in range(4)
    ]
    stats = [await w.wait(limit=240) for w in workers]
    jobs = {j.job_id: j for j in await store.jobs()}
    assert {j.status for j in jobs.values()} == {JobStatus.COMPLETED}
    assert {j.epoch for j in jobs.values()} == {1}  # claimed once each
    for job_id, tag in ids.items():
        assert await final_state(store, jobs[job_id]) == expected_count(tag, steps)
    rows = backend.steps()
    by_job: dict[str, list[tuple[Any, ...]]] = {}
    for row in rows:
        by_job.setdefault(row[0], []).append(row)
    overlaps = 0
    for tag, steps_of_run in by_job.items():
        assert sorted(r[1] for r in steps_of_run) == [0, *range(1, steps + 1)], tag  # once each
        for before, after in itertools.pairwise(steps_of_run):
            overlaps += after[3] < before[4]
    assert len(by_job) == runs
    assert overlaps == 0
    assert sum(s["completed"] for s in stats) == runs
    assert sum(s["lease_lost"] for s in stats) == 0
    assert len({r[2] for r in rows}) > 1  # the work was shared


# -- failover ---------------------------------------------------------------------------------
@pytest.mark.slow
async def test_a_killed_workers_run_is_taken_over_after_its_lease(
    store: QueueStore, backend: Backend, children: list[Child]
) -> None:
    """kill -9 a worker mid-run: once its lease expires another worker resumes the run
    from its last checkpoint and completes it with the right state."""
    lease, steps = 1.0, 8
    job = await store.submit("count", count_job("f", steps))
    first = await start(children, backend, "--lease", str(lease), "--delay", "0.15")
    await until(lambda: recorded(backend, "f", lambda rows: len(rows) >= 2))
    first.proc.kill()  # SIGKILL: no shutdown, the lease is left to expire
    killed_at = time.time()
    await first.wait()
    info = await store.job(job)
    assert info is not None and info.status == JobStatus.RUNNING  # still leased to the dead
    second = await start(children, backend, "--lease", str(lease), "--delay", "0.15")
    info = await until(
        lambda: job_where(store, job, lambda j: j.status == JobStatus.COMPLETED),
        what="the run to complete",
    )
    stats = await second.stop()
    assert await final_state(store, info) == expected_count("f", steps)
    assert info.epoch == 2 and info.trace_id != job
    taken_over = [r for r in backend.steps("f") if r[2] == second.pid]
    assert taken_over and min(r[3] for r in taken_over) > killed_at + lease / 3
    assert stats["completed"] == 1
    assert backend.tips(job) == [info.checkpoint_id]


# -- fencing ----------------------------------------------------------------------------------
@pytest.mark.slow
async def test_a_paused_worker_cannot_write_after_losing_its_lease(
    store: QueueStore, backend: Backend, children: list[Child], tmp_path: Path
) -> None:
    """SIGSTOP a worker past its lease, let another take the run, SIGCONT the first: its
    late writes are refused (LeaseLost), the chain has one tip, the final state is right.
    Repeated TRIO_GRAPH_FENCING_TRIALS times (default 3). The second worker serves only
    once the first has claimed the run, and the first is seen stopped (every thread)
    before the test goes on.

    A worker paused while holding SQLite's write lock (a commit takes ~0.1 ms of each
    0.15 s step) blocks every writer until it resumes, so no takeover can happen: such a
    trial is counted as inconclusive (at most one is allowed), never as a pass."""
    lease, steps = 1.0, 12
    failures, inconclusive = [], 0
    for trial in range(FENCING_TRIALS):
        tag = f"fence{trial}"
        go = tmp_path / f"go{trial}"
        args = ("--lease", str(lease), "--delay", "0.15", "--idle-tx-timeout", "0.5")
        paused = await start(children, backend, *args)
        other = await start(children, backend, *args, "--start-when", str(go))
        job = await store.submit("count", count_job(tag, steps))
        await until(lambda tag=tag: recorded(backend, tag, lambda rows: len(rows) >= 1))
        go.touch()  # the second worker serves only once the first one has the run
        await paused.pause()
        try:
            await until(
                lambda job=job: job_where(store, job, lambda j: j.epoch >= 2),
                limit=15,
                what="the run to be taken over",
            )
        except AssertionError:
            inconclusive += 1
            paused.signal(signal.SIGCONT)
            await paused.stop()
            await other.stop()
            continue
        await until(
            lambda tag=tag, pid=other.pid: recorded(
                backend, tag, lambda rows: any(r[2] == pid for r in rows)
            ),
            what="the new owner to make progress",
        )
        paused.signal(signal.SIGCONT)
        info = await until(
            lambda job=job: job_where(store, job, lambda j: j.status == JobStatus.COMPLETED),
            what="the run to complete",
        )
        paused_stats = await paused.stop()
        other_stats = await other.stop()
        chain_tips = backend.tips(job)
        trial_rows = backend.steps(tag)
        state = await final_state(store, info)
        ok = (
            paused_stats["lease_lost"] == 1
            and paused_stats["refused_writes"] >= 1
            and paused_stats["completed"] == 0
            and other_stats["completed"] == 1
            and chain_tips == [info.checkpoint_id]
            and state == expected_count(tag, steps)
        )
        if not ok:
            steps_seen = [(r[1], "paused" if r[2] == paused.pid else "other") for r in trial_rows]
            failures.append(
                (trial, paused_stats, other_stats, chain_tips, state, info.epoch, steps_seen)
            )
            print("paused:", paused.log(), "\nother:", other.log())
    print(
        f"fencing on {backend.name}: {FENCING_TRIALS} trials, {len(failures)} failed, "
        f"{inconclusive} inconclusive"
    )
    assert failures == [], f"{len(failures)}/{FENCING_TRIALS} trials failed: {failures}"
    assert inconclusive <= 1, f"{inconclusive}/{FENCING_TRIALS} trials saw no takeover"


# -- durable human-in-the-loop -------------------------------------------------------------------
@pytest.mark.slow
async def test_a_decision_sent_after_every_worker_exited_completes_the_run(
    store: QueueStore, backend: Backend, children: list[Child]
) -> None:
    """A run waits at a barrier; all workers exit; store.decide() from another process;
    a new worker resumes and completes the run."""
    job = await store.submit("hitl", {"x": 1})
    worker = await start(children, backend)
    info = await until(
        lambda: job_where(store, job, lambda j: j.status == JobStatus.WAITING),
        what="the run to park at the barrier",
    )
    assert info.pending_barrier == BarrierId("review", 1)
    stats = await worker.stop()
    assert stats["parked"] == 1
    assert all(c.proc.poll() is not None for c in children)  # nobody is running

    await store.decide(job, BarrierId("review", 1), Approve())
    info = await store.job(job)
    assert info is not None and info.status == JobStatus.QUEUED
    await start(children, backend, "--until-idle")
    stats = await children[-1].wait()
    info = await store.job(job)
    assert info is not None and info.status == JobStatus.COMPLETED
    assert stats["completed"] == 1
    assert await final_state(store, info) == {"x": 1, "a": 1, "review.approved": True, "b": 2}


# -- graceful shutdown ---------------------------------------------------------------------------
@pytest.mark.slow
async def test_shutdown_checkpoints_and_releases_in_flight_runs(
    store: QueueStore, backend: Backend, children: list[Child]
) -> None:
    """SIGTERM: the in-flight run checkpoints and gives its lease back, so another worker
    takes it at once (the 60 s lease never has to expire)."""
    steps = 6
    job = await store.submit("count", count_job("g", steps))
    args = ("--lease", "60", "--delay", "0.15")
    first = await start(children, backend, *args)
    await until(lambda: recorded(backend, "g", lambda rows: len(rows) >= 2))
    stats = await first.stop()
    assert stats["released"] == 1
    info = await store.job(job)
    assert info is not None
    assert (info.status, info.owner) == (JobStatus.QUEUED, None)
    assert info.checkpoint_id is not None
    await start(children, backend, *args, "--until-idle")
    with trio.fail_after(30):
        stats = await children[-1].wait()
    info = await store.job(job)
    assert info is not None and info.status == JobStatus.COMPLETED
    assert await final_state(store, info) == expected_count("g", steps)


# -- in-process: decisions, failures, graph changes --------------------------------------------
def review_graph(name: str = "review") -> Any:
    return (
        GraphBuilder(name)
        .task("draft", lambda s: {"drafts": s.get("drafts", 0) + 1})
        .barrier("review")
        .task("publish", lambda s: {"published": True})
        .edge("draft", "review")
        .edge_if("review", "draft", lambda s: not s["review.approved"])
        .edge("review", "publish")
        .start("draft")
        .end("publish")
        .build()
    )


async def serve(store: QueueStore, graphs: Any, **options: Any) -> Worker:
    worker = Worker(store, graphs, poll_interval=0.05, lease=5, **options)
    with trio.fail_after(30):
        await worker.serve(until_idle=True)
    return worker


async def test_decisions_sent_ahead_are_used_without_parking(store: QueueStore) -> None:
    """Decisions sent before their barrier is reached (exact and wildcard) let the run go
    straight through; the run never parks."""
    job = await store.submit("review", {})
    await store.decide(job, BarrierId("review", 1), Approve())
    other = await store.submit("review", {})
    await store.decide_all(other, "review", Approve())
    worker = await serve(store, {"review": review_graph()})
    assert (worker.stats.completed, worker.stats.parked) == (2, 0)
    for j in (job, other):
        info = await store.job(j)
        assert info is not None and info.status == JobStatus.COMPLETED


async def test_each_barrier_occurrence_parks_until_decided(store: QueueStore) -> None:
    """A rejected draft loops back to the barrier (occurrence 2), which parks again; stale
    decisions are not reapplied; the second approval completes the run."""
    job = await store.submit("review", {})
    graphs = {"review": review_graph()}
    await serve(store, graphs)
    await store.decide(job, BarrierId("review", 1), Reject("again"))
    await serve(store, graphs)
    info = await store.job(job)
    assert info is not None
    assert (info.status, info.pending_barrier) == (JobStatus.WAITING, BarrierId("review", 2))
    await store.decide(info.trace_id, BarrierId("review", 2), Approve())
    worker = await serve(store, graphs)
    info = await store.job(job)
    assert info is not None and info.status == JobStatus.COMPLETED
    state = await final_state(store, info)
    assert (state["drafts"], state["review.approved"], state["published"]) == (2, True, True)
    assert worker.stats.completed == 1


async def test_a_decision_the_graph_refuses_is_skipped(store: QueueStore) -> None:
    """A stored Reroute with no edge is logged and skipped; the run parks instead of failing,
    and a corrected decision wakes it."""
    job = await store.submit("review", {})
    await store.decide(job, BarrierId("review", 1), Reroute("nowhere"))
    worker = await serve(store, {"review": review_graph()})
    assert worker.stats.parked == 1
    info = await store.job(job)
    assert info is not None and info.status == JobStatus.WAITING
    await store.decide(job, BarrierId("review", 1), Approve())
    await serve(store, {"review": review_graph()})
    info = await store.job(job)
    assert info is not None and info.status == JobStatus.COMPLETED


async def test_a_failing_node_fails_the_job(store: QueueStore) -> None:
    """A node's exception fails the job, recording the error; it is not retried."""

    def boom(state: Any) -> None:
        raise ValueError("no luck")

    graph = GraphBuilder("boom").task("a", boom).start("a").end("a").build()
    job = await store.submit("boom", {})
    worker = await serve(store, {"boom": graph})
    info = await store.job(job)
    assert info is not None and info.status == JobStatus.FAILED
    assert info.error is not None and "no luck" in info.error
    assert worker.stats.failed == 1 and worker.stats.claimed == 1


async def test_a_changed_graph_fails_the_job_unless_forced(store: QueueStore) -> None:
    """Resuming with a graph whose structure changed fails the job with GraphChanged;
    force=True resumes it."""
    changed = (
        GraphBuilder("review")
        .task("draft", lambda s: {"drafts": 1})
        .barrier("review")
        .task("publish", lambda s: {"published": True})
        .task("extra", lambda s: None)
        .edge("draft", "review")
        .edge("review", "publish")
        .edge("publish", "extra")
        .start("draft")
        .end("extra")
        .build()
    )
    jobs = [await store.submit("review", {}) for _ in range(2)]
    await serve(store, {"review": review_graph()})
    for job in jobs:
        await store.decide(job, BarrierId("review", 1), Approve())
    await serve(store, {"review": changed}, concurrency=1)  # takes both, fails both
    for job in jobs:
        info = await store.job(job)
        assert info is not None and info.status == JobStatus.FAILED
        assert info.error is not None and "changed since the checkpoint" in info.error
    third = await store.submit("review", {})
    await serve(store, {"review": review_graph()})
    await store.decide(third, BarrierId("review", 1), Approve())
    forced = await serve(store, {"review": changed}, force=True)
    info = await store.job(third)
    assert info is not None and info.status == JobStatus.COMPLETED
    assert forced.stats.completed == 1


async def test_cancelling_serve_releases_in_flight_runs(store: QueueStore) -> None:
    """Cancelling worker.serve() checkpoints the running job and releases its lease."""
    started = trio.Event()

    async def slow(state: Any) -> dict[str, Any]:
        started.set()
        await trio.sleep_forever()
        return {}

    graph = (
        GraphBuilder("slow")
        .task("a", lambda s: {"a": 1})
        .task("b", slow)
        .edge("a", "b")
        .start("a")
        .end("b")
        .build()
    )
    job = await store.submit("slow", {})
    worker = Worker(store, {"slow": graph}, lease=60, poll_interval=0.05)
    with trio.fail_after(20):
        async with trio.open_nursery() as nursery:
            await nursery.start(worker.serve)
            await started.wait()
            nursery.cancel_scope.cancel()
    assert worker.stats.released == 1
    info = await store.job(job)
    assert info is not None and (info.status, info.owner) == (JobStatus.QUEUED, None)
    latest = await store.latest(info.trace_id)
    assert latest is not None and (latest.next_node, latest.state) == ("b", {"a": 1})


async def test_a_lost_lease_stops_the_run_and_its_writes(store: QueueStore) -> None:
    """When another claim takes the job (simulated: the lease is given up and re-claimed),
    the first worker's renewal fails, its run stops and its save is refused."""
    started = trio.Event()

    async def slow(state: Any) -> dict[str, Any]:
        started.set()
        await trio.sleep(1.5)
        return {"b": 1}

    graph = (
        GraphBuilder("slow")
        .task("a", lambda s: {"a": 1})
        .task("b", slow)
        .edge("a", "b")
        .start("a")
        .end("b")
        .build()
    )
    job = await store.submit("slow", {})
    worker = Worker(store, {"slow": graph}, lease=0.6, poll_interval=0.05)
    with trio.fail_after(20):
        async with trio.open_nursery() as nursery:
            await nursery.start(worker.serve)
            await started.wait()
            info = await store.job(job)
            assert info is not None
            assert await store.release(job, info.epoch)  # as if the lease had expired
            [claim] = await store.claim("thief", ["slow"], 1, 60.0)
            await until(lambda: _true_when(worker.stats.lease_lost == 1), what="the loss")
            nursery.cancel_scope.cancel()
    assert claim.epoch == 2
    assert worker.stats.refused_writes >= 1 and worker.stats.completed == 0
    info = await store.job(job)
    assert info is not None and (info.owner, info.epoch) == ("thief", 2)


async def _true_when(value: bool) -> bool:
    await trio.lowlevel.checkpoint()
    return value


def test_worker_arguments_are_checked() -> None:
    """Bad worker options are refused with plain messages."""
    graph = review_graph()
    store: Any = object()
    with pytest.raises(ValueError, match=r"^concurrency must be a positive int, got 0$"):
        Worker(store, {"review": graph}, concurrency=0)
    with pytest.raises(ValueError, match=r"^lease must be positive seconds, got 0$"):
        Worker(store, {"review": graph}, lease=0)
    with pytest.raises(ValueError, match=r"^graphs must name at least one graph$"):
        Worker(store, {})
    assert Worker(store, [graph]).graphs == {"review": graph}


async def test_a_run_stopped_after_its_end_node_is_settled_not_rerun(store: QueueStore) -> None:
    """A job whose last checkpoint has nothing left to run (its end node ran, then it was
    interrupted before the completion checkpoint) is completed by the next worker."""
    job = await store.submit("review", {})
    [claim] = await store.claim("w", ["review"], 1, 60.0)
    last = Checkpoint("c1", job, "review", "h", None, 3, {"x": 1}, error="run cancelled")
    await FencedStore(store, job, claim.epoch).save(last)
    assert await store.release(job, claim.epoch)
    worker = await serve(store, {"review": review_graph()})
    info = await store.job(job)
    assert info is not None and (info.status, info.error) == (JobStatus.COMPLETED, None)
    assert (worker.stats.completed, worker.stats.failed) == (1, 0)
    assert [c.checkpoint_id for c in await store.list(job)] == ["c1"]  # not run again


async def test_a_lease_lost_during_a_fan_out_counts_as_lost(
    store: QueueStore, caplog: pytest.LogCaptureFixture
) -> None:
    """A worker whose job is claimed by another while the run is inside a fan-out (its
    renewal fails, the run is cancelled there and its checkpoint on the way out is
    refused): the lease counts as lost, not as a failed job, nothing "failed
    unexpectedly", and the worker goes on serving and shuts down cleanly."""
    started = trio.Event()

    async def branch(state: Any) -> dict[str, Any]:
        started.set()
        await trio.sleep_forever()
        raise AssertionError("unreachable")

    graph = (
        GraphBuilder("fan")
        .task("a", lambda s: {"a": 1})
        .parallel("fan", {"one": branch, "two": branch})
        .task("b", lambda s: {"b": 2})
        .edge("a", "fan")
        .edge("fan", "b")
        .start("a")
        .end("b")
        .build()
    )
    job = await store.submit("fan", {})
    worker = Worker(store, {"fan": graph}, lease=0.6, poll_interval=0.05)
    with trio.fail_after(20):
        async with trio.open_nursery() as nursery:
            await nursery.start(worker.serve)
            await started.wait()
            info = await store.job(job)
            assert info is not None
            assert await store.release(job, info.epoch)  # as if the lease had expired
            [claim] = await store.claim("thief", ["fan"], 1, 60.0)
            await until(lambda: _true_when(worker.stats.lease_lost == 1), what="the loss")
            nursery.cancel_scope.cancel()
    assert claim.epoch == 2
    assert (worker.stats.failed, worker.stats.completed, worker.stats.released) == (0, 0, 0)
    assert "failed unexpectedly" not in caplog.text
    assert "lease on job" in caplog.text
    info = await store.job(job)
    assert info is not None and (info.owner, info.epoch) == ("thief", 2)


async def test_a_branch_record_refused_by_the_fence_counts_as_a_lost_lease(
    store: QueueStore, caplog: pytest.LogCaptureFixture
) -> None:
    """A fan-out branch finishing after the job was claimed again has its record save
    refused inside the fan-out: the worker counts the lease as lost and the refused
    write, fails nothing and logs no "failed unexpectedly"."""
    stolen, started = trio.Event(), trio.Event()

    async def fast(state: Any) -> dict[str, Any]:
        started.set()
        await stolen.wait()
        return {"fast": 1}

    async def slow(state: Any) -> dict[str, Any]:
        await trio.sleep_forever()
        raise AssertionError("unreachable")

    graph = (
        GraphBuilder("fan")
        .task("a", lambda s: {"a": 1})
        .parallel("fan", {"fast": fast, "slow": slow}, strategy="collect_all")
        .task("b", lambda s: {"b": 2})
        .edge("a", "fan")
        .edge("fan", "b")
        .start("a")
        .end("b")
        .build()
    )
    job = await store.submit("fan", {})
    worker = Worker(store, {"fan": graph}, lease=30.0, poll_interval=0.05)
    with trio.fail_after(20):
        async with trio.open_nursery() as nursery:
            await nursery.start(worker.serve)
            await started.wait()
            info = await store.job(job)
            assert info is not None
            assert await store.release(job, info.epoch)  # as if the lease had expired
            [claim] = await store.claim("thief", ["fan"], 1, 60.0)
            stolen.set()
            await until(lambda: _true_when(worker.stats.lease_lost == 1), what="the loss")
            nursery.cancel_scope.cancel()
    assert claim.epoch == 2 and worker.stats.refused_writes >= 1
    assert (worker.stats.failed, worker.stats.completed) == (0, 0)
    assert "failed unexpectedly" not in caplog.text


@pytest.mark.slow
async def test_a_worker_that_lost_its_lease_in_a_fan_out_stops_cleanly_on_sigterm(
    store: QueueStore, backend: Backend, children: list[Child], tmp_path: Path
) -> None:
    """SIGSTOP a worker inside a fan-out past its lease, let another take the run,
    SIGCONT it, then SIGTERM it: it counts the lost lease, exits 0 with no traceback
    and no "failed unexpectedly"; the run completes once, by the other worker."""
    go = tmp_path / "go"
    args = ("--lease", "1.0", "--delay", "0.3", "--idle-tx-timeout", "0.5")
    paused = await start(children, backend, *args)
    other = await start(children, backend, *args, "--start-when", str(go))
    job = await store.submit("fan", {**count_job("fan", 6)})
    await until(lambda: recorded(backend, "fan", lambda rows: len(rows) >= 1))
    await trio.sleep(0.05)  # the worker is inside the fan-out (0.3 s of each step)
    go.touch()
    await paused.pause()
    await until(
        lambda: job_where(store, job, lambda j: j.epoch >= 2), limit=30, what="the takeover"
    )
    paused.signal(signal.SIGCONT)
    await until(
        lambda: job_where(store, job, lambda j: j.status == JobStatus.COMPLETED),
        what="the run to complete",
    )
    paused_stats = await paused.stop()
    log = paused.log()
    assert paused.proc.returncode == 0, log
    assert "Traceback" not in log and "failed unexpectedly" not in log, log
    assert paused_stats["lease_lost"] == 1 and paused_stats["completed"] == 0, log
    assert (await other.stop())["completed"] == 1


async def test_a_worker_serving_two_versions_finishes_runs_parked_under_the_old(
    store: QueueStore,
) -> None:
    """Served as [old, new] under one name: a run parked under the old version resumes on
    it (no GraphChanged), and a new run starts on the new one."""
    new = (
        GraphBuilder("review")
        .task("draft", lambda s: {"drafts": 1})
        .barrier("review")
        .task("publish", lambda s: {"published": True})
        .task("announce", lambda s: {"announced": True})
        .edge("draft", "review")
        .edge("review", "publish")
        .edge("publish", "announce")
        .start("draft")
        .end("announce")
        .build()
    )
    old = review_graph()
    parked = await store.submit("review", {})
    await serve(store, {"review": old})
    await store.decide(parked, BarrierId("review", 1), Approve())
    fresh = await store.submit("review", {})
    both = await serve(store, [old, new])
    assert both.versions == {"review": [old, new]} and both.graphs == {"review": new}
    done = await store.job(parked)
    assert done is not None and done.status == JobStatus.COMPLETED
    finished = await store.latest(parked)
    assert finished is not None and "announced" not in finished.state
    assert finished.graph_hash == old.hash()
    started = await store.job(fresh)
    assert started is not None and started.status == JobStatus.WAITING  # parked on the new one
    waiting = await store.latest(fresh)
    assert waiting is not None and waiting.graph_hash == new.hash()
