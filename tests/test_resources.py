"""Run-scoped resources (DESIGN §14): ``Executor(resources={name: factory})`` and
``ctx.resource(name)`` open an async context manager on its first use in a run, once,
and close it when the run is over, however it ends. Time is virtual."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

import pytest
import trio

from trio_graph import Executor, GraphBuilder, NodeContext, ResourceError
from trio_graph import events as ev
from trio_graph.errors import Cancelled, NodeExecutionFailed
from trio_graph.stores.memory import MemoryStore


class Client:
    """A fake HTTP client: records its life in ``log``."""

    def __init__(self, log: list[str], number: int) -> None:
        self.log, self.number, self.closed = log, number, False


def factory(log: list[str]) -> Any:
    made = 0

    @contextlib.asynccontextmanager
    async def open_client() -> AsyncIterator[Client]:
        nonlocal made
        made += 1
        client = Client(log, made)
        await trio.sleep(1)  # opening takes time: concurrent first uses overlap
        log.append(f"open {client.number}")
        try:
            yield client
        finally:
            await trio.sleep(0.5)  # an await while closing: it must not be cancelled
            client.closed = True
            log.append(f"close {client.number}")

    return open_client


def one(fn: Any) -> Any:
    return GraphBuilder("res").task("n", fn).start("n").end("n").build()


async def test_opened_on_first_use_once_and_closed_when_the_run_completes(
    autojump_clock: Any,
) -> None:
    """Two uses in a run get the same value, opened once; it is closed (its awaiting
    close finished) by the time run() returns; a node not asking opens nothing."""
    log: list[str] = []
    seen: list[Client] = []

    async def node(state: Any, ctx: NodeContext) -> None:
        seen.append(await ctx.resource("http"))
        seen.append(await ctx.resource("http"))

    executor = Executor(resources={"http": factory(log)})
    await executor.run(one(node), {})
    assert seen[0] is seen[1] and seen[0].closed and log == ["open 1", "close 1"]
    await executor.run(one(lambda s: None), {})
    assert log == ["open 1", "close 1"]


async def test_closed_when_a_node_fails(autojump_clock: Any) -> None:
    """A node failing after opening the resource ends the run; the resource is closed."""
    log: list[str] = []

    async def node(state: Any, ctx: NodeContext) -> None:
        await ctx.resource("http")
        raise ValueError("boom")

    with pytest.raises(NodeExecutionFailed):
        await Executor(resources={"http": factory(log)}).run(one(node), {})
    assert log == ["open 1", "close 1"]


async def test_closed_when_the_run_is_cancelled(autojump_clock: Any) -> None:
    """run.cancel(), an enclosing cancel scope and a run deadline each close it."""

    async def node(state: Any, ctx: NodeContext) -> None:
        await ctx.resource("http")
        await trio.sleep(3600)

    log: list[str] = []
    executor = Executor(resources={"http": factory(log)})
    async with executor.stream(one(node), {}) as run:
        async for event in run:
            if isinstance(event, ev.NodeStart):
                await trio.sleep(5)
                run.cancel()
    assert isinstance(run.error, Cancelled) and log == ["open 1", "close 1"]
    with trio.move_on_after(5):
        await executor.run(one(node), {})
    assert log == ["open 1", "close 1", "open 2", "close 2"]
    with pytest.raises(Cancelled):
        await executor.run(one(node), {}, timeout=5)
    assert log[-2:] == ["open 3", "close 3"]


async def test_closed_when_the_consumer_leaves_at_a_barrier(autojump_clock: Any) -> None:
    """A consumer leaving while the run waits at a barrier (the usual end of a stored run
    waiting for a person) ends the run; its resources are closed as it ends."""
    log: list[str] = []

    async def prepare(state: Any, ctx: NodeContext) -> dict[str, Any]:
        return {"n": (await ctx.resource("http")).number}

    graph = (
        GraphBuilder("res2")
        .task("prepare", prepare)
        .barrier("gate")
        .edge("prepare", "gate")
        .start("prepare")
        .end("gate")
        .build()
    )
    executor = Executor(store=MemoryStore(), resources={"http": factory(log)})
    async with executor.stream(graph, {}) as run:
        async for event in run:
            if isinstance(event, ev.BarrierWaiting):
                break
        assert log == ["open 1"]
    assert log == ["open 1", "close 1"]


async def test_two_runs_get_two_instances(autojump_clock: Any) -> None:
    """Two concurrent runs of one executor each open (and close) their own."""
    log: list[str] = []
    numbers: list[int] = []

    async def node(state: Any, ctx: NodeContext) -> None:
        numbers.append((await ctx.resource("http")).number)
        await trio.sleep(2)

    executor = Executor(resources={"http": factory(log)})
    async with trio.open_nursery() as nursery:
        for _ in range(2):
            nursery.start_soon(executor.run, one(node), {})
    assert sorted(numbers) == [1, 2]
    assert sorted(log) == ["close 1", "close 2", "open 1", "open 2"]


async def test_concurrent_first_use_opens_once(autojump_clock: Any) -> None:
    """Three branches asking for the resource at the same instant, while it takes a
    second to open, all get the one instance."""
    log: list[str] = []
    got: list[Client] = []

    async def branch(state: Any, ctx: NodeContext) -> None:
        got.append(await ctx.resource("http"))

    graph = (
        GraphBuilder("res3")
        .parallel("fan", {"a": branch, "b": branch, "c": branch})
        .start("fan")
        .end("fan")
        .build()
    )
    await Executor(resources={"http": factory(log)}).run(graph, {})
    assert len(got) == 3 and len({id(c) for c in got}) == 1
    assert log == ["open 1", "close 1"]


async def test_unknown_or_failing_resources_name_node_and_resource() -> None:
    """An undeclared name, and a factory that raises, fail the node with a ResourceError
    (the cause of its NodeExecutionFailed) naming the node and the resource."""

    async def node(state: Any, ctx: NodeContext) -> None:
        await ctx.resource("db")

    for executor in (Executor(), Executor(resources={"http": factory([])})):
        with pytest.raises(NodeExecutionFailed) as info:
            await executor.run(one(node), {})
        cause = info.value.__cause__
        assert isinstance(cause, ResourceError)
        assert cause.node == "n" and cause.resource == "db" and "'db'" in str(info.value)

    def broken() -> Any:
        raise OSError("no route")

    with pytest.raises(NodeExecutionFailed) as info:
        await Executor(resources={"db": broken}).run(one(node), {})
    assert isinstance(info.value.__cause__, ResourceError) and "no route" in str(info.value)
    with pytest.raises(ValueError, match="resources"):
        Executor(resources={"db": 42})  # type: ignore[dict-item]


async def test_a_resource_owning_a_nursery_is_entered_and_exited_by_one_task(
    autojump_clock: Any,
) -> None:
    """A context manager that opens a nursery (an anyio task group in an MCP session) works
    when the node that first used it is a branch long finished: the run's keeper task
    enters and exits it, as Trio requires."""
    ticks: list[int] = []

    @contextlib.asynccontextmanager
    async def session() -> AsyncIterator[list[int]]:
        async with trio.open_nursery() as nursery:

            async def heartbeat() -> None:
                while True:
                    ticks.append(1)
                    await trio.sleep(1)

            nursery.start_soon(heartbeat)
            yield ticks
            nursery.cancel_scope.cancel()

    async def use(state: Any, ctx: NodeContext) -> None:
        await ctx.resource("mcp")

    async def later(state: Any) -> None:
        await trio.sleep(3)

    graph = (
        GraphBuilder("res4")
        .parallel("fan", {"a": use})
        .task("later", later)
        .edge("fan", "later")
        .start("fan")
        .end("later")
        .build()
    )
    await Executor(resources={"mcp": session}).run(graph, {})
    assert 3 <= len(ticks) <= 5


async def test_a_resource_that_fails_to_close_is_not_lost() -> None:
    """A context manager raising while it closes makes run() raise that error (bare, not
    in a group) although the run itself completed: nothing fails silently."""

    @contextlib.asynccontextmanager
    async def leaky() -> AsyncIterator[int]:
        yield 1
        raise ValueError("close failed")

    async def node(state: Any, ctx: NodeContext) -> None:
        await ctx.resource("r")

    with pytest.raises(ValueError, match="close failed"):
        await Executor(resources={"r": leaky}).run(one(node), {})
