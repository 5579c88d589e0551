"""The event lifecycle contract (DESIGN §5), on random graphs and node behaviours.

Every run: GraphStart first; each NodeStart has exactly one NodeEnd with the same
span_id; span ids distinct; exactly one terminal event, last, then the channel
closes; the run's trace_id on every event. The run must also agree with the
reference interpreter, ``trio_graph.testing.interpret``.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import attrs
import pytest
import trio
import trio.testing
from hypothesis import event, given, settings
from hypothesis import strategies as st

from trio_graph import Executor, GraphBuilder, NodeNotFound, StepsExceeded
from trio_graph import events as ev
from trio_graph._model.graph import Edge, OutEdges
from trio_graph._model.run_state import RunState
from trio_graph._runtime.loop import StepLoop
from trio_graph.testing import (
    TASKS_AND_CONDITIONS,
    GraphSpec,
    build_graph,
    graph_and_state,
    interpret,
    summarize,
)

SPECS, STATES = graph_and_state(
    node_kinds=TASKS_AND_CONDITIONS, max_extra_edges=12, raising_conditions=8
)
"""Random graphs of task and condition nodes (runs that need nobody), and a state for each."""

NODE_LEVEL = (ev.NodeStart, ev.StateChanged, ev.NodeEnd, ev.BarrierWaiting, ev.ParallelStarted)


def check_contract(events: list[Any], trace_id: str) -> None:
    """Assert the lifecycle contract on one run's complete event stream."""
    assert events, "no events at all"
    assert isinstance(events[0], ev.GraphStart), events[0]
    terminals = [i for i, e in enumerate(events) if isinstance(e, ev.TERMINAL)]
    assert terminals == [len(events) - 1], f"terminal events at {terminals} of {len(events)}"
    assert all(e.trace_id == trace_id for e in events), "an event lacks the run's trace_id"
    open_span: ev.NodeStart | None = None
    starts: list[int] = []
    ends: Counter[int] = Counter()
    last_step = events[0].step
    for e in events[1:]:
        if isinstance(e, ev.NodeStart):
            assert open_span is None, f"NodeStart {e} while span {open_span} is open"
            assert e.step == last_step + 1, f"step {e.step} after step {last_step}"
            last_step = e.step
            open_span = e
            starts.append(e.span_id)
        elif isinstance(e, ev.NodeEnd):
            assert open_span is not None, f"NodeEnd {e} without a NodeStart"
            assert (e.span_id, e.node) == (open_span.span_id, open_span.node)
            assert e.duration >= 0
            ends[e.span_id] += 1
            open_span = None
        elif isinstance(e, ev.StateChanged | ev.NodeOutput):
            assert open_span is not None and e.span_id == open_span.span_id, e
            assert e.node == open_span.node
    assert open_span is None, f"NodeStart {open_span} never ended"
    assert len(set(starts)) == len(starts), f"span ids repeat: {starts}"
    assert all(ends[s] == 1 for s in starts), (starts, ends)
    assert set(ends) == set(starts)


def check_outputs(events: list[Any], spec: GraphSpec, emits: int) -> None:
    """Each task node's span holds exactly ``emits`` NodeOutputs, in the order emitted."""
    tasks = {n.name for n in spec.nodes if n.kind == "task"}
    outputs: dict[int, list[Any]] = {}
    for e in events:
        if isinstance(e, ev.NodeStart) and e.node in tasks:
            outputs[e.span_id] = []
        elif isinstance(e, ev.NodeOutput):
            outputs[e.span_id].append(e.data)
    starts = {e.span_id: e.node for e in events if isinstance(e, ev.NodeStart)}
    for span, data in outputs.items():
        assert data == [f"{starts[span]}#{i}" for i in range(emits)], (span, data)


async def collect(executor: Executor, graph: Any, state: dict[str, Any]) -> tuple[list[Any], Any]:
    """Every event of a run, iterating until the channel closes."""
    async with executor.stream(graph, state) as run:
        events = [e async for e in run]
        # The channel is closed: iterating again ends at once, with no more events.
        assert [e async for e in run] == []
        assert run.done
        return events, run


def outcome_of(terminal: Any) -> str:
    if isinstance(terminal, ev.GraphComplete):
        return "complete"
    return type(terminal.error).__name__


