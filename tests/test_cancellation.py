"""Cancellation under MockClock (DESIGN §5): run.cancel() and an enclosing cancel scope stop
a node that is sleeping at once; a consumer that stops listening stops the run; no task
outlives the ``async with executor.stream()`` block."""

from __future__ import annotations

from typing import Any

import pytest
import trio
import trio.testing
from test_events_contract import check_contract

from trio_graph import Cancelled, Executor, GraphBuilder
from trio_graph import events as ev
from trio_graph.stores import MemoryStore

HOUR = 3600.0


class Sleeper:
    """An async node that sleeps for an hour, noting when it started and that it unwound."""

    def __init__(self) -> None:
        self.started = 0
        self.unwound = 0
        self.finished = 0

    async def __call__(self, state: Any) -> dict[str, Any]:
        self.started += 1
        try:
            await trio.sleep(HOUR)
            self.finished += 1
            return {"slept": True}
        finally:
            self.unwound += 1


def sleepy_graph(sleeper: Sleeper) -> Any:
    """a (sets x) -> b (sleeps an hour) -> c."""
    return (
        GraphBuilder("sleepy")
        .task("a", lambda s: {"x": 1})
        .task("b", sleeper)
        .task("c", lambda s: {"c": True})
        .edge("a", "b")
        .edge("b", "c")
        .start("a")
        .end("c")
        .build()
    )


def live_tasks() -> set[trio.lowlevel.Task]:
    """Every task in the run, walking the task tree from the root."""
    found: set[trio.lowlevel.Task] = set()

    def walk(task: trio.lowlevel.Task) -> None:
        found.add(task)
        for nursery in task.child_nurseries:
            for child in nursery.child_tasks:
                walk(child)

    walk(trio.lowlevel.current_root_task())
    return found


def assert_cancelled_mid_b(events: list[Any], run: Any, sleeper: Sleeper) -> None:
    check_contract(events, run.trace_id)
    terminal = events[-1]
    assert isinstance(terminal, ev.GraphError)
    assert isinstance(terminal.error, Cancelled)
    assert terminal.error.node == "b"
    assert str(terminal.error) == "run cancelled during node 'b'"
    assert terminal.state == {"x": 1}  # the last completed step's state
    assert run.error is terminal.error and run.result is None
    assert (sleeper.started, sleeper.finished, sleeper.unwound) == (1, 0, 1)
    ends = [(e.node, e.success) for e in events if isinstance(e, ev.NodeEnd)]
    assert ends == [("a", True), ("b", False)]


