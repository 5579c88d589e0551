"""Per-run memory in the number of steps (DESIGN §13, issue 13 item 6).

A ``a`` <-> ``b`` loop (``benchmarks/loop.py``'s graph) run for N steps without a
store, every event consumed. Reports the tracemalloc peak of the run, the bytes per
step at each N (peak / steps: O(1) memory shows as bytes/step falling like 1/N), the
result's bounded log (``len(execution_log)``, ``execution_count``) and the process's
peak RSS at the end. Run: ``python benchmarks/memory.py [steps ...]`` (default
10,000 and 1,000,000).
"""

from __future__ import annotations

import resource
import sys
import tracemalloc
from pathlib import Path

import trio

sys.path.insert(0, str(Path(__file__).parent))
from loop import loop_graph

from trio_graph import Executor


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


def main() -> None:
    sizes = [int(a) for a in sys.argv[1:]] or [10_000, 1_000_000]
    print(f"{'steps':>10} {'peak KiB':>10} {'bytes/step':>11} {'log':>6} {'count':>9}")
    for steps in sizes:
        peak, kept, count = trio.run(measure, steps)
        print(f"{steps:>10,} {peak / 1024:>10.1f} {peak / steps:>11.2f} {kept:>6} {count:>9,}")
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS of the process: {rss:.0f} MiB")


if __name__ == "__main__":
    main()
