"""Barriers (DESIGN §6): decisions, level-triggered delivery, timeouts, cancel, run().

All timing runs on the ``autojump_clock`` fixture (MockClock, autojump_threshold=0):
a barrier's timeout fires at exactly the configured virtual time.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest
import trio

from trio_graph import (
    Approve,
    BarrierError,
    BarrierId,
    Cancelled,
    Executor,
    GraphBuilder,
    InvalidGraph,
    MissingEdge,
    Modify,
    Reject,
    Reroute,
)
from trio_graph import events as ev
from trio_graph._model.graph import Graph
from trio_graph.stores.memory import MemoryStore

PREP = 3.0
"""Virtual seconds the task before the barrier takes, so a barrier is never reached at t=0."""

Handler = Callable[[Any, ev.Event], Awaitable[None]]


async def _prep(state: Any) -> dict[str, Any]:
    await trio.sleep(PREP)
    return {"prepped": True}


def linear(**barrier: Any) -> Graph:
    """prep -> b -> done, with an extra conditional edge b -> alt (never true) -> done."""
    return (
        GraphBuilder("linear")
        .task("prep", _prep)
        .barrier("b", **barrier)
        .task("alt", lambda s: {"alt": True})
        .task("done", lambda s: {"finished": True})
        .edge("prep", "b")
        .edge_if("b", "alt", lambda s: False)
        .edge("b", "done")
        .edge("alt", "done")
        .start("prep")
        .end("done")
        .build()
    )


async def _slow_done(state: Any) -> None:
    await trio.sleep(1)


def review_loop(*, slow_done: bool = False, **barrier: Any) -> Graph:
    """work -> b; back to work while ``b.approved`` is False, else done (1s if slow_done)."""
    return (
        GraphBuilder("review")
        .task("work", lambda s: {"drafts": s.get("drafts", 0) + 1})
        .barrier("b", **barrier)
        .task("done", _slow_done if slow_done else lambda s: None)
        .edge("work", "b")
        .edge_if("b", "work", lambda s: s.get("b.approved") is False)
        .edge("b", "done")
        .start("work")
        .end("done")
        .build()
    )


def counted_loop(rounds: int) -> Graph:
    """work -> b -> c -> work ... for ``rounds`` rounds, whatever the decisions, then done."""
    return (
        GraphBuilder("counted")
        .task("work", lambda s: {"n": s.get("n", 0) + 1})
        .barrier("b")
        .barrier("c")
        .task("done", lambda s: None)
        .edge("work", "b")
        .edge("b", "c")
        .edge_if("c", "done", lambda s: s["n"] >= rounds)
        .edge("c", "work")
        .start("work")
        .end("done")
        .build()
    )


async def drive(run: Any, handler: Handler | None = None) -> list[tuple[float, ev.Event]]:
    """Consume every event, noting the virtual time it arrived; call ``handler`` on each."""
    seen: list[tuple[float, ev.Event]] = []
    async for event in run:
        seen.append((trio.current_time(), event))
        if handler is not None:
            await handler(run, event)
    return seen


def of_type(seen: list[tuple[float, ev.Event]], kind: type) -> list[tuple[float, Any]]:
    return [(t, e) for t, e in seen if isinstance(e, kind)]


def resolutions(seen: list[tuple[float, ev.Event]]) -> list[tuple[str, Any, bool]]:
    return [
        (str(e.barrier_id), e.decision, e.timed_out) for _, e in of_type(seen, ev.BarrierResolved)
    ]


def terminal_error(seen: list[tuple[float, ev.Event]]) -> Any:
    last = seen[-1][1]
    assert isinstance(last, ev.GraphError), last
    return last.error


# -- timeouts ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("default", "limit", "decision", "written"),
    [
        (
            "reject",
            7.5,
            Reject("timed out after 7.5s"),
            {"b.approved": False, "b.reject_reason": "timed out after 7.5s"},
        ),
        ("approve", 2, Approve(), {"b.approved": True}),
        ("skip", 4.25, None, {}),
    ],
)
async def test_timeout_fires_at_exactly_the_configured_time(
    autojump_clock: Any, default: str, limit: float, decision: Any, written: dict[str, Any]
) -> None:
    """An unanswered barrier resolves at arrival + timeout with its default action."""
    async with Executor().stream(linear(timeout=limit, default=default), {}) as run:
        seen = await drive(run)
    [(t_wait, waiting)] = of_type(seen, ev.BarrierWaiting)
    [(t_done, resolved)] = of_type(seen, ev.BarrierResolved)
    assert t_wait == PREP
    assert t_done == t_wait + limit
    assert resolved.barrier_id == waiting.barrier_id == BarrierId("b", 1)
    assert resolved.decision == decision
    assert resolved.timed_out is True
    assert run.result is not None
    barrier_keys = {k: v for k, v in run.result.state.items() if k.startswith("b.")}
    assert barrier_keys == written
    assert run.result.state["finished"] is True
    [(_, end)] = [(t, e) for t, e in of_type(seen, ev.NodeEnd) if e.node == "b"]
    assert end.success is True
    assert end.duration == limit


async def test_timeout_reject_reason_says_it_timed_out(autojump_clock: Any) -> None:
    """The default reject writes a reason naming the timeout."""
    result = await Executor().run(linear(timeout=5), {})
    assert result.state["b.approved"] is False
    assert result.state["b.reject_reason"] == "timed out after 5s"


async def test_zero_timeout_resolves_on_arrival(autojump_clock: Any) -> None:
    """timeout=0 applies the default at the moment of arrival."""
    async with Executor().stream(linear(timeout=0, default="approve"), {}) as run:
        seen = await drive(run)
    [(t_done, resolved)] = of_type(seen, ev.BarrierResolved)
    assert t_done == PREP
    assert (resolved.decision, resolved.timed_out) == (Approve(), True)


async def test_zero_timeout_still_takes_a_kept_decision(autojump_clock: Any) -> None:
    """A decision already kept for the occurrence wins even over a zero timeout."""
    async with Executor().stream(linear(timeout=0), {}) as run:
        run.decide(BarrierId("b", 1), Approve())
        seen = await drive(run)
    assert resolutions(seen) == [("b#1", Approve(), False)]


async def test_decision_before_the_timeout_wins_and_disarms_it(autojump_clock: Any) -> None:
    """A decision at +2s of a 5s timeout resolves then, not timed out; nothing fires at +5s."""

    async def decide_later(run: Any, event: ev.Event) -> None:
        if isinstance(event, ev.BarrierWaiting):
            await trio.sleep(2)
            run.decide(event.barrier_id, Reject("no"))

    async with Executor().stream(linear(timeout=5), {}) as run:
        seen = await drive(run, decide_later)
    [(t_done, resolved)] = of_type(seen, ev.BarrierResolved)
    assert t_done == PREP + 2
    assert (resolved.decision, resolved.timed_out) == (Reject("no"), False)
    assert run.result is not None
    assert run.result.state["b.reject_reason"] == "no"
    assert seen[-1][0] == PREP + 2


# -- the four decisions -----------------------------------------------------------------


async def answer(decision: Any, graph: Graph | None = None) -> list[tuple[float, ev.Event]]:
    """Run ``graph`` (default ``linear()``), answering each BarrierWaiting with ``decision``."""

    async def handler(run: Any, event: ev.Event) -> None:
        if isinstance(event, ev.BarrierWaiting):
            run.decide(event.barrier_id, decision)

    async with Executor().stream(graph or linear(), {}) as run:
        return await drive(run, handler)


def barrier_span(seen: list[tuple[float, ev.Event]], node: str = "b") -> list[Any]:
    """The events from the barrier's NodeStart to its NodeEnd."""
    events = [e for _, e in seen]
    start = next(i for i, e in enumerate(events) if isinstance(e, ev.NodeStart) and e.node == node)
    end = next(
        i
        for i, e in enumerate(events)
        if isinstance(e, ev.NodeEnd) and e.node == node and i > start
    )
    return events[start : end + 1]