async def test_run_cancel_interrupts_a_sleeping_node_at_once(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """run.cancel() while node b sleeps for an hour ends the run at once (no clock time
    passes) with GraphError(Cancelled) carrying the state after step a."""
    sleeper = Sleeper()
    t0 = trio.current_time()
    async with Executor().stream(sleepy_graph(sleeper), {}) as run:
        events = []
        async for event in run:
            events.append(event)
            if isinstance(event, ev.NodeStart) and event.node == "b":
                run.cancel()
    assert trio.current_time() - t0 == pytest.approx(0, abs=1e-6)
    assert_cancelled_mid_b(events, run, sleeper)
    with pytest.raises(Cancelled):
        await run.wait()


async def test_run_cancel_from_another_task(autojump_clock: trio.testing.MockClock) -> None:
    """run.cancel() from a timer task 10 s in stops the hour-long node at t=10."""
    sleeper = Sleeper()
    t0 = trio.current_time()
    async with trio.open_nursery() as nursery, Executor().stream(sleepy_graph(sleeper), {}) as run:

        async def later() -> None:
            await trio.sleep(10)
            run.cancel()

        nursery.start_soon(later)
        events = [e async for e in run]
    assert trio.current_time() - t0 == pytest.approx(10)
    assert_cancelled_mid_b(events, run, sleeper)


async def test_run_cancel_before_the_first_step() -> None:
    """Cancelled before any node ran: Cancelled naming no node, initial state, no NodeStart."""
    sleeper = Sleeper()
    async with Executor().stream(sleepy_graph(sleeper), {"init": 0}) as run:
        run.cancel()
        events = [e async for e in run]
    assert [type(e) for e in events] == [ev.GraphStart, ev.GraphError]
    assert isinstance(events[-1].error, Cancelled) and events[-1].error.node == ""
    assert str(events[-1].error) == "run cancelled"
    assert events[-1].state == {"init": 0}
    assert sleeper.started == 0


async def test_executor_run_raises_cancelled_when_cancelled(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """An enclosing move_on_after around executor.run() stops the node at the deadline and
    no error escapes (the scope absorbs the cancellation)."""
    sleeper = Sleeper()
    t0 = trio.current_time()
    with trio.move_on_after(5) as scope:
        await Executor().run(sleepy_graph(sleeper), {})
    assert scope.cancelled_caught
    assert trio.current_time() - t0 == pytest.approx(5)
    assert (sleeper.finished, sleeper.unwound) == (0, 1)


async def test_enclosing_scope_cancel_interrupts_at_once(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """Cancelling a scope around the stream while b sleeps stops it at once; the run records
    Cancelled naming b, and nothing but the cancellation (absorbed by the scope) escapes."""
    for _ in range(10):  # the scheduler's order varies: try several interleavings
        sleeper = Sleeper()
        t0 = trio.current_time()
        with trio.CancelScope() as scope:
            async with Executor().stream(sleepy_graph(sleeper), {}) as run:
                async for event in run:
                    if isinstance(event, ev.NodeStart) and event.node == "b":
                        scope.cancel()
        assert scope.cancelled_caught
        assert trio.current_time() - t0 == pytest.approx(0, abs=1e-6)
        assert (sleeper.started, sleeper.finished, sleeper.unwound) == (1, 0, 1)
        assert run.done
        assert isinstance(run.error, Cancelled) and run.error.node == "b"


async def test_enclosing_scope_cancel_then_leave_at_once(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """Cancel the enclosing scope and leave the block straight away (the consumer closes
    before the run sees the cancel): the run still records Cancelled naming b."""
    sleeper = Sleeper()
    with trio.CancelScope() as scope:
        async with Executor().stream(sleepy_graph(sleeper), {}) as run:
            async for event in run:
                if isinstance(event, ev.NodeStart) and event.node == "b":
                    scope.cancel()
                    break
    assert (sleeper.finished, sleeper.unwound) == (0, 1)
    assert isinstance(run.error, Cancelled) and run.error.node == "b"


async def test_enclosing_deadline_checkpoints_last_completed_step(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """With a store, a deadline that cancels the run mid-node leaves a checkpoint holding the
    last completed step's state and pointing at the interrupted node (so resume re-runs it)."""
    for _ in range(5):
        sleeper = Sleeper()
        store = MemoryStore()
        with trio.move_on_after(7):
            async with Executor(store=store).stream(sleepy_graph(sleeper), {}) as run:
                async for _event in run:
                    pass
        last = await store.latest(run.trace_id)
        assert last is not None
        assert last.state == {"x": 1}
        assert last.next_node == "b"
        assert last.step == 1
        assert isinstance(run.error, Cancelled)


async def test_consumer_aclose_stops_the_run(autojump_clock: trio.testing.MockClock) -> None:
    """A consumer that closes the run (stops listening) while still inside the block stops
    an endless loop at its next send: the node stops being called."""
    calls = 0

    def tick(state: Any) -> dict[str, int]:
        nonlocal calls
        calls += 1
        return {"i": calls}

    g = (
        GraphBuilder("endless")
        .task("a", tick)
        .task("b", tick)
        .task("end", tick)
        .edge_if("a", "end", lambda s: False)
        .edge("a", "b")
        .edge("b", "a")
        .start("a")
        .end("end")
        .build()
    )
    async with Executor(max_steps=10**9, buffer=8).stream(g, {}) as run:
        async for event in run:
            if isinstance(event, ev.NodeStart) and event.step == 3:
                break
        await run.aclose()
        await trio.testing.wait_all_tasks_blocked()
        stopped_at = calls
        await trio.sleep(HOUR)
        await trio.testing.wait_all_tasks_blocked()
        assert calls == stopped_at  # nothing ran after the consumer left
        assert stopped_at < 20
        assert run.done
        assert isinstance(run.error, Cancelled)


async def test_breaking_out_of_the_block_stops_the_run(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """Leaving the block mid-run (break out of the iteration) stops the sleeping node at once
    and ends the run with Cancelled."""
    sleeper = Sleeper()
    t0 = trio.current_time()
    async with Executor().stream(sleepy_graph(sleeper), {}) as run:
        async for event in run:
            if isinstance(event, ev.NodeStart) and event.node == "b":
                break
    assert trio.current_time() - t0 == pytest.approx(0, abs=1e-6)
    assert (sleeper.started, sleeper.finished, sleeper.unwound) == (1, 0, 1)
    assert run.done
    assert isinstance(run.error, Cancelled)


async def test_no_task_outlives_the_block(autojump_clock: trio.testing.MockClock) -> None:
    """Leaving the block, however it is left, leaves no task behind: even a node that started
    its own background task is unwound completely."""
    unwound: list[str] = []

    async def spawner(state: Any) -> None:
        async def background() -> None:
            try:
                await trio.sleep_forever()
            finally:
                unwound.append("background")

        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(background)
                await trio.sleep(HOUR)
        finally:
            unwound.append("node")

    g = (
        GraphBuilder("spawn")
        .task("a", lambda s: None)
        .task("s", spawner)
        .edge("a", "s")
        .start("a")
        .end("s")
        .build()
    )
    before = live_tasks()
    during: set[trio.lowlevel.Task] = set()
    async with Executor().stream(g, {}) as run:
        async for event in run:
            if isinstance(event, ev.NodeStart) and event.node == "s":
                await trio.testing.wait_all_tasks_blocked()
                during = live_tasks()
                break
    new = sorted(t.name.rsplit(".", 1)[-1] for t in during - before)
    assert new == ["background", "main"]  # the run's loop and the node's own child
    assert live_tasks() == before
    assert sorted(unwound) == ["background", "node"]


async def test_no_task_outlives_the_block_on_error(autojump_clock: trio.testing.MockClock) -> None:
    """An exception raised by the consumer inside the block also tears the run down."""
    sleeper = Sleeper()
    before = live_tasks()
    with pytest.raises(KeyError):
        async with Executor().stream(sleepy_graph(sleeper), {}) as run:
            async for event in run:
                if isinstance(event, ev.NodeStart) and event.node == "b":
                    raise KeyError("consumer bug")
    assert live_tasks() == before
    assert sleeper.unwound == 1
    assert run.done


async def test_cancel_with_a_full_buffer_keeps_the_contract() -> None:
    """run.cancel() while the run is blocked on a full event buffer (at any event position)
    still yields a stream where every NodeStart has its NodeEnd, ending in Cancelled."""
    g = (
        GraphBuilder("busy")
        .task("a", lambda s: {"x": 1, "y": 2})
        .task("b", lambda s: {"z": 3})
        .task("end", lambda s: None)
        .edge_if("a", "end", lambda s: False)
        .edge("a", "b")
        .edge("b", "a")
        .start("a")
        .end("end")
        .build()
    )
    for buffer in range(1, 9):  # the run blocks on each kind of event in turn
        async with Executor(max_steps=1000, buffer=buffer).stream(g, {}) as run:
            await trio.testing.wait_all_tasks_blocked()
            run.cancel()
            events = [e async for e in run]
        assert isinstance(events[-1].error, Cancelled)
        check_contract(events, run.trace_id)


async def test_cancel_requested_by_a_plain_node_stops_before_the_next_node() -> None:
    """run.cancel() called while a plain (sync) node runs takes effect before the next node:
    the node completes (its updates and NodeEnd are kept) and nothing else runs."""
    holder: dict[str, Any] = {}

    def a(state: Any) -> dict[str, int]:
        holder["run"].cancel()
        return {"a": 1}

    ran_b: list[bool] = []
    g = (
        GraphBuilder("c")
        .task("a", a)
        .task("b", lambda s: ran_b.append(True))
        .edge("a", "b")
        .start("a")
        .end("b")
        .build()
    )
    async with Executor().stream(g, {}) as run:
        holder["run"] = run
        events = [e async for e in run]
    check_contract(events, run.trace_id)
    assert [type(e).__name__ for e in events] == [
        "GraphStart",
        "NodeStart",
        "StateChanged",
        "NodeEnd",
        "GraphError",
    ]
    assert isinstance(events[-1].error, Cancelled)
    assert events[-1].state == {"a": 1}
    assert ran_b == []