@settings(max_examples=150)
@given(
    spec=SPECS,
    state=STATES,
    max_steps=st.sampled_from([25, 40, 13, 8, 5, 3, 2, 1]),
    buffer=st.sampled_from([256, 1, 2, 3, 5]),
    emits=st.sampled_from([0, 0, 1, 3]),
)
def test_random_runs_keep_the_contract_and_match_the_reference(
    spec: GraphSpec, state: dict[str, Any], max_steps: int, buffer: int, emits: int
) -> None:
    """Random graph + behaviours (+ event buffer size; task nodes emitting outputs or
    not): the event stream keeps the lifecycle contract (each span's NodeOutputs inside
    it, in order), and node order, success flags, StateChanged, Degraded, outcome and
    state match the reference."""
    expected = summarize(interpret(build_graph(spec), state, max_steps=max_steps))
    event(f"outcome: {expected.outcome}")
    event(f"steps: {'>5' if len(expected.nodes) > 5 else '<=5'}")
    calls: Counter[str] = Counter()

    async def main() -> None:
        executor = Executor(max_steps=max_steps, buffer=buffer)
        events, run = await collect(executor, build_graph(spec, calls=calls, emits=emits), state)
        check_contract(events, run.trace_id)
        check_outputs(events, spec, emits)
        terminal = events[-1]
        ends = [(e.node, e.success) for e in events if isinstance(e, ev.NodeEnd)]
        assert ends == expected.nodes
        assert outcome_of(terminal) == expected.outcome, terminal
        changes = [(e.node, e.key, e.value) for e in events if isinstance(e, ev.StateChanged)]
        assert changes == expected.changes
        degraded = [e for e in events if isinstance(e, ev.ObservedError)]
        assert [e.node for e in degraded] == expected.degraded
        assert all(e.error.kind == "Degraded" for e in degraded)
        if isinstance(terminal, ev.GraphComplete):
            assert run.result is terminal.result and run.error is None
            assert terminal.result.state == expected.state
            log = [(x.node, x.success) for x in terminal.result.execution_log]
            assert log == expected.nodes
            assert [x.step for x in terminal.result.execution_log] == list(range(1, len(log) + 1))
        else:
            assert run.error is terminal.error and run.result is None
            assert terminal.state == expected.state
        if expected.outcome == "StepsExceeded":
            assert sum(isinstance(e, ev.NodeStart) for e in events) == max_steps
            assert terminal.error.limit == max_steps
        # A task node runs exactly once per NodeStart naming it.
        for node in spec.nodes:
            if node.kind == "task":
                runs = sum(isinstance(e, ev.NodeStart) and e.node == node.name for e in events)
                assert calls[node.name] == runs

    trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))


def _loop_graph() -> Any:
    return (
        GraphBuilder("loop")
        .task("a", lambda s: {"i": s["i"] + 1})
        .task("b", lambda s: None)
        .edge("a", "b")
        .edge("b", "a")
        .start("a")
        .end("b")
        .build()
    )


def _forever() -> Any:
    def fn(s: Any) -> None:
        return None

    return (
        GraphBuilder("forever")
        .task("a", fn)
        .task("b", fn)
        .task("end", fn)
        .edge_if("a", "end", lambda s: False)
        .edge("a", "b")
        .edge("b", "a")
        .start("a")
        .end("end")
        .build()
    )


async def test_steps_exceeded_past_max_steps() -> None:
    """A cycle with no way out stops with StepsExceeded naming the limit and the next node;
    exactly max_steps nodes ran, and the state is that of the last completed step."""
    events, run = await collect(Executor(max_steps=7), _forever(), {"x": 1})
    check_contract(events, run.trace_id)
    terminal = events[-1]
    assert isinstance(terminal, ev.GraphError)
    assert isinstance(terminal.error, StepsExceeded)
    assert terminal.error.limit == 7
    assert terminal.error.node == "b"  # a b a b a b a | b
    assert str(terminal.error) == "max_steps=7 exceeded before running node 'b'"
    assert [e.step for e in events if isinstance(e, ev.NodeStart)] == list(range(1, 8))
    assert terminal.state == {"x": 1}


async def test_max_steps_exact_is_enough() -> None:
    """A run that needs exactly max_steps steps completes (the limit is inclusive)."""
    events, _ = await collect(Executor(max_steps=2), _loop_graph(), {"i": 0})
    assert isinstance(events[-1], ev.GraphComplete)
    with pytest.raises(StepsExceeded):
        await Executor(max_steps=1).run(_loop_graph(), {"i": 0})


