"""The executor: node results, sync and async tasks, bare terminal errors, back-pressure."""

from __future__ import annotations

import functools
import itertools
from collections.abc import Callable
from typing import Any

import pytest
import trio
import trio.testing
from test_events_contract import check_contract

from trio_graph import (
    BarrierError,
    Executor,
    Fallback,
    Goto,
    GraphBuilder,
    GraphError,
    MissingEdge,
    NodeExecutionFailed,
    RunResult,
    StateError,
    StepsExceeded,
    Unrouted,
)
from trio_graph import events as ev

MODES = ["sync", "async", "async_callable", "partial"]


def as_node(fn: Callable[[Any], Any], mode: str) -> Any:
    """The same behaviour as a plain function, a coroutine function, an object with an async
    ``__call__``, or a functools.partial of a coroutine function."""
    if mode == "sync":
        return fn

    async def afn(state: Any) -> Any:
        await trio.lowlevel.checkpoint()
        return fn(state)

    if mode == "async":
        return afn
    if mode == "partial":

        async def with_extra(state: Any, extra: int) -> Any:
            await trio.lowlevel.checkpoint()
            return fn(state)

        return functools.partial(with_extra, extra=1)

    class Callable_:
        async def __call__(self, state: Any) -> Any:
            return await afn(state)

    return Callable_()


def graph_for(fn: Callable[[Any], Any], mode: str) -> Any:
    """start 'a' (the node under test) with edges: if-true to 'cond', normal to 'next',
    fallback to 'fb'; each of those goes to 'end'."""
    b = GraphBuilder("results").task("a", as_node(fn, mode))
    for name in ("cond", "next", "fb", "goto", "end"):
        b.task(name, lambda s: None)
    return (
        b.edge_if("a", "cond", lambda s: s.get("take_cond", False))
        .edge("a", "next")
        .edge_fallback("a", "fb")
        .edge_fallback("a", "goto")
        .edge("cond", "end")
        .edge("next", "end")
        .edge("fb", "end")
        .edge("goto", "end")
        .start("a")
        .end("end")
        .build()
    )


async def events_of(graph: Any, state: dict[str, Any], **kw: Any) -> list[Any]:
    async with Executor(**kw).stream(graph, state) as run:
        events = [e async for e in run]
    check_contract(events, run.trace_id)
    return events


def path(events: list[Any]) -> list[str]:
    return [e.node for e in events if isinstance(e, ev.NodeStart)]


@pytest.mark.parametrize("mode", MODES)
async def test_mapping_result_updates_and_goes_next(mode: str) -> None:
    """A mapping is a set of updates; then routing goes on (normal edge)."""
    events = await events_of(graph_for(lambda s: {"x": 1, "y": 2}, mode), {"x": 0})
    assert path(events) == ["a", "next", "end"]
    assert events[-1].result.state == {"x": 1, "y": 2}
    changes = [(e.key, e.value) for e in events if isinstance(e, ev.StateChanged)]
    assert changes == [("x", 1), ("y", 2)]


@pytest.mark.parametrize("mode", MODES)
async def test_none_result_goes_next_without_updates(mode: str) -> None:
    """None: no updates, no StateChanged; routing as usual (a true condition wins)."""
    events = await events_of(graph_for(lambda s: None, mode), {"take_cond": True})
    assert path(events) == ["a", "cond", "end"]
    assert not any(isinstance(e, ev.StateChanged) for e in events)
    assert events[-1].result.state == {"take_cond": True}


@pytest.mark.parametrize("mode", MODES)
async def test_goto_result_beats_routing(mode: str) -> None:
    """Goto(target, updates=): the updates apply and the target is taken even though a
    conditional edge holds."""
    fn = lambda s: Goto("goto", updates={"g": 1})  # noqa: E731
    events = await events_of(graph_for(fn, mode), {"take_cond": True})
    assert path(events) == ["a", "goto", "end"]
    assert events[-1].result.state == {"take_cond": True, "g": 1}


