"""Decisions and cancels sent through the store reach a live run (DESIGN §8).

In-process, on ``MemoryStore``: whoever holds the store (a web handler, another task)
calls ``store.decide``/``decide_all``/``cancel`` with the run id, never the ``Run``
handle. Time is virtual (``autojump_clock``).
"""

from __future__ import annotations

import logging
from typing import Any

import pytest
import trio

from trio_graph import Approve, BarrierId, Cancelled, Executor, GraphBuilder, Reject
from trio_graph import events as ev
from trio_graph._model.checkpoint import RunStatus
from trio_graph._model.graph import Graph
from trio_graph._runtime.steering import Steering
from trio_graph.errors import StoreUnavailable
from trio_graph.stores.memory import MemoryStore


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


async def _events_until_waiting(run: Any) -> list[ev.Event]:
    seen = []
    async for event in run:
        seen.append(event)
        if isinstance(event, ev.BarrierWaiting):
            return seen
    raise AssertionError("the run never waited")


async def test_a_decision_sent_through_the_store_resumes_the_waiting_run(
    autojump_clock: Any,
) -> None:
    """A run waiting at a barrier takes a decision sent with store.decide (run id, not the
    Run handle) at once, and finishes with it; BarrierResolved carries it."""
    store = MemoryStore()
    with trio.fail_after(60):  # virtual: a run that never gets its decision fails
        async with Executor(store=store).stream(review(), {}) as run:
            await _events_until_waiting(run)
            sent_at = trio.current_time()
            await store.decide(run.trace_id, BarrierId("ok", 1), Approve())
            rest = [e async for e in run]
    resolved = [e for e in rest if isinstance(e, ev.BarrierResolved)]
    assert [r.decision for r in resolved] == [Approve()]
    assert run.result is not None and run.result.state["published"] is True
    assert trio.current_time() - sent_at < 1.0


async def test_a_decision_sent_before_the_barrier_is_kept(autojump_clock: Any) -> None:
    """A decision sent through the store before the run reaches the barrier is kept and
    answers it on arrival (BarrierWaiting.answered); decide_all answers every arrival."""
    store = MemoryStore()
    graph = (
        GraphBuilder("slow")
        .task("draft", _slow_draft)
        .barrier("ok")
        .edge("draft", "ok")
        .start("draft")
        .end("ok")
        .build()
    )
    with trio.fail_after(60):  # virtual: a run that never gets its decision fails
        async with Executor(store=store).stream(graph, {}) as run:
            await store.decide_all(run.trace_id, "ok", Reject("no"))
            events = [e async for e in run]
    (waiting,) = [e for e in events if isinstance(e, ev.BarrierWaiting)]
    assert waiting.answered
    assert run.result is not None and run.result.state["ok.approved"] is False


async def _slow_draft(state: Any) -> dict[str, Any]:
    await trio.sleep(5)
    return {"text": "draft"}


async def test_a_cancel_sent_through_the_store_stops_the_run_for_good(
    autojump_clock: Any,
) -> None:
    """store.cancel(run_id) stops a waiting run with Cancelled naming the barrier, and its
    last checkpoint says CANCELLED (not resumable-looking WAITING)."""
    store = MemoryStore()
    with trio.fail_after(60):  # virtual: a run that never gets its decision fails
        async with Executor(store=store).stream(review(), {}) as run:
            await _events_until_waiting(run)
            await store.cancel(run.trace_id)
            terminal = [e async for e in run][-1]
    assert isinstance(terminal, ev.GraphError) and isinstance(terminal.error, Cancelled)
    assert terminal.error.barrier == "ok#1"
    latest = await store.latest(run.trace_id)
    assert latest is not None and latest.status == RunStatus.CANCELLED


async def test_a_refused_decision_is_logged_and_the_run_keeps_waiting(
    autojump_clock: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """A decision through the store that the graph refuses (not a barrier) is logged once,
    not applied; the run goes on waiting and takes the next good one."""
    store = MemoryStore()
    with trio.fail_after(60):  # virtual: a run that never gets its decision fails
        with caplog.at_level(logging.WARNING, logger="trio_graph.steering"):
            async with Executor(store=store).stream(review(), {}) as run:
                await _events_until_waiting(run)
                await store.decide(run.trace_id, BarrierId("draft", 1), Approve())
                await trio.sleep(3)
                assert not run.done
                await store.decide(run.trace_id, BarrierId("ok", 1), Approve())
                await run.wait()
    refused = [r for r in caplog.records if "not applied" in r.getMessage()]
    assert len(refused) == 1 and "draft" in refused[0].getMessage()


class FlakyStore(MemoryStore):
    """Its steering read fails the first ``failures`` times (an outage)."""

    def __init__(self, failures: int) -> None:
        super().__init__()
        self.failures = failures

    async def steering(self, run_id: str) -> Steering:
        if self.failures:
            self.failures -= 1
            raise StoreUnavailable("database went away")
        return await super().steering(run_id)


async def test_a_steering_outage_is_retried_and_never_fails_the_run(
    autojump_clock: Any,
) -> None:
    """Reading the steering fails a few times: the run is not failed, and a decision sent
    once the store is back still arrives."""
    store = FlakyStore(failures=3)
    with trio.fail_after(60):  # virtual: a run that never gets its decision fails
        async with Executor(store=store).stream(review(), {}) as run:
            await _events_until_waiting(run)
            await store.decide(run.trace_id, BarrierId("ok", 1), Approve())
            result = await run.wait()
    assert result.state["published"] is True and store.failures == 0


async def test_a_decision_an_earlier_segment_took_is_not_applied_again(
    autojump_clock: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """Resumed after its barrier was decided through the store, the run does not take that
    decision again (nor warn about it)."""
    graph = (
        GraphBuilder("twice")
        .task("draft", lambda s: {"n": s.get("n", 0) + 1})
        .barrier("ok")
        .task("done", lambda s: None)
        .edge("draft", "ok")
        .edge_if("ok", "draft", lambda s: s["n"] < 2)
        .edge("ok", "done")
        .start("draft")
        .end("done")
        .build()
    )
    store = MemoryStore()
    executor = Executor(store=store)
    with trio.fail_after(60):  # virtual: a run that never gets its decision fails
        async with executor.stream(graph, {}) as run:
            await _events_until_waiting(run)
            await store.decide(run.trace_id, BarrierId("ok", 1), Approve())
            await _events_until_waiting(run)  # the second arrival
            run.cancel()
    with trio.fail_after(60):  # virtual: a run that never gets its decision fails
        with caplog.at_level(logging.WARNING, logger="trio_graph.steering"):
            async with executor.resume(graph, run.trace_id) as resumed:
                waiting = await _events_until_waiting(resumed)
                resumed.decide(BarrierId("ok", 2), Approve())
                await resumed.wait()
    assert [e.barrier_id for e in waiting if isinstance(e, ev.BarrierWaiting)] == [
        BarrierId("ok", 2)
    ]
    assert not [r for r in caplog.records if "not applied" in r.getMessage()]