async def test_node_not_found_for_an_edge_leading_nowhere() -> None:
    """A graph whose edge leads to a node it does not have ends with NodeNotFound naming
    that node, after the source node's NodeEnd, and no NodeStart for the ghost."""
    good = _loop_graph()
    ghost = Edge("a", "ghost")
    out = dict(good.out)
    out["a"] = OutEdges(normal=(ghost,), targets=frozenset({"ghost"}))
    graph = attrs.evolve(good, out=out)
    events, run = await collect(Executor(), graph, {"i": 0})
    check_contract(events, run.trace_id)
    terminal = events[-1]
    assert isinstance(terminal, ev.GraphError)
    assert isinstance(terminal.error, NodeNotFound)
    assert terminal.error.node == "ghost"
    assert str(terminal.error) == "node 'ghost' not found in the graph"
    assert [e.node for e in events if isinstance(e, ev.NodeStart)] == ["a"]
    assert terminal.state == {"i": 1}


async def test_node_not_found_for_a_missing_start() -> None:
    """A graph whose start is not one of its nodes fails at step 1 with NodeNotFound and
    emits GraphStart then the terminal event only."""
    graph = attrs.evolve(_loop_graph(), start="nope")
    events, run = await collect(Executor(), graph, {"i": 0})
    assert [type(e) for e in events] == [ev.GraphStart, ev.GraphError]
    assert isinstance(events[-1].error, NodeNotFound) and events[-1].error.node == "nope"
    assert run.error is events[-1].error


async def test_loop_resumed_at_missing_node() -> None:
    """A run started at a node the graph lacks (as a resume would) ends with NodeNotFound."""
    graph = _loop_graph()
    state = RunState(
        graph,
        {"i": 0},
        trace_id="t",
        max_steps=5,
        policy=Executor().policy,
        durable=False,
    )
    state.root.current, state.root.step = "vanished", 3
    loop = StepLoop(state, None)
    send, receive = trio.open_memory_channel[Any](100)
    await loop.main(send)
    events = [e async for e in receive]
    assert isinstance(events[0], ev.GraphStart) and events[0].step == 3
    assert isinstance(events[-1].error, NodeNotFound) and events[-1].error.node == "vanished"


async def test_same_node_twice_gets_two_span_ids() -> None:
    """A node run twice in a loop gets a fresh span_id each time (ints, unique per run)."""
    graph = (
        GraphBuilder("twice")
        .task("a", lambda s: {"i": s["i"] + 1})
        .task("end", lambda s: None)
        .edge_if("a", "a", lambda s: s["i"] < 3)
        .edge("a", "end")
        .start("a")
        .end("end")
        .build()
    )
    events, run = await collect(Executor(), graph, {"i": 0})
    check_contract(events, run.trace_id)
    spans = [(e.node, e.span_id) for e in events if isinstance(e, ev.NodeStart)]
    assert [n for n, _ in spans] == ["a", "a", "a", "end"]
    assert all(isinstance(s, int) for _, s in spans)
    assert len({s for _, s in spans}) == 4


async def test_two_runs_have_distinct_trace_ids() -> None:
    """Each run gets its own trace_id, carried by all of its events."""
    ex = Executor()
    e1, r1 = await collect(ex, _loop_graph(), {"i": 0})
    e2, r2 = await collect(ex, _loop_graph(), {"i": 0})
    assert r1.trace_id != r2.trace_id
    check_contract(e1, r1.trace_id)
    check_contract(e2, r2.trace_id)


async def test_durations_use_trio_clock(autojump_clock: trio.testing.MockClock) -> None:
    """NodeEnd.duration and the execution log are measured on trio.current_time()."""

    async def slow(s: Any) -> dict[str, int]:
        await trio.sleep(2.5)
        return {"x": 1}

    graph = GraphBuilder("t").task("s", slow).start("s").end("s").build()
    events, _ = await collect(Executor(), graph, {})
    end = next(e for e in events if isinstance(e, ev.NodeEnd))
    assert end.duration == pytest.approx(2.5)
    result = events[-1].result
    assert result.duration == pytest.approx(2.5)
    (entry,) = result.execution_log
    assert entry.end - entry.start == pytest.approx(2.5)
