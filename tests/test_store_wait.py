"""``await store.wait(run_id)`` on the SQL queue stores (DESIGN §11): it returns the
run's ``RunResult`` when the run completes (by a worker, or a process executing it on
another store object), raises ``RunEnded`` when it failed or was cancelled and
``CheckpointError`` for an unknown run; it wakes on the store's change feed, and
cancelling it leaves nothing behind. SQLite, and PostgreSQL when ``TRIO_GRAPH_PG_DSN``
is set.
"""

from __future__ import annotations

from typing import Any

import pytest
import trio

from trio_graph import Approve, BarrierId, Executor, GraphBuilder
from trio_graph import events as ev
from trio_graph.errors import CheckpointError, RunEnded
from trio_graph.worker import Worker

BOUND = 20.0


def double() -> Any:
    return GraphBuilder("double").task("a", lambda s: {"n": s["n"] * 2}).start("a").end("a").build()


def failing() -> Any:
    def boom(state: Any) -> dict[str, Any]:
        raise ValueError("no")

    return GraphBuilder("failing").task("a", boom).start("a").end("a").build()


def review() -> Any:
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


async def test_wait_returns_the_result_of_a_job_a_worker_completes(store: Any) -> None:
    """A waiter started before any worker returns the run's result once a worker has
    run the job: its state, run id and step count."""
    job = await store.submit("double", {"n": 21})
    got: list[ev.RunResult] = []
    with trio.fail_after(BOUND):
        async with trio.open_nursery() as nursery:

            async def waiter() -> None:
                got.append(await store.wait(job))
                nursery.cancel_scope.cancel()  # stops the worker too

            nursery.start_soon(waiter)
            await trio.sleep(0.1)
            nursery.start_soon(Worker(store, [double()], poll_interval=0.1).serve)
    [result] = got
    assert (result.run_id, result.state["n"], result.execution_count) == (job, 42, 1)


async def test_wait_for_a_live_run_on_another_store_object(backend: Any) -> None:
    """A run executing on one store object waits at a barrier; a waiter on another store
    object decides it and then waits: the result arrives when the run completes."""
    async with backend.store() as mine, backend.store() as other:
        with trio.fail_after(BOUND):
            async with Executor(store=mine).stream(review(), {}) as run:
                async for event in run:
                    if isinstance(event, ev.BarrierWaiting):
                        break
                await other.decide(run.run_id, BarrierId("ok", 1), Approve())
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(run.wait)
                    result = await other.wait(run.run_id)
        assert result.state["published"] is True and result.run_id == run.run_id


async def test_wait_raises_run_ended_for_a_failed_or_cancelled_run(store: Any) -> None:
    """A run that failed: RunEnded naming it, ``failed``, and the stored error; a queued
    job cancelled before it ran: RunEnded ``cancelled``; an unknown run: CheckpointError."""
    failed = await store.submit("failing", {})
    with trio.fail_after(BOUND):
        await Worker(store, [failing()], poll_interval=0.1).serve(until_idle=True)
        with pytest.raises(RunEnded, match=rf"^run '{failed}' ended failed: .*no") as info:
            await store.wait(failed)
    assert (info.value.run_id, info.value.status) == (failed, "failed")
    job = await store.submit("double", {"n": 1})
    await store.cancel(job)
    with pytest.raises(RunEnded, match=rf"^run '{job}' ended cancelled"):
        await store.wait(job)
    with pytest.raises(CheckpointError, match=r"^no run 'nope' in the store$"):
        await store.wait("nope")


async def test_wait_is_cancel_safe_and_not_a_tight_poll(store: Any) -> None:
    """Waiting for a job nobody runs for a second reads the run a few times only (it
    waits on the change feed, at most ``poll`` seconds at a time); cancelling the wait
    leaves the store usable, the job queued."""
    job = await store.submit("double", {"n": 1})
    reads = 0
    real = store._ended

    async def counted(run_id: str) -> Any:
        nonlocal reads
        reads += 1
        return await real(run_id)

    store._ended = counted
    with trio.move_on_after(1.0) as scope:
        await store.wait(job, poll=0.5)
    assert scope.cancelled_caught
    assert 1 <= reads <= 4
    assert (await store.job(job)).status == "queued"
