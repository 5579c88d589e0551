"""The run queue's primitives on both queue stores (PostgreSQL and SQLite): submit,
claims with leases and epochs, fenced saves, parking and decisions, adoption.

The PostgreSQL cases need ``TRIO_GRAPH_PG_DSN`` (skipped without it, failed without it
under CI). Lease expiry is tested with ``lease=0`` (expired at once), never by waiting.
"""

from __future__ import annotations

import math
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import attrs
import pytest
import trio
from _pg import PostgresBackend

from trio_graph import Approve, BarrierId, Executor, GraphBuilder, Modify, Reject, Reroute
from trio_graph import events as ev
from trio_graph._model.checkpoint import Checkpoint, RunStatus
from trio_graph._model.decisions import DecisionEntry
from trio_graph.errors import BarrierError, CheckpointError, LeaseLost, RunBusy, StateError
from trio_graph.stores.queue import FencedStore, JobStatus, QueueStore
from trio_graph.worker import Worker


def checkpoint(trace: str, cid: str, **fields: Any) -> Checkpoint:
    fields.setdefault("state", {"n": 0})
    return Checkpoint(cid, trace, "g", "hash", "next", 0, **fields)


async def test_store_is_a_queue_store(store: Any) -> None:
    """Both queue stores implement the QueueStore protocol workers use."""
    assert isinstance(store, QueueStore)


async def test_submit_validates_the_state(store: Any) -> None:
    """submit() refuses non-mappings, non-str keys and non-JSON values, naming the key."""
    with pytest.raises(StateError, match=r"^initial state must be a mapping, got list$"):
        await store.submit("g", [1])  # type: ignore[arg-type]
    with pytest.raises(StateError, match=r"state keys must be str, got int"):
        await store.submit("g", {1: "x"})  # type: ignore[dict-item]
    with pytest.raises(CheckpointError, match=r"'bad' got set \(value \{1\}\): .* \(key 'bad'\)$"):
        await store.submit("g", {"bad": {1}})
    job = await store.submit("g", {"a": 1}, trace_id="same")
    with pytest.raises(CheckpointError, match=r"^a run with id 'same' was already submitted$"):
        await store.submit("g", {"a": 1}, trace_id="same")
    assert job == "same"
    assert [j.job_id for j in await store.jobs()] == ["same"]


async def test_claims_are_exclusive_and_count_epochs(store: Any) -> None:
    """A job is claimed once (epoch 1); an expired lease lets another claim it (epoch 2),
    and the first claim can then neither renew, save, release nor finish."""
    job = await store.submit("g", {"n": 1})
    [first] = await store.claim("w1", ["g"], 5, 0.0)  # lease 0: expired at once
    assert (first.job_id, first.epoch, first.state, first.checkpoint_id) == (job, 1, {"n": 1}, None)
    [second] = await store.claim("w2", ["g"], 5, 30.0)
    assert second.epoch == 2
    assert await store.claim("w3", ["g"], 5, 30.0) == []
    assert not await store.renew(job, 1, 30.0)
    assert await store.renew(job, 2, 30.0)
    stale = FencedStore(store, job, 1)
    with pytest.raises(LeaseLost, match=rf"^lease on run '{job}' lost \(epoch 1 is stale\)"):
        await stale.save(checkpoint(job, "c-stale"))
    assert stale.refused == 1
    assert await store.latest(job) is None  # nothing written
    await FencedStore(store, job, 2).save(checkpoint(job, "c-ok"))
    assert not await store.release(job, 1)
    assert not await store.finish(job, 1, JobStatus.COMPLETED)
    info = await store.job(job)
    assert info is not None
    assert (info.status, info.owner, info.epoch, info.checkpoint_id) == (
        JobStatus.RUNNING,
        "w2",
        2,
        "c-ok",
    )


