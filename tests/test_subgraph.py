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


# -- nested subgraphs (issue 13, items 2-4) ------------------------------------------
LEVELS = ["outer", "inner", "deep"]


def nest(leaf: Any, depth: int) -> tuple[Any, str]:
    """``leaf`` wrapped in ``depth`` subgraph levels under a root; (root graph, path prefix).

    Each level runs ``pre`` (a task), then the next level down, then ``post``.
    """
    graph = leaf
    for name in reversed(LEVELS[:depth]):
        graph = (
            GraphBuilder(f"g_{name}")
            .task("pre", lambda s: None)
            .subgraph(name, graph)
            .task("post", lambda s: None)
            .edge("pre", name)
            .edge(name, "post")
            .start("pre")
            .end("post")
            .build()
        )
    return graph, "/".join(LEVELS[:depth])


def review_leaf() -> Any:
    return (
        GraphBuilder("leaf")
        .task("draft", lambda s: {"text": "v1"})
        .barrier("review")
        .edge("draft", "review")
        .start("draft")
        .end("review")
        .build()
    )


@pytest.mark.parametrize("depth", [1, 2, 3])
@pytest.mark.parametrize("how", ["decide", "decide_all"])
async def test_nested_event_paths_are_single_and_decidable(depth: int, how: str) -> None:
    """At any depth every event names its node by the one full path, and the
    BarrierWaiting's node / barrier_id decide the barrier (decide and decide_all)."""
    graph, prefix = nest(review_leaf(), depth)
    review = f"{prefix}/review"
    events: list[ev.Event] = []
    async with Executor().stream(graph, {}) as run:
        async for event in run:
            events.append(event)
            if isinstance(event, ev.BarrierWaiting):
                assert event.node == event.barrier_id.node == review
                if how == "decide":
                    run.decide(event.barrier_id, Approve())
                else:
                    run.decide_all(event.node, Approve())
    assert run.result is not None and run.result.state["review.approved"] is True
    expected = {"pre", "post", "draft", "review"} | set(LEVELS[:depth])
    for event in events:
        node = getattr(event, "node", None)
        if node is None or isinstance(event, ev.CheckpointSaved):
            continue
        parts = node.split("/")
        # A path walks down the levels once: outer, inner, ... then a node of that level.
        assert parts[:-1] == LEVELS[: len(parts) - 1], (type(event).__name__, node)
        assert parts[-1] in expected, (type(event).__name__, node)
    waiting = [e for e in events if isinstance(e, ev.BarrierWaiting)]
    assert [(e.node, e.barrier_id) for e in waiting] == [(review, BarrierId(review, 1))]
    resolved = [e.node for e in events if isinstance(e, ev.BarrierResolved)]
    assert resolved == [review]
    starts = [e.node for e in events if isinstance(e, ev.NodeStart)]
    assert f"{prefix}/draft" in starts and review in starts
    # The draft's update, then each subgraph node handing it up (innermost first).
    levels = ["/".join(LEVELS[:i]) for i in range(depth, 0, -1)]
    texts = [e.node for e in events if isinstance(e, ev.StateChanged) and e.key == "text"]
    assert texts == [f"{prefix}/draft", *levels]


async def test_two_deep_barrier_event_node_is_the_barrier_id_node() -> None:
    """root > outer > inner > review: NodeStart and BarrierWaiting say outer/inner/review."""
    graph, _ = nest(review_leaf(), 2)
    async with Executor().stream(graph, {}) as run:
        async for event in run:
            if isinstance(event, ev.NodeStart) and event.node.endswith("review"):
                assert event.node == "outer/inner/review"
            if isinstance(event, ev.BarrierWaiting):
                assert (event.node, str(event.barrier_id)) == (
                    "outer/inner/review",
                    "outer/inner/review#1",
                )
                run.decide_all(event.node, Approve())
    assert run.result is not None


def parallel_leaf(calls: Counter[str]) -> Any:
    async def quick(state: Any) -> dict[str, Any]:
        calls["quick"] += 1
        return {"quick": True}

    async def slow(state: Any) -> dict[str, Any]:
        calls["slow"] += 1
        if calls["slow"] == 1:
            await trio.sleep_forever()  # cancelled by the test
        return {"slow": True}

    return (
        GraphBuilder("leaf")
        .parallel("fan", {"quick": quick, "slow": slow})
        .start("fan")
        .end("fan")
        .build()
    )


@pytest.mark.parametrize("depth", [0, 1, 2, 3])
async def test_nested_resume_runs_only_unfinished_branches(depth: int) -> None:
    """Cancel a fan-out {quick, slow} nested ``depth`` subgraphs deep after quick
    finished; the resume runs only slow, and the merged state has both."""
    calls: Counter[str] = Counter()
    graph, prefix = nest(parallel_leaf(calls), depth)
    fan = f"{prefix}/fan" if prefix else "fan"
    store = MemoryStore()
    executor = Executor(store=store)
    async with executor.stream(graph, {}) as run:
        async for event in run:
            if isinstance(event, ev.BranchCompleted) and event.branch == "quick":
                assert event.node == fan
                run.cancel()
    latest = await store.latest(run.trace_id)
    assert latest is not None
    assert [b.branch for b in latest.branches] == ["quick"]
    assert [f.node for f in latest.frames] == LEVELS[:depth]
    async with executor.resume(graph, run.trace_id) as resumed:
        result = await resumed.wait()
    assert calls == Counter({"quick": 1, "slow": 2})
    assert result.state == {"quick": True, "slow": True}


