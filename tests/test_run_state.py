"""The pure run state (``_model/run_state.py``), driven without an event loop.

Every test here is a plain function: a step is ``begin``/``opened``/``finish``/``ended``
called by hand, time is a number passed in. The property test drives random graphs
with a small sequential driver and compares with the reference interpreter; the
stateful test checks that checkpoints never lose a delta however saves fail.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from trio_graph import GraphBuilder, StepsExceeded, reducers
from trio_graph import events as ev
from trio_graph._model.checkpoint import CheckpointPolicy, RunStatus
from trio_graph._model.decisions import Approve, BarrierId, Reject
from trio_graph._model.graph import Graph, TaskNode
from trio_graph._model.results import NEXT, Outcome, normalise
from trio_graph._model.run_state import RunState
from trio_graph.errors import Cancelled, GraphError, NodeExecutionFailed, NodeNotFound
from trio_graph.testing import (
    TASKS_AND_CONDITIONS,
    GraphSpec,
    build_graph,
    graph_and_state,
    interpret,
    summarize,
)


def _state(graph: Graph, values: dict[str, Any] | None = None, **options: Any) -> RunState:
    return RunState(
        graph,
        dict(values or {}),
        trace_id="t",
        max_steps=options.pop("max_steps", 50),
        policy=options.pop("policy", CheckpointPolicy()),
        durable=options.pop("durable", False),
    )


def _run_node(node: Any, view: Any) -> Outcome:
    """What the runtime's node call and kind table do, for tasks and conditions only."""
    if not isinstance(node, TaskNode):
        return NEXT
    fn = getattr(node.fn, "reference", node.fn)
    try:
        raw = fn(view)
    except Exception as exc:
        err = NodeExecutionFailed(node.name, type(exc).__name__, str(exc))
        kinds = node.fallback_on
        if kinds and isinstance(exc, kinds):
            return Outcome((), fallback=str(err))
        raise err from exc
    return normalise(node.name, raw)


def drive(run: RunState) -> tuple[list[ev.Event], GraphError | None]:
    """Run ``run`` to its end the way ``StepLoop.step`` does, sequentially."""
    events: list[ev.Event] = []
    now = 0.0
    try:
        while True:
            step = run.begin()
            events.append(ev.NodeStart("t", step.path, step.span, step.number))
            run.opened(step, now)
            outcome = _run_node(step.node, step.level.view)
            now += 1.0
            finished = run.finish(step, outcome, now)
            events += finished.events
            run.ended(step)
            events += finished.after
            if finished.error is not None:
                raise finished.error
            if finished.complete:
                return events, None
    except GraphError as exc:
        events += run.close_spans(now)
        return events, exc


def counter(steps: int = 3) -> Graph:
    return (
        GraphBuilder("count")
        .task("inc", lambda s: {"n": 1})
        .task("done", lambda s: None)
        .edge_if("inc", "done", lambda s: s["n"] >= steps)
        .edge("inc", "inc")
        .reducer("n", reducers.add)
        .start("inc")
        .end("done")
        .build()
    )


SPECS, STATES = graph_and_state(node_kinds=TASKS_AND_CONDITIONS, max_extra_edges=8)


@settings(max_examples=150, deadline=None)
@given(spec=SPECS, state=STATES, max_steps=st.sampled_from([1, 3, 8, 25]))
def test_driving_the_run_state_matches_the_reference(
    spec: GraphSpec, state: dict[str, Any], max_steps: int
) -> None:
    """Random task/condition graphs driven through RunState alone give the reference's node
    executions, StateChanged, Degraded, outcome and state."""
    expected = summarize(interpret(build_graph(spec), state, max_steps=max_steps))
    run = _state(build_graph(spec), state, max_steps=max_steps)
    events, error = drive(run)
    assert [(e.node, e.success) for e in events if isinstance(e, ev.NodeEnd)] == expected.nodes
    changes = [(e.node, e.key, e.value) for e in events if isinstance(e, ev.StateChanged)]
    assert changes == expected.changes
    degraded = [e.node for e in events if isinstance(e, ev.ObservedError)]
    assert degraded == expected.degraded
    assert ("complete" if error is None else type(error).__name__) == expected.outcome
    assert run.root.state == expected.state


def test_steps_count_route_and_log() -> None:
    """Each step counts, commits through the reducer, routes; only finishing the end
    node completes; every step is one success entry of the log."""
    run = _state(counter(3), {"n": 0})
    events, error = drive(run)
    assert error is None and run.root.state == {"n": 3}
    assert [e.node for e in events if isinstance(e, ev.NodeStart)] == ["inc"] * 3 + ["done"]
    assert [(e.step, e.node, e.success) for e in run.log] == [
        (1, "inc", True),
        (2, "inc", True),
        (3, "inc", True),
        (4, "done", True),
    ]
    spans = [e.span_id for e in events if isinstance(e, ev.NodeEnd)]
    assert run.log_count == 4 and spans == [1, 2, 3, 4]


