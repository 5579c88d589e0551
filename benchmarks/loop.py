"""Node-steps per second: a 2-node cycle run for 20,000 steps, every event consumed.

The trio_graph workload mirrors ``peers.langgraph_loop`` / ``peers.pydantic_graph_loop``:
``a`` -> ``b`` -> ``a`` ... each an ``async def`` node adding 1 to a counter (``add``
reducer), ``b`` routing to ``done`` once the counter reaches the step count. The whole
event stream (GraphStart, NodeStart/StateChanged/NodeEnd per step, GraphComplete) is
consumed with ``async for``; the graph is built outside the timed region.

Run: ``python benchmarks/loop.py [reps] [steps]``. With the ``bench`` extra installed
(LangGraph, pydantic-graph) the peers run interleaved in the same process and the
table shows trio_graph/peer ratios. ``--profile`` prints a cProfile of one run.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import trio

from trio_graph import Executor, GraphBuilder, reducers
from trio_graph._model.graph import Graph


def loop_graph(steps: int) -> Graph:
    """``a`` <-> ``b`` until ``n`` reaches ``steps``, then ``done``."""

    async def bump(state: Any) -> dict[str, int]:
        return {"n": 1}

    async def done(state: Any) -> None:
        return None

    return (
        GraphBuilder("loop")
        .task("a", bump)
        .task("b", bump)
        .task("done", done)
        .edge("a", "b")
        .edge_if("b", "done", lambda s: s["n"] >= steps)
        .edge("b", "a")
        .reducer("n", reducers.add)
        .start("a")
        .end("done")
        .build()
    )


async def _drive(graph: Graph, steps: int) -> float:
    executor = Executor(max_steps=steps + 10)
    events = 0
    start = time.perf_counter()
    async with executor.stream(graph, {"n": 0}) as run:
        async for _ in run:
            events += 1
    elapsed = time.perf_counter() - start
    assert run.result is not None and run.result.state["n"] == steps
    assert events == 3 * steps + 2 + 2  # GraphStart, 3 per counting step, done's 2, complete
    return (steps + 1) / elapsed


def trio_graph_loop(steps: int) -> float:
    """Node-steps per second for one run of ``steps`` counting steps (plus ``done``)."""
    graph = loop_graph(steps)
    return trio.run(_drive, graph, steps)


def main(argv: list[str]) -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    args = [a for a in argv if not a.startswith("--")]
    reps = int(args[0]) if args else 5
    steps = int(args[1]) if len(args) > 1 else 20_000
    from _harness import add_peers, interleave, print_table, profile
    from peers import langgraph_loop, pydantic_graph_loop

    if "--profile" in argv:
        profile(lambda: trio_graph_loop(steps), lines=20)
        return
    workloads = {"trio_graph": lambda: trio_graph_loop(steps)}
    peer_steps = min(steps, 2000)  # the peers are 10-50x slower: keep their runs short
    skipped = add_peers(
        workloads,
        {
            "langgraph": lambda: langgraph_loop(peer_steps),
            "pydantic_graph": lambda: pydantic_graph_loop(peer_steps),
        },
    )
    results = interleave(workloads, reps)
    print_table(f"2-node loop, {steps} steps per run", "node-steps/s", results, skipped=skipped)


if __name__ == "__main__":
    main(sys.argv[1:])