def check_leaf(seen: list[Any]) -> Any:
    return (
        GraphBuilder("leaf")
        .task("draft", lambda s: {"text": "v1"})
        .barrier("check")
        .task("read", lambda s: seen.append(s["text"]))
        .edge("draft", "check")
        .edge("check", "read")
        .start("draft")
        .end("read")
        .build()
    )


async def waiting_checkpoint(executor: Executor, graph: Any) -> str:
    """Run ``graph`` until its first barrier waits, stop; the waiting checkpoint's id."""
    async with executor.stream(graph, {}) as run:
        async for event in run:
            if isinstance(event, ev.BarrierWaiting):
                break
    assert executor.store is not None
    latest = await executor.store.latest(run.trace_id)
    assert latest is not None and latest.pending_barrier is not None
    return latest.checkpoint_id


async def approve_fork(executor: Executor, graph: Any, cid: str, patch: Any) -> Any:
    async with executor.fork(graph, cid, patch=patch) as run:
        async for event in run:
            if isinstance(event, ev.BarrierWaiting):
                run.decide(event.barrier_id, Approve())
    assert run.result is not None
    return run.result.state


@pytest.mark.parametrize("depth", [1, 2, 3])
async def test_fork_patch_reaches_the_subgraph_and_survives_its_output(depth: int) -> None:
    """A fork of a run waiting inside subgraphs (no input mapping) patches the key in
    every frame: the child reads the patch and the parent keeps it after the child."""
    seen: list[Any] = []
    graph, _ = nest(check_leaf(seen), depth)
    executor = Executor(store=MemoryStore())
    cid = await waiting_checkpoint(executor, graph)
    state = await approve_fork(executor, graph, cid, {"text": "edited"})
    assert seen == ["edited"]
    assert state["text"] == "edited"
    assert state["check.approved"] is True


async def test_fork_patch_reaches_a_mapped_subgraph_that_holds_the_key() -> None:
    """fr/check#1 with input/output mappings: a patched key the child's state holds
    reaches the child, and the output mapping carries the patched value back."""
    seen: list[Any] = []
    leaf = (
        GraphBuilder("leaf")
        .barrier("check")
        .task("read", lambda s: seen.append(s["text"]))
        .edge("check", "read")
        .start("check")
        .end("read")
        .build()
    )
    graph = (
        GraphBuilder("root")
        .task("write", lambda s: {"text": "v1", "other": 1})
        .subgraph(
            "fr",
            leaf,
            input=lambda s: {"text": s["text"]},
            output=lambda c: {"text": c["text"], "out": c.get("other")},
        )
        .edge("write", "fr")
        .start("write")
        .end("fr")
        .build()
    )
    executor = Executor(store=MemoryStore())
    cid = await waiting_checkpoint(executor, graph)
    state = await approve_fork(executor, graph, cid, {"text": "edited", "other": 2})
    assert seen == ["edited"]
    # "other" is not in the mapped child's state: it patches the parent only.
    assert state == {"text": "edited", "other": 2, "out": None}


async def test_fork_patch_of_a_key_only_a_deep_frame_holds() -> None:
    """root > fr(input mapping) > inner, waiting at fr/inner/check#1 after inner wrote
    "note": the patched note reaches inner and is what fr and the root get from it."""
    seen: list[Any] = []
    inner = (
        GraphBuilder("inner")
        .task("draft", lambda s: {"note": "v1"})
        .barrier("check")
        .edge("draft", "check")
        .start("draft")
        .end("check")
        .build()
    )
    fr = (
        GraphBuilder("fr")
        .subgraph("inner", inner)
        .task("read", lambda s: seen.append(s["note"]))
        .edge("inner", "read")
        .start("inner")
        .end("read")
        .build()
    )
    graph = (
        GraphBuilder("root")
        .task("write", lambda s: {"text": "t"})
        .subgraph("fr", fr, input=lambda s: {"text": s["text"]})
        .edge("write", "fr")
        .start("write")
        .end("fr")
        .build()
    )
    executor = Executor(store=MemoryStore())
    cid = await waiting_checkpoint(executor, graph)
    assert executor.store is not None
    checkpoint = await executor.store.load(cid)
    assert [(f.node, "note" in f.state) for f in checkpoint.frames] == [
        ("fr", False),
        ("inner", True),
    ]
    state = await approve_fork(executor, graph, cid, {"note": "edited"})
    assert seen == ["edited"]
    assert state["note"] == "edited"
    assert state["text"] == "t"
