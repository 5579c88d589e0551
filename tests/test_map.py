"""Map nodes (``GraphBuilder.map``, DESIGN §15): one branch per item of a run-time list,
merged in item order. Timed tests run on the ``autojump_clock`` (MockClock)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import pytest
import trio
import trio.testing

from trio_graph import (
    Executor,
    GraphBuilder,
    InvalidGraph,
    NodeContext,
    NodeExecutionFailed,
    NodeTimeout,
    RetryPolicy,
    StateError,
    reducers,
)
from trio_graph import events as ev
from trio_graph._model.graph import Graph

Fn = Callable[..., Any]


def map_graph(
    fn: Fn,
    *,
    over: Fn = lambda s: s["items"],
    reducer: Any = reducers.append,
    **options: Any,
) -> Graph:
    """``m`` (the map, its results appended to ``out``) -> ``end`` (a no-op task)."""
    builder = (
        GraphBuilder("mapping")
        .map("m", fn, over=over, **options)
        .task("end", lambda s: None)
        .edge("m", "end")
        .start("m")
        .end("end")
    )
    if reducer is not None:
        builder.reducer("out", reducer)
    return builder.build()


async def run_events(
    graph: Graph, state: Mapping[str, Any], executor: Executor | None = None
) -> tuple[list[ev.Event], Any]:
    events: list[ev.Event] = []
    async with (executor or Executor()).stream(graph, dict(state)) as run:
        async for event in run:
            events.append(event)
    return events, run


def of(events: list[ev.Event], kind: type) -> list[Any]:
    return [e for e in events if isinstance(e, kind)]


async def sleep_then_echo(item: Any, state: Mapping[str, Any]) -> Any:
    """Sleeps ``item["delay"]`` virtual seconds, then appends ``item["v"]`` to ``out``."""
    await trio.sleep(item["delay"])
    return {"out": item["v"]}


async def test_items_merge_in_item_order_under_reversed_completion(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """Items finishing in reverse order (the last first) still merge in item order, and
    the BranchCompleted events, in completion order, name the branches ``m[i]``."""
    items = [{"v": i, "delay": 10 - i} for i in range(10)]
    events, run = await run_events(map_graph(sleep_then_echo), {"items": items})
    assert run.result.state["out"] == list(range(10))
    completed = of(events, ev.BranchCompleted)
    assert [e.branch for e in completed] == [f"m[{i}]" for i in reversed(range(10))]
    assert all(e.success and e.outcome == "succeeded" for e in completed)
    assert of(events, ev.ParallelStarted)[0].branch_count == 10
    assert trio.current_time() == 10


@pytest.mark.parametrize("n", [0, 1, 500])
async def test_zero_one_and_five_hundred_items(
    autojump_clock: trio.testing.MockClock, n: int
) -> None:
    """0 items is an empty fork (valid, nothing merged, the run goes on); 1 and 500 items
    each run once, all concurrently, merged in item order."""
    items = [{"v": i, "delay": 1} for i in range(n)]
    events, run = await run_events(map_graph(sleep_then_echo), {"items": items})
    assert run.result.state.get("out", []) == list(range(n))
    assert len(of(events, ev.BranchCompleted)) == n
    assert of(events, ev.ParallelStarted)[0].branch_count == n
    assert trio.current_time() == (1 if n else 0)
    assert [e.node for e in of(events, ev.NodeEnd)] == ["m", "end"]


async def test_fn_gets_item_and_state_and_a_context_when_it_takes_one(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """``fn(item, state)`` sees the pre-fork state; ``fn(item, state, ctx)`` (detected at
    build) gets a NodeContext naming its branch, and its NodeOutput carries the branch."""
    seen: list[tuple[Any, Any, Any]] = []

    async def with_ctx(item: int, state: Mapping[str, Any], ctx: NodeContext) -> Any:
        seen.append((item, state["base"], ctx.branch))
        await ctx.emit(item)
        return {"out": item + state["base"]}

    events, run = await run_events(map_graph(with_ctx), {"items": [1, 2], "base": 10})
    assert run.result.state["out"] == [11, 12]
    assert sorted(seen) == [(1, 10, "m[0]"), (2, 10, "m[1]")]
    assert sorted((e.branch, e.data) for e in of(events, ev.NodeOutput)) == [
        ("m[0]", 1),
        ("m[1]", 2),
    ]

    def plain(item: int, state: Mapping[str, Any]) -> Any:
        return {"out": -item}

    result = await Executor().run(map_graph(plain), {"items": [1, 2]})
    assert result.state["out"] == [-1, -2]


async def test_limit_bounds_items_in_flight(autojump_clock: trio.testing.MockClock) -> None:
    """``limit=2``: six one-second items take three seconds, never more than two at once."""
    running = peak = 0

    async def item_fn(item: int, state: Mapping[str, Any]) -> Any:
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        await trio.sleep(1)
        running -= 1
        return {"out": item}

    result = await Executor().run(map_graph(item_fn, limit=2), {"items": list(range(6))})
    assert result.state["out"] == list(range(6))
    assert (peak, trio.current_time()) == (2, 3)


async def test_per_item_timeout_names_the_item(autojump_clock: trio.testing.MockClock) -> None:
    """``timeout`` bounds each item: the slow one is a NodeTimeout naming ``m[1]``, at the
    timeout, and (fail_fast) nothing merges."""
    items = [{"v": 0, "delay": 1}, {"v": 1, "delay": 100}, {"v": 2, "delay": 1}]
    with pytest.raises(NodeTimeout) as info:
        await Executor().run(map_graph(sleep_then_echo, timeout=5), {"items": items})
    assert (info.value.node, info.value.branch, trio.current_time()) == ("m", "m[1]", 5)


async def test_per_item_retry_retries_only_the_failing_item(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """``retry`` is per item: item 1 fails twice then succeeds; each retry is announced
    (ObservedError naming the branch); the others ran once; the merge is complete."""
    calls: dict[int, int] = {}

    async def flaky(item: int, state: Mapping[str, Any]) -> Any:
        calls[item] = calls.get(item, 0) + 1
        if item == 1 and calls[item] < 3:
            raise ConnectionError(f"try {calls[item]}")
        return {"out": item}

    policy = RetryPolicy(max_attempts=3, backoff=1, jitter=False)
    events, run = await run_events(map_graph(flaky, retry=policy), {"items": [0, 1, 2]})
    assert run.result.state["out"] == [0, 1, 2]
    assert calls == {0: 1, 1: 3, 2: 1}
    retries = of(events, ev.ObservedError)
    assert [(e.node, e.error.kind, e.error.attempt) for e in retries] == [
        ("m", "Retrying", 1),
        ("m", "Retrying", 2),
    ]
    assert retries[0].error.message.startswith("branch 'm[1]': attempt 1 failed")
    assert trio.current_time() == 3  # back-off 1 s then 2 s


async def test_retry_exhausted_names_the_item_and_the_attempts(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """An item failing every attempt ends the map with its error, naming the branch and
    counting the attempts."""

    async def bad(item: int, state: Mapping[str, Any]) -> Any:
        raise ValueError(f"no {item}")

    policy = RetryPolicy(max_attempts=2, backoff=0, jitter=False)
    with pytest.raises(NodeExecutionFailed) as info:
        await Executor().run(map_graph(bad, retry=policy), {"items": [7]})
    err = info.value
    assert (err.branch, err.attempts, err.message) == ("m[0]", 2, "no 7")


async def test_fail_fast_cancels_every_other_item_at_once(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """fail_fast: item 2 failing at t=1 cancels the hour-long items at t=1; each gets a
    BranchCompleted with outcome "cancelled"."""

    async def item_fn(item: int, state: Mapping[str, Any]) -> Any:
        if item == 2:
            await trio.sleep(1)
            raise RuntimeError("two")
        await trio.sleep(3600)
        return {"out": item}

    events, run = await run_events(map_graph(item_fn), {"items": [0, 1, 2, 3]})
    assert isinstance(run.error, NodeExecutionFailed)
    assert (run.error.branch, trio.current_time()) == ("m[2]", 1)
    outcomes = {e.branch: e.outcome for e in of(events, ev.BranchCompleted)}
    assert outcomes == {
        "m[0]": "cancelled",
        "m[1]": "cancelled",
        "m[2]": "failed",
        "m[3]": "cancelled",
    }


async def test_collect_all_lists_every_failure_in_item_order(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """collect_all: every item runs; the error lists each failed item, in item order."""

    async def item_fn(item: int, state: Mapping[str, Any]) -> Any:
        await trio.sleep(10 - item)
        if item % 2:
            raise ValueError(f"odd {item}")
        return {"out": item}

    with pytest.raises(NodeExecutionFailed) as info:
        await Executor().run(map_graph(item_fn, strategy="collect_all"), {"items": list(range(6))})
    failures = info.value.failures
    assert [(f.branch, f.message) for f in failures] == [
        ("m[1]", "odd 1"),
        ("m[3]", "odd 3"),
        ("m[5]", "odd 5"),
    ]
    assert trio.current_time() == 10


@pytest.mark.parametrize("value", [(1, 2), {"a": 1}, "abc", None, 3])
async def test_over_returning_a_non_list_names_the_node_and_the_type(value: Any) -> None:
    """``over`` returning anything but a list is a NodeExecutionFailed naming the node and
    the type it got; nothing runs."""
    ran: list[Any] = []
    graph = map_graph(lambda item, s: ran.append(item), over=lambda s: value)
    with pytest.raises(NodeExecutionFailed) as info:
        await Executor().run(graph, {})
    assert info.value.node == "m"
    assert info.value.error_type == "TypeError"
    assert f"got {type(value).__name__}" in str(info.value)
    assert "map node 'm'" in str(info.value)
    assert ran == []


async def test_over_raising_is_the_nodes_failure() -> None:
    """``over`` raising is the map node's NodeExecutionFailed, the exception its cause."""
    with pytest.raises(NodeExecutionFailed) as info:
        await Executor().run(map_graph(lambda i, s: None), {})  # no "items" key
    assert (info.value.node, info.value.error_type) == ("m", "KeyError")
    assert isinstance(info.value.__cause__, KeyError)