async def test_release_requeues_and_claim_filters_graphs(store: Any) -> None:
    """A released job is runnable again at once; claims only take the graphs asked for."""
    a = await store.submit("a", {})
    b = await store.submit("b", {})
    [claim] = await store.claim("w", ["a"], 5, 30.0)
    assert claim.job_id == a
    assert await store.release(a, 1)
    claims = await store.claim("w", ["a", "b"], 5, 30.0)
    assert sorted((c.job_id, c.epoch) for c in claims) == sorted([(a, 2), (b, 1)])


async def test_terminal_checkpoint_settles_the_job(store: Any) -> None:
    """A completed checkpoint saved through the fence completes the job in the same write."""
    job = await store.submit("g", {})
    [claim] = await store.claim("w", ["g"], 1, 30.0)
    done = attrs.evolve(checkpoint(job, "c1", status=RunStatus.COMPLETED), next_node=None)
    await FencedStore(store, job, claim.epoch).save(done)
    info = await store.job(job)
    assert info is not None
    assert (info.status, info.owner, info.checkpoint_id) == (JobStatus.COMPLETED, None, "c1")
    assert await store.claim("w", ["g"], 1, 30.0) == []


async def test_decisions_wake_parked_jobs(store: Any) -> None:
    """A job parked at a barrier stays put until a decision for that occurrence (or a
    wildcard for the node) arrives; then it is runnable. Decisions are kept in order."""
    job = await store.submit("g", {})
    [claim] = await store.claim("w", ["g"], 1, 30.0)
    assert await store.park(job, claim.epoch, BarrierId("review", 2))
    info = await store.job(job)
    assert info is not None
    assert (info.status, info.pending_barrier) == (JobStatus.WAITING, BarrierId("review", 2))
    await store.decide(job, BarrierId("review", 3), Reject("later"))  # kept for later
    with pytest.raises(BarrierError, match=r"waiting at barrier review#2, not at a barrier"):
        await store.decide(job, "other#2", Approve())  # issue 13 item 19: refused
    assert await store.claim("w", ["g"], 1, 30.0) == []
    await store.decide_all(job, "review", Modify("k", [1, 2.5]))
    [again] = await store.claim("w", ["g"], 1, 30.0)
    assert again.epoch == 2
    assert await store.decisions(job) == [
        DecisionEntry("review", 3, Reject("later")),
        DecisionEntry("review", 0, Modify("k", [1, 2.5])),
    ]


async def test_park_after_the_decision_came_requeues(store: Any) -> None:
    """Parking a job whose decision already arrived leaves it runnable (no lost wake-up)."""
    job = await store.submit("g", {})
    [claim] = await store.claim("w", ["g"], 1, 30.0)
    await store.decide(job, BarrierId("review", 1), Approve())
    assert await store.park(job, claim.epoch, BarrierId("review", 1))
    info = await store.job(job)
    assert info is not None and info.status == JobStatus.QUEUED


async def test_decide_refusals(store: Any) -> None:
    """Decisions for unknown or finished runs, malformed decisions and non-JSON values
    are refused with a clear error."""
    with pytest.raises(BarrierError, match=r"^no run 'nope' in the store \(node 'r'\)$"):
        await store.decide("nope", BarrierId("r", 1), Approve())
    done = checkpoint("finished", "c-done", status=RunStatus.COMPLETED)
    await store.save(attrs.evolve(done, next_node=None))
    with pytest.raises(
        BarrierError, match=r"^run 'finished' is not waiting at a barrier \(status completed\)$"
    ):
        await store.decide("finished", BarrierId("r", 1), Approve())
    job = await store.submit("g", {})
    with pytest.raises(BarrierError, match=r"^malformed decision: expected .* got str$"):
        await store.decide(job, BarrierId("r", 1), "yes")  # type: ignore[arg-type]
    with pytest.raises(
        CheckpointError, match=r"'k' got float \(value inf\): non-finite floats are not JSON"
    ):
        await store.decide(job, BarrierId("r", 1), Modify("k", math.inf))
    [claim] = await store.claim("w", ["g"], 1, 30.0)
    assert await store.finish(job, claim.epoch, JobStatus.COMPLETED)
    with pytest.raises(BarrierError, match=r"^the run has finished; decision not applied"):
        await store.decide(job, BarrierId("r", 1), Reroute("x"))


