"""Bad input gets the typed error DESIGN names, checked by property tests.

Node results: a value that is not updates, None, Goto or Fallback, or updates with a
key that is not a str -> ``StateError`` naming the node; a Goto to a node with no edge
-> ``MissingEdge``; a Fallback with no fallback edge -> ``NodeExecutionFailed``; a
parallel branch returning anything but updates or None -> that branch fails; a reducer
that cannot merge -> ``StateError`` naming node and key, nothing applied. Decisions:
malformed, for a node that is no barrier, for an impossible or resolved occurrence, or
after the run -> ``BarrierError`` in the caller; a Reroute with no edge ->
``MissingEdge``; none of them changes the run. Every case also runs on the reference.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import trio
import trio.testing
from hypothesis import given, settings
from hypothesis import strategies as st

from trio_graph import (
    Approve,
    BarrierError,
    BarrierId,
    Executor,
    Fallback,
    Goto,
    GraphBuilder,
    MissingEdge,
    Modify,
    Reject,
    Reroute,
    StateError,
    reducers,
)
from trio_graph import events as ev
from trio_graph._model.graph import Graph
from trio_graph.testing import ErrorInfo, Trace, assert_same, error_info, interpret, run_graph

EXAMPLES = settings(max_examples=100, deadline=None)

scalars = st.one_of(
    st.integers(), st.floats(allow_nan=False), st.text(max_size=5), st.booleans(), st.binary()
)
not_updates = st.one_of(
    scalars,
    st.lists(scalars, max_size=3),
    st.tuples(scalars, scalars),
    st.frozensets(st.integers(), max_size=3),
    st.builds(object),
    st.just(Approve()),
)
"""Values that are not a mapping, None, Goto or Fallback."""
non_str_keys = st.one_of(
    st.integers(), st.floats(allow_nan=False), st.none(), st.tuples(st.integers()), st.binary()
)
bad_updates = st.builds(
    lambda good, bad, value: {**good, bad: value},
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
    non_str_keys,
    st.integers(),
)
"""Mappings with at least one key that is not a str."""


def returning(value: Any) -> Callable[[Any], Any]:
    def node(state: Any) -> Any:
        return value

    return node


def line(fn: Callable[[Any], Any], *, fallback: bool = False) -> Graph:
    """start -> t (runs fn) -> end, plus t -> side when ``fallback``."""
    b = GraphBuilder("g").task("start", returning(None)).task("t", fn).task("end", returning(None))
    b.edge("start", "t").edge("t", "end").reducer("n", reducers.append)
    if fallback:
        b.task("side", returning(None)).edge_fallback("t", "side").edge("side", "end")
    return b.start("start").end("end").build()


def both(make: Callable[[], Graph], state: dict[str, Any] | None = None) -> Trace:
    """Run on the executor and the reference; they must agree; return the trace."""
    actual = run_graph(make(), state or {}, max_steps=10)
    assert_same(interpret(make(), state or {}, max_steps=10), actual)
    return actual


def error_of(trace: Trace) -> ErrorInfo:
    assert trace.error is not None, "the run did not fail"
    return trace.error


# -- node results ---------------------------------------------------------------------


@EXAMPLES
@given(not_updates)
def test_malformed_task_result_is_a_state_error(value: Any) -> None:
    """A task returning something that is not updates/None/Goto/Fallback: StateError."""
    trace = both(lambda: line(returning(value)))
    assert error_of(trace) == error_info("StateError", node="t")
    assert trace.events[-2] == ("NodeEnd", "t", False)


@EXAMPLES
@given(bad_updates, st.sampled_from(["plain", "goto", "fallback"]))
def test_non_str_update_keys_are_a_state_error(updates: dict[Any, Any], wrapper: str) -> None:
    """A key that is not a str, in plain updates, a Goto or a Fallback: StateError."""
    if wrapper == "goto":
        result: Any = Goto("end", updates)
    elif wrapper == "fallback":
        result = Fallback("why", updates)
    else:
        result = updates
    trace = both(lambda: line(returning(result), fallback=True))
    assert error_of(trace) == error_info("StateError", node="t")
    assert trace.state == {}


@EXAMPLES
@given(st.text(max_size=6).filter(lambda t: t != "end"))
def test_goto_without_an_edge_is_missing_edge(target: str) -> None:
    """A Goto to any node without an edge from the node (unknown or not): MissingEdge."""
    trace = both(lambda: line(returning(Goto(target, {"k": 1}))))
    assert error_of(trace) == error_info("MissingEdge", frm="t", to=target)
    assert trace.state == {"k": 1}  # the node succeeded; routing failed after it


@EXAMPLES
@given(st.one_of(st.integers(), st.none(), st.lists(st.text(max_size=2), max_size=2)))
def test_goto_target_that_is_not_a_str_is_a_state_error(target: Any) -> None:
    """Goto(target) with a target that is not a node name: StateError."""
    trace = both(lambda: line(returning(Goto(target))))
    assert error_of(trace) == error_info("StateError", node="t")


@EXAMPLES
@given(st.text(max_size=5), st.dictionaries(st.sampled_from(["a", "b"]), st.integers()))
def test_fallback_without_a_fallback_edge_fails(reason: str, updates: dict[str, int]) -> None:
    """Fallback from a node with no fallback edge: NodeExecutionFailed, nothing applied."""
    trace = both(lambda: line(returning(Fallback(reason, updates))))
    assert error_of(trace) == error_info("NodeExecutionFailed", node="t", error_type="Fallback")
    assert trace.state == {}


@EXAMPLES
@given(
    st.one_of(not_updates, bad_updates, st.just(Goto("end")), st.just(Fallback("x"))),
    st.sampled_from(["fail_fast", "collect_all"]),
)
def test_malformed_branch_result_fails_the_branch(value: Any, strategy: Any) -> None:
    """A branch returning anything but updates or None fails, as a StateError."""

    def make() -> Graph:
        branches = {"good": returning({"a": 1}), "bad": returning(value)}
        return (
            GraphBuilder("g")
            .parallel("p", branches, strategy=strategy)
            .task("end", returning(None))
            .edge("p", "end")
            .start("p")
            .end("end")
            .build()
        )

    trace = both(make)
    if strategy == "fail_fast":
        expected = error_info(
            "NodeExecutionFailed", node="p", error_type="StateError", branch="bad"
        )
    else:
        expected = error_info(
            "NodeExecutionFailed",
            node="p",
            error_type="ExceptionGroup",
            failures=(("bad", "StateError"),),
        )
    assert error_of(trace) == expected
    assert trace.state == {}


failing_merges = st.one_of(
    st.tuples(st.just(reducers.append), st.one_of(st.integers(), st.text()), st.integers()),
    st.tuples(st.just(reducers.extend), st.just([]), st.one_of(st.integers(), st.text())),
    st.tuples(st.just(reducers.merge), st.just({}), st.one_of(st.integers(), st.lists(st.text()))),
    st.tuples(st.just(reducers.add), st.integers(), st.one_of(st.text(), st.lists(st.integers()))),
    st.tuples(st.just(reducers.max), st.integers(), st.text()),
    st.tuples(st.just(reducers.union), st.integers(), st.lists(st.integers())),
)
"""A reducer, an old value and an update it cannot merge into it."""


@EXAMPLES
@given(failing_merges)
def test_failing_reducer_is_a_state_error_and_applies_nothing(case: tuple[Any, Any, Any]) -> None:
    """A reducer that cannot merge: StateError naming node and key; no update applied."""
    reducer, old, new = case

    def make() -> Graph:
        return (
            GraphBuilder("g")
            .task("t", returning({"other": 1, "k": new}))
            .task("end", returning(None))
            .edge("t", "end")
            .reducer("k", reducer)
            .start("t")
            .end("end")
            .build()
        )

    trace = both(make, {"k": old})
    assert error_of(trace) == error_info("StateError", node="t", key="k")
    assert trace.state == {"k": old}


@EXAMPLES
@given(st.one_of(not_updates, st.none(), bad_updates))
def test_malformed_initial_state_is_a_state_error(state: Any) -> None:
    """An initial state that is not a mapping with str keys: StateError at once."""
    graph = line(returning(None))

    async def main() -> None:
        with pytest.raises(StateError):
            async with Executor().stream(graph, state):
                pass  # pragma: no cover - never entered

    trio.run(main)


# -- decisions ------------------------------------------------------------------------


def barrier_graph() -> Graph:
    """t -> gate (a barrier with no timeout) -> end; gate may Reroute to t or end."""
    return (
        GraphBuilder("g")
        .task("t", returning(None))
        .barrier("gate")
        .task("end", returning(None))
        .edge("t", "gate")
        .edge("gate", "end")
        .edge_fallback("gate", "t")
        .start("t")
        .end("end")
        .build()
    )


def decide_while_waiting(bad: Callable[[Any], None]) -> tuple[BaseException | None, list[Any]]:
    """Run barrier_graph; at gate#1 call ``bad(run)`` (it should raise), then approve.

    Returns what ``bad`` raised and the BarrierResolved decisions."""
    raised: list[BaseException | None] = [None]
    resolved: list[Any] = []

    async def main() -> None:
        async with Executor(max_steps=10).stream(barrier_graph(), {}) as run:
            async for event in run:
                if isinstance(event, ev.BarrierWaiting):
                    try:
                        bad(run)
                    except Exception as exc:
                        raised[0] = exc
                    run.decide(event.barrier_id, Approve())
                elif isinstance(event, ev.BarrierResolved):
                    resolved.append(event.decision)
            assert run.result is not None

    trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))
    return raised[0], resolved


malformed_decisions = st.one_of(
    scalars,
    st.none(),
    st.just(Approve),
    st.builds(Modify, non_str_keys, st.integers()),
    st.builds(object),
    st.just({"decision": "approve"}),
)
"""Decisions ``decide`` cannot accept."""


@EXAMPLES
@given(malformed_decisions, st.booleans())
def test_malformed_decision_is_refused(decision: Any, wildcard: bool) -> None:
    """A malformed decision (exact or wildcard): BarrierError, and the run goes on as if
    it had not been sent."""
    if wildcard:
        error, resolved = decide_while_waiting(lambda run: run.decide_all("gate", decision))
    else:
        error, resolved = decide_while_waiting(
            lambda run: run.decide(BarrierId("gate", 1), decision)
        )
    assert isinstance(error, BarrierError)
    assert resolved == [Approve()]


@EXAMPLES
@given(st.one_of(st.sampled_from(["t", "end", "ghost", ""]), st.text(max_size=4)))
def test_decision_for_a_node_that_is_not_a_barrier_is_refused(node: str) -> None:
    """A decision for a task, an unknown node or any other name: BarrierError."""
    if node == "gate":
        node = "gate2"
    error, resolved = decide_while_waiting(lambda run: run.decide(BarrierId(node, 1), Reject()))
    assert isinstance(error, BarrierError) and resolved == [Approve()]
    error, _ = decide_while_waiting(lambda run: run.decide_all(node, Reject()))
    assert isinstance(error, BarrierError)


@EXAMPLES
@given(st.one_of(st.integers(max_value=0), st.just(True), st.text(max_size=2), st.none()))
def test_impossible_occurrence_is_refused(occurrence: Any) -> None:
    """An occurrence that no run can have (not an int >= 1): BarrierError."""
    error, resolved = decide_while_waiting(
        lambda run: run.decide(BarrierId("gate", occurrence), Reject())
    )
    assert isinstance(error, BarrierError) and resolved == [Approve()]


@EXAMPLES
@given(st.one_of(st.just("gate"), st.text(max_size=4).filter(lambda t: t not in ("t", "end"))))
def test_reroute_without_an_edge_is_missing_edge(target: str) -> None:
    """A Reroute to a node the barrier has no edge to: MissingEdge, not applied."""
    error, resolved = decide_while_waiting(
        lambda run: run.decide(BarrierId("gate", 1), Reroute(target))
    )
    assert isinstance(error, MissingEdge) and (error.frm, error.to) == ("gate", target)
    assert resolved == [Approve()]


@EXAMPLES
@given(st.one_of(st.integers(), st.text(), st.tuples(st.text(), st.integers())))
def test_decide_needs_a_barrier_id(barrier_id: Any) -> None:
    """decide() with anything but a BarrierId: BarrierError."""
    error, _ = decide_while_waiting(lambda run: run.decide(barrier_id, Approve()))
    assert isinstance(error, BarrierError)


def test_decision_for_a_resolved_occurrence_is_refused() -> None:
    """Answering an occurrence already resolved: BarrierError (never a silent no-op)."""
    decided: list[BaseException] = []

    async def main() -> None:
        graph = barrier_graph()
        async with Executor(max_steps=10).stream(graph, {}) as run:
            async for event in run:
                if isinstance(event, ev.BarrierWaiting):
                    run.decide(event.barrier_id, Approve())
                elif isinstance(event, ev.BarrierResolved):
                    with pytest.raises(BarrierError) as info:
                        run.decide(event.barrier_id, Reject())
                    decided.append(info.value)

    trio.run(main)
    assert len(decided) == 1