@pytest.mark.parametrize("mode", MODES)
async def test_fallback_result_takes_first_fallback_edge(mode: str) -> None:
    """Fallback(reason, updates=): updates apply, the first fallback edge is taken (over a true
    condition and a normal edge), and ObservedError(Degraded, reason) follows the NodeEnd."""
    fn = lambda s: Fallback("model overloaded", updates={"f": 1})  # noqa: E731
    events = await events_of(graph_for(fn, mode), {"take_cond": True})
    assert path(events) == ["a", "fb", "end"]
    assert events[-1].result.state == {"take_cond": True, "f": 1}
    kinds = [type(e).__name__ for e in events]
    i = kinds.index("ObservedError")
    assert kinds[i - 1] == "NodeEnd" and events[i - 1].node == "a" and events[i - 1].success
    observed = events[i]
    assert observed.node == "a"
    assert (observed.error.kind, observed.error.message) == ("Degraded", "model overloaded")


@pytest.mark.parametrize("mode", MODES)
async def test_fallback_without_fallback_edge_fails(mode: str) -> None:
    """Fallback from a node with no fallback edge: NodeExecutionFailed naming the node, its
    updates not applied, NodeEnd(success=False)."""
    g = (
        GraphBuilder("nofb")
        .task("a", as_node(lambda s: Fallback("why", updates={"f": 1}), mode))
        .task("end", lambda s: None)
        .edge("a", "end")
        .start("a")
        .end("end")
        .build()
    )
    events = await events_of(g, {"k": 0})
    err = events[-1].error
    assert isinstance(err, NodeExecutionFailed) and err.node == "a"
    assert str(err) == (
        "node 'a' failed: Fallback: Fallback('why') but the node has no fallback edge"
    )
    assert events[-1].state == {"k": 0}
    assert [(e.node, e.success) for e in events if isinstance(e, ev.NodeEnd)] == [("a", False)]
    assert not any(isinstance(e, ev.ObservedError) for e in events)


class Boom(Exception):
    pass


@pytest.mark.parametrize("mode", MODES)
async def test_exception_is_node_execution_failed_with_state_as_it_stood(mode: str) -> None:
    """A node that raises: NodeExecutionFailed wrapping it (type, message, __cause__), the
    state as it stood after the previous step, NodeEnd(success=False)."""

    def explode(state: Any) -> Any:
        raise Boom("disk on fire")

    g = (
        GraphBuilder("boom")
        .task("first", lambda s: {"done": 1})
        .task("a", as_node(explode, mode))
        .edge("first", "a")
        .start("first")
        .end("a")
        .build()
    )
    events = await events_of(g, {"k": 0})
    terminal = events[-1]
    err = terminal.error
    assert isinstance(err, NodeExecutionFailed)
    assert (err.node, err.error_type, err.message) == ("a", "Boom", "disk on fire")
    assert str(err) == "node 'a' failed: Boom: disk on fire"
    assert isinstance(err.__cause__, Boom)
    assert terminal.state == {"k": 0, "done": 1}
    assert [(e.node, e.success) for e in events if isinstance(e, ev.NodeEnd)] == [
        ("first", True),
        ("a", False),
    ]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(
    ("value", "type_name"), [(42, "int"), ("text", "str"), ([("k", 1)], "list"), ((1,), "tuple")]
)
async def test_result_not_a_mapping_is_state_error(mode: str, value: Any, type_name: str) -> None:
    """A result that is not a mapping, None, Goto or Fallback is a StateError naming the node."""
    g = GraphBuilder("bad").task("a", as_node(lambda s: value, mode)).start("a").end("a").build()
    events = await events_of(g, {})
    err = events[-1].error
    assert isinstance(err, StateError) and err.node == "a"
    assert str(err) == (
        "node result must be a mapping of updates, None, Goto or Fallback, "
        f"got {type_name} (node 'a')"
    )
    assert [(e.node, e.success) for e in events if isinstance(e, ev.NodeEnd)] == [("a", False)]


