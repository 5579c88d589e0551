"""``NodeContext`` (DESIGN §14): nodes that take a second parameter stream output with
``ctx.emit`` and know where they are. Time is virtual (``autojump_clock``)."""

from __future__ import annotations

from typing import Any

import pytest
import trio

from trio_graph import Executor, GraphBuilder, NodeContext, RetryPolicy, StateError, serde
from trio_graph import events as ev
from trio_graph.errors import Cancelled, NodeExecutionFailed
from trio_graph.stores.memory import MemoryStore


async def speak(state: Any, ctx: NodeContext) -> dict[str, Any]:
    for word in ("hello", "trio", "world"):
        await ctx.emit(word)
    return {"said": 3}


def one(fn: Any, **options: Any) -> Any:
    return GraphBuilder("ctx").task("n", fn, **options).start("n").end("n").build()


async def test_emitted_outputs_arrive_in_order_inside_the_span() -> None:
    """ctx.emit sends NodeOutput events in order, after the node's NodeStart and before
    its NodeEnd, with its span id; the node's updates still commit."""
    async with Executor().stream(one(speak), {}) as run:
        events = [e async for e in run]
    kinds = [type(e).__name__ for e in events]
    start, end = kinds.index("NodeStart"), kinds.index("NodeEnd")
    outputs = [e for e in events if isinstance(e, ev.NodeOutput)]
    assert [o.data for o in outputs] == ["hello", "trio", "world"]
    assert all(start < events.index(o) < end for o in outputs)
    assert {o.span_id for o in outputs} == {events[start].span_id}  # type: ignore[attr-defined]
    assert run.result is not None and run.result.state == {"said": 3}


async def test_one_argument_nodes_get_no_context() -> None:
    """A node of one parameter is called with the state only (built as before)."""
    graph = one(lambda state: {"x": 1})
    assert graph.nodes["n"].takes_context is False  # type: ignore[union-attr]
    assert one(speak).nodes["n"].takes_context is True  # type: ignore[union-attr]
    assert (await Executor().run(graph, {})).state == {"x": 1}


async def test_a_stalled_consumer_holds_the_node_back(autojump_clock: Any) -> None:
    """With a one-event buffer, a node emitting 50 outputs never runs more than the buffer
    ahead of a consumer that reads one event per second (back-pressure, bounded memory)."""
    emitted = 0

    async def chatty(state: Any, ctx: NodeContext) -> None:
        nonlocal emitted
        for i in range(50):
            await ctx.emit(i)
            emitted += 1

    read = 0
    async with Executor(buffer=1).stream(one(chatty), {}) as run:
        async for event in run:
            if isinstance(event, ev.NodeOutput):
                read += 1
                assert emitted - read <= 2  # one in the buffer, one being handed over
                await trio.sleep(1)
    assert read == 50 and emitted == 50


async def test_cancelling_mid_emit_keeps_the_event_contract(autojump_clock: Any) -> None:
    """Cancelling a run while its node waits to emit ends the span with NodeEnd(False) and
    one terminal Cancelled naming the node."""

    async def endless(state: Any, ctx: NodeContext) -> None:
        while True:
            await ctx.emit("tick")

    async with Executor(buffer=1).stream(one(endless), {}) as run:
        seen = []
        async for event in run:
            seen.append(event)
            if len(seen) == 5:
                run.cancel()
    ends = [e for e in seen if isinstance(e, ev.NodeEnd)]
    assert [e.success for e in ends] == [False]
    assert isinstance(seen[-1], ev.GraphError) and isinstance(seen[-1].error, Cancelled)
    assert seen[-1].error.node == "n"
    assert sum(isinstance(e, ev.GraphError | ev.GraphComplete) for e in seen) == 1


