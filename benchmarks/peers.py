"""The trio_graph benchmark workloads, measured on the peers: LangGraph and pydantic-graph.

Every function is self-contained: it imports its peer, builds the graph, starts its
own asyncio event loop with ``asyncio.run``, times only the run with
``time.perf_counter`` (graph building, imports and database setup are outside the
timed region), checks that the run did the expected work, and returns a rate per
second. The peers are imported inside the functions, so this module imports even
when the ``bench`` extra is absent (see ``_harness.peers_available``).

Nodes are ``async def`` on every engine (pydantic-graph accepts nothing else), so the
same kind of node is measured everywhere.

Versions measured: see benchmarks/README.md.
"""

from __future__ import annotations

import asyncio
import operator
import time
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Annotated, Any, Literal, TypedDict

if TYPE_CHECKING:
    from langchain_core.runnables import RunnableConfig

LoopStreamMode = Literal["updates", "tasks", "values"]
Durability = Literal["sync", "async", "exit"]

WIDTH = 16
"""Branches per fan-out, as in the trio_graph fan-out workload."""


class _Expected(AssertionError):
    """A peer run did not do the work the benchmark asked of it."""


def _check(what: str, got: object, want: object) -> None:
    if got != want:
        raise _Expected(f"{what}: got {got!r}, expected {want!r}")


# --------------------------------------------------------------------------------------
# LangGraph
# --------------------------------------------------------------------------------------


class _LoopState(TypedDict):
    count: int


class _FanState(TypedDict):
    rounds: int
    results: Annotated[list[int], operator.add]


class _BarrierState(TypedDict):
    round: int
    answers: Annotated[list[int], operator.add]


def _langgraph_loop_graph(steps: int, checkpointer: Any = None) -> Any:
    """A -> B -> A -> ...: each node adds 1 to ``count``; stop after ``steps`` nodes."""
    from langgraph.graph import END, START, StateGraph

    async def node(state: _LoopState) -> dict[str, int]:
        return {"count": state["count"] + 1}

    def route_from(target: str) -> Any:
        def route(state: _LoopState) -> str:
            return END if state["count"] >= steps else target

        return route

    builder = StateGraph(_LoopState)
    builder.add_node("a", node)
    builder.add_node("b", node)
    builder.add_edge(START, "a")
    # Routing functions run as part of the node's writes, not as extra steps.
    builder.add_conditional_edges("a", route_from("b"), ["b", END])
    builder.add_conditional_edges("b", route_from("a"), ["a", END])
    return builder.compile(checkpointer=checkpointer)


async def _langgraph_drive_loop(
    graph: Any, steps: int, config: RunnableConfig, stream_mode: LoopStreamMode, **kwargs: Any
) -> float:
    """Consume the whole stream of a loop run; return node-steps per second."""
    events = 0
    last: Any = None
    start = time.perf_counter()
    async for chunk in graph.astream({"count": 0}, config, stream_mode=stream_mode, **kwargs):
        events += 1
        last = chunk
    elapsed = time.perf_counter() - start
    if stream_mode == "updates":
        # One {node: update} per node execution.
        _check("langgraph loop events", events, steps)
        _check("langgraph loop final update", next(iter(last.values())), {"count": steps})
    elif stream_mode == "values":
        _check("langgraph loop final state", last, {"count": steps})
    elif stream_mode == "tasks":
        # A start event and a result event per node execution.
        _check("langgraph loop events", events, 2 * steps)
    return steps / elapsed


def langgraph_loop(steps: int, stream_mode: LoopStreamMode = "updates") -> float:
    """Node-steps/s of a 2-node cycle on LangGraph, consuming the full event stream.

    ``stream_mode="updates"`` (the default) yields one ``{node: update}`` chunk per
    node execution: the LangGraph mode closest to trio_graph's per-node events.
    ``"tasks"`` (start + result event per node) and ``"values"`` (whole state per
    superstep) can be asked for. No checkpointer: nothing is persisted.
    """
    graph = _langgraph_loop_graph(steps)
    config: RunnableConfig = {"recursion_limit": steps + 10}
    return asyncio.run(_langgraph_drive_loop(graph, steps, config, stream_mode))