def final_state(seen: list[tuple[float, ev.Event]]) -> dict[str, Any]:
    last = seen[-1][1]
    assert isinstance(last, ev.GraphComplete), last
    return last.result.state


async def test_approve_writes_approved_true_and_continues(autojump_clock: Any) -> None:
    """Approve: Waiting, Resolved, StateChanged(b.approved=True), NodeEnd; then the normal edge."""
    seen = await answer(Approve())
    span = barrier_span(seen)
    assert [type(e) for e in span] == [
        ev.NodeStart,
        ev.BarrierWaiting,
        ev.BarrierResolved,
        ev.StateChanged,
        ev.NodeEnd,
    ]
    assert (span[3].key, span[3].value) == ("b.approved", True)
    assert span[1].span_id == span[0].span_id == span[3].span_id == span[4].span_id
    assert span[4].success is True
    state = final_state(seen)
    assert state["b.approved"] is True
    assert "b.reject_reason" not in state
    assert state["finished"] is True
    assert "alt" not in state


async def test_reject_writes_approved_false_and_reason(autojump_clock: Any) -> None:
    """Reject(reason): b.approved=False and b.reject_reason, in that order; edges decide next."""
    seen = await answer(Reject("too long"))
    changed = [(e.key, e.value) for e in barrier_span(seen) if isinstance(e, ev.StateChanged)]
    assert changed == [("b.approved", False), ("b.reject_reason", "too long")]
    state = final_state(seen)
    assert state["finished"] is True