async def test_the_context_names_the_run_the_node_and_the_attempt(autojump_clock: Any) -> None:
    """ctx carries run id, trace id, node, step and, under retries, the attempt number;
    ctx.deadline is the node's timeout deadline."""
    seen: list[tuple[Any, ...]] = []

    async def flaky(state: Any, ctx: NodeContext) -> None:
        seen.append((ctx.run_id, ctx.trace_id, ctx.node, ctx.step, ctx.attempt))
        assert ctx.deadline == pytest.approx(trio.current_time() + 5)
        if ctx.attempt < 3:
            raise ValueError("not yet")

    graph = one(flaky, timeout=5, retry=RetryPolicy(max_attempts=3, backoff=1, jitter=False))
    result = await Executor().run(graph, {})
    assert [s[4] for s in seen] == [1, 2, 3]
    assert {s[:4] for s in seen} == {(result.run_id, result.trace_id, "n", 1)}


async def test_branches_emit_with_their_branch_name() -> None:
    """Parallel branches that take a context emit NodeOutput naming the parallel node and
    their branch."""

    async def left(state: Any, ctx: NodeContext) -> dict[str, Any]:
        await ctx.emit("from left")
        return {"left": 1}

    graph = (
        GraphBuilder("fan")
        .parallel("p", {"left": left, "right": lambda s: {"right": 1}})
        .start("p")
        .end("p")
        .build()
    )
    async with Executor().stream(graph, {}) as run:
        outputs = [e async for e in run if isinstance(e, ev.NodeOutput)]
    assert [(o.node, o.branch, o.data) for o in outputs] == [("p", "left", "from left")]


async def test_with_a_store_emitted_data_must_be_json() -> None:
    """With a store, emitting a value a store cannot keep (a set) fails the node with a
    StateError naming it; without a store it goes through."""

    async def odd(state: Any, ctx: NodeContext) -> None:
        await ctx.emit({1, 2})

    with pytest.raises(NodeExecutionFailed) as info:
        await Executor(store=MemoryStore()).run(one(odd), {})
    assert isinstance(info.value.__cause__, StateError)
    assert "node 'n' emitted a value a store cannot keep" in str(info.value.__cause__)
    await Executor().run(one(odd), {})


def test_node_output_round_trips_through_the_converter() -> None:
    """NodeOutput is an event like the others: JSON through the one converter and back."""
    event = ev.NodeOutput("t", "n", 3, {"token": "hi"}, "b")
    assert serde.from_json(serde.to_json(event, ev.Event), ev.Event) == event


def test_a_blocking_node_cannot_take_a_context() -> None:
    """blocking=True with a two-parameter function is a build problem naming the node."""
    with pytest.raises(Exception, match="node 'n': a blocking=True function cannot take"):
        one(lambda state, ctx: None, blocking=True)


async def test_the_live_view_and_opentelemetry_show_outputs() -> None:
    """The terminal view prints each output under its node; OpenTelemetry records an
    `output` event on the node's span."""
    import io

    from trio_graph._cli.view import Terminal

    out = io.StringIO()
    view = Terminal(out, live=False)
    async with Executor().stream(one(speak), {}) as run:
        lines = [line async for e in run for line in view.lines(e)]
    outputs = [line.split() for line in lines if " > " in line]
    assert outputs == [["n", ">", "hello"], ["n", ">", "trio"], ["n", ">", "world"]]
    sdk_trace = pytest.importorskip("opentelemetry.sdk.trace")
    export = pytest.importorskip("opentelemetry.sdk.trace.export")
    memory = pytest.importorskip("opentelemetry.sdk.trace.export.in_memory_span_exporter")
    from trio_graph.otel import OtelSpans

    exporter = memory.InMemorySpanExporter()
    provider = sdk_trace.TracerProvider()
    provider.add_span_processor(export.SimpleSpanProcessor(exporter))
    async with Executor().stream(one(speak), {}) as run:
        async for _ in OtelSpans(tracer_provider=provider).watch(run):
            pass
    node = next(s for s in exporter.get_finished_spans() if s.name.endswith(" n"))
    assert [e.attributes["trio_graph.data"] for e in node.events if e.name == "output"] == [
        '"hello"',
        '"trio"',
        '"world"',
    ]
