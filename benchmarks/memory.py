"""Per-run memory in the number of steps (DESIGN §13, issue 13 item 6).

A ``a`` <-> ``b`` loop (``benchmarks/loop.py``'s graph) run for N steps without a
store, every event consumed. Reports the tracemalloc peak of the run, the bytes per
step at each N (peak / steps: O(1) memory shows as bytes/step falling like 1/N), the
result's bounded log (``len(execution_log)``, ``execution_count``) and the process's
peak RSS at the end.

Then many small runs at once (issue 20): ``--idle N`` (default 10,000) runs of a
3-node graph (``a`` -> barrier ``gate`` -> ``done``) started in one process, each
parked at its barrier with its consumer waiting; the tracemalloc growth once all are
parked, divided by N, is the bytes one idle run holds (its step loop, state, channel,
run handle, the executor's nursery task and the consumer task that iterates it). Then
all are approved and must complete.

Run: ``python benchmarks/memory.py [steps ...] [--idle N]`` (default 10,000 and
1,000,000 steps, then 10,000 idle runs).
"""

from __future__ import annotations

import resource
import sys
import tracemalloc
from pathlib import Path

import trio

sys.path.insert(0, str(Path(__file__).parent))
from loop import loop_graph

from trio_graph import Approve, Executor, GraphBuilder
from trio_graph import events as ev


async def measure(steps: int) -> tuple[int, int, int]:
    """(tracemalloc peak bytes, len(execution_log), execution_count) of one run."""
    graph = loop_graph(steps)
    executor = Executor(max_steps=steps + 10)
    tracemalloc.start()
    tracemalloc.reset_peak()
    async with executor.stream(graph, {"n": 0}) as run:
        async for _ in run:
            pass
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    result = run.result
    assert result is not None
    return peak, len(result.execution_log), result.execution_count


async def idle_runs(count: int) -> tuple[int, int]:
    """(tracemalloc bytes held by ``count`` runs parked at a barrier, runs completed)."""

    async def a(state: object) -> dict[str, int]:
        return {"n": 1}

    graph = (
        GraphBuilder("idle")
        .task("a", a)
        .barrier("gate")
        .task("done", a)
        .edge("a", "gate")
        .edge("gate", "done")
        .start("a")
        .end("done")
        .build()
    )
    executor = Executor()
    parked, completed = 0, 0
    all_parked, release = trio.Event(), trio.Event()

    async def one() -> None:
        nonlocal parked, completed
        async with executor.stream(graph, {"n": 0}) as run:
            async for event in run:
                if type(event) is ev.BarrierWaiting:
                    parked += 1
                    if parked == count:
                        all_parked.set()
                    await release.wait()
                    run.decide(event.barrier_id, Approve())
        completed += run.result is not None

    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    async with trio.open_nursery() as nursery:
        for _ in range(count):
            nursery.start_soon(one)
        await all_parked.wait()
        held = tracemalloc.get_traced_memory()[0] - before
        tracemalloc.stop()
        release.set()
    return held, completed


def main() -> None:
    args = sys.argv[1:]
    idle = 10_000
    if "--idle" in args:
        at = args.index("--idle")
        idle = int(args[at + 1])
        del args[at : at + 2]
    sizes = [int(a) for a in args] or [10_000, 1_000_000]
    print(f"{'steps':>10} {'peak KiB':>10} {'bytes/step':>11} {'log':>6} {'count':>9}")
    for steps in sizes:
        peak, kept, count = trio.run(measure, steps)
        print(f"{steps:>10,} {peak / 1024:>10.1f} {peak / steps:>11.2f} {kept:>6} {count:>9,}")
    if idle:
        held, completed = trio.run(idle_runs, idle)
        print(
            f"{idle:,} runs parked at a barrier at once: {held / idle:,.0f} bytes per idle run "
            f"(tracemalloc; {held / 2**20:.1f} MiB in all); {completed:,} completed"
        )
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS of the process: {rss:.0f} MiB")


if __name__ == "__main__":
    main()