async def test_modify_writes_the_key_and_continues(autojump_clock: Any) -> None:
    """Modify(key, value) writes that key only (no approval keys) and routes normally."""
    seen = await answer(Modify("title", "Better"))
    changed = [(e.key, e.value) for e in barrier_span(seen) if isinstance(e, ev.StateChanged)]
    assert changed == [("title", "Better")]
    state = final_state(seen)
    assert state["title"] == "Better"
    assert not any(k.startswith("b.") for k in state)
    assert state["finished"] is True


async def test_reroute_goes_to_the_target_over_any_edge(autojump_clock: Any) -> None:
    """Reroute(target) goes there though its conditional edge is false; no keys written."""
    seen = await answer(Reroute("alt"))
    assert not any(isinstance(e, ev.StateChanged) for e in barrier_span(seen))
    started = [e.node for _, e in of_type(seen, ev.NodeStart)]
    assert started == ["prep", "b", "alt", "done"]
    state = final_state(seen)
    assert state["alt"] is True
    assert not any(k.startswith("b.") for k in state)


async def test_custom_approval_keys(autojump_clock: Any) -> None:
    """approved_key and reason_key rename the keys Approve/Reject write."""
    graph = linear(approved_key="review.ok", reason_key="review.why")
    state = final_state(await answer(Reject("typo"), graph))
    assert state["review.ok"] is False
    assert state["review.why"] == "typo"
    assert not any(k.startswith("b.") for k in state)


async def test_reroute_without_edge_raises_missing_edge_in_the_caller(autojump_clock: Any) -> None:
    """Reroute to a node with no edge from the barrier: MissingEdge from decide(); still waits."""
    errors: list[BaseException] = []

    async def handler(run: Any, event: ev.Event) -> None:
        if isinstance(event, ev.BarrierWaiting):
            for send in (
                lambda: run.decide(event.barrier_id, Reroute("prep")),
                lambda: run.decide_all("b", Reroute("nowhere")),
            ):
                with pytest.raises(MissingEdge) as info:
                    send()
                errors.append(info.value)
            await trio.sleep(1)  # nothing was applied: the run is still waiting
            assert not run.done
            run.decide(event.barrier_id, Approve())

    async with Executor().stream(linear(), {}) as run:
        seen = await drive(run, handler)
    assert [(e.frm, e.to) for e in errors] == [("b", "prep"), ("b", "nowhere")]  # type: ignore[attr-defined]
    assert str(errors[0]) == (
        "no edge from 'b' to 'prep' (Goto/Reroute needs an edge of any class)"
    )
    assert resolutions(seen) == [("b#1", Approve(), False)]


# -- decisions refused at once ------------------------------------------------------------