async def test_decide_for_a_barrier_the_parked_run_is_not_at_is_refused(store: Any) -> None:
    """A decision for a parked job that names another node, or an occurrence it has
    passed, is refused with BarrierError naming the barrier; nothing is recorded and
    the job stays parked (a right decision then still wakes it)."""
    job = await store.submit("g", {})
    [claim] = await store.claim("w", ["g"], 1, 30.0)
    assert await store.park(job, claim.epoch, BarrierId("review", 2))
    with pytest.raises(
        BarrierError,
        match=r"^run '.*' is waiting at barrier review#2, not at "
        r"a barrier 'nope'; decision not recorded \(node 'nope'\)$",
    ):
        await store.decide(job, "nope#1", Approve())
    with pytest.raises(BarrierError, match=r"occurrence 1 of 'review' has passed"):
        await store.decide(job, BarrierId("review", 1), Approve())
    with pytest.raises(BarrierError, match=r"not at a barrier 'nope'"):
        await store.decide_all(job, "nope", Approve())
    assert await store.decisions(job) == []
    info = await store.job(job)
    assert info is not None and info.status == JobStatus.WAITING
    await store.decide(job, BarrierId("review", 2), Approve())
    assert [c.job_id for c in await store.claim("w", ["g"], 1, 30.0)] == [job]


async def test_decide_by_a_later_trace_id(store: Any) -> None:
    """A job's later traces (after a resume) lead decide() and job() to the job."""
    job = await store.submit("g", {})
    [claim] = await store.claim("w", ["g"], 1, 30.0)
    await FencedStore(store, job, claim.epoch).save(checkpoint("trace-2", "c1", resumed_from=job))
    await store.park(job, claim.epoch, BarrierId("r", 1))
    info = await store.job("trace-2")
    assert info is not None and (info.job_id, info.trace_id) == (job, "trace-2")
    await store.decide("trace-2", BarrierId("r", 1), Approve())
    assert (await store.decisions(job)) == [DecisionEntry("r", 1, Approve())]
    assert [c.job_id for c in await store.claim("w", ["g"], 1, 30.0)] == [job]


