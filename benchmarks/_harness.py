"""Tiny helpers shared by the benchmarks: interleaved repetitions, medians, a table.

A workload is a plain callable that starts its own event loop (``trio.run`` for
trio_graph, ``asyncio.run`` for the peers), times only the run itself and returns
a rate per second. Running the engines interleaved (A, B, C, A, B, C, ...) spreads
the noise of a shared machine evenly over them; the median of the repetitions is
what gets compared.
"""

from __future__ import annotations

import importlib
import statistics
from collections.abc import Callable, Iterable, Mapping, Sequence

Workload = Callable[[], float]
"""A callable that runs one measurement and returns a rate (units per second)."""

PEERS = ("langgraph", "pydantic_graph")
"""Import names of the peer engines (installed by the ``bench`` extra)."""


def interleave(
    workloads: Mapping[str, Workload], reps: int = 5, *, warmup: int = 1
) -> dict[str, list[float]]:
    """Run every workload once per repetition, in interleaved order.

    ``warmup`` rounds run first in the same order and are discarded (first-run
    costs: imports, code-object caches, the sqlite file being created).
    """
    if reps < 1:
        raise ValueError(f"reps must be at least 1 (got {reps})")
    for _ in range(warmup):
        for run in workloads.values():
            run()
    results: dict[str, list[float]] = {name: [] for name in workloads}
    for _ in range(reps):
        for name, run in workloads.items():
            results[name].append(run())
    return results


def median(values: Sequence[float]) -> float:
    """The median of a non-empty sequence of rates."""
    return statistics.median(values)


def peers_available() -> dict[str, bool]:
    """Map each peer's import name to whether it imports here."""
    available: dict[str, bool] = {}
    for name in PEERS:
        try:
            importlib.import_module(name)
        except ImportError:
            available[name] = False
        else:
            available[name] = True
    return available


def print_table(
    title: str,
    unit: str,
    results: Mapping[str, Sequence[float]],
    baseline: str = "trio_graph",
    *,
    skipped: Iterable[str] = (),
) -> None:
    """Print the median rate per engine and the ratio baseline/engine.

    A ratio above 1 means the baseline is faster than that engine. Engines named in
    ``skipped`` (peers not installed) are listed as such instead of measured.
    """
    print(f"\n{title}")
    base = median(results[baseline]) if baseline in results else None
    width = max([len(name) for name in (*results, *skipped)] + [6])
    print(f"  {'engine':<{width}}  {'median ' + unit:>18}  {baseline + '/engine':>20}")
    for name, rates in results.items():
        mid = median(rates)
        ratio = f"{base / mid:.2f}x" if base is not None and mid > 0 else "-"
        print(f"  {name:<{width}}  {mid:>18,.0f}  {ratio:>20}")
    for name in skipped:
        print(f"  {name:<{width}}  skipped: not installed")


def profile(run: Callable[[], object], lines: int = 25) -> None:
    """Print a cProfile of one call of ``run``, sorted by own time."""
    import cProfile
    import pstats

    prof = cProfile.Profile()
    prof.enable()
    run()
    prof.disable()
    pstats.Stats(prof).sort_stats("tottime").print_stats(lines)


def add_peers(workloads: dict[str, Workload], peers: Mapping[str, Workload]) -> list[str]:
    """Add each peer's workload whose engine is installed; return the engines skipped."""
    have = peers_available()
    skipped = [engine for engine in peers if not have.get(engine)]
    workloads.update({engine: run for engine, run in peers.items() if have.get(engine)})
    return skipped
