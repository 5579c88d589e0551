"""Subgraph nodes: event paths, barriers decided from the parent, resume inside (issue 7)."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest
import trio

from trio_graph import (
    Approve,
    BarrierError,
    BarrierId,
    CheckpointPolicy,
    Executor,
    GraphBuilder,
    InvalidGraph,
    NodeExecutionFailed,
    reducers,
)
from trio_graph import events as ev
from trio_graph.stores import MemoryStore


def inner_graph(calls: Counter[str] | None = None, crash_at: str | None = None) -> Any:
    def node(name: str, updates: dict[str, Any]) -> Any:
        def fn(state: Any) -> dict[str, Any]:
            if calls is not None:
                calls[name] += 1
            if name == crash_at and calls is not None and calls[name] == 1:
                raise Crash(name)
            return updates

        return fn

    return (
        GraphBuilder("inner")
        .task("x", node("x", {"total": 1, "trail": "x"}))
        .task("y", node("y", {"total": 10, "trail": "y"}))
        .task("z", node("z", {"total": 100, "trail": "z"}))
        .edge("x", "y")
        .edge("y", "z")
        .reducer("total", reducers.add)
        .reducer("trail", reducers.append)
        .start("x")
        .end("z")
        .build()
    )


class Crash(BaseException):
    """Stands for the process dying: not an Exception, so nothing handles it."""


def outer_graph(inner: Any, **kw: Any) -> Any:
    return (
        GraphBuilder("outer")
        .task("a", lambda s: {"total": 1000, "trail": "a"})
        .subgraph("sub", inner, **kw)
        .task("b", lambda s: {"trail": "b"})
        .edge("a", "sub")
        .edge("sub", "b")
        .reducer("total", reducers.add)
        .reducer("trail", reducers.append)
        .start("a")
        .end("b")
        .build()
    )


async def test_subgraph_events_carry_paths() -> None:
    """Child events are forwarded with "parent/child" node paths inside the parent's span."""
    events = []
    async with Executor().stream(outer_graph(inner_graph()), {}) as run:
        async for event in run:
            events.append(event)
    starts = [(e.node, e.step) for e in events if isinstance(e, ev.NodeStart)]
    assert starts == [("a", 1), ("sub", 2), ("sub/x", 1), ("sub/y", 2), ("sub/z", 3), ("b", 3)]
    spans = [e.span_id for e in events if isinstance(e, ev.NodeStart)]
    assert len(set(spans)) == len(spans)
    ends = [e.node for e in events if isinstance(e, ev.NodeEnd)]
    assert ends == ["a", "sub/x", "sub/y", "sub/z", "sub", "b"]
    assert sum(isinstance(e, ev.GraphStart) for e in events) == 1
    assert sum(isinstance(e, ev.GraphComplete) for e in events) == 1
    assert run.result is not None
    # The child started from the parent's state; its deltas fold into the parent's reducers.
    assert run.result.state == {"total": 1111, "trail": ["a", "x", "y", "z", "b"]}


async def test_subgraph_input_output_and_own_step_budget() -> None:
    """input/output map the states; the child's max_steps is its own budget."""
    graph = outer_graph(
        inner_graph(),
        input=lambda s: {"total": 0},
        output=lambda c: {"total": c["total"], "trail": "sub"},
        max_steps=3,
    )
    result = await Executor(max_steps=3).run(graph, {})
    assert result.state == {"total": 1111, "trail": ["a", "sub", "b"]}
    with pytest.raises(Exception, match=r"max_steps=2 exceeded before running node 'z'"):
        await Executor(max_steps=3).run(outer_graph(inner_graph(), max_steps=2), {})