def test_the_budget_and_a_missing_node_stop_begin() -> None:
    """begin() refuses a step over max_steps (StepsExceeded) and a node the graph lacks
    (NodeNotFound), before any span is taken."""
    run = _state(counter(10), {"n": 0}, max_steps=2)
    _, error = drive(run)
    assert isinstance(error, StepsExceeded) and error.limit == 2 and run.spans == 2
    lost = _state(counter(), {"n": 0})
    lost.root.current = "vanished"
    with pytest.raises(NodeNotFound):
        lost.begin()
    assert lost.spans == 0


def test_a_span_closes_once_with_the_right_success() -> None:
    """A step interrupted before finish ends with success=False (and a failed log entry);
    one committed but whose NodeEnd was not sent ends with success=True; after ended()
    nothing is owed."""
    run = _state(counter(), {"n": 0})
    step = run.begin()
    run.opened(step, 1.0)
    (end,) = run.close_spans(4.0)
    assert (end.node, end.success, end.duration) == ("inc", False, 3.0)
    assert [(e.step, e.success) for e in run.log] == [(1, False)]
    assert run.close_spans(5.0) == []
    step = run.begin()
    run.opened(step, 6.0)
    run.finish(step, Outcome([("n", 1)]), 7.0)
    (end,) = run.close_spans(9.0)
    assert (end.success, end.duration) == (True, 1.0)
    step = run.begin()
    run.opened(step, 10.0)
    run.finish(step, Outcome([("n", 1)]), 11.0)
    run.ended(step)
    assert run.close_spans(12.0) == []


def test_a_fallback_takes_its_edge_or_fails_the_node() -> None:
    """Outcome(fallback=...) routes along the fallback edge and says Degraded after
    NodeEnd; without a fallback edge finish() raises NodeExecutionFailed, nothing
    committed."""
    graph = (
        GraphBuilder("fb")
        .task("a", lambda s: None)
        .task("b", lambda s: None)
        .task("c", lambda s: None)
        .edge("a", "b")
        .edge_fallback("a", "c")
        .edge("b", "c")
        .start("a")
        .end("c")
        .build()
    )
    run = _state(graph)
    step = run.begin()
    run.opened(step, 0.0)
    finished = run.finish(step, Outcome((), fallback="model down"), 1.0)
    assert run.root.current == "c" and not finished.complete
    assert isinstance(finished.events[-1], ev.NodeEnd)
    (degraded,) = finished.after
    assert isinstance(degraded, ev.ObservedError) and degraded.error.kind == "Degraded"
    run.ended(step)
    step = run.begin()  # "c" has no fallback edge
    run.opened(step, 1.0)
    with pytest.raises(NodeExecutionFailed, match="no fallback edge"):
        run.finish(step, Outcome([("x", 1)], fallback="again"), 2.0)
    assert "x" not in run.root.state and run.root.step == 1


def _nested() -> Graph:
    inner = (
        GraphBuilder("inner")
        .task("work", lambda s: {"n": 1})
        .barrier("ok")
        .edge("work", "ok")
        .start("work")
        .end("ok")
        .build()
    )
    return (
        GraphBuilder("outer")
        .subgraph("sub", inner)
        .task("after", lambda s: None)
        .edge("sub", "after")
        .start("sub")
        .end("after")
        .build()
    )


def test_a_subgraph_is_a_level_with_its_own_paths_and_frames() -> None:
    """Entering a subgraph pushes a level whose events carry "sub/node" paths and whose
    barrier ids are paths too; a checkpoint inside records the level as a frame with the
    root's next node the subgraph node; leaving hands the collected updates up."""
    graph = _nested()
    run = _state(graph, {"n": 0}, durable=True)
    outer = run.begin()
    run.opened(outer, 0.0)
    level = run.enter(outer.node)  # type: ignore[arg-type]
    step = run.begin()
    assert (step.path, step.span, level.prefix) == ("sub/work", 2, "sub/")
    run.opened(step, 0.0)
    assert not run.finish(step, Outcome([("n", 1)]), 1.0).complete
    run.ended(step)
    barrier = run.begin()
    run.opened(barrier, 1.0)
    bid = run.arrive(barrier.node)  # type: ignore[arg-type]
    assert bid == BarrierId("sub/ok", 1) and run.waiting() == bid
    checkpoint, _ = run.checkpoint(status=RunStatus.WAITING, pending=bid)
    assert checkpoint.next_node == "sub" and checkpoint.state == {"n": 0}
    (frame,) = checkpoint.frames
    assert (frame.node, frame.next_node, frame.step, frame.state) == ("sub", "ok", 1, {"n": 1})
    cut = run.inner.interruption(Cancelled())
    assert (cut.status, cut.pending) == (RunStatus.WAITING, bid)
    assert run.inner.cancelled().barrier == "sub/ok#1"
    outcome = run.resolve(barrier.node, Approve())  # type: ignore[arg-type]
    assert outcome.items == [("ok.approved", True)] and run.waiting() is None
    assert run.finish(barrier, outcome, 2.0).complete
    run.ended(barrier)
    assert run.leave(outer.node).items == [("n", 1), ("ok.approved", True)]  # type: ignore[arg-type]
    assert len(run.levels) == 1