async def test_decision_for_a_non_barrier_node_raises_at_once(autojump_clock: Any) -> None:
    """decide()/decide_all() for a task or unknown node raise BarrierError before anything runs."""
    async with Executor().stream(linear(timeout=1), {}) as run:
        with pytest.raises(
            BarrierError, match=r"^decision for a node that is not a barrier \(node 'prep'\)$"
        ):
            run.decide(BarrierId("prep", 1), Approve())
        with pytest.raises(
            BarrierError, match=r"^decision for a node that is not a barrier \(node 'nope'\)$"
        ):
            run.decide_all("nope", Approve())
        with pytest.raises(BarrierError) as info:
            run.decide_all("done", Reject("x"))
        assert info.value.node == "done"  # type: ignore[attr-defined]
        seen = await drive(run)
    assert resolutions(seen) == [("b#1", Reject("timed out after 1s"), True)]


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (
            lambda run: run.decide(BarrierId("b", 1), "yes"),
            r"^malformed decision: expected Approve, Reject, Modify or Reroute, got str "
            r"\(node 'b'\)$",
        ),
        (
            lambda run: run.decide_all("b", None),
            r"^malformed decision: expected Approve, Reject, Modify or Reroute, got NoneType "
            r"\(node 'b'\)$",
        ),
        (
            lambda run: run.decide(BarrierId("b", 1), Modify(3, "x")),  # type: ignore[arg-type]
            r"^Modify key must be a str, got 3 \(node 'b'\)$",
        ),
        (
            lambda run: run.decide("b#1", Approve()),
            r"^decide\(\) needs a BarrierId, got str 'b#1'$",
        ),
    ],
)
async def test_malformed_decision_raises_barrier_error(
    autojump_clock: Any, call: Callable[[Any], None], message: str
) -> None:
    """A decision that is not one of the four (or not for a BarrierId) is refused at once."""
    async with Executor().stream(linear(timeout=1, default="approve"), {}) as run:
        with pytest.raises(BarrierError, match=message):
            call(run)
        seen = await drive(run)
    assert resolutions(seen) == [("b#1", Approve(), True)]


async def test_decision_for_a_resolved_occurrence_raises(autojump_clock: Any) -> None:
    """Deciding b#1 again after it was resolved (by a decision or a timeout) is refused."""
    refused: list[str] = []

    async def handler(run: Any, event: ev.Event) -> None:
        if isinstance(event, ev.BarrierWaiting):
            if event.barrier_id.occurrence == 1:
                run.decide(event.barrier_id, Reject("first"))
            # occurrence 2 is left to time out
        elif isinstance(event, ev.BarrierResolved):
            for occ in range(1, event.barrier_id.occurrence + 1):
                with pytest.raises(BarrierError) as info:
                    run.decide(BarrierId("b", occ), Approve())
                refused.append(str(info.value))

    graph = review_loop(timeout=10, default="approve", slow_done=True)
    async with Executor().stream(graph, {}) as run:
        seen = await drive(run, handler)
    assert resolutions(seen) == [("b#1", Reject("first"), False), ("b#2", Approve(), True)]
    assert refused == [
        "barrier b#1 was already resolved (node 'b')",
        "barrier b#1 was already resolved (node 'b')",
        "barrier b#2 was already resolved (node 'b')",
    ]


async def test_decision_after_the_run_finished_raises(autojump_clock: Any) -> None:
    """Once the run has finished, decide() and decide_all() raise instead of being ignored."""
    async with Executor().stream(linear(timeout=1), {}) as run:
        await drive(run)
        with pytest.raises(
            BarrierError, match=r"^the run has finished; decision not applied \(node 'b'\)$"
        ):
            run.decide(BarrierId("b", 2), Approve())
        with pytest.raises(BarrierError, match=r"^the run has finished"):
            run.decide_all("b", Approve())


# -- level-triggered delivery ------------------------------------------------------------


async def test_decision_sent_before_arrival_is_kept_and_used(autojump_clock: Any) -> None:
    """decide(b#1) at t=0 is used when the barrier is reached at t=PREP, without waiting."""
    async with Executor().stream(linear(), {}) as run:
        run.decide(BarrierId("b", 1), Modify("title", "early"))
        seen = await drive(run)
    [(t_wait, _)] = of_type(seen, ev.BarrierWaiting)
    [(t_done, resolved)] = of_type(seen, ev.BarrierResolved)
    assert t_wait == t_done == PREP
    assert resolved.decision == Modify("title", "early")
    assert final_state(seen)["title"] == "early"


async def test_later_exact_decision_replaces_an_earlier_one(autojump_clock: Any) -> None:
    """Two decide() calls for the same future occurrence: the last one is used."""
    async with Executor().stream(linear(), {}) as run:
        run.decide(BarrierId("b", 1), Reject("first thought"))
        run.decide(BarrierId("b", 1), Approve())
        seen = await drive(run)
    assert resolutions(seen) == [("b#1", Approve(), False)]


