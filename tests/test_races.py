"""Racing fan-outs (DESIGN §15): ``strategy="first_completed"`` and ``quorum=k``, for
``.parallel`` and ``.map``. Timed tests run on the ``autojump_clock`` (MockClock)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import pytest
import trio
import trio.testing
from hypothesis import given
from hypothesis import strategies as st

from trio_graph import Executor, GraphBuilder, InvalidGraph, NodeExecutionFailed, reducers
from trio_graph import events as ev
from trio_graph._model.graph import Graph
from trio_graph._model.strategies import Tally, check_strategy, needed

Fn = Callable[[Mapping[str, Any]], Any]


def race_graph(branches: Mapping[str, Fn], **options: Any) -> Graph:
    """``par`` (the fan-out; ``out`` appends) -> ``end`` (records when it ran)."""
    return (
        GraphBuilder("race")
        .parallel("par", branches, **options)
        .task("end", lambda s: {"ended_at": trio.current_time()})
        .edge("par", "end")
        .reducer("out", reducers.append)
        .start("par")
        .end("end")
        .build()
    )


def after(delay: float, value: Any, fail: bool = False) -> Fn:
    """A branch that sleeps ``delay`` then appends ``value`` to ``out`` (or raises)."""

    async def branch(state: Mapping[str, Any]) -> Any:
        await trio.sleep(delay)
        if fail:
            raise ValueError(f"{value} failed")
        return {"out": value, f"by_{value}": True}

    return branch


async def run_events(graph: Graph, state: Mapping[str, Any] | None = None) -> tuple[list[Any], Any]:
    events: list[Any] = []
    async with Executor().stream(graph, dict(state or {})) as run:
        async for event in run:
            events.append(event)
    return events, run


def outcomes(events: list[Any]) -> dict[str, str]:
    return {e.branch: e.outcome for e in events if isinstance(e, ev.BranchCompleted)}


# -- first_completed -----------------------------------------------------------------------


async def test_first_completed_continues_at_the_first_success_with_only_its_updates(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """Branches finishing at 3, 1 and 2 s: the run goes on at virtual 1 s with only the
    winner's updates; the losers get a BranchCompleted (cancelled) at 1 s too."""
    graph = race_graph(
        {"a": after(3, "a"), "b": after(1, "b"), "c": after(2, "c")}, strategy="first_completed"
    )
    events, run = await run_events(graph)
    assert run.result.state == {"out": ["b"], "by_b": True, "ended_at": 1}
    completed = [e for e in events if isinstance(e, ev.BranchCompleted)]
    assert [(e.branch, e.success, e.outcome, e.duration) for e in completed] == [
        ("b", True, "succeeded", 1),
        ("a", False, "cancelled", 1),
        ("c", False, "cancelled", 1),
    ]
    assert [e.duration for e in events if isinstance(e, ev.ParallelCompleted)] == [1]


