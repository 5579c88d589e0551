"""Streamed node output: events/s of a node emitting 10,000 small outputs, consumer draining.

The node ``async def talk(state, ctx)`` calls ``await ctx.emit(i)`` 10,000 times; the
consumer reads every event with ``async for``. The floor of our own design is measured
in the same run: a bare ``trio.open_memory_channel`` of the same buffer, crossed the way a
run's events cross it (``send_nowait`` while there is room, ``await send`` when full; the
receiver drains what is buffered with ``receive_nowait``), 10,000 ints from one task to
another. The table shows medians of interleaved repetitions and floor/trio_graph (how
much of the channel's rate the engine keeps).

Run: ``python benchmarks/emit.py [reps] [outputs]``.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import trio

from trio_graph import Executor, GraphBuilder, NodeContext
from trio_graph import events as ev

BUFFER = 256


def _graph(outputs: int) -> Any:
    async def talk(state: Any, ctx: NodeContext) -> None:
        for i in range(outputs):
            await ctx.emit(i)

    return GraphBuilder("emit").task("talk", talk).start("talk").end("talk").build()


def trio_graph_emit(outputs: int) -> float:
    """NodeOutput events per second through a run's channel."""
    graph = _graph(outputs)

    async def main() -> float:
        seen = 0
        start = time.perf_counter()
        async with Executor(buffer=BUFFER).stream(graph, {}) as run:
            async for event in run:
                seen += isinstance(event, ev.NodeOutput)
        took = time.perf_counter() - start
        assert seen == outputs
        return outputs / took

    return trio.run(main)


def bare_channel(outputs: int) -> float:
    """Ints per second through a bare memory channel, sender and receiver tasks."""

    async def main() -> float:
        send, receive = trio.open_memory_channel[int](BUFFER)
        start = time.perf_counter()
        async with trio.open_nursery() as nursery:

            async def sender() -> None:
                with send:
                    for i in range(outputs):
                        try:
                            send.send_nowait(i)
                        except trio.WouldBlock:
                            await send.send(i)

            nursery.start_soon(sender)
            got = 0
            while got < outputs:
                await receive.receive()
                got += 1
                try:
                    while True:
                        receive.receive_nowait()
                        got += 1
                except (trio.WouldBlock, trio.EndOfChannel):
                    pass
        return outputs / (time.perf_counter() - start)

    return trio.run(main)


def main(argv: list[str]) -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from _harness import interleave, print_table

    reps = int(argv[0]) if argv else 5
    outputs = int(argv[1]) if len(argv) > 1 else 10_000
    results = interleave(
        {
            "trio_graph": lambda: trio_graph_emit(outputs),
            "bare channel": lambda: bare_channel(outputs),
        },
        reps,
    )
    print_table(
        f"{outputs:,} ctx.emit outputs, consumer draining",
        "events/s",
        results,
        baseline="bare channel",
    )


if __name__ == "__main__":
    main(sys.argv[1:])