async def test_decision_for_a_later_occurrence_waits_for_it(autojump_clock: Any) -> None:
    """decide(b#3) up front is kept through b#1 and b#2 (answered otherwise) and used at b#3."""

    async def handler(run: Any, event: ev.Event) -> None:
        # BarrierWaiting is sent for b#3 too, but its kept decision resolves it at once.
        if isinstance(event, ev.BarrierWaiting) and event.barrier_id.occurrence < 3:
            run.decide(event.barrier_id, Reject(f"try {event.barrier_id.occurrence}"))

    async with Executor().stream(review_loop(), {}) as run:
        run.decide(BarrierId("b", 3), Approve())
        seen = await drive(run, handler)
    assert resolutions(seen) == [
        ("b#1", Reject("try 1"), False),
        ("b#2", Reject("try 2"), False),
        ("b#3", Approve(), False),
    ]
    assert final_state(seen)["drafts"] == 3


async def test_decide_all_answers_every_occurrence_from_then_on(autojump_clock: Any) -> None:
    """A wildcard sent while waiting at c#2 answers c#2, c#3 and c#4; b stays exact."""

    async def handler(run: Any, event: ev.Event) -> None:
        if isinstance(event, ev.BarrierWaiting):
            bid = event.barrier_id
            if bid.node == "b":
                run.decide(bid, Modify("b_seen", bid.occurrence))
            elif bid.occurrence == 1:
                run.decide(bid, Approve())
            elif bid.occurrence == 2:
                run.decide_all("c", Reject("wild"))
            # c#3 and c#4 are announced, then answered by the wildcard at once

    async with Executor().stream(counted_loop(4), {}) as run:
        seen = await drive(run, handler)
    assert [str(e.barrier_id) for _, e in of_type(seen, ev.BarrierWaiting)] == [
        "b#1",
        "c#1",
        "b#2",
        "c#2",
        "b#3",
        "c#3",
        "b#4",
        "c#4",
    ]
    c_res = [r for r in resolutions(seen) if r[0].startswith("c")]
    assert c_res == [
        ("c#1", Approve(), False),
        ("c#2", Reject("wild"), False),
        ("c#3", Reject("wild"), False),
        ("c#4", Reject("wild"), False),
    ]
    assert final_state(seen)["b_seen"] == 4


async def test_later_wildcard_replaces_an_earlier_one(autojump_clock: Any) -> None:
    """decide_all twice: occurrences reached after the second use the second."""
    async with Executor().stream(counted_loop(2), {}) as run:
        run.decide_all("b", Approve())
        run.decide_all("c", Reject("one"))
        run.decide_all("c", Reject("two"))
        seen = await drive(run)
    assert resolutions(seen) == [
        ("b#1", Approve(), False),
        ("c#1", Reject("two"), False),
        ("b#2", Approve(), False),
        ("c#2", Reject("two"), False),
    ]


async def test_exact_decision_beats_wildcard(autojump_clock: Any) -> None:
    """An exact decision wins over the node's wildcard, whichever was sent first."""
    async with Executor().stream(counted_loop(4), {}) as run:
        run.decide(BarrierId("b", 2), Modify("exact", 2))  # before the wildcard
        run.decide_all("b", Approve())
        run.decide(BarrierId("b", 3), Reject("exact 3"))  # after the wildcard
        run.decide_all("c", Approve())
        seen = await drive(run)
    b_res = [r for r in resolutions(seen) if r[0].startswith("b")]
    assert b_res == [
        ("b#1", Approve(), False),
        ("b#2", Modify("exact", 2), False),
        ("b#3", Reject("exact 3"), False),
        ("b#4", Approve(), False),
    ]


async def test_wildcard_is_per_node(autojump_clock: Any) -> None:
    """decide_all("b") does not answer barrier c: c waits (here until its decision)."""

    async def handler(run: Any, event: ev.Event) -> None:
        if isinstance(event, ev.BarrierWaiting) and event.barrier_id.node == "c":
            await trio.sleep(1)
            run.decide(event.barrier_id, Approve())

    async with Executor().stream(counted_loop(1), {}) as run:
        run.decide_all("b", Reject("b only"))
        seen = await drive(run, handler)
    assert resolutions(seen) == [("b#1", Reject("b only"), False), ("c#1", Approve(), False)]
    [(t_b, _), (t_c, _)] = of_type(seen, ev.BarrierResolved)
    assert t_c == t_b + 1