def langgraph_fanout(n_fanouts: int, width: int = WIDTH) -> float:
    """Fan-outs/s on LangGraph: ``fan`` -> ``width`` static parallel edges -> ``join``.

    Each branch returns ``{"results": [i]}``; the ``results`` key has an
    ``operator.add`` reducer, so the join sees all ``width`` results. ``join``
    loops back to ``fan`` until ``n_fanouts`` fan-outs are done. Each fan-out is
    three supersteps (fan, the branches in parallel, join). Stream mode "updates".
    """
    from langgraph.graph import END, START, StateGraph

    async def fan(state: _FanState) -> dict[str, Any]:
        return {"rounds": state["rounds"] + 1}

    def branch(i: int) -> Any:
        async def run(state: _FanState) -> dict[str, list[int]]:
            return {"results": [i]}

        return run

    async def join(state: _FanState) -> dict[str, Any]:
        return {}

    def route(state: _FanState) -> str:
        return END if state["rounds"] >= n_fanouts else "fan"

    names = [f"b{i}" for i in range(width)]
    builder = StateGraph(_FanState)
    builder.add_node("fan", fan)
    for i, name in enumerate(names):
        builder.add_node(name, branch(i))
        builder.add_edge("fan", name)
    builder.add_node("join", join)
    builder.add_edge(names, "join")  # waits for every branch
    builder.add_edge(START, "fan")
    builder.add_conditional_edges("join", route, ["fan", END])
    graph = builder.compile()
    config: RunnableConfig = {"recursion_limit": 3 * n_fanouts + 10}

    async def main() -> float:
        events = 0
        start = time.perf_counter()
        async for _ in graph.astream({"rounds": 0, "results": []}, config, stream_mode="updates"):
            events += 1
        elapsed = time.perf_counter() - start
        _check("langgraph fan-out events", events, n_fanouts * (width + 2))
        return n_fanouts / elapsed

    return asyncio.run(main())


def langgraph_barrier(rounds: int) -> float:
    """interrupt()/Command(resume=...) round trips per second, InMemorySaver.

    One node calls ``interrupt()`` and loops back to itself. The first ``astream``
    call runs to the first pause; each of the ``rounds`` resumes (a new ``astream``
    with ``Command(resume=i)`` on the same thread) completes the node and runs to
    the next pause (or, after the last, to the end). A checkpointer is mandatory
    for interrupts; LangGraph checkpoints every superstep into it (default
    durability). Stream mode "updates", in which a pause is an ``__interrupt__`` chunk.
    """
    from langgraph.checkpoint.memory import InMemorySaver
    from langgraph.graph import END, START, StateGraph
    from langgraph.types import Command, interrupt

    async def ask(state: _BarrierState) -> dict[str, Any]:
        answer = interrupt(state["round"])
        return {"round": state["round"] + 1, "answers": [answer]}

    def route(state: _BarrierState) -> str:
        return END if state["round"] >= rounds else "ask"

    builder = StateGraph(_BarrierState)
    builder.add_node("ask", ask)
    builder.add_edge(START, "ask")
    builder.add_conditional_edges("ask", route, ["ask", END])
    graph = builder.compile(checkpointer=InMemorySaver())
    config: RunnableConfig = {"configurable": {"thread_id": uuid.uuid4().hex}}

    async def main() -> float:
        pauses = 0
        start = time.perf_counter()
        run_input: Any = {"round": 0, "answers": []}
        for i in range(rounds + 1):
            async for chunk in graph.astream(run_input, config, stream_mode="updates"):
                if "__interrupt__" in chunk:
                    pauses += 1
            run_input = Command(resume=i)
        elapsed = time.perf_counter() - start
        _check("langgraph pauses", pauses, rounds)
        final = (await graph.aget_state(config)).values
        _check("langgraph answers", final["answers"], list(range(rounds)))
        return rounds / elapsed

    return asyncio.run(main())