async def test_first_completed_skips_failures_until_a_success(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """A failure is not the end of a first_completed fork: the first *success* wins."""
    graph = race_graph(
        {"a": after(1, "a", fail=True), "b": after(2, "b"), "c": after(3, "c")},
        strategy="first_completed",
    )
    events, run = await run_events(graph)
    assert run.result.state["out"] == ["b"]
    assert outcomes(events) == {"a": "failed", "b": "succeeded", "c": "cancelled"}


async def test_first_completed_when_every_branch_fails_lists_them_all(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """Every branch failing: the error lists each failure, in declaration order, once the
    last one failed."""
    graph = race_graph(
        {"a": after(2, "a", fail=True), "b": after(1, "b", fail=True)}, strategy="first_completed"
    )
    with pytest.raises(NodeExecutionFailed) as info:
        await Executor().run(graph, {})
    assert [(f.branch, f.message) for f in info.value.failures] == [
        ("a", "a failed"),
        ("b", "b failed"),
    ]
    assert trio.current_time() == 2


async def test_a_success_at_the_winners_instant_is_discarded(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """Two plain branches succeeding at the same instant, with no checkpoint where the
    winner's cancel could reach the other: one wins, the other's updates are discarded
    (BranchCompleted success=True, outcome "discarded")."""
    graph = race_graph(
        {"a": lambda s: {"out": "a", "by_a": 1}, "b": lambda s: {"out": "b", "by_b": 1}},
        strategy="first_completed",
    )
    events, run = await run_events(graph)
    assert len(run.result.state["out"]) == 1
    winner = run.result.state["out"][0]
    loser = "b" if winner == "a" else "a"
    assert f"by_{loser}" not in run.result.state
    assert outcomes(events) == {winner: "succeeded", loser: "discarded"}


# -- quorum --------------------------------------------------------------------------------


async def test_quorum_two_of_four_merges_the_first_two_in_declaration_order(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """quorum=2 of branches finishing at 4, 2, 3, 1 s: at 2 s the fork ends with the
    updates of the 2 s and 1 s branches, merged in declaration order (b before d)."""
    graph = race_graph(
        {"a": after(4, "a"), "b": after(2, "b"), "c": after(3, "c"), "d": after(1, "d")},
        quorum=2,
    )
    events, run = await run_events(graph)
    assert run.result.state == {"out": ["b", "d"], "by_b": True, "by_d": True, "ended_at": 2}
    assert outcomes(events) == {
        "a": "cancelled",
        "b": "succeeded",
        "c": "cancelled",
        "d": "succeeded",
    }


async def test_quorum_fails_as_soon_as_it_is_out_of_reach(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """quorum=3 of 4: the second failure (at 2 s) makes 3 successes impossible, so the
    fork stops then, listing both failures, and the hour-long branch is cancelled."""
    graph = race_graph(
        {
            "a": after(1, "a", fail=True),
            "b": after(0.5, "b"),
            "c": after(2, "c", fail=True),
            "d": after(3600, "d"),
        },
        strategy="quorum",
        quorum=3,
    )
    with pytest.raises(NodeExecutionFailed) as info:
        await Executor().run(graph, {})
    assert [f.branch for f in info.value.failures] == ["a", "c"]
    assert trio.current_time() == 2


def test_quorum_options_are_checked_at_build() -> None:
    """quorum must be 1..branches; it goes with strategy="quorum" (implied when alone);
    strategy="quorum" needs it."""
    two = {"a": after(1, "a"), "b": after(1, "b")}
    for options, part in [
        ({"quorum": 0}, "quorum must be an int from 1 to 2"),
        ({"quorum": 3}, "quorum must be an int from 1 to 2"),
        ({"quorum": True}, "quorum must be an int"),
        ({"strategy": "quorum"}, "quorum must be an int"),
        ({"strategy": "collect_all", "quorum": 1}, "goes with strategy='quorum' only"),
        ({"strategy": "fastest"}, "strategy must be one of"),
    ]:
        with pytest.raises(InvalidGraph, match=part):
            race_graph(two, **options)
    assert race_graph(two, quorum=2).nodes["par"].strategy == "quorum"  # type: ignore[union-attr]


# -- map -----------------------------------------------------------------------------------


def map_race(**options: Any) -> Graph:
    async def item_fn(item: Any, state: Mapping[str, Any]) -> Any:
        await trio.sleep(item)
        return {"out": item}

    return (
        GraphBuilder("map-race")
        .map("m", item_fn, over=lambda s: s["items"], **options)
        .task("end", lambda s: None)
        .edge("m", "end")
        .reducer("out", reducers.append)
        .start("m")
        .end("end")
        .build()
    )


async def test_map_first_completed_and_quorum(autojump_clock: trio.testing.MockClock) -> None:
    """A map races like a parallel node: first_completed keeps the fastest item; quorum=2
    the two fastest, in item order."""
    result = await Executor().run(map_race(strategy="first_completed"), {"items": [3, 1, 2]})
    assert result.state["out"] == [1]
    result = await Executor().run(map_race(quorum=2), {"items": [4, 2, 3, 1]})
    assert result.state["out"] == [2, 1]


@pytest.mark.parametrize(
    ("options", "items", "part"),
    [
        ({"quorum": 3}, [1, 2], "quorum needs 3 success(es), over(state) gave 2 item(s)"),
        ({"strategy": "first_completed"}, [], "first_completed needs 1 success(es)"),
    ],
)
async def test_map_quorum_larger_than_its_items_is_an_error(
    options: dict[str, Any], items: list[int], part: str
) -> None:
    """A map's quorum is checked against its items at run time: more than it has is a
    NodeExecutionFailed naming the node (and nothing runs)."""
    with pytest.raises(NodeExecutionFailed, match=part.replace("(", r"\(").replace(")", r"\)")):
        await Executor().run(map_race(**options), {"items": items})


# -- the rules, pure -----------------------------------------------------------------------


def test_needed_and_check_strategy() -> None:
    """first_completed needs 1, quorum k, the others every branch; quorum=k alone is
    strategy "quorum"."""
    assert [needed(s, 2, 5) for s in ("fail_fast", "collect_all", "first_completed", "quorum")] == [
        5,
        5,
        1,
        2,
    ]
    problems: list[str] = []
    assert check_strategy("x", "fail_fast", 2, problems, 3) == ("quorum", 2)
    assert problems == []


@given(
    st.integers(1, 8).flatmap(
        lambda n: st.tuples(
            st.permutations(range(n)), st.lists(st.booleans(), min_size=n, max_size=n)
        )
    ),
    st.sampled_from(["fail_fast", "collect_all", "first_completed", "quorum"]),
    st.integers(1, 8),
)
def test_tally_keeps_exactly_the_first_successes_it_needs(
    order_fails: tuple[list[int], list[bool]], strategy: str, k: int
) -> None:
    """Ending branches in any order: a racing Tally keeps exactly the first ``need``
    successes (fewer only when it fails), and it fails exactly when they are out of reach."""
    order, fails = order_fails
    n = len(order)
    k = min(k, n)
    tally = Tally(strategy, needed(strategy, k, n), n)
    kept, stopped = [], False
    for i in order:
        if stopped:
            break
        if fails[i]:
            stopped = tally.failed()
        else:
            if tally.keep():
                kept.append(i)
            stopped = tally.settled
    successes = [i for i in order if not fails[i]]
    if strategy in ("first_completed", "quorum"):
        need = tally.need
        assert tally.fails() == (len(successes) < need)
        if not tally.fails():
            assert kept == successes[:need]
    else:
        assert tally.fails() == any(fails)


@given(
    st.integers(1, 7).flatmap(lambda n: st.permutations(range(1, n + 1))),
    st.sampled_from(["fail_fast", "collect_all", "first_completed", "quorum"]),
    st.integers(1, 7),
    st.booleans(),
)
def test_any_completion_order_gives_the_same_merge(
    delays: list[int], strategy: str, k: int, as_map: bool
) -> None:
    """Whatever order the branches (or items) finish in, the merge is in declaration
    (item) order: all of them, or for a race the ``need`` fastest, and the run goes on
    when the last one it waits for finished."""
    n = len(delays)
    quorum = min(k, n) if strategy == "quorum" else None
    need = needed(strategy, quorum, n)
    options: dict[str, Any] = {"strategy": strategy, "quorum": quorum}
    if as_map:
        graph = map_race(**options)
        state: dict[str, Any] = {"items": list(delays)}
    else:
        branches = {f"b{i}": after(d, d) for i, d in enumerate(delays)}
        graph = race_graph(branches, **options)
        state = {}
    winners = sorted(delays)[:need]

    async def main() -> None:
        result = await Executor().run(graph, state)
        assert result.state["out"] == [d for d in delays if d in winners]
        assert trio.current_time() == max(winners)

    trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))


async def test_a_resumed_quorum_counts_the_successes_recorded() -> None:
    """quorum=2, cancelled once one success was recorded: the resume runs the other
    branches but needs only one more success; it merges the recorded one and the new one
    in declaration order and cancels the rest at once."""
    from trio_graph.stores import MemoryStore

    gates = {f"b{i}": trio.Event() for i in range(4)}
    calls: list[str] = []

    def gated(name: str) -> Fn:
        async def branch(state: Mapping[str, Any]) -> Any:
            calls.append(name)
            await gates[name].wait()
            return {"out": name}

        return branch

    graph = race_graph({name: gated(name) for name in gates}, quorum=2)
    executor = Executor(store=MemoryStore())
    gates["b2"].set()
    async with executor.stream(graph, {}) as run:
        async for event in run:
            if isinstance(event, ev.CheckpointSaved) and event.node == "par":
                run.cancel()  # b2's record is in
    latest = await executor.store.latest(run.run_id)  # type: ignore[union-attr]
    assert latest is not None and [b.branch for b in latest.branches] == ["b2"]
    calls.clear()
    gates["b3"].set()
    async with executor.resume(graph, run.run_id) as resumed:
        events = [e async for e in resumed]
    assert resumed.result.state["out"] == ["b2", "b3"]
    assert sorted(calls) == ["b0", "b1", "b3"]
    assert outcomes(events) == {"b0": "cancelled", "b1": "cancelled", "b3": "succeeded"}