async def test_goto_target_not_a_str_is_state_error() -> None:
    """Goto with a non-str target is a StateError naming the node."""
    g = GraphBuilder("bad").task("a", lambda s: Goto(3)).start("a").end("a").build()  # type: ignore[arg-type]
    with pytest.raises(
        StateError, match=r"^Goto target must be a node name, got int \(node 'a'\)$"
    ):
        await Executor().run(g, {})


# -- bare errors ---------------------------------------------------------------------------
def _failing_graph(kind: str) -> tuple[Any, type[GraphError], int]:
    b = GraphBuilder(kind).task("end", lambda s: None)
    max_steps = 50
    if kind == "node":
        b.task("a", lambda s: 1 / 0).edge("a", "end")
        err: type[GraphError] = NodeExecutionFailed
    elif kind == "state":
        b.task("a", lambda s: 5).edge("a", "end")
        err = StateError
    elif kind == "goto":
        b.task("a", lambda s: Goto("zz")).edge("a", "end")
        err = MissingEdge
    elif kind == "unrouted":
        b.task("a", lambda s: None).edge_if("a", "end", lambda s: False)
        err = Unrouted
    else:
        b.task("a", lambda s: None).edge("a", "a").edge_if("a", "end", lambda s: False)
        err, max_steps = StepsExceeded, 5
    return b.start("a").end("end").build(), err, max_steps


@pytest.mark.parametrize("kind", ["node", "state", "goto", "unrouted", "steps"])
async def test_run_raises_the_bare_terminal_error(kind: str) -> None:
    """executor.run() raises the terminal error itself, never an ExceptionGroup, and it is the
    very error the GraphError event carried."""
    graph, err_type, max_steps = _failing_graph(kind)
    with pytest.raises(BaseException) as info:
        await Executor(max_steps=max_steps).run(graph, {})
    assert type(info.value) is err_type, repr(info.value)
    assert not isinstance(info.value, BaseExceptionGroup)
    if kind == "node":
        assert isinstance(info.value.__cause__, ZeroDivisionError)


@pytest.mark.parametrize("kind", ["node", "state", "goto", "unrouted", "steps"])
async def test_wait_inside_stream_raises_the_bare_error(kind: str) -> None:
    """run.wait() inside the block raises the bare terminal error, and it leaves the
    ``async with executor.stream()`` block bare as well; run.error is that same object."""
    graph, err_type, max_steps = _failing_graph(kind)
    with pytest.raises(BaseException) as info:
        async with Executor(max_steps=max_steps).stream(graph, {}) as run:
            await run.wait()
    assert type(info.value) is err_type, repr(info.value)
    assert run.error is info.value


async def test_consumer_error_leaves_the_block_bare() -> None:
    """An exception raised by the consumer inside the block comes out as itself."""
    graph, _, _ = _failing_graph("node")
    with pytest.raises(BaseException) as info:
        async with Executor().stream(graph, {}):
            raise LookupError("mine")
    assert type(info.value) is LookupError and str(info.value) == "mine"


async def test_steering_error_leaves_the_block_bare() -> None:
    """A BarrierError from run.decide_all on a non-barrier leaves the block bare."""
    graph, _, _ = _failing_graph("node")
    with pytest.raises(BaseException) as info:
        async with Executor().stream(graph, {}) as run:
            from trio_graph import Approve

            run.decide_all("a", Approve())
    assert type(info.value) is BarrierError
    assert str(info.value) == "decision for a node that is not a barrier (node 'a')"