def langgraph_checkpoint(steps: int, path: str, durability: Durability = "sync") -> float:
    """Node-steps/s of the 2-node loop with an AsyncSqliteSaver on the file ``path``.

    ``durability="sync"`` (the default here) writes each superstep's checkpoint
    before the next starts: one checkpoint per node step, like trio_graph's
    ``CheckpointPolicy(every_step=True)``. LangGraph's own default is "async"
    (written while the next step runs). Opening the connection and creating the
    tables are outside the timed region; each call uses a fresh thread id, so the
    file can be reused across repetitions.
    """
    from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver

    async def main() -> float:
        async with AsyncSqliteSaver.from_conn_string(path) as saver:
            await saver.setup()
            graph = _langgraph_loop_graph(steps, checkpointer=saver)
            config: RunnableConfig = {
                "recursion_limit": steps + 10,
                "configurable": {"thread_id": uuid.uuid4().hex},
            }
            rate = await _langgraph_drive_loop(
                graph, steps, config, "updates", durability=durability
            )
            saved = [c async for c in saver.alist(config)]
            # The input (step -1), the __start__ step (0), then one per node step.
            _check("langgraph checkpoints", len(saved), steps + 2)
            return rate

    return asyncio.run(main())


# --------------------------------------------------------------------------------------
# pydantic-graph
# --------------------------------------------------------------------------------------


@dataclass
class _PGLoopState:
    limit: int
    count: int = 0


@dataclass
class _PGFanState:
    limit: int
    rounds: int = 0
    results: list[int] = field(default_factory=list)


def pydantic_graph_loop(steps: int) -> float:
    """Node-steps/s of a 2-node cycle on pydantic-graph, iterating the whole run.

    Nodes are ``BaseNode`` dataclasses whose ``run`` returns the next node (or
    ``End``), added with ``GraphBuilder.node``. The run is driven with
    ``Graph.iter``: ``async for`` yields the next tasks after every node, the
    engine's equivalent of an event stream. pydantic-graph runs each node as a new
    task in an anyio task group. Instrumentation is left at its default
    (``auto_instrument=True``; without logfire installed its spans are no-ops).
    """
    from pydantic_graph import BaseNode, End, GraphBuilder, GraphRunContext

    # The node classes are local (the module must import without pydantic-graph);
    # GraphBuilder.node resolves the string return hints in this function's locals.
    @dataclass
    class A(BaseNode[_PGLoopState, None, int]):
        async def run(self, ctx: GraphRunContext[_PGLoopState, None]) -> B | End[int]:
            ctx.state.count += 1
            if ctx.state.count >= ctx.state.limit:
                return End(ctx.state.count)
            return B()

    @dataclass
    class B(BaseNode[_PGLoopState, None, int]):
        async def run(self, ctx: GraphRunContext[_PGLoopState, None]) -> A | End[int]:
            ctx.state.count += 1
            if ctx.state.count >= ctx.state.limit:
                return End(ctx.state.count)
            return A()

    g = GraphBuilder(state_type=_PGLoopState, input_type=A, output_type=int)
    g.add(g.edge_from(g.start_node).to(A), g.node(A), g.node(B))
    graph = g.build()

    async def main() -> float:
        state = _PGLoopState(limit=steps)
        events = 0
        start = time.perf_counter()
        async with graph.iter(state=state, inputs=A()) as run:
            async for _ in run:
                events += 1
        elapsed = time.perf_counter() - start
        _check("pydantic-graph loop output", run.output, steps)
        _check("pydantic-graph loop count", state.count, steps)
        # start node, each node step, and the end marker
        _check("pydantic-graph loop events", events, steps + 1)
        return steps / elapsed

    return asyncio.run(main())