async def test_occurrences_count_in_a_loop(autojump_clock: Any) -> None:
    """Reject twice, approve the third time: three BarrierWaiting with occurrences 1, 2, 3."""

    async def handler(run: Any, event: ev.Event) -> None:
        if isinstance(event, ev.BarrierWaiting):
            occ = event.barrier_id.occurrence
            run.decide(event.barrier_id, Approve() if occ == 3 else Reject(f"draft {occ}"))

    async with Executor().stream(review_loop(), {}) as run:
        seen = await drive(run, handler)
    waits = [e.barrier_id for _, e in of_type(seen, ev.BarrierWaiting)]
    assert waits == [BarrierId("b", 1), BarrierId("b", 2), BarrierId("b", 3)]
    assert [e.node for _, e in of_type(seen, ev.NodeStart)] == [
        "work",
        "b",
        "work",
        "b",
        "work",
        "b",
        "done",
    ]
    state = final_state(seen)
    assert state["drafts"] == 3
    assert state["b.approved"] is True
    assert state["b.reject_reason"] == "draft 2"  # Approve does not clear the last reason


# -- cancel while waiting ----------------------------------------------------------------


async def test_cancel_while_waiting_names_the_barrier(autojump_clock: Any) -> None:
    """run.cancel() at b#2: terminal GraphError(Cancelled) with barrier "b#2", node span closed."""

    async def handler(run: Any, event: ev.Event) -> None:
        if isinstance(event, ev.BarrierWaiting):
            if event.barrier_id.occurrence == 1:
                run.decide(event.barrier_id, Reject("again"))
            else:
                await trio.sleep(4)
                run.cancel()

    async with Executor().stream(review_loop(timeout=10), {}) as run:
        seen = await drive(run, handler)
    err = terminal_error(seen)
    assert isinstance(err, Cancelled)
    assert err.barrier == "b#2"
    assert err.node == "b"
    assert str(err) == "run cancelled while waiting at barrier b#2"
    assert run.error is err
    ends = [e for _, e in of_type(seen, ev.NodeEnd)]
    assert (ends[-1].node, ends[-1].success, ends[-1].duration) == ("b", False, 4)
    assert isinstance(seen[-2][1], ev.NodeEnd)
    assert resolutions(seen) == [("b#1", Reject("again"), False)]  # b#2 never resolved
    with pytest.raises(Cancelled):
        await run.wait()


async def test_enclosing_cancel_while_waiting_names_the_barrier(autojump_clock: Any) -> None:
    """An enclosing cancel scope at the barrier also records Cancelled naming it."""
    with trio.move_on_after(PREP + 1):
        async with Executor().stream(linear(), {}) as run:
            await drive(run)
    assert isinstance(run.error, Cancelled)
    assert run.error.barrier == "b#1"


# -- executor.run() --------------------------------------------------------------------


async def test_run_refuses_an_unanswerable_barrier(autojump_clock: Any) -> None:
    """run() with an untimed, unanswered barrier: InvalidGraph pointing to stream()."""
    message = (
        r"^graph 'linear' is invalid \(1 problem\(s\)\): barrier 'b' has no timeout and no "
        r"decision: run\(\) cannot answer it; use executor\.stream\(\) and run\.decide\(\), "
        r"give it a timeout, or pass decisions=\{'b': Approve\(\)\}$"
    )
    with pytest.raises(InvalidGraph, match=message):
        await Executor().run(linear(), {})


async def test_run_lists_only_the_untimed_barriers(autojump_clock: Any) -> None:
    """Only barriers with neither timeout nor decision are listed as problems."""
    graph = (
        GraphBuilder("two")
        .barrier("b", timeout=1)
        .barrier("c")
        .barrier("d")
        .edge("b", "c")
        .edge("c", "d")
        .start("b")
        .end("d")
        .build()
    )
    with pytest.raises(InvalidGraph) as info:
        await Executor().run(graph, {}, decisions={"d": Approve()})
    assert len(info.value.problems) == 1
    assert info.value.problems[0].startswith("barrier 'c' has no timeout")


