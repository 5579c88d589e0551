"""Maps per second: a 100-item map over a run-time list and a join, looped, every event
consumed, on trio_graph, LangGraph (``Send``) and pydantic-graph (``.map()``).

The workload, on every engine: ``plan`` (a step counting the round and giving the list
``range(100)``) -> one task per item (``async def``, returning ``[item]`` into a list
key with an extend/add reducer) -> ``join`` -> back to ``plan`` until ``n`` maps are
done. The merged list must be in item order on every engine. Rate = maps/s.

- trio_graph: ``GraphBuilder.map("work", fn, over=...)``, the whole event stream consumed
  with ``async for`` (``ParallelStarted``, 100 ``BranchCompleted``, ``StateChanged``...).
- LangGraph: ``plan``'s conditional edge returns ``[Send("work", {"item": i}) ...]``
  (its documented map-reduce), ``work -> join``; ``astream(stream_mode="updates")``
  consumed (one chunk per task).
- pydantic-graph: ``edge_from(plan).map().to(work)``, ``g.join(reduce_list_extend)``,
  a decision loops back or ends; driven with ``Graph.iter``.

Run: ``python benchmarks/map.py [reps] [maps]`` (defaults 15 and 1: one 100-item map per
run). The peers need
the ``bench`` extra; without it only trio_graph is measured.
"""

from __future__ import annotations

import asyncio
import operator
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, TypedDict

import trio

from trio_graph import Executor, GraphBuilder, reducers
from trio_graph import events as ev
from trio_graph._model.graph import Graph

ITEMS = 100
"""Items per map (the peers use the same)."""


def _check(what: str, got: object, want: object) -> None:
    if got != want:
        raise AssertionError(f"{what}: got {got!r}, expected {want!r}")


# -- trio_graph ----------------------------------------------------------------------------


def map_graph(n_maps: int, items: int = ITEMS) -> Graph:
    """``plan`` -> ``work`` (a map over ``state["todo"]``) -> ``join`` -> ``plan`` ...
    -> ``done`` (the end node: a run ends once its end node ran)."""

    async def plan(state: Any) -> dict[str, Any]:
        return {"rounds": state["rounds"] + 1, "todo": list(range(items))}

    async def work(item: int, state: Any) -> dict[str, Any]:
        return {"results": [item]}

    async def join(state: Any) -> dict[str, Any]:
        return {}

    return (
        GraphBuilder("map")
        .task("plan", plan)
        .map("work", work, over=lambda s: s["todo"])
        .task("join", join)
        .task("done", join)
        .edge("plan", "work")
        .edge("work", "join")
        .edge_if("join", "plan", lambda s: s["rounds"] < n_maps)
        .edge("join", "done")
        .reducer("results", reducers.extend)
        .start("plan")
        .end("done")
        .build()
    )


async def _drive(graph: Graph, n_maps: int, items: int) -> float:
    executor = Executor(max_steps=3 * n_maps + 10)
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
    _check("trio_graph items", branches, n_maps * items)
    _check("trio_graph item order", result.state["results"][-items:], list(range(items)))
    return n_maps / elapsed


def trio_graph_map(n_maps: int, items: int = ITEMS) -> float:
    """Maps/s on trio_graph, every event consumed."""
    return trio.run(_drive, map_graph(n_maps, items), n_maps, items)


# -- LangGraph -----------------------------------------------------------------------------


class _LGState(TypedDict):
    rounds: int
    results: Annotated[list[int], operator.add]


class _LGItem(TypedDict):
    item: int


