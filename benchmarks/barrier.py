"""Barrier round trips per second: pause at a barrier, decide, continue, all in memory.

The trio_graph workload mirrors ``peers.langgraph_barrier``: a barrier ``ask`` ->
``record`` (an ``async def`` task appending the answer to a list key with the
``extend`` reducer and counting the round) -> back to ``ask`` until ``rounds`` rounds
are done, then ``done``. The consumer iterates the whole event stream and answers
each ``BarrierWaiting`` with ``run.decide(barrier_id, Modify("answer", i))``; one
round trip = one pause + one decision + the run continuing to the next pause. The
graph is built outside the timed region; the run's answers are checked afterwards.

Two trio_graph variants: ``trio_graph`` (no store: the run stays live in memory
while it waits) and ``trio_graph[store]`` (a ``MemoryStore`` with the default
policy: a checkpoint when the barrier starts waiting and one after it resolves,
each serialised to JSON). LangGraph's interrupt needs a checkpointer (an
``InMemorySaver``, written every superstep) and resumes with a new
``astream(Command(resume=i))`` call per round.

Run: ``python benchmarks/barrier.py [reps] [rounds]``. When
``benchmarks/peers.py`` and the ``bench`` extra (LangGraph) are importable, LangGraph
runs interleaved in the same process and the table shows the trio_graph/LangGraph
ratio; otherwise only trio_graph is measured. ``--profile`` prints a cProfile of one
trio_graph run.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import trio

from trio_graph import Executor, GraphBuilder, Modify, reducers
from trio_graph import events as ev
from trio_graph._model.graph import Graph
from trio_graph.stores.memory import MemoryStore

ROUNDS = 300
"""Round trips per run (the LangGraph peer uses the same)."""


def barrier_graph(rounds: int) -> Graph:
    """``ask`` (barrier) -> ``record`` -> ``ask`` ... until ``rounds`` answers, -> ``done``."""

    async def record(state: Any) -> dict[str, Any]:
        return {"round": state["round"] + 1, "answers": [state["answer"]]}

    async def done(state: Any) -> dict[str, Any]:
        return {}

    return (
        GraphBuilder("barrier")
        .barrier("ask")
        .task("record", record)
        .task("done", done)
        .edge("ask", "record")
        .edge_if("record", "ask", lambda s: s["round"] < rounds)
        .edge("record", "done")
        .reducer("answers", reducers.extend)
        .start("ask")
        .end("done")
        .build()
    )


async def _drive(graph: Graph, rounds: int, store: bool) -> float:
    executor = Executor(max_steps=2 * rounds + 10, store=MemoryStore() if store else None)
    pauses = 0
    start = time.perf_counter()
    async with executor.stream(graph, {"round": 0, "answers": []}) as run:
        async for event in run:
            if type(event) is ev.BarrierWaiting:
                run.decide(event.barrier_id, Modify("answer", pauses))
                pauses += 1
    elapsed = time.perf_counter() - start
    result = run.result
    if result is None:
        raise AssertionError(f"run failed: {run.error}")
    if pauses != rounds or result.state["answers"] != list(range(rounds)):
        raise AssertionError(f"{pauses} pauses, answers {result.state['answers'][:5]}...")
    return rounds / elapsed


def trio_graph_barrier(rounds: int, *, store: bool = False) -> float:
    """Barrier round trips/s on trio_graph (``store``: with a MemoryStore checkpointing)."""
    graph = barrier_graph(rounds)
    return trio.run(_drive, graph, rounds, store)


def main(argv: list[str]) -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    args = [a for a in argv if not a.startswith("--")]
    reps = int(args[0]) if args else 5
    rounds = int(args[1]) if len(args) > 1 else ROUNDS
    from _harness import add_peers, interleave, print_table, profile
    from peers import langgraph_barrier

    if "--profile" in argv:
        profile(lambda: trio_graph_barrier(rounds * 10))
        return
    workloads = {
        "trio_graph": lambda: trio_graph_barrier(rounds),
        "trio_graph[store]": lambda: trio_graph_barrier(rounds, store=True),
    }
    skipped = add_peers(workloads, {"langgraph": lambda: langgraph_barrier(rounds)})
    results = interleave(workloads, reps)
    print_table(
        f"barrier pause + decide + continue, {rounds} rounds per run",
        "round trips/s",
        results,
        skipped=skipped,
    )


if __name__ == "__main__":
    main(sys.argv[1:])
