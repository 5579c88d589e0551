"""``BarrierWaiting.answered`` (DESIGN §6, issue 13 item 14) and the bounded execution log
(DESIGN §13, issue 13 item 6)."""

from __future__ import annotations

from trio_graph import Approve, BarrierId, Executor, GraphBuilder, serde
from trio_graph import events as ev
from trio_graph._model.graph import Graph


def twice() -> Graph:
    """a -> b (barrier) -> c (barrier) -> d."""
    return (
        GraphBuilder("twice")
        .task("a", lambda s: None)
        .barrier("b")
        .barrier("c")
        .task("d", lambda s: None)
        .edge("a", "b")
        .edge("b", "c")
        .edge("c", "d")
        .start("a")
        .end("d")
        .build()
    )


async def test_answered_says_whether_a_decision_was_already_waiting() -> None:
    """A consumer answering only unanswered BarrierWaiting events never hits 'already resolved'."""
    async with Executor().stream(twice(), {}) as run:
        run.decide(BarrierId("b", 1), Approve())  # sent ahead: b#1 is answered on arrival
        seen = []
        async for event in run:
            if isinstance(event, ev.BarrierWaiting):
                seen.append((str(event.barrier_id), event.answered))
                if not event.answered:
                    run.decide(event.barrier_id, Approve())
    assert seen == [("b#1", True), ("c#1", False)]
    assert run.result is not None


async def test_a_wildcard_makes_every_arrival_answered() -> None:
    """decide_all before the run reaches the barrier: its BarrierWaiting says answered."""
    async with Executor().stream(twice(), {}) as run:
        run.decide_all("b", Approve())
        run.decide_all("c", Approve())
        waits = [e for e in [x async for x in run] if isinstance(e, ev.BarrierWaiting)]
    assert [w.answered for w in waits] == [True, True]


def test_answered_round_trips_through_json() -> None:
    """The new field survives the one converter; an old line without it reads as False."""
    event = ev.BarrierWaiting("t", "b", 3, BarrierId("b", 1), True)
    line = serde.to_json(event, ev.Event)
    assert serde.from_json(line, ev.Event) == event
    old = line.replace(',"answered":true', "")
    assert serde.from_json(old, ev.Event) == ev.BarrierWaiting("t", "b", 3, BarrierId("b", 1))


def counter(n: int) -> Graph:
    """inc loops to itself until i == n, then end."""
    return (
        GraphBuilder("count")
        .task("inc", lambda s: {"i": s.get("i", 0) + 1})
        .task("end", lambda s: None)
        .edge_if("inc", "inc", lambda s: s["i"] < n)
        .edge("inc", "end")
        .start("inc")
        .end("end")
        .build()
    )


async def test_the_execution_log_keeps_the_last_entries_and_a_count() -> None:
    """log_limit=5 over 21 steps: the last 5 entries, execution_count 21."""
    result = await Executor(max_steps=100, log_limit=5).run(counter(20), {})
    assert [e.step for e in result.execution_log] == [17, 18, 19, 20, 21]
    assert result.execution_count == 21


async def test_the_default_log_keeps_a_thousand_entries() -> None:
    """The default bound is 1000; a shorter run keeps every entry."""
    result = await Executor(max_steps=2000).run(counter(1500), {})
    assert len(result.execution_log) == 1000 and result.execution_count == 1501
    assert result.execution_log[-1].step == 1501
    short = await Executor().run(counter(3), {})
    assert len(short.execution_log) == short.execution_count == 4