async def test_conflicting_items_without_a_reducer_are_a_merge_conflict() -> None:
    """Two items writing a key with no reducer: the parallel conflict rule, naming them."""
    graph = map_graph(lambda item, s: {"out": item}, reducer=None)
    with pytest.raises(StateError) as info:
        await Executor().run(graph, {"items": [1, 2]})
    assert info.value.key == "out"
    assert info.value.branches == ["m[0]", "m[1]"]


def test_builder_refuses_bad_map_options() -> None:
    """build() lists every bad option of a map node at once."""
    with pytest.raises(InvalidGraph) as info:
        map_graph(
            "not callable",  # type: ignore[arg-type]
            over=42,  # type: ignore[arg-type]
            limit=0,
            strategy="sometimes",
            timeout=-1,
        )
    text = str(info.value)
    for part in ("fn is not callable", "over is not callable", "limit", "strategy", "timeout"):
        assert part in text


def test_mermaid_draws_a_map_node_as_name_star() -> None:
    """A map node is drawn ``[["name[*]"]]`` (one branch per item, known at run time)."""
    text = map_graph(lambda item, s: None).to_mermaid()
    assert '    n_m[["m[*]"]]' in text
    assert "    n_m --> n_end" in text


async def test_live_view_shows_map_progress(autojump_clock: trio.testing.MockClock) -> None:
    """The live view announces the items of a map (``m[*]: 50 items``), keeps a status line
    ``m[*]: 7/50 done...`` while they run, and one line per item with its outcome."""
    import io

    from trio_graph._cli.view import Terminal

    items = [{"v": i, "delay": 1 + i} for i in range(50)]
    graph = map_graph(sleep_then_echo)
    out = io.StringIO()
    view = Terminal(out, max_steps=10, graph=graph, live=True, clock=trio.current_time)
    statuses = []
    async with Executor().stream(graph, {"items": items}) as run:
        async for event in run:
            view.show(event)
            statuses.append(view.status())
    text = out.getvalue()
    assert "m[*]: 50 items" in text
    assert "m[*]: 7/50 done... 7.0 s (run 7.0 s)" in [s.strip() for s in statuses]
    assert "m.m[6] ok in 7.00 s (7/50 done)" in text