async def test_run_with_a_timeout_on_every_barrier_runs(autojump_clock: Any) -> None:
    """run() completes when every barrier can time out, at the sum of the waits."""
    graph = (
        GraphBuilder("timed")
        .barrier("b", timeout=2, default="approve")
        .barrier("c", timeout=3, default="skip")
        .edge("b", "c")
        .start("b")
        .end("c")
        .build()
    )
    t0 = trio.current_time()
    result = await Executor().run(graph, {})
    assert trio.current_time() - t0 == 5
    assert result.state == {"b.approved": True}
    assert result.duration == 5


async def test_run_with_a_wildcard_decision_runs(autojump_clock: Any) -> None:
    """run(decisions={"b": Approve()}) answers every occurrence and completes at once."""
    t0 = trio.current_time()
    result = await Executor().run(review_loop(), {}, decisions={"b": Approve()})
    assert result.state == {"drafts": 1, "b.approved": True}
    assert trio.current_time() == t0


async def test_run_with_only_an_exact_decision_still_refuses(autojump_clock: Any) -> None:
    """A BarrierId-keyed decision answers one occurrence only, so run() cannot rely on it."""
    with pytest.raises(InvalidGraph, match=r"barrier 'b' has no timeout and no decision"):
        await Executor().run(review_loop(), {}, decisions={BarrierId("b", 1): Approve()})


async def test_run_exact_decision_with_timeout(autojump_clock: Any) -> None:
    """run() applies BarrierId-keyed decisions exactly, the timeout covering the rest."""
    result = await Executor().run(
        review_loop(timeout=1, default="approve"),
        {},
        decisions={BarrierId("b", 1): Reject("redo")},
    )
    assert result.state["drafts"] == 2
    assert result.state["b.approved"] is True
    assert result.duration == 1


async def test_run_decision_for_a_non_barrier_raises(autojump_clock: Any) -> None:
    """run(decisions=...) naming a node that is not a barrier raises BarrierError."""
    with pytest.raises(BarrierError, match=r"^decision for a node that is not a barrier"):
        await Executor().run(linear(timeout=1), {}, decisions={"prep": Approve()})


# -- a barrier inside a subgraph ------------------------------------------------------------


def with_sub_barrier(**barrier: Any) -> Graph:
    inner = (
        GraphBuilder("inner")
        .barrier("b", **barrier)
        .task("t", lambda s: {"x": 1})
        .edge("b", "t")
        .start("b")
        .end("t")
        .build()
    )
    return (
        GraphBuilder("outer")
        .task("prep", _prep)
        .subgraph("sub", inner)
        .task("end", lambda s: None)
        .edge("prep", "sub")
        .edge("sub", "end")
        .start("prep")
        .end("end")
        .build()
    )


async def test_subgraph_barrier_is_answered_by_its_path(autojump_clock: Any) -> None:
    """A barrier in subgraph "sub" is "sub/b#1"; decide() by that path, the bare name refused."""

    async def handler(run: Any, event: ev.Event) -> None:
        if isinstance(event, ev.BarrierWaiting):
            assert event.barrier_id == BarrierId("sub/b", 1)
            with pytest.raises(BarrierError, match=r"not a barrier \(node 'b'\)$"):
                run.decide_all("b", Approve())
            await trio.sleep(1)
            run.decide(event.barrier_id, Reject("inner no"))

    async with Executor().stream(with_sub_barrier(), {}) as run:
        seen = await drive(run, handler)
    [(t_done, resolved)] = of_type(seen, ev.BarrierResolved)
    assert (resolved.node, t_done) == ("sub/b", PREP + 1)
    assert resolutions(seen) == [("sub/b#1", Reject("inner no"), False)]
    assert final_state(seen)["b.reject_reason"] == "inner no"


async def test_subgraph_barrier_timeout_and_run(autojump_clock: Any) -> None:
    """run() refuses an untimed subgraph barrier by path; a timed one fires on time."""
    with pytest.raises(InvalidGraph, match=r"barrier 'sub/b' has no timeout"):
        await Executor().run(with_sub_barrier(), {})
    result = await Executor().run(with_sub_barrier(), {}, decisions={"sub/b": Approve()})
    assert result.state["b.approved"] is True
    t0 = trio.current_time()
    result = await Executor().run(with_sub_barrier(timeout=2, default="skip"), {})
    assert trio.current_time() - t0 == PREP + 2
    assert "b.approved" not in result.state