def test_resuming_inside_a_subgraph_starts_from_its_frame() -> None:
    """RunState.resume() of a checkpoint taken inside a subgraph enters the subgraph at
    its frame (state, next node, step) and counts the barrier's arrivals as before."""
    graph = _nested()
    run = _state(graph, {"n": 0}, durable=True)
    outer = run.begin()
    run.opened(outer, 0.0)
    run.enter(outer.node)  # type: ignore[arg-type]
    step = run.begin()
    run.opened(step, 0.0)
    run.finish(step, Outcome([("n", 1)]), 1.0)
    run.ended(step)
    barrier = run.begin()
    bid = run.arrive(barrier.node)  # type: ignore[arg-type]
    checkpoint, _ = run.checkpoint(status=RunStatus.WAITING, pending=bid)
    again = RunState.resume(
        graph, checkpoint, trace_id="t2", max_steps=50, policy=CheckpointPolicy()
    )
    outer = again.begin()
    level = again.enter(outer.node)  # type: ignore[arg-type]
    assert (level.current, level.step, level.state) == ("ok", 1, {"n": 1})
    assert again.arrive(again.begin().node) == bid  # type: ignore[arg-type]
    assert (again.resumed_from, again.resume_count) == ("t", 1)


def test_a_timed_out_barrier_takes_its_default() -> None:
    """time_out() resolves the occurrence (deciding it later is refused) and returns the
    barrier's default: Reject naming the timeout, Approve, or None for skip."""
    for default, expected in [
        ("reject", Reject("timed out after 5s")),
        ("approve", Approve()),
        ("skip", None),
    ]:
        graph = (
            GraphBuilder("b")
            .barrier("gate", timeout=5, default=default)  # type: ignore[arg-type]
            .start("gate")
            .end("gate")
            .build()
        )
        run = _state(graph)
        node = run.begin().node
        bid = run.arrive(node)  # type: ignore[arg-type]
        assert run.time_out(node, bid) == expected  # type: ignore[arg-type]
        assert bid in run.registry.resolved


def test_a_failure_checkpoint_has_no_next_node_once_routing_failed() -> None:
    """After a step committed but could not route, the run is not resumable: its
    checkpoint records no next node (status and error as given)."""
    graph = (
        GraphBuilder("dead")
        .task("a", lambda s: {"x": 1})
        .task("z", lambda s: None)
        .edge_if("a", "z", lambda s: False)
        .start("a")
        .end("z")
        .build()
    )
    run = _state(graph, durable=True)
    _, error = drive(run)
    assert error is not None and run.root.state == {"x": 1}
    cut = run.inner.interruption(error)
    checkpoint, changes = run.checkpoint(status=cut.status, error=str(error))
    assert (checkpoint.next_node, checkpoint.status) == (None, RunStatus.FAILED)
    assert [(d.key, d.value) for d in changes.deltas] == [("x", 1)]


class CheckpointChain(RuleBasedStateMachine):
    """Steps commit deltas; saves succeed or fail in any order: the deltas of the saves
    that succeeded, concatenated, are every delta committed up to the last of them, in
    order, and each save's hint names the last checkpoint that was saved."""

    def __init__(self) -> None:
        super().__init__()
        self.run = _state(counter(10_000), {"n": 0}, max_steps=10_000, durable=True)
        self.committed: list[int] = []
        self.saved: list[int] = []  # deltas carried by saved checkpoints, in order
        self.saved_through = 0  # how many committed deltas the saves carried

    @rule(value=st.integers(1, 9))
    def step(self, value: int) -> None:
        step = self.run.begin()
        self.run.opened(step, 0.0)
        self.run.finish(step, Outcome([("n", value)]), 0.0)
        self.run.ended(step)
        self.committed.append(value)

    @rule(ok=st.booleans())
    def save(self, ok: bool) -> None:
        last = self.run.last_checkpoint
        checkpoint, changes = self.run.checkpoint()
        assert changes.previous_id == last
        if ok:
            self.run.saved(checkpoint)
            self.saved += [d.value for d in changes.deltas]
            self.saved_through = len(self.committed)
            assert checkpoint.state["n"] == sum(self.committed)
        else:
            self.run.unsaved(changes)

    @precondition(lambda self: self.committed)
    @invariant()
    def nothing_is_lost(self) -> None:
        assert self.saved == self.committed[: self.saved_through]


TestCheckpointChain = CheckpointChain.TestCase