async def test_run_returns_the_result() -> None:
    """executor.run() returns a RunResult: trace id, final state, execution log, duration."""
    g = (
        GraphBuilder("ok")
        .task("a", lambda s: {"i": 1})
        .task("b", lambda s: {"i": s["i"] + 1})
        .edge("a", "b")
        .start("a")
        .end("b")
        .build()
    )
    result = await Executor().run(g, {})
    assert isinstance(result, RunResult)
    assert result.state == {"i": 2}
    assert [(x.step, x.node, x.success) for x in result.execution_log] == [
        (1, "a", True),
        (2, "b", True),
    ]
    assert len(result.trace_id) >= 8 and result.duration >= 0


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        ({"max_steps": 0}, r"^max_steps must be a positive int, got 0$"),
        ({"buffer": 0}, r"^buffer must be a positive int, got 0$"),
    ],
)
def test_executor_rejects_bad_settings(kw: dict[str, int], message: str) -> None:
    """max_steps and buffer must be positive ints."""
    with pytest.raises(ValueError, match=message):
        Executor(**kw)


# -- back-pressure -----------------------------------------------------------------------------
async def test_slow_consumer_blocks_the_run_instead_of_buffering(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """A 2-node loop that would produce 100,000 events, with a consumer that does not read:
    the run blocks once the bounded buffer is full (steps taken <= buffer + a constant), and
    advances only as far as the consumer reads."""
    buffer = 16
    steps = 0

    def tick(state: Any) -> None:
        nonlocal steps
        steps += 1

    g = (
        GraphBuilder("busy")
        .task("a", tick)
        .task("b", tick)
        .task("end", tick)
        .edge_if("a", "end", lambda s: False)
        .edge("a", "b")
        .edge("b", "a")
        .start("a")
        .end("end")
        .build()
    )
    # Each step sends NodeStart + NodeEnd: 50,000 steps are 100,000 events.
    async with Executor(max_steps=50_000, buffer=buffer).stream(g, {}) as run:
        await trio.testing.wait_all_tasks_blocked()
        blocked_at = steps
        assert 1 <= blocked_at <= buffer // 2 + 2
        await trio.sleep(3600)  # time passes; nobody reads; nothing moves
        await trio.testing.wait_all_tasks_blocked()
        assert steps == blocked_at
        assert not run.done
        consumed = 0
        async for _ in run:
            consumed += 1
            if consumed == 1000:
                break
        await trio.testing.wait_all_tasks_blocked()
        # What was read, plus at most the channel and the handle's read-ahead, both bounded.
        assert steps <= (consumed + 2 * buffer) // 2 + 2
        assert steps >= consumed // 2
        run.cancel()


async def test_plain_function_run_does_not_starve_other_tasks() -> None:
    """A long run of plain (sync) nodes with room in the buffer still yields to the scheduler
    every few steps, so a sibling task keeps running during it."""
    ticks = 0
    seen: list[int] = []

    async def ticker() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await trio.lowlevel.checkpoint()

    def node(state: Any) -> None:
        seen.append(ticks)

    g = (
        GraphBuilder("hog")
        .task("a", node)
        .task("b", node)
        .task("end", node)
        .edge_if("a", "end", lambda s: False)
        .edge("a", "b")
        .edge("b", "a")
        .start("a")
        .end("end")
        .build()
    )
    async with trio.open_nursery() as nursery:
        nursery.start_soon(ticker)
        await trio.lowlevel.checkpoint()
        with pytest.raises(StepsExceeded):
            await Executor(max_steps=2000, buffer=100_000).run(g, {})
        nursery.cancel_scope.cancel()
    assert len(seen) == 2000
    longest = max(sum(1 for _ in group) for _, group in itertools.groupby(seen))
    assert longest <= 32, f"{longest} steps in a row without letting another task run"


async def test_goto_from_the_end_node_without_edge_is_missing_edge() -> None:
    """A Goto without an edge is a MissingEdge even from the end node (never ignored)."""
    g = (
        GraphBuilder("end-goto")
        .task("a", lambda s: None)
        .task("end", lambda s: Goto("nowhere"))
        .edge("a", "end")
        .start("a")
        .end("end")
        .build()
    )
    with pytest.raises(MissingEdge):
        await Executor().run(g, {})
