"""Run deadlines (DESIGN §14): ``Executor(deadline=...)`` (absolute, Trio time) and
``run/stream/resume(..., timeout=...)`` (relative) bound a whole run, node timeouts nest
inside, ``ctx.deadline`` is the innermost; passing it ends the run in ``RunTimeout``,
resumable like a cancel. Time is virtual (``autojump_clock``)."""

from __future__ import annotations

import math
from typing import Any

import pytest
import trio

from trio_graph import Approve, Executor, GraphBuilder, NodeContext, RunStatus, RunTimeout, serde
from trio_graph import events as ev
from trio_graph.errors import Cancelled
from trio_graph.stores.memory import MemoryStore


def one(fn: Any, **options: Any) -> Any:
    return GraphBuilder("dl").task("n", fn, **options).start("n").end("n").build()


def seen_deadline(out: list[float]) -> Any:
    async def node(state: Any, ctx: NodeContext) -> None:
        out.append(ctx.deadline - trio.current_time())

    return node


async def test_ctx_deadline_is_the_innermost_of_node_and_run(autojump_clock: Any) -> None:
    """ctx.deadline is the node timeout when it is the nearer, the run's when that is,
    the earlier of Executor(deadline=) and timeout=, and inf when nothing bounds it."""
    left: list[float] = []
    await Executor().run(one(seen_deadline(left)), {})
    await Executor().run(one(seen_deadline(left), timeout=5), {}, timeout=100)
    await Executor().run(one(seen_deadline(left), timeout=5), {}, timeout=3)
    absolute = trio.current_time() + 7
    await Executor(deadline=absolute).run(one(seen_deadline(left)), {}, timeout=50)
    await Executor(deadline=absolute).run(one(seen_deadline(left)), {}, timeout=2)
    assert left == [math.inf, 5, 3, 7, 2]


async def test_a_run_timeout_ends_the_run_at_its_deadline(autojump_clock: Any) -> None:
    """A node that would sleep an hour under run(timeout=10) is stopped 10 virtual
    seconds after the start: RunTimeout names the run, the node and the deadline, and the
    node's span is closed before the terminal event."""

    async def slow(state: Any) -> None:
        await trio.sleep(3600)

    t0 = trio.current_time()
    async with Executor().stream(one(slow), {}, timeout=10) as run:
        events = [e async for e in run]
    err = run.error
    assert isinstance(err, RunTimeout) and isinstance(err, Cancelled)
    assert trio.current_time() - t0 == pytest.approx(10)
    assert err.run_id == run.run_id and err.node == "n"
    assert err.deadline == pytest.approx(t0 + 10) and err.limit == pytest.approx(10)
    assert run.run_id in str(err) and "'n'" in str(err)
    kinds = [type(e).__name__ for e in events]
    assert kinds[-2:] == ["NodeEnd", "GraphError"]
    assert events[-2].success is False  # type: ignore[attr-defined]
    with pytest.raises(RunTimeout):
        await Executor().run(one(slow), {}, timeout=1)
    back = serde.from_json(serde.to_json(err), RunTimeout)
    assert isinstance(back, RunTimeout) and back.node == "n" and back.run_id == err.run_id


async def test_the_executor_deadline_bounds_every_run(autojump_clock: Any) -> None:
    """Executor(deadline=t) is absolute: a second run started later gets only what is
    left; a node timeout shorter than the run's still ends as NodeTimeout."""

    async def slow(state: Any) -> None:
        await trio.sleep(3600)

    t0 = trio.current_time()
    executor = Executor(deadline=t0 + 30)
    with pytest.raises(RunTimeout):
        await executor.run(one(slow), {})
    assert trio.current_time() == pytest.approx(t0 + 30)
    with pytest.raises(RunTimeout):
        await executor.run(one(slow), {})  # already past: stopped at once
    assert trio.current_time() == pytest.approx(t0 + 30)
    with pytest.raises(Exception) as info:
        await Executor(deadline=trio.current_time() + 30).run(one(slow, timeout=2), {})
    assert type(info.value).__name__ == "NodeTimeout"


async def test_resume_after_a_run_timeout_continues(autojump_clock: Any) -> None:
    """With a store, a run stopped by its deadline is checkpointed like an interruption
    (status running, next node the one that was running; the steps done are kept) and
    resume() under a new timeout finishes it."""
    calls: list[str] = []

    async def first(state: Any) -> dict[str, Any]:
        calls.append("first")
        return {"a": 1}

    async def second(state: Any) -> dict[str, Any]:
        calls.append("second")
        await trio.sleep(20)
        return {"b": 2}

    graph = (
        GraphBuilder("dl2")
        .task("first", first)
        .task("second", second)
        .edge("first", "second")
        .start("first")
        .end("second")
        .build()
    )
    store = MemoryStore()
    executor = Executor(store=store)
    async with executor.stream(graph, {}, timeout=10) as run:
        async for _ in run:
            pass
    assert isinstance(run.error, RunTimeout) and run.error.node == "second"
    checkpoint = await store.latest(run.run_id)
    assert checkpoint is not None
    assert checkpoint.status == RunStatus.RUNNING and checkpoint.next_node == "second"
    async with executor.resume(graph, run.run_id, timeout=60) as again:
        result = await again.wait()
    assert result.state == {"a": 1, "b": 2} and calls == ["first", "second", "second"]


async def test_a_run_timeout_at_a_barrier_leaves_it_waiting(autojump_clock: Any) -> None:
    """A deadline passing while a barrier waits names the barrier; the run is stored
    waiting there, and a resume with the decision completes it."""
    graph = (
        GraphBuilder("dl3")
        .barrier("gate")
        .task("after", lambda s: {"done": True})
        .edge("gate", "after")
        .start("gate")
        .end("after")
        .build()
    )
    store = MemoryStore()
    executor = Executor(store=store)
    async with executor.stream(graph, {}, timeout=5) as run:
        waiting = [e async for e in run if isinstance(e, ev.BarrierWaiting)]
    assert waiting and isinstance(run.error, RunTimeout)
    assert run.error.barrier == "gate#1"
    checkpoint = await store.latest(run.run_id)
    assert checkpoint is not None and checkpoint.status == RunStatus.WAITING
    async with executor.resume(graph, run.run_id) as again:
        again.decide_all("gate", Approve())
        result = await again.wait()
    assert result.state["done"] is True


@pytest.mark.parametrize("bad", [-1, "5", float("nan"), True])
async def test_a_bad_timeout_is_refused(bad: Any) -> None:
    """timeout= must be seconds >= 0 and deadline= a number: anything else is ValueError."""
    with pytest.raises(ValueError, match="timeout"):
        await Executor().run(one(lambda s: None), {}, timeout=bad)
    if bad != -1:
        with pytest.raises(ValueError, match="deadline"):
            Executor(deadline=bad)
