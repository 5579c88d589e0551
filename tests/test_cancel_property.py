"""Cancellation at a random moment of a random run keeps every promise (DESIGN §5, §8).

For random graphs and behaviours (trio_graph.testing), the run is cancelled after a
random number of events — from the handle, or by an enclosing scope at a random
virtual time — with a random event buffer. Whatever the moment:

- the event stream keeps the lifecycle contract (the terminal event is last, every
  NodeStart has its NodeEnd, even when the cancel lands while events are being sent);
- a handle cancel never overrides an outcome already settled;
- the cancel checkpoint holds exactly the state the terminal event reports, points at a
  node of the graph, and a resume from it keeps the contract with steps counted on.
"""

from __future__ import annotations

from typing import Any

import trio
import trio.testing
from hypothesis import given, settings
from hypothesis import strategies as st
from test_events_contract import check_contract

from trio_graph import Cancelled, Executor
from trio_graph import events as ev
from trio_graph.stores import MemoryStore
from trio_graph.testing import TASKS_AND_CONDITIONS, GraphSpec, build_graph, graph_and_state

SPECS, STATES = graph_and_state(
    node_kinds=TASKS_AND_CONDITIONS, max_extra_edges=12, raising_conditions=8
)
"""Random graphs of task and condition nodes (runs that need nobody), and a state for each."""


@settings(max_examples=120)
@given(
    spec=SPECS,
    state=STATES,
    cancel_after=st.integers(0, 40),
    buffer=st.sampled_from([256, 1, 2, 3]),
)
def test_handle_cancel_at_any_event(
    spec: GraphSpec, state: dict[str, Any], cancel_after: int, buffer: int
) -> None:
    """run.cancel() after any number of events: contract kept, checkpoint = terminal state."""

    async def main() -> None:
        store = MemoryStore()
        executor = Executor(max_steps=30, buffer=buffer, store=store)
        graph = build_graph(spec)
        events: list[Any] = []
        decided_before_cancel = None
        async with executor.stream(graph, state) as run:
            async for event in run:
                events.append(event)
                if len(events) == cancel_after + 1:
                    decided_before_cancel = run.result is not None or run.error is not None
                    run.cancel()
        check_contract(events, run.trace_id)
        terminal = events[-1]
        if decided_before_cancel:  # the outcome was settled before the cancel: it stands
            assert not (
                isinstance(terminal, ev.GraphError) and isinstance(terminal.error, Cancelled)
            )
        # (A cancel landing while the completion checkpoint is being written lets the
        # run complete: the store already says "completed", and the events agree.)
        if isinstance(terminal, ev.GraphError) and isinstance(terminal.error, Cancelled):
            latest = await store.latest(run.trace_id)
            assert latest is not None
            assert latest.state == terminal.state
            if latest.next_node is not None:
                assert latest.next_node in graph.nodes
                steps = sum(isinstance(e, ev.NodeEnd) and e.success for e in events)
                assert latest.step == steps
                async with executor.resume(graph, run.trace_id) as resumed:
                    more = [e async for e in resumed]
                check_contract(more, resumed.trace_id)
                first = more[0]
                assert isinstance(first, ev.GraphStart)
                assert (first.node, first.step, first.resumed_from) == (
                    latest.next_node,
                    latest.step,
                    run.trace_id,
                )

    trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))


@settings(max_examples=80)
@given(spec=SPECS, state=STATES, deadline=st.sampled_from([0.0, 0.25, 0.5, 1.0, 3.5]))
def test_enclosing_scope_cancel_at_any_time(
    spec: GraphSpec, state: dict[str, Any], deadline: float
) -> None:
    """An enclosing deadline at a random virtual time: the run stops, nothing outlives the
    block, and what the consumer saw is a prefix of a contract-keeping stream."""

    async def main() -> None:
        store = MemoryStore()
        executor = Executor(max_steps=30, store=store)
        events: list[Any] = []
        with trio.move_on_after(deadline) as scope:
            async with executor.stream(build_graph(spec), state) as run:
                async for event in run:
                    events.append(event)
        assert run.done
        if scope.cancelled_caught and not any(isinstance(e, ev.TERMINAL) for e in events):
            # The consumer was cancelled too: the run recorded its end and its checkpoint.
            assert isinstance(run.error, Cancelled)
            latest = await store.latest(run.trace_id)
            assert latest is not None
        else:
            check_contract(events, run.trace_id)

    trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))
