"""Fan-outs per second: a 16-way parallel node and a join, looped, all events consumed.

The trio_graph workload mirrors ``peers.langgraph_fanout``: ``fan`` (a task counting
the round) -> ``par`` (a parallel node of 16 ``async def`` branches, each returning
``{"results": [i]}`` into a list key with the ``extend`` reducer) -> ``join`` (a task)
-> back to ``fan`` until ``n`` fan-outs are done, then ``done``. The whole event
stream is consumed with ``async for``; the graph is built outside the timed region.

Run: ``python benchmarks/fanout.py [reps] [fanouts]``. With the
``bench`` extra installed (LangGraph, pydantic-graph) the peers run interleaved in
the same process and the table shows trio_graph/peer ratios; without it, only
trio_graph is measured. ``--profile`` prints a cProfile of one trio_graph run.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import trio

from trio_graph import Executor, GraphBuilder, reducers
from trio_graph import events as ev
from trio_graph._model.graph import Graph

WIDTH = 16
"""Branches per fan-out (the peers use the same)."""


def fanout_graph(n_fanouts: int, width: int = WIDTH) -> Graph:
    """``fan`` -> ``par`` (``width`` branches) -> ``join`` -> ``fan`` ... -> ``done``."""

    async def fan(state: Any) -> dict[str, Any]:
        return {"rounds": state["rounds"] + 1}

    def branch(i: int) -> Any:
        async def run(state: Any) -> dict[str, Any]:
            return {"results": [i]}

        return run

    async def join(state: Any) -> dict[str, Any]:
        return {}

    async def done(state: Any) -> dict[str, Any]:
        return {}

    return (
        GraphBuilder("fanout")
        .task("fan", fan)
        .parallel("par", {f"b{i}": branch(i) for i in range(width)})
        .task("join", join)
        .task("done", done)
        .edge("fan", "par")
        .edge("par", "join")
        .edge_if("join", "fan", lambda s: s["rounds"] < n_fanouts)
        .edge("join", "done")
        .reducer("results", reducers.extend)
        .start("fan")
        .end("done")
        .build()
    )


async def _drive(graph: Graph, n_fanouts: int, width: int) -> float:
    executor = Executor(max_steps=3 * n_fanouts + 10)
    branches = 0
    start = time.perf_counter()
    async with executor.stream(graph, {"rounds": 0, "results": []}) as run:
        async for event in run:
            if type(event) is ev.BranchCompleted:
                branches += 1
    elapsed = time.perf_counter() - start
    result = run.result
    if result is None:
        raise AssertionError(f"run failed: {run.error}")
    if branches != n_fanouts * width or result.state["rounds"] != n_fanouts:
        raise AssertionError(f"{branches} branches, {result.state['rounds']} rounds")
    if result.state["results"][-width:] != list(range(width)):  # declaration order
        raise AssertionError("merge not in declaration order")
    return n_fanouts / elapsed


def trio_graph_fanout(n_fanouts: int, width: int = WIDTH) -> float:
    """Fan-outs/s on trio_graph, with every event consumed."""
    graph = fanout_graph(n_fanouts, width)
    return trio.run(_drive, graph, n_fanouts, width)


def main(argv: list[str]) -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    args = [a for a in argv if not a.startswith("--")]
    reps = int(args[0]) if args else 5
    n = int(args[1]) if len(args) > 1 else 100
    from _harness import add_peers, interleave, print_table, profile
    from peers import langgraph_fanout, pydantic_graph_fanout

    if "--profile" in argv:
        profile(lambda: trio_graph_fanout(n * 5))
        return
    workloads = {"trio_graph": lambda: trio_graph_fanout(n)}
    skipped = add_peers(
        workloads,
        {
            "langgraph": lambda: langgraph_fanout(n),
            "pydantic_graph": lambda: pydantic_graph_fanout(n),
        },
    )
    results = interleave(workloads, reps)
    print_table(
        f"fan-out {WIDTH} + join, {n} fan-outs per run", "fan-outs/s", results, skipped=skipped
    )


if __name__ == "__main__":
    main(sys.argv[1:])