# -- durable: leave a waiting run, resume it with the decision -----------------------------


async def test_left_at_a_barrier_resumes_at_that_occurrence(autojump_clock: Any) -> None:
    """Leaving the stream at b#2 and resuming with decisions={b#2: Approve()} finishes it."""
    executor = Executor(store=MemoryStore())

    async def handler(run: Any, event: ev.Event) -> None:
        if isinstance(event, ev.BarrierWaiting) and event.barrier_id.occurrence == 1:
            run.decide(event.barrier_id, Reject("again"))

    async with executor.stream(review_loop(), {}) as run:
        async for event in run:
            await handler(run, event)
            if isinstance(event, ev.BarrierWaiting) and event.barrier_id.occurrence == 2:
                break  # the person goes home
    assert isinstance(run.error, Cancelled)
    assert run.error.barrier == "b#2"
    async with executor.resume(
        review_loop(), run.trace_id, decisions={BarrierId("b", 2): Approve()}
    ) as resumed:
        seen = await drive(resumed)
    assert [str(e.barrier_id) for _, e in of_type(seen, ev.BarrierWaiting)] == ["b#2"]
    assert resolutions(seen) == [("b#2", Approve(), False)]
    state = final_state(seen)
    assert (state["drafts"], state["b.approved"]) == (2, True)


# -- known bugs (see the report): strict xfails flip when they are fixed --------------------


class _DecideWhenLoopWakes(trio.abc.Instrument):
    """Calls decide() just before the run's loop task steps at or after ``deadline``: the
    consumer's decision lands after the timeout fired but before the loop has seen it."""

    def __init__(self, run: Any, bid: BarrierId, deadline: float) -> None:
        self.run, self.bid, self.deadline = run, bid, deadline
        self.accepted: bool | None = None

    def before_task_step(self, task: trio.lowlevel.Task) -> None:
        if (
            self.accepted is None
            and task.name.endswith("Loop.main")
            and trio.current_time() >= self.deadline
        ):
            try:
                self.run.decide(self.bid, Approve())
            except BarrierError:
                self.accepted = False
            else:
                self.accepted = True


async def test_decision_accepted_at_the_timeout_instant_is_not_dropped(
    autojump_clock: Any,
) -> None:
    """If decide() returned without error, the barrier resolves with that decision."""
    async with Executor().stream(linear(timeout=5), {}) as run:
        instrument = _DecideWhenLoopWakes(run, BarrierId("b", 1), PREP + 5)
        trio.lowlevel.add_instrument(instrument)
        try:
            seen = await drive(run)
        finally:
            trio.lowlevel.remove_instrument(instrument)
    assert instrument.accepted is True
    assert resolutions(seen) == [("b#1", Approve(), False)]


@pytest.mark.parametrize("occurrence", [0, -1, "1"])
async def test_decision_for_an_impossible_occurrence_raises(
    autojump_clock: Any, occurrence: Any
) -> None:
    """A BarrierId whose occurrence is not a positive int can never match: BarrierError."""
    async with Executor().stream(linear(timeout=1), {}) as run:
        with pytest.raises(BarrierError):
            run.decide(BarrierId("b", occurrence), Approve())
        run.cancel()


async def test_resolved_occurrence_stays_resolved_after_resume(autojump_clock: Any) -> None:
    """After resuming at b#2, deciding the already-resolved b#1 still raises BarrierError."""
    executor = Executor(store=MemoryStore())

    async def handler(run: Any, event: ev.Event) -> None:
        if isinstance(event, ev.BarrierWaiting):
            if event.barrier_id.occurrence == 1:
                run.decide(event.barrier_id, Reject("again"))
            else:
                run.cancel()

    async with executor.stream(review_loop(), {}) as run:
        await drive(run, handler)
    assert isinstance(run.error, Cancelled)
    async with executor.resume(review_loop(), run.trace_id) as resumed:
        async for event in resumed:
            if isinstance(event, ev.BarrierWaiting):
                assert event.barrier_id == BarrierId("b", 2)
                with pytest.raises(BarrierError, match=r"already resolved"):
                    resumed.decide(BarrierId("b", 1), Approve())
                resumed.decide(event.barrier_id, Approve())