async def test_a_stored_waiting_run_is_adopted_by_decide(store: Any) -> None:
    """A run started by an Executor on the store and left at a barrier joins the queue
    when a decision is sent for it, so a worker can finish it."""
    graph = (
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
    executor = Executor(store=store)
    async with executor.stream(graph, {}) as run:
        async for event in run:
            if isinstance(event, ev.BarrierWaiting):
                break
    trace = run.trace_id
    assert await store.job(trace) is None
    with pytest.raises(BarrierError, match=r"waiting at barrier review#1, not at a barrier 'b'"):
        await store.decide(trace, BarrierId("b", 1), Approve())
    assert await store.job(trace) is None  # not adopted: nothing recorded
    await store.decide(trace, BarrierId("review", 1), Approve())
    info = await store.job(trace)
    assert info is not None and info.status == JobStatus.QUEUED and info.graph_name == "hitl"
    worker = Worker(store, {"hitl": graph}, poll_interval=0.05)
    with trio.fail_after(20):
        await worker.serve(until_idle=True)
    info = await store.job(trace)
    assert info is not None and info.status == JobStatus.COMPLETED
    latest = await store.latest(info.trace_id)
    assert latest is not None
    assert latest.state == {"a": 1, "review.approved": True, "b": 2}


_CONTINUED_GRAPH = """
import os
import pathlib
import time

from trio_graph import GraphBuilder

MARKS = pathlib.Path(os.environ.get("CONT_MARKS", os.devnull))
ARRIVED = os.environ.get("CONT_ARRIVED")
if ARRIVED:  # a decide process loads the graph just before it continues the run: meet
    with open(ARRIVED, "a") as arrived:  # there, so all five have checked the run first
        arrived.write(f"{os.getpid()}\\n")
    deadline = time.monotonic() + 60
    while len(pathlib.Path(ARRIVED).read_text().split()) < 5 and time.monotonic() < deadline:
        time.sleep(0.01)


def after(state):
    with MARKS.open("a") as marks:
        marks.write(f"{os.getpid()}\\n")
    return {"after": 1}


graph = (
    GraphBuilder("continued")
    .task("a", lambda s: {"a": 1})
    .barrier("review")
    .task("after", after)
    .edge("a", "review")
    .edge("review", "after")
    .start("a")
    .end("after")
    .build()
)
"""


def _store_flags(backend: Any) -> list[str]:
    if isinstance(backend, PostgresBackend):
        return ["--dsn", backend.dsn, "--schema", backend.schema]
    return ["--db", backend.path]


@pytest.mark.slow
async def test_five_concurrent_cli_decides_continue_the_run_once(
    backend: Any, store: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Five ``decide --resume`` processes at once on a run waiting at a barrier (all five
    past their checks before any continues): exactly one continues it, its next node
    runs once; each of the other four either records its decision for the live run or
    is refused in one line, exit 2, saying another process continues (or has
    continued) the run."""
    (tmp_path / "continued_graph.py").write_text(_CONTINUED_GRAPH)
    monkeypatch.syspath_prepend(str(tmp_path))
    import continued_graph  # the children load the same module

    async with Executor(store=store).stream(continued_graph.graph, {}) as run:
        async for event in run:
            if isinstance(event, ev.BarrierWaiting):
                break
    marks = tmp_path / "marks.txt"
    env = {
        **os.environ,
        "CONT_MARKS": str(marks),
        "CONT_ARRIVED": str(tmp_path / "arrived.txt"),
        "PYTHONPATH": os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")]),
    }
    command = [sys.executable, "-m", "trio_graph", "decide", run.trace_id, "review#1"]
    command += ["approve", "--resume", "--graph", "continued_graph:graph"]
    command += _store_flags(backend)
    done: list[subprocess.CompletedProcess[bytes]] = []

    async def one() -> None:
        done.append(
            await trio.run_process(
                command, env=env, capture_stdout=True, capture_stderr=True, check=False
            )
        )

    with trio.fail_after(180):
        async with trio.open_nursery() as nursery:
            for _ in range(5):
                nursery.start_soon(one)
    # Issue 15: a loser that finds the run executing live records its decision and says
    # the live run takes it (exit 0, nothing run); the others are refused (exit 2).
    resumed = [p for p in done if b"resumes run" in p.stdout]
    assert len(resumed) == 1 and resumed[0].returncode == 0, [p.stderr for p in done]
    assert len(marks.read_text().splitlines()) == 1
    for recorder in (p for p in done if p is not resumed[0] and not p.returncode):
        assert b"recorded" in recorder.stdout and b"the live run takes it" in recorder.stdout
        assert b"->" not in recorder.stdout
    for loser in (p for p in done if p.returncode):
        assert loser.returncode == 2
        line = loser.stderr.decode().strip()
        assert "\n" not in line
        # Issue 15: the winner continues the same run, so a later loser finds the run
        # itself no longer waiting, or finished (it was "already continued" as a run of
        # its own).
        assert re.search(
            r"is being continued by another process|was already continued"
            r"|is not waiting at a barrier \(status (running|completed)\)"
            r"|has nothing left to run \(status completed\)",
            line,
        ), line


async def test_executor_resume_on_a_queue_store_is_exclusive(store: Any) -> None:
    """While one Executor.resume continues a stored run, a second resume is refused with
    RunBusy and a decision for it is recorded without waking anyone; afterwards the run
    is out of the queue again and a further resume of the same trace is refused as
    already continued."""
    release = trio.Event()

    async def slow(state: Any) -> dict[str, Any]:
        await release.wait()
        return {"b": 2}

    graph = (
        GraphBuilder("hitl")
        .task("a", lambda s: {"a": 1})
        .barrier("review")
        .task("b", slow)
        .edge("a", "review")
        .edge("review", "b")
        .start("a")
        .end("b")
        .build()
    )
    executor = Executor(store=store)
    async with executor.stream(graph, {}) as first:
        async for event in first:
            if isinstance(event, ev.BarrierWaiting):
                break
    trace, approve = first.trace_id, {BarrierId("review", 1): Approve()}
    async with executor.resume(graph, trace, decisions=approve) as run:
        async for event in run:
            if isinstance(event, ev.NodeStart) and event.node == "b":
                break
        with pytest.raises(RunBusy, match=r"is being continued by another process \(hold:"):
            async with executor.resume(graph, trace, decisions=approve):
                pass
        # A decision for the live run is recorded (issue 15: its follower takes it; this
        # one is for a barrier already passed, so the run goes on unchanged).
        await store.decide(trace, BarrierId("review", 1), Approve())
        held = await store.job(trace)
        assert held is not None and held.status == JobStatus.RUNNING
        release.set()
        async for _ in run:
            pass
    assert run.result is not None and run.result.state["b"] == 2
    assert await store.job(trace) is None
    # The first trace id names the run (issue 15; it was a run of its own, "already
    # continued"): the run has completed.
    with pytest.raises(CheckpointError, match=rf"^run '{trace}' has nothing left to run "):
        async with executor.resume(graph, trace, decisions=approve):
            pass


async def test_cli_decide_for_a_barrier_the_parked_job_is_not_at_is_refused(
    backend: Any, store: Any
) -> None:
    """``trio-graph decide`` naming a barrier a parked job is not at says so in one
    line, exit 2, instead of "recorded … a worker will resume it"; nothing is recorded."""
    graph = (
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
    job = await store.submit("hitl", {})
    with trio.fail_after(20):
        await Worker(store, {"hitl": graph}, poll_interval=0.05).serve(until_idle=True)
    info = await store.job(job)
    assert info is not None and info.pending_barrier == BarrierId("review", 1)
    command = [sys.executable, "-m", "trio_graph", "decide", job, "nope#1", "approve"]
    done = await trio.run_process(
        [*command, *_store_flags(backend)], capture_stdout=True, capture_stderr=True, check=False
    )
    line = done.stderr.decode().strip()
    assert done.returncode == 2 and "\n" not in line and b"recorded" not in done.stdout
    assert "waiting at barrier review#1, not at a barrier 'nope'" in line
    assert await store.decisions(job) == []


async def test_a_decision_by_run_id_reaches_a_resumed_stored_run(store: Any) -> None:
    """A stored run resumed once and waiting again is decided by its run id: it joins
    the queue as job ``run_id`` at its current segment, and a resume by run id
    continues it with that decision to completion, under the same run id."""
    graph = (
        GraphBuilder("twice")
        .barrier("one")
        .barrier("two")
        .task("end", lambda s: {"done": True})
        .edge("one", "two")
        .edge("two", "end")
        .start("one")
        .end("end")
        .build()
    )
    executor = Executor(store=store)
    async with executor.stream(graph, {}) as first:
        async for event in first:
            if isinstance(event, ev.BarrierWaiting):
                break
    run_id = first.run_id
    async with executor.resume(graph, run_id, decisions={BarrierId("one", 1): Approve()}) as run:
        async for event in run:
            if isinstance(event, ev.BarrierWaiting) and event.node == "two":
                break
    second = run.trace_id
    await store.decide(run_id, BarrierId("two", 1), Approve())
    job = await store.job(run_id)
    assert job is not None
    assert (job.job_id, job.trace_id, job.pending_barrier) == (run_id, second, BarrierId("two", 1))
    assert await store.job(second) == job
    async with executor.resume(graph, run_id, decisions={BarrierId("two", 1): Approve()}) as last:
        result = await last.wait()
    assert (result.run_id, result.state["done"]) == (run_id, True)
    [row] = await store.runs()
    assert (row.run_id, row.trace_id, row.status) == (run_id, last.trace_id, RunStatus.COMPLETED)