def pydantic_graph_fanout(n_fanouts: int, width: int = WIDTH) -> float:
    """Fan-outs/s on pydantic-graph: ``fan`` -> broadcast to ``width`` steps -> join.

    pydantic-graph (>= 1.x "beta" builder API, now the main ``GraphBuilder``) has
    native fork/join: ``edge_from(fan).to(s0, ..., s15)`` broadcasts ``fan``'s
    output to 16 distinct steps, each a task in its task group; a
    ``g.join(reduce_list_extend)`` collects their outputs. ``after`` stores the
    joined list in the state and counts the round, and a decision loops back to
    ``fan`` or ends. Driven with ``Graph.iter``, like the loop.
    """
    from pydantic_graph import GraphBuilder, StepContext, reduce_list_extend

    # The steps are annotated as pydantic-graph documents them. mypy cannot check these
    # annotations (StepContext's type variables use infer_variance=True, which mypy reads
    # as "no type arguments"); pyright can. The benchmarks are not part of the mypy run.

    g = GraphBuilder(state_type=_PGFanState, output_type=int)

    @g.step
    async def fan(ctx: StepContext[_PGFanState, None, object]) -> int:
        return ctx.state.rounds

    def make_branch(i: int) -> Any:
        async def run(ctx: StepContext[_PGFanState, None, int]) -> list[int]:
            return [i]

        return g.step(run, node_id=f"b{i}")

    branches = [make_branch(i) for i in range(width)]
    collect = g.join(reduce_list_extend, initial_factory=list, node_id="join")

    @g.step
    async def after(ctx: StepContext[_PGFanState, None, list[int]]) -> int:
        ctx.state.results = ctx.inputs
        ctx.state.rounds += 1
        return ctx.state.rounds

    g.add(
        g.edge_from(g.start_node).to(fan),
        g.edge_from(fan).to(*branches),
        g.edge_from(*branches).to(collect),
        g.edge_from(collect).to(after),
        g.edge_from(after).to(
            g.decision()
            .branch(g.match(int, matches=lambda r: r < n_fanouts).to(fan))
            .branch(g.match(int).to(g.end_node))
        ),
    )
    graph = g.build()

    async def main() -> float:
        state = _PGFanState(limit=n_fanouts)
        start = time.perf_counter()
        async with graph.iter(state=state) as run:
            async for _ in run:
                pass
        elapsed = time.perf_counter() - start
        _check("pydantic-graph fan-outs", state.rounds, n_fanouts)
        _check("pydantic-graph output", run.output, n_fanouts)
        _check("pydantic-graph join", sorted(state.results), list(range(width)))
        return n_fanouts / elapsed

    return asyncio.run(main())


if __name__ == "__main__":
    import sys
    import tempfile
    from pathlib import Path

    from _harness import interleave, peers_available, print_table

    reps = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    have = peers_available()
    with tempfile.TemporaryDirectory() as tmp:
        db = str(Path(tmp) / "lg.sqlite")
        suites: list[tuple[str, str, dict[str, Any]]] = [
            (
                "loop, 2-node cycle",
                "node-steps/s",
                {
                    "langgraph": lambda: langgraph_loop(2000),
                    "langgraph[tasks]": lambda: langgraph_loop(2000, "tasks"),
                    "pydantic_graph": lambda: pydantic_graph_loop(2000),
                },
            ),
            (
                "fan-out 16 + join",
                "fan-outs/s",
                {
                    "langgraph": lambda: langgraph_fanout(100),
                    "pydantic_graph": lambda: pydantic_graph_fanout(100),
                },
            ),
            (
                "barrier pause+resume",
                "round trips/s",
                {
                    "langgraph": lambda: langgraph_barrier(300),
                },
            ),
            (
                "loop, sqlite checkpoint every step",
                "node-steps/s",
                {
                    "langgraph": lambda: langgraph_checkpoint(300, db),
                },
            ),
        ]
        for title, unit, workloads in suites:
            missing = [n for n in workloads if not have[n.split("[")[0]]]
            runnable = {n: w for n, w in workloads.items() if n not in missing}
            print_table(title, unit, interleave(runnable, reps), skipped=missing)