def langgraph_map(n_maps: int, items: int = ITEMS) -> float:
    """Maps/s on LangGraph: ``plan`` sends one ``Send("work", {"item": i})`` per item."""
    from langgraph.graph import END, START, StateGraph
    from langgraph.types import Send

    async def plan(state: _LGState) -> dict[str, Any]:
        return {"rounds": state["rounds"] + 1}

    def spread(state: _LGState) -> list[Any]:  # list[Send]
        return [Send("work", {"item": i}) for i in range(items)]

    async def work(state: _LGItem) -> dict[str, Any]:
        return {"results": [state["item"]]}

    async def join(state: _LGState) -> dict[str, Any]:
        return {}

    def route(state: _LGState) -> str:
        return END if state["rounds"] >= n_maps else "plan"

    builder = StateGraph(_LGState)
    builder.add_node("plan", plan)
    builder.add_node("work", work)  # type: ignore[call-overload]
    builder.add_node("join", join)
    builder.add_edge(START, "plan")
    builder.add_conditional_edges("plan", spread, ["work"])
    builder.add_edge("work", "join")
    builder.add_conditional_edges("join", route, ["plan", END])
    graph = builder.compile()
    config: Any = {"recursion_limit": 3 * n_maps + 10}

    async def main() -> float:
        chunks = 0
        start = time.perf_counter()
        async for _ in graph.astream({"rounds": 0, "results": []}, config, stream_mode="updates"):
            chunks += 1
        elapsed = time.perf_counter() - start
        _check("langgraph chunks", chunks, n_maps * (items + 2))
        return n_maps / elapsed

    return asyncio.run(main())


# -- pydantic-graph ------------------------------------------------------------------------


@dataclass
class _PGState:
    rounds: int = 0
    results: list[int] = field(default_factory=list)


def pydantic_graph_map(n_maps: int, items: int = ITEMS) -> float:
    """Maps/s on pydantic-graph: ``edge_from(plan).map().to(work)`` and a join."""
    from pydantic_graph import GraphBuilder as PGBuilder
    from pydantic_graph import StepContext, reduce_list_extend

    g = PGBuilder(state_type=_PGState, output_type=int)

    @g.step
    async def plan(ctx: StepContext[_PGState, None, object]) -> list[int]:
        return list(range(items))

    @g.step
    async def work(ctx: StepContext[_PGState, None, int]) -> list[int]:
        return [ctx.inputs]

    collect = g.join(reduce_list_extend, initial_factory=list, node_id="collect")

    @g.step
    async def after(ctx: StepContext[_PGState, None, list[int]]) -> int:
        ctx.state.results = ctx.inputs
        ctx.state.rounds += 1
        return ctx.state.rounds

    g.add(
        g.edge_from(g.start_node).to(plan),
        g.edge_from(plan).map().to(work),
        g.edge_from(work).to(collect),
        g.edge_from(collect).to(after),
        g.edge_from(after).to(
            g.decision()
            .branch(g.match(int, matches=lambda r: r < n_maps).to(plan))
            .branch(g.match(int).to(g.end_node))
        ),
    )
    graph = g.build()

    async def main() -> float:
        state = _PGState()
        start = time.perf_counter()
        async with graph.iter(state=state) as run:
            async for _ in run:
                pass
        elapsed = time.perf_counter() - start
        _check("pydantic-graph maps", state.rounds, n_maps)
        _check("pydantic-graph join", sorted(state.results), list(range(items)))
        return n_maps / elapsed

    return asyncio.run(main())


def main(argv: list[str]) -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    args = [a for a in argv if not a.startswith("--")]
    reps = int(args[0]) if args else 15
    n = int(args[1]) if len(args) > 1 else 1
    from _harness import add_peers, interleave, print_table, profile

    if "--profile" in argv:
        profile(lambda: trio_graph_map(n * 5))
        return
    workloads = {"trio_graph": lambda: trio_graph_map(n)}
    skipped = add_peers(
        workloads,
        {"langgraph": lambda: langgraph_map(n), "pydantic_graph": lambda: pydantic_graph_map(n)},
    )
    results = interleave(workloads, reps)
    print_table(
        f"map over {ITEMS} items + join, {n} maps per run", "maps/s", results, skipped=skipped
    )


if __name__ == "__main__":
    main(sys.argv[1:])
