"""Parallel nodes at run time (trio_graph/fanout.py): strategies, limits, events, merges,
cancellation and branch timeouts. Timed tests run on the ``autojump_clock`` (MockClock)."""

from __future__ import annotations

import math
import types
from collections.abc import Callable, Mapping
from typing import Any

import pytest
import trio
import trio.testing

from trio_graph import (
    Cancelled,
    CheckpointPolicy,
    Executor,
    GraphBuilder,
    NodeExecutionFailed,
    NodeTimeout,
    StateError,
    reducers,
)
from trio_graph import events as ev
from trio_graph._model.graph import Graph
from trio_graph.errors import BranchFailure
from trio_graph.stores.memory import MemoryStore

Fn = Callable[[Mapping[str, Any]], Any]


def par_graph(
    branches: Mapping[str, Fn],
    *,
    strategy: Any = "fail_fast",
    limit: int | None = None,
    timeouts: Mapping[str, float] | None = None,
    reducer: Mapping[str, Any] | None = None,
) -> Graph:
    """``par`` (the fan-out) -> ``end`` (a no-op task)."""
    builder = (
        GraphBuilder("fanout")
        .parallel("par", branches, strategy=strategy, limit=limit, timeouts=timeouts)
        .task("end", lambda s: None)
        .edge("par", "end")
        .start("par")
        .end("end")
    )
    for key, r in (reducer or {}).items():
        builder.reducer(key, r)
    return builder.build()


def sleeper(
    delay: float,
    updates: Mapping[str, Any] | None = None,
    log: list[str] | None = None,
    name: str = "",
) -> Fn:
    """A branch that sleeps ``delay`` then returns ``updates``; logs its end (or cancel)."""

    async def branch(state: Mapping[str, Any]) -> Any:
        try:
            await trio.sleep(delay)
        except trio.Cancelled:
            if log is not None:
                log.append(f"{name} cancelled at {trio.current_time():g}")
            raise
        if log is not None:
            log.append(f"{name} done at {trio.current_time():g}")
        return updates

    return branch


def failer(delay: float, exc: Exception) -> Fn:
    async def branch(state: Mapping[str, Any]) -> Any:
        await trio.sleep(delay)
        raise exc

    return branch


async def run_events(
    graph: Graph, state: Mapping[str, Any] | None = None, executor: Executor | None = None
) -> tuple[list[ev.Event], Any]:
    """All events of a run, and the run handle."""
    events: list[ev.Event] = []
    async with (executor or Executor()).stream(graph, dict(state or {})) as run:
        async for event in run:
            events.append(event)
    return events, run


def of(events: list[ev.Event], kind: type) -> list[Any]:
    return [e for e in events if isinstance(e, kind)]


# -- fail_fast ---------------------------------------------------------------------------