async def test_barrier_inside_subgraph_decided_from_parent_run() -> None:
    """A barrier in a subgraph pauses the parent run and is decided with run.decide."""
    inner = (
        GraphBuilder("inner")
        .task("x", lambda s: {"n": 1})
        .barrier("gate")
        .edge("x", "gate")
        .start("x")
        .end("gate")
        .build()
    )
    graph = (
        GraphBuilder("outer")
        .subgraph("sub", inner)
        .task("b", lambda s: None)
        .edge("sub", "b")
        .start("sub")
        .end("b")
        .build()
    )
    waiting = []
    async with Executor().stream(graph, {}) as run:
        with pytest.raises(BarrierError):
            run.decide(BarrierId("gate", 1), Approve())  # not a barrier of the parent
        async for event in run:
            if isinstance(event, ev.BarrierWaiting):
                waiting.append((event.node, event.barrier_id))
                run.decide(event.barrier_id, Approve())
    assert waiting == [("sub/gate", BarrierId("sub/gate", 1))]
    assert run.result is not None
    assert run.result.state == {"n": 1, "gate.approved": True}
    # run() accepts a wildcard for the subgraph barrier by path.
    result = await Executor().run(graph, {}, decisions={"sub/gate": Approve()})
    assert result.state["gate.approved"] is True
    with pytest.raises(InvalidGraph, match="barrier 'sub/gate' has no timeout"):
        await Executor().run(graph, {})


async def test_crash_inside_subgraph_resumes_inside_it() -> None:
    """A crash mid-subgraph resumes inside the subgraph: finished child nodes do not re-run."""
    store = MemoryStore()
    calls: Counter[str] = Counter()
    graph = outer_graph(inner_graph(calls, crash_at="z"))
    executor = Executor(store=store, policy=CheckpointPolicy(every_step=True))
    with pytest.raises(Crash):
        async with executor.stream(graph, {}) as run:
            async for _ in run:
                pass
    latest = await store.latest(run.trace_id)
    assert latest is not None
    assert latest.next_node == "sub"
    assert [(f.node, f.next_node, f.step) for f in latest.frames] == [("sub", "z", 2)]
    async with executor.resume(graph, run.trace_id) as resumed:
        result = await resumed.wait()
    assert calls == Counter({"x": 1, "y": 1, "z": 2})  # only the in-flight node repeats
    assert result.state == {"total": 1111, "trail": ["a", "x", "y", "z", "b"]}


async def test_failure_inside_subgraph_names_the_child_node() -> None:
    """A node failing in a subgraph ends the run with NodeExecutionFailed naming it."""

    def boom(state: Any) -> None:
        raise ValueError("bad")

    inner = GraphBuilder("inner").task("x", boom).start("x").end("x").build()
    graph = GraphBuilder("outer").subgraph("sub", inner).start("sub").end("sub").build()
    events = []
    with pytest.raises(NodeExecutionFailed, match="node 'x' failed: ValueError: bad"):
        async with Executor().stream(graph, {}) as run:
            async for event in run:
                events.append(event)
            await run.wait()
    ends = [(e.node, e.success) for e in events if isinstance(e, ev.NodeEnd)]
    assert ends == [("sub/x", False), ("sub", False)]


async def test_cancel_inside_subgraph_closes_every_span() -> None:
    """Cancelling while a subgraph node sleeps ends both spans and names the path."""

    async def sleepy(state: Any) -> None:
        await trio.sleep(3600)

    inner = GraphBuilder("inner").task("x", sleepy).start("x").end("x").build()
    graph = GraphBuilder("outer").subgraph("sub", inner).start("sub").end("sub").build()
    events = []
    async with Executor().stream(graph, {}) as run:
        async for event in run:
            events.append(event)
            if isinstance(event, ev.NodeStart) and event.node == "sub/x":
                run.cancel()
    assert [(e.node, e.success) for e in events if isinstance(e, ev.NodeEnd)] == [
        ("sub/x", False),
        ("sub", False),
    ]
    assert run.error is not None and "sub/x" in str(run.error)


def test_subgraph_mermaid_block_and_hash() -> None:
    """Mermaid draws a subgraph block; the parent's hash changes with the child's structure."""
    graph = outer_graph(inner_graph())
    text = graph.to_mermaid()
    assert 'subgraph n_sub ["sub"]' in text
    assert "n_sub_2f_x --> n_sub_2f_y" in text
    other = (
        GraphBuilder("inner")
        .task("x", lambda s: None)
        .task("y", lambda s: None)
        .edge("x", "y")
        .start("x")
        .end("y")
        .build()
    )
    assert outer_graph(other).hash() != graph.hash()


def test_node_names_may_not_contain_path_separators() -> None:
    """'/' and '#' are reserved for subgraph paths and barrier occurrences."""
    with pytest.raises(InvalidGraph, match="names may not contain"):
        GraphBuilder("g").task("a/b", lambda s: None).start("a/b").end("a/b").build()
