"""The price of typed state: the loop of ``loop.py`` with a typed state of 10 fields,
beside the same loop untyped with the same 10 keys, interleaved in one process.

Both runs count ``n`` with the ``add`` reducer through ``a`` <-> ``b``, every event
consumed; the typed graph declares the state as an attrs class of 10 fields (``n`` with
``Annotated[int, reducers.add]``, nine more of str, float, tuple, list, date...), so every
update is checked and structured by the converter before it is committed and every node
reads a ``StateView``. Issue 18's goal: typed within 25% of untyped (ratio >= 0.8).

Run: ``python benchmarks/typed.py [reps] [steps]`` (default 5, 20,000). Prints medians
and typed/untyped.
"""

from __future__ import annotations

import datetime
import sys
import time
from pathlib import Path
from typing import Annotated, Any

import attrs
import trio

from trio_graph import Executor, GraphBuilder, reducers
from trio_graph._model.graph import Graph


@attrs.define
class Ten:
    """Ten fields; the loop updates ``n`` only, nodes read ``n`` and ``limit``."""

    n: Annotated[int, reducers.add] = 0
    limit: int = 0
    topic: str = "trio"
    score: float = 0.5
    tags: tuple[str, ...] = ("a", "b")
    notes: list[str] = attrs.Factory(list)
    day: datetime.date = datetime.date(2026, 12, 2)
    done: bool = False
    owner: str | None = None
    weights: dict[str, float] = attrs.Factory(dict)


def loop_graph(steps: int, typed: bool) -> Graph:
    """``a`` <-> ``b`` until ``n`` reaches the limit, then ``done`` (typed or not)."""

    async def bump(state: Any) -> dict[str, int]:
        return {"n": 1}

    async def done(state: Any) -> None:
        return None

    builder = GraphBuilder("loop", state=Ten) if typed else GraphBuilder("loop")
    builder = (
        builder.task("a", bump)
        .task("b", bump)
        .task("done", done)
        .edge("a", "b")
        .edge_if("b", "done", lambda s: s["n"] >= s["limit"])
        .edge("b", "a")
        .start("a")
        .end("done")
    )
    if not typed:
        builder.reducer("n", reducers.add)
    return builder.build()


async def _drive(graph: Graph, steps: int) -> float:
    state = attrs.asdict(Ten(limit=steps), recurse=False)
    start = time.perf_counter()
    async with Executor(max_steps=steps + 10).stream(graph, state) as run:
        async for _ in run:
            pass
    elapsed = time.perf_counter() - start
    assert run.result is not None and run.result.state["n"] == steps
    return (steps + 1) / elapsed


def workload(steps: int, typed: bool) -> float:
    """Node-steps per second for one run."""
    graph = loop_graph(steps, typed)
    return trio.run(_drive, graph, steps)


def main(argv: list[str]) -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from _harness import interleave, median, print_table

    reps = int(argv[0]) if argv else 5
    steps = int(argv[1]) if len(argv) > 1 else 20_000
    results = interleave(
        {"untyped": lambda: workload(steps, False), "typed": lambda: workload(steps, True)},
        reps,
    )
    print_table(f"2-node loop, 10-key state, {steps} steps", "node-steps/s", results, "untyped")
    ratio = median(results["typed"]) / median(results["untyped"])
    print(f"\ntyped/untyped: {ratio:.2f} (goal >= 0.80)")


if __name__ == "__main__":
    main(sys.argv[1:])