async def test_fail_fast_cancels_an_hour_long_sibling_at_once(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """fail_fast: a failure at t=1 cancels a sibling sleeping an hour at t=1, not later."""
    log: list[str] = []
    graph = par_graph(
        {"slow": sleeper(3600, log=log, name="slow"), "bad": failer(1, ValueError("boom"))}
    )
    t0 = trio.current_time()
    with pytest.raises(NodeExecutionFailed) as info:
        await Executor().run(graph, {})
    assert trio.current_time() - t0 == 1
    assert log == ["slow cancelled at 1"]
    err = info.value
    assert (err.node, err.branch, err.error_type, err.message) == (
        "par",
        "bad",
        "ValueError",
        "boom",
    )
    assert isinstance(err.__cause__, ValueError)
    assert str(err) == "node 'par' branch 'bad' failed: ValueError: boom"


async def test_fail_fast_immediate_failure_leaves_the_clock_where_it_was(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """fail_fast: a branch failing without sleeping ends the run with no time passing."""

    def bad(state: Mapping[str, Any]) -> Any:
        raise RuntimeError("at once")

    graph = par_graph({"slow": sleeper(3600), "bad": bad})
    t0 = trio.current_time()
    with pytest.raises(
        NodeExecutionFailed,
        match=r"^node 'par' branch 'bad' failed: "
        r"RuntimeError: at once$",
    ):
        await Executor().run(graph, {})
    assert trio.current_time() == t0


async def test_fail_fast_cancels_siblings_even_while_the_event_channel_is_full(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """fail_fast cancels siblings before sending its event: a slow consumer delays nothing."""
    log: list[str] = []
    graph = par_graph(
        {"slow": sleeper(3600, log=log, name="slow"), "bad": failer(1, ValueError("boom"))}
    )
    async with Executor(buffer=3).stream(graph, {}) as run:
        # GraphStart, NodeStart and ParallelStarted fill the channel; nobody reads it
        # until t=100, so the failing branch cannot send its BranchCompleted at t=1.
        await trio.sleep(100)
        events = [event async for event in run]
    assert log == ["slow cancelled at 1"]
    assert isinstance(run.error, NodeExecutionFailed) and run.error.branch == "bad"
    completed = {e.branch: e.success for e in of(events, ev.BranchCompleted)}
    assert completed == {"bad": False, "slow": False}


async def test_fail_fast_two_failures_at_once_name_the_first_declared(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """fail_fast: branches failing without a checkpoint both fail; the error names the
    first declared, whatever order the scheduler ran them in."""

    def raiser(exc: Exception) -> Fn:
        def branch(state: Mapping[str, Any]) -> Any:
            raise exc

        return branch

    graph = par_graph(
        {"ok": sleeper(0, {"x": 1}), "b1": raiser(KeyError("k")), "b2": raiser(ValueError("v"))}
    )
    for _ in range(10):  # trio shuffles each scheduling batch
        events, run = await run_events(graph)
        assert isinstance(run.error, NodeExecutionFailed)
        assert (run.error.branch, run.error.error_type) == ("b1", "KeyError")
        completed = {e.branch: e.success for e in of(events, ev.BranchCompleted)}
        assert completed == {"ok": False, "b1": False, "b2": False}
        assert isinstance(events[-1], ev.GraphError) and events[-1].state == {}


async def test_fail_fast_wraps_a_foreign_node_execution_failed(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """A branch raising some other node's NodeExecutionFailed is reported as this branch's."""

    async def nested(state: Mapping[str, Any]) -> Any:
        raise NodeExecutionFailed("inner", "ValueError", "deep")

    graph = par_graph({"a": sleeper(1), "n": nested})
    with pytest.raises(NodeExecutionFailed) as info:
        await Executor().run(graph, {})
    err = info.value
    assert (err.node, err.branch, err.error_type) == ("par", "n", "NodeExecutionFailed")
    assert isinstance(err.__cause__, NodeExecutionFailed) and err.__cause__.node == "inner"


# -- collect_all ---------------------------------------------------------------------------


async def test_collect_all_finishes_every_branch_and_reports_every_failure(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """collect_all: all branches run to the end; failures come together, in declaration order."""
    log: list[str] = []
    graph = par_graph(
        {
            "late": sleeper(5, {"late": 1}, log, "late"),
            "c": failer(2, KeyError("missing")),
            "b": failer(1, ValueError("bad value")),
            "ok": sleeper(0, {"ok": 1}, log, "ok"),
        },
        strategy="collect_all",
    )
    t0 = trio.current_time()
    events, run = await run_events(graph, {"seed": 0})
    assert trio.current_time() - t0 == 5
    assert log == ["ok done at 0", "late done at 5"]
    err = run.error
    assert isinstance(err, NodeExecutionFailed)
    assert (err.node, err.branch, err.error_type) == ("par", None, "ExceptionGroup")
    assert err.failures == [
        BranchFailure("c", "KeyError", "'missing'"),
        BranchFailure("b", "ValueError", "bad value"),
    ]
    assert str(err) == (
        "node 'par' failed in 2 branch(es): c (KeyError: 'missing'), b (ValueError: bad value)"
    )
    group = err.__cause__
    assert isinstance(group, ExceptionGroup)
    assert [type(e) for e in group.exceptions] == [KeyError, ValueError]
    assert [e.__notes__ for e in group.exceptions] == [["in branch 'c'"], ["in branch 'b'"]]
    # Nothing merged: the successful branches' updates are not applied either.
    assert isinstance(events[-1], ev.GraphError) and events[-1].state == {"seed": 0}
    completed = {e.branch: e.success for e in of(events, ev.BranchCompleted)}
    assert completed == {"late": True, "c": False, "b": False, "ok": True}


async def test_collect_all_without_failures_merges_everything(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """collect_all with no failure merges like fail_fast."""
    graph = par_graph(
        {"a": sleeper(2, {"a": 1}), "b": sleeper(1, {"b": 2})}, strategy="collect_all"
    )
    result = await Executor().run(graph, {})
    assert result.state == {"a": 1, "b": 2}


async def test_collect_all_reports_a_branch_timeout_among_the_failures(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """collect_all: a timed-out branch is one of the failures, as NodeTimeout."""
    graph = par_graph(
        {"t": sleeper(60), "e": failer(1, ValueError("x")), "ok": sleeper(9)},
        strategy="collect_all",
        timeouts={"t": 3},
    )
    with pytest.raises(NodeExecutionFailed) as info:
        await Executor().run(graph, {})
    assert [(f.branch, f.error_type) for f in info.value.failures] == [
        ("t", "NodeTimeout"),
        ("e", "ValueError"),
    ]
    assert isinstance(info.value.__cause__, ExceptionGroup)
    assert isinstance(info.value.__cause__.exceptions[0], NodeTimeout)


# -- limit ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("limit", "peak", "elapsed"), [(1, 1, 6), (2, 2, 3), (4, 4, 2), (None, 6, 1)]
)
async def test_limit_bounds_how_many_branches_run_at_once(
    autojump_clock: trio.testing.MockClock, limit: int | None, peak: int, elapsed: float
) -> None:
    """limit=N: never more than N branches run concurrently (6 branches of 1 s each)."""
    active = 0
    seen: list[int] = []

    def branch(i: int) -> Fn:
        async def run(state: Mapping[str, Any]) -> Any:
            nonlocal active
            active += 1
            seen.append(active)
            try:
                await trio.sleep(1)
            finally:
                active -= 1
            return {f"k{i}": i}

        return run

    graph = par_graph({f"b{i}": branch(i) for i in range(6)}, limit=limit)
    t0 = trio.current_time()
    events, run = await run_events(graph)
    assert max(seen) == peak
    assert trio.current_time() - t0 == elapsed
    assert run.result.state == {f"k{i}": i for i in range(6)}
    # A branch's duration is its own running time, not its wait for a slot.
    assert [e.duration for e in of(events, ev.BranchCompleted)] == [1.0] * 6


async def test_limit_queue_time_does_not_count_against_a_branch_timeout(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """A branch's timeout starts when it gets its slot, not while it waits for one."""
    graph = par_graph(
        {"a": sleeper(3, {"a": 1}), "b": sleeper(3, {"b": 1})}, limit=1, timeouts={"a": 5, "b": 5}
    )
    t0 = trio.current_time()
    result = await Executor().run(graph, {})
    assert trio.current_time() - t0 == 6
    assert result.state == {"a": 1, "b": 1}


async def test_limit_branches_still_queued_are_cancelled_by_fail_fast(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """fail_fast with limit=1: queued branches never start and still get BranchCompleted."""
    started: list[str] = []

    def branch(name: str, fail: bool) -> Fn:
        async def run(state: Mapping[str, Any]) -> Any:
            started.append(name)
            await trio.sleep(1)
            if fail:
                raise ValueError(name)
            return {name: 1}

        return run

    graph = par_graph({n: branch(n, True) for n in ("a", "b", "c", "d")}, limit=1)
    events, run = await run_events(graph)
    assert len(started) == 1
    assert isinstance(run.error, NodeExecutionFailed) and run.error.branch == started[0]
    completed = of(events, ev.BranchCompleted)
    assert sorted(e.branch for e in completed) == ["a", "b", "c", "d"]
    assert [e.success for e in completed] == [False] * 4
    assert {e.branch: e.duration for e in completed if e.branch != started[0]} == dict.fromkeys(
        set("abcd") - {started[0]}, 0.0
    )


# -- events --------------------------------------------------------------------------------


async def test_events_of_a_successful_fanout_in_order(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """NodeStart, ParallelStarted, a BranchCompleted per branch (completion order),
    ParallelCompleted, the merged StateChanged (declaration order), then NodeEnd."""
    graph = par_graph(
        {"a": sleeper(2, {"a": 1}), "b": sleeper(3, {"b": 2}), "c": sleeper(1, {"c": 3})}
    )
    events, run = await run_events(graph)
    trace = run.trace_id
    par = [e for e in events[1:] if getattr(e, "node", None) == "par"]
    span = par[0].span_id
    assert par == [
        ev.NodeStart(trace, "par", span, 1),
        ev.ParallelStarted(trace, "par", span, 3),
        ev.BranchCompleted(trace, "par", "c", True, 1.0),
        ev.BranchCompleted(trace, "par", "a", True, 2.0),
        ev.BranchCompleted(trace, "par", "b", True, 3.0),
        ev.ParallelCompleted(trace, "par", 3.0),
        ev.StateChanged(trace, "par", span, "a", 1),
        ev.StateChanged(trace, "par", span, "b", 2),
        ev.StateChanged(trace, "par", span, "c", 3),
        ev.NodeEnd(trace, "par", span, True, 3.0),
    ]
    assert events.index(par[-1]) + 1 == events.index(of(events, ev.NodeStart)[1])
    assert isinstance(events[0], ev.GraphStart) and isinstance(events[-1], ev.GraphComplete)


async def test_events_of_a_failed_fanout_close_every_branch_then_the_node(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """fail_fast: one BranchCompleted per branch (cancelled ones success=False and
    outcome "cancelled"),
    ParallelCompleted, NodeEnd(success=False), then the terminal GraphError."""
    graph = par_graph(
        {
            "done": sleeper(1, {"d": 1}),
            "slow": sleeper(3600),
            "bad": failer(2, ValueError("x")),
            "slower": sleeper(7200),
        }
    )
    events, run = await run_events(graph)
    trace = run.trace_id
    span = of(events, ev.NodeStart)[0].span_id
    assert events[1:] == [
        ev.NodeStart(trace, "par", span, 1),
        ev.ParallelStarted(trace, "par", span, 4),
        ev.BranchCompleted(trace, "par", "done", True, 1.0),
        ev.BranchCompleted(trace, "par", "bad", False, 2.0),
        ev.BranchCompleted(trace, "par", "slow", False, 2.0, outcome="cancelled"),
        ev.BranchCompleted(trace, "par", "slower", False, 2.0, outcome="cancelled"),
        ev.ParallelCompleted(trace, "par", 2.0),
        ev.NodeEnd(trace, "par", span, False, 2.0),
        ev.GraphError(trace, run.error, {}),
    ]


async def test_each_visit_of_a_parallel_node_forks_the_state_as_it_then_is(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """A parallel node in a cycle: each visit has its own span and sees the merged state."""

    async def count(state: Mapping[str, Any]) -> Any:
        return {"n": 1}

    async def seen(state: Mapping[str, Any]) -> Any:
        return {"seen": [state["n"]]}

    graph = (
        GraphBuilder("cycle")
        .parallel("par", {"count": count, "seen": seen})
        .task("end", lambda s: None)
        .edge_if("par", "par", lambda s: s["n"] < 3)
        .edge("par", "end")
        .reducer("n", reducers.add)
        .reducer("seen", reducers.extend)
        .start("par")
        .end("end")
        .build()
    )
    events, run = await run_events(graph, {"n": 0, "seen": []})
    assert run.result.state == {"n": 3, "seen": [0, 1, 2]}
    spans = [e.span_id for e in of(events, ev.ParallelStarted)]
    assert len(spans) == len(set(spans)) == 3


# -- merge ---------------------------------------------------------------------------------


async def test_merge_follows_declaration_order_not_completion_order(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """Branches finishing in reverse order still fold into the key in declaration order."""
    graph = par_graph(
        {
            "a": sleeper(3, {"log": "a", "s": "a"}),
            "b": sleeper(2, {"log": "b", "s": "b"}),
            "c": sleeper(1, {"log": "c", "s": "c"}),
        },
        reducer={"log": reducers.append, "s": reducers.add},
    )
    events, run = await run_events(graph, {"s": ">"})
    assert run.result.state == {"log": ["a", "b", "c"], "s": ">abc"}
    assert [(e.key, e.value) for e in of(events, ev.StateChanged)] == [
        ("log", "a"),
        ("s", "a"),
        ("log", "b"),
        ("s", "b"),
        ("log", "c"),
        ("s", "c"),
    ]


async def test_custom_reducer_folds_in_declaration_order(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """A non-commutative user reducer sees the updates in declaration order."""
    calls: list[tuple[Any, Any]] = []

    def pair(old: Any, new: Any) -> Any:
        calls.append((old, new))
        return [old, new]

    graph = par_graph(
        {"x": sleeper(2, {"k": "x"}), "y": sleeper(1, {"k": "y"})}, reducer={"k": pair}
    )
    result = await Executor().run(graph, {"k": 0})
    assert result.state == {"k": [[0, "x"], "y"]}
    assert calls == [(0, "x"), ([0, "x"], "y")]


async def test_two_writers_without_a_reducer_is_a_merge_conflict(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """Two branches writing one key with no reducer → StateError naming key and branches."""
    graph = par_graph(
        {"a": sleeper(2, {"x": 1, "a": 1}), "b": sleeper(1, {"b": 1}), "c": sleeper(0, {"x": 3})}
    )
    events, run = await run_events(graph, {"x": 0})
    err = run.error
    assert isinstance(err, StateError)
    assert (err.message, err.node, err.key, err.branches) == (
        "parallel merge conflict",
        "par",
        "x",
        ["a", "c"],
    )
    assert str(err) == "parallel merge conflict (node 'par', key 'x', branches ['a', 'c'])"
    # All or nothing: not even the keys without a conflict are applied.
    assert isinstance(events[-1], ev.GraphError) and events[-1].state == {"x": 0}
    assert of(events, ev.StateChanged) == []
    assert of(events, ev.NodeEnd)[-1].success is False


async def test_one_writer_per_key_needs_no_reducer(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """Distinct keys per branch merge without any reducer, overwriting the old values."""
    graph = par_graph(
        {"a": sleeper(1, {"a": "new"}), "b": sleeper(1, None), "c": sleeper(1, {"c": 3})}
    )
    result = await Executor().run(graph, {"a": "old"})
    assert result.state == {"a": "new", "c": 3}


async def test_a_failing_reducer_ends_the_run_with_state_error(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """A reducer that cannot fold a branch's update is a terminal StateError (nothing lost)."""
    graph = par_graph(
        {"a": sleeper(1, {"n": 1}), "b": sleeper(1, {"n": "two"})}, reducer={"n": reducers.add}
    )
    with pytest.raises(StateError, match=r"^reducer 'add' failed: TypeError: .*key 'n'\)$"):
        await Executor().run(graph, {"n": 0})


# -- what a branch sees and returns ----------------------------------------------------------


async def test_branches_share_one_read_only_copy_of_the_pre_fork_state(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """Every branch gets the same read-only view; writing to it fails the branch."""
    views: list[Mapping[str, Any]] = []

    def look(state: Mapping[str, Any]) -> Any:
        views.append(state)
        return None

    def write(state: Mapping[str, Any]) -> Any:
        state["x"] = 2  # type: ignore[index]

    graph = par_graph({"a": look, "b": look})
    await Executor().run(graph, {"x": 1})
    assert len(views) == 2 and views[0] is views[1]
    assert isinstance(views[0], types.MappingProxyType) and dict(views[0]) == {"x": 1}

    with pytest.raises(NodeExecutionFailed) as info:
        await Executor().run(par_graph({"a": look, "w": write}), {"x": 1})
    assert (info.value.branch, info.value.error_type) == ("w", "TypeError")


@pytest.mark.parametrize("bad", [42, ["x", 1], {1: "int key"}])
async def test_a_branch_must_return_a_mapping_of_str_keys_or_none(
    autojump_clock: trio.testing.MockClock, bad: object
) -> None:
    """A branch result that is not updates fails that branch with a StateError cause."""
    graph = par_graph({"ok": sleeper(1, {"a": 1}), "bad": lambda s: bad})
    with pytest.raises(
        NodeExecutionFailed,
        match=r"^node 'par' branch 'bad' failed: StateError: "
        r"branch 'bad'",
    ) as info:
        await Executor().run(graph, {})
    assert isinstance(info.value.__cause__, StateError)


async def test_plain_and_async_branches_mix(autojump_clock: trio.testing.MockClock) -> None:
    """Plain functions and async functions can be branches of the same node."""
    graph = par_graph({"sync": lambda s: {"s": s["v"] + 1}, "async": sleeper(1, {"a": 2})})
    assert (await Executor().run(graph, {"v": 1})).state == {"v": 1, "s": 2, "a": 2}


# -- cancellation of the whole run -----------------------------------------------------------


def forever(name: str, cleaned: list[str]) -> Fn:
    async def branch(state: Mapping[str, Any]) -> Any:
        try:
            await trio.sleep_forever()
        finally:
            cleaned.append(name)

    return branch


async def test_run_cancel_during_a_fanout_cancels_every_branch(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """run.cancel() mid fan-out: every branch's finally runs; the run ends Cancelled."""
    cleaned: list[str] = []
    graph = par_graph({n: forever(n, cleaned) for n in ("a", "b", "c")})
    events: list[ev.Event] = []
    async with Executor().stream(graph, {"k": 1}) as run:
        async for event in run:
            events.append(event)
            if isinstance(event, ev.ParallelStarted):
                await trio.sleep(10)
                assert sorted(cleaned) == []
                run.cancel()
    assert sorted(cleaned) == ["a", "b", "c"]
    assert isinstance(run.error, Cancelled) and run.error.node == "par"
    assert str(run.error) == "run cancelled during node 'par'"
    assert [type(e) for e in events[-2:]] == [ev.NodeEnd, ev.GraphError]
    assert events[-2].success is False and events[-1].state == {"k": 1}


async def test_an_enclosing_cancel_scope_cancels_every_branch_before_the_block_exits(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """An outer move_on_after mid fan-out: every branch is cancelled and cleaned up before
    the ``async with`` block is left; no task outlives it."""
    cleaned: list[str] = []
    graph = par_graph({n: forever(n, cleaned) for n in ("a", "b", "c", "d")})
    task = trio.lowlevel.current_task()
    nurseries = list(task.child_nurseries)
    with trio.move_on_after(5) as scope:
        async with Executor().stream(graph, {}) as run:
            async for _ in run:
                pass
    cleaned.append("left the block")
    assert scope.cancelled_caught
    assert trio.current_time() == 5
    assert sorted(cleaned[:4]) == ["a", "b", "c", "d"] and cleaned[4] == "left the block"
    assert task.child_nurseries == nurseries
    assert isinstance(run.error, Cancelled)


# -- branch timeouts -----------------------------------------------------------------------


async def test_a_branch_timeout_fires_at_exactly_its_limit(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """timeouts={"b": 5}: NodeTimeout for branch b at exactly 5 s; a sibling is cancelled."""
    log: list[str] = []
    graph = par_graph({"a": sleeper(60, log=log, name="a"), "b": sleeper(3600)}, timeouts={"b": 5})
    t0 = trio.current_time()
    events, run = await run_events(graph)
    assert trio.current_time() - t0 == 5
    err = run.error
    assert isinstance(err, NodeTimeout)
    assert (err.node, err.branch, err.limit, err.error_type) == ("par", "b", 5, "TooSlowError")
    assert isinstance(err.__cause__, trio.TooSlowError)
    assert log == ["a cancelled at 5"]
    assert [(e.branch, e.success, e.duration) for e in of(events, ev.BranchCompleted)] == [
        ("b", False, 5.0),
        ("a", False, 5.0),
    ]


async def test_a_branch_within_its_timeout_succeeds(autojump_clock: trio.testing.MockClock) -> None:
    """A branch finishing before its timeout is not affected by it."""
    graph = par_graph({"b": sleeper(4.5, {"b": 1})}, timeouts={"b": 5})
    assert (await Executor().run(graph, {})).state == {"b": 1}


async def test_a_timeout_for_an_unknown_branch_is_a_build_error() -> None:
    """timeouts naming a branch that does not exist is reported by build()."""
    with pytest.raises(Exception, match=r"timeout given for unknown branch 'zz'"):
        par_graph({"a": sleeper(1)}, timeouts={"zz": 1})


# -- records for resume --------------------------------------------------------------------


async def test_each_finished_branch_is_recorded_and_a_fork_runs_only_the_rest(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """With a store, each finished branch is checkpointed (cumulatively, in declaration
    order); a run forked from such a checkpoint runs only the unfinished branches."""
    calls: list[str] = []

    def branch(name: str, delay: float) -> Fn:
        async def run(state: Mapping[str, Any]) -> Any:
            calls.append(name)
            await trio.sleep(delay)
            return {name: delay}

        return run

    graph = par_graph({"a": branch("a", 3), "b": branch("b", 1), "c": branch("c", 2)})
    store = MemoryStore()
    executor = Executor(store=store, policy=CheckpointPolicy(on_completion=False))
    result = await executor.run(graph, {})
    assert result.state == {"a": 3, "b": 1, "c": 2}
    saved = await store.list(result.trace_id)
    recorded = [[(r.branch, r.updates) for r in c.branches] for c in saved]
    assert recorded == [
        [("b", {"b": 1})],
        [("b", {"b": 1}), ("c", {"c": 2})],
        [("a", {"a": 3}), ("b", {"b": 1}), ("c", {"c": 2})],
    ]
    assert {c.next_node for c in saved} == {"par"}
    calls.clear()
    async with executor.fork(graph, saved[0].checkpoint_id) as run:
        events = [e async for e in run]
    assert sorted(calls) == ["a", "c"]
    assert run.result is not None and run.result.state == {"a": 3, "b": 1, "c": 2}
    assert sorted(e.branch for e in of(events, ev.BranchCompleted)) == ["a", "c"]
    assert of(events, ev.ParallelStarted)[0].branch_count == 3


async def test_resume_after_cancel_mid_fanout_skips_finished_branches(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """run.cancel() after one branch finished: resume runs only the unfinished branch."""
    calls: list[str] = []

    async def quick(state: Mapping[str, Any]) -> Any:
        calls.append("quick")
        return {"q": 1}

    async def slow(state: Mapping[str, Any]) -> Any:
        calls.append("slow")
        await trio.sleep(10)
        return {"s": 1}

    graph = par_graph({"quick": quick, "slow": slow})
    executor = Executor(store=MemoryStore())
    async with executor.stream(graph, {}) as run:
        async for event in run:
            if isinstance(event, ev.BranchCompleted):
                run.cancel()
    assert isinstance(run.error, Cancelled)
    calls.clear()
    async with executor.resume(graph, run.trace_id) as resumed:
        result = await resumed.wait()
    assert result.state == {"q": 1, "s": 1}
    assert calls == ["slow"]


def test_math_inf_is_not_a_valid_limit() -> None:
    """limit must be a positive int: 0, floats and inf are build errors."""
    for bad in (0, 1.5, math.inf):
        with pytest.raises(Exception, match=r"limit must be a positive int"):
            par_graph({"a": sleeper(1)}, limit=bad)  # type: ignore[arg-type]
