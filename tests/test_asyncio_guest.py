"""trio_graph from asyncio programs: ``trio_graph.asyncio_run`` runs Trio as a guest of
the running asyncio loop (``trio.lowlevel.start_guest_run``); awaiting an executor under
asyncio directly is a clear ``TrioRequired``, not a traceback from Trio's internals.
These tests drive real asyncio loops (``asyncio.run``), so they are plain functions."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import trio

import trio_graph
from trio_graph import Executor, GraphBuilder, NodeContext, TrioRequired
from trio_graph import events as ev


async def speak(state: Any, ctx: NodeContext) -> dict[str, Any]:
    for token in ("to", "kens"):
        await ctx.emit(token)
        await trio.sleep(0.01)
    return {"text": "tokens"}


GRAPH = GraphBuilder("guest").task("speak", speak).start("speak").end("speak").build()


def test_a_graph_runs_inside_asyncio_and_the_loop_keeps_running() -> None:
    """asyncio_run(executor.run, graph, state) resolves with the RunResult, while an
    asyncio task beside it keeps ticking (the host loop is not blocked)."""

    async def app() -> tuple[Any, int]:
        ticks = 0

        async def ticker() -> None:
            nonlocal ticks
            while True:
                ticks += 1
                await asyncio.sleep(0.001)

        task = asyncio.create_task(ticker())
        result = await trio_graph.asyncio_run(Executor().run, GRAPH, {})
        task.cancel()
        return result, ticks

    result, ticks = asyncio.run(app())
    assert result.state == {"text": "tokens"} and ticks > 2


def test_events_stream_from_a_trio_function_run_as_a_guest() -> None:
    """A Trio function passed to asyncio_run can stream a run's events and hand them to
    asyncio code (here: its return value); an error in it reaches the awaiting side."""

    async def collect() -> list[Any]:
        async with Executor().stream(GRAPH, {}) as run:
            return [e.data async for e in run if isinstance(e, ev.NodeOutput)]

    async def fails() -> None:
        await trio.lowlevel.checkpoint()
        raise KeyError("inside trio")

    async def app() -> list[Any]:
        with pytest.raises(KeyError, match="inside trio"):
            await trio_graph.asyncio_run(fails)
        return await trio_graph.asyncio_run(collect)

    assert asyncio.run(app()) == ["to", "kens"]


def test_cancelling_the_future_cancels_the_trio_run() -> None:
    """asyncio.wait_for around asyncio_run: the timeout cancels the future, which
    cancels the Trio run (the node's finally runs) before the guest run ends."""
    unwound: list[str] = []

    async def forever(state: Any) -> None:
        try:
            await trio.sleep_forever()
        finally:
            unwound.append("node")

    graph = GraphBuilder("g2").task("n", forever).start("n").end("n").build()

    async def app() -> None:
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(trio_graph.asyncio_run(Executor().run, graph, {}), 0.05)
        for _ in range(100):  # the guest run unwinds on the loop's next callbacks
            if unwound:
                break
            await asyncio.sleep(0.01)

    asyncio.run(app())
    assert unwound == ["node"]


def test_awaiting_an_executor_under_asyncio_is_a_clear_error() -> None:
    """Executor.run / stream awaited under asyncio directly raise TrioRequired naming
    asyncio and pointing at guest mode (a RuntimeError too)."""

    async def direct() -> None:
        await Executor().run(GRAPH, {})

    async def streamed() -> None:
        async with Executor().stream(GRAPH, {}):
            pass

    for fn in (direct, streamed):
        with pytest.raises(TrioRequired) as info:
            asyncio.run(fn())
        assert isinstance(info.value, RuntimeError)
        assert info.value.library == "asyncio" and "guest mode" in str(info.value)


def test_one_guest_run_at_a_time() -> None:
    """A second asyncio_run while one is active is refused with a RuntimeError that says
    why (Trio allows one run per thread)."""

    async def app() -> None:
        first = trio_graph.asyncio_run(trio.sleep, 0.05)
        with pytest.raises(RuntimeError, match="one run per thread"):
            trio_graph.asyncio_run(trio.sleep, 0)
        await first

    asyncio.run(app())
