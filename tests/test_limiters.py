"""Shared limiters (DESIGN §14): ``Executor(limiters={"llm": n})`` and
``task(..., limiter="llm")`` / ``parallel(..., limiter="llm")``: one
``trio.CapacityLimiter`` per name across every run and branch of the executor; the wait
for a slot is not counted in a node's timeout and shows as ``NodeStart.waited``."""

from __future__ import annotations

from typing import Any

import pytest
import trio

from trio_graph import Executor, GraphBuilder, InvalidGraph
from trio_graph import events as ev


class Gauge:
    """How many calls are inside at once, and the most there ever were."""

    def __init__(self) -> None:
        self.now = self.most = self.calls = 0

    async def work(self, state: Any) -> None:
        self.now += 1
        self.calls += 1
        self.most = max(self.most, self.now)
        await trio.sleep(1)
        self.now -= 1


async def test_a_limiter_shared_by_two_runs_is_never_exceeded(autojump_clock: Any) -> None:
    """Two concurrent runs, each a fan-out of three branches then three tasks, all naming
    a limiter of 2: never more than 2 inside at once (and 2 are, at times)."""
    gauge = Gauge()
    work = gauge.work
    graph = (
        GraphBuilder("lim")
        .parallel("fan", {"a": work, "b": work, "c": work}, limiter="llm")
        .task("x", work, limiter="llm")
        .task("y", work, limiter="llm")
        .task("z", work, limiter="llm")
        .edge("fan", "x")
        .edge("x", "y")
        .edge("y", "z")
        .start("fan")
        .end("z")
        .build()
    )
    executor = Executor(limiters={"llm": 2})
    async with trio.open_nursery() as nursery:
        for _ in range(2):
            nursery.start_soon(executor.run, graph, {})
    assert gauge.calls == 12 and gauge.most == 2


async def test_the_wait_for_a_slot_is_not_counted_in_the_timeout(autojump_clock: Any) -> None:
    """With one slot, the second of two runs waits 2s for it: its 3s timeout still holds
    a 2s call (4s after it was reached), and its NodeStart says it waited 2s."""

    async def call(state: Any) -> dict[str, Any]:
        await trio.sleep(2)
        return {"ok": True}

    graph = GraphBuilder("lim2").task("n", call, timeout=3, limiter="llm").start("n").end("n")
    built = graph.build()
    executor = Executor(limiters={"llm": 1})
    waited: list[float] = []

    async def one() -> None:
        async with executor.stream(built, {}) as run:
            async for event in run:
                if isinstance(event, ev.NodeStart):
                    waited.append(event.waited)
        assert run.result is not None and run.result.state == {"ok": True}

    async with trio.open_nursery() as nursery:
        nursery.start_soon(one)
        nursery.start_soon(one)
    assert sorted(waited) == [0, pytest.approx(2)]


async def test_branches_wait_for_shared_slots_outside_their_timeouts(autojump_clock: Any) -> None:
    """Three branches with a 1.5s timeout each, 1s of work, one shared slot: all succeed
    (the last waits 2s), the fork takes 3s, each BranchCompleted's duration is 1s."""

    async def call(state: Any) -> None:
        await trio.sleep(1)

    branches = {"a": call, "b": call, "c": call}
    graph = (
        GraphBuilder("lim3")
        .parallel("fan", branches, limiter="llm", timeouts={b: 1.5 for b in branches})
        .start("fan")
        .end("fan")
        .build()
    )
    async with Executor(limiters={"llm": 1}).stream(graph, {}) as run:
        events = [e async for e in run]
    done = [e for e in events if isinstance(e, ev.BranchCompleted)]
    assert [e.success for e in done] == [True] * 3
    assert [e.duration for e in done] == [pytest.approx(1)] * 3
    fan = next(e for e in events if isinstance(e, ev.ParallelCompleted))
    assert fan.duration == pytest.approx(3)


async def test_an_unknown_limiter_is_refused_at_start_naming_node_and_name() -> None:
    """A graph naming a limiter the executor lacks (a subgraph's node too) is an
    InvalidGraph at start, naming the node path and the limiter; nothing runs."""
    ran: list[str] = []
    inner = GraphBuilder("in").task("t", lambda s: ran.append("t"), limiter="gpu")
    sub = inner.start("t").end("t").build()
    graph = (
        GraphBuilder("outer")
        .task("a", lambda s: ran.append("a"), limiter="llm")
        .subgraph("s", sub)
        .edge("a", "s")
        .start("a")
        .end("s")
        .build()
    )
    with pytest.raises(InvalidGraph) as info:
        await Executor(limiters={"llm": 1}).run(graph, {})
    assert info.value.problems == [
        "node 's/t': limiter 'gpu' is not one of the executor's limiters ('llm')"
    ]
    with pytest.raises(InvalidGraph, match="'a': limiter 'llm'"):
        await Executor().run(graph, {})
    assert ran == []


def test_bad_limiter_arguments_are_refused() -> None:
    """limiter= must be a name (build problem); limiters= slot counts positive ints."""
    with pytest.raises(InvalidGraph, match="limiter must be"):
        GraphBuilder("b").task("n", lambda s: None, limiter=3).start("n").end("n").build()  # type: ignore[arg-type]
    for bad in (0, -1, 1.5, True):
        with pytest.raises(ValueError, match="limiter 'llm'"):
            Executor(limiters={"llm": bad})  # type: ignore[dict-item]
