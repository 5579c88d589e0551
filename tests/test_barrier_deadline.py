"""Durable barrier deadlines (DESIGN §8): a barrier's timeout is a wall-clock deadline
recorded with the waiting checkpoint; a run resumed at that very occurrence waits only
what is left of it, and applies the barrier's default at once once it has passed.

The wall clock is injected (``Executor(wall_clock=...)``); trio's MockClock
(``autojump_clock``) drives the waits, so the virtual times asserted are exact.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import trio
from test_barrier_show import WallClock, leave_waiting
from test_store_conformance import STORE_FACTORIES, StoreFactory

from trio_graph import Approve, BarrierId, Executor, GraphBuilder, Reject
from trio_graph import events as ev
from trio_graph._model.checkpoint import Checkpoint, CheckpointPolicy
from trio_graph._model.graph import BarrierNode, Graph
from trio_graph._model.run_state import RunState
from trio_graph.stores import Store

TIMEOUT = 100.0
START = 1_000_000.0


def gate(timeout: float | None = TIMEOUT, default: str = "reject") -> Graph:
    """prep -> gate (barrier) -> done."""
    return (
        GraphBuilder("gate")
        .task("prep", lambda s: {"prepped": True})
        .barrier("gate", timeout=timeout, default=default)  # type: ignore[arg-type]
        .task("done", lambda s: {"finished": True})
        .edge("prep", "gate")
        .edge("gate", "done")
        .start("prep")
        .end("done")
        .build()
    )


@pytest.fixture(params=STORE_FACTORIES)
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> Any:
    factory: StoreFactory = request.param
    async with factory(tmp_path) as opened:
        yield opened


async def resume_timed(
    store: Store, graph: Graph, trace: str, clock: WallClock, **options: Any
) -> tuple[ev.BarrierWaiting, ev.BarrierResolved, float, Any]:
    """Resume ``trace``: its BarrierWaiting, its BarrierResolved, the virtual seconds
    between them, and the result."""
    waits, resolved, times = [], [], []
    async with Executor(store=store, wall_clock=clock).resume(graph, trace, **options) as run:
        async for event in run:
            if isinstance(event, ev.BarrierWaiting):
                waits.append(event)
                times.append(trio.current_time())
            elif isinstance(event, ev.BarrierResolved):
                resolved.append(event)
                times.append(trio.current_time())
    [waiting], [done] = waits, resolved
    return waiting, done, times[1] - times[0], run.result


async def test_the_waiting_checkpoint_records_the_deadline(store: Store) -> None:
    """Arrival at wall-clock t with a timeout: the waiting checkpoint (and the one written
    when the run is left there) records t + timeout, and BarrierWaiting says it too."""
    clock = WallClock(START)
    trace, waiting = await leave_waiting(Executor(store=store, wall_clock=clock), gate())
    assert waiting.deadline == START + TIMEOUT
    stored = [cp for cp in await store.list(trace) if cp.pending_barrier is not None]
    assert [cp.deadline for cp in stored] == [START + TIMEOUT] * 2


async def test_no_timeout_no_deadline(store: Store) -> None:
    """A barrier without a timeout records no deadline."""
    trace, waiting = await leave_waiting(Executor(store=store), gate(timeout=None))
    latest = await store.latest(trace)
    assert waiting.deadline is None and latest is not None and latest.deadline is None


async def test_a_resume_before_the_deadline_waits_only_the_rest(
    store: Store, autojump_clock: trio.testing.MockClock
) -> None:
    """Resumed 60 s of wall clock later, the barrier waits the 40 s left, then applies its
    default as a timeout; the deadline stays the first one."""
    clock = WallClock(START)
    trace, _ = await leave_waiting(Executor(store=store, wall_clock=clock), gate())
    clock.now = START + 60
    waiting, done, waited, result = await resume_timed(store, gate(), trace, clock)
    assert waiting.deadline == START + TIMEOUT
    assert waited == 40.0
    assert done.timed_out and done.decision == Reject(f"timed out after {TIMEOUT}s")
    assert result.state["gate.approved"] is False


async def test_a_resume_after_the_deadline_applies_the_default_at_once(
    store: Store, autojump_clock: trio.testing.MockClock
) -> None:
    """Resumed after the deadline passed, the default applies with no wait (timed_out)."""
    clock = WallClock(START)
    graph = gate(default="approve")
    trace, _ = await leave_waiting(Executor(store=store, wall_clock=clock), graph)
    clock.now = START + TIMEOUT + 3_600
    _, done, waited, result = await resume_timed(store, graph, trace, clock)
    assert waited == 0.0
    assert (done.timed_out, done.decision) == (True, Approve())
    assert result.state["gate.approved"] is True


async def test_a_decision_kept_at_the_resume_beats_a_passed_deadline(
    store: Store, autojump_clock: trio.testing.MockClock
) -> None:
    """A decision that is already there when the resumed run arrives is taken, even
    after the deadline: it was accepted without error, so it is not dropped."""
    clock = WallClock(START)
    trace, waiting = await leave_waiting(Executor(store=store, wall_clock=clock), gate())
    clock.now = START + 2 * TIMEOUT
    decisions = {waiting.barrier_id: Approve(by="ana")}
    _, done, _, _ = await resume_timed(store, gate(), trace, clock, decisions=decisions)
    assert (done.timed_out, done.decision, done.by) == (False, Approve(by="ana"), "ana")


async def test_the_deadline_survives_a_second_resume(
    store: Store, autojump_clock: trio.testing.MockClock
) -> None:
    """Left again after a first resume, the run keeps its first deadline, not a new one."""
    clock = WallClock(START)
    trace, _ = await leave_waiting(Executor(store=store, wall_clock=clock), gate())
    clock.now = START + 30
    async with Executor(store=store, wall_clock=clock).resume(gate(), trace) as run:
        async for event in run:
            if isinstance(event, ev.BarrierWaiting):
                assert event.deadline == START + TIMEOUT
                break
    latest = await store.latest(run.trace_id)  # the second segment's cancel checkpoint
    assert latest is not None and latest.trace_id == run.trace_id
    assert latest.deadline == START + TIMEOUT


async def test_a_fork_gets_a_new_deadline(store: Store) -> None:
    """A fork of the waiting checkpoint is a new run: its deadline starts afresh."""
    clock = WallClock(START)
    trace, _ = await leave_waiting(Executor(store=store, wall_clock=clock), gate())
    latest = await store.latest(trace)
    assert latest is not None
    clock.now = START + 5_000
    async with Executor(store=store, wall_clock=clock).fork(gate(), latest.checkpoint_id) as run:
        async for event in run:
            if isinstance(event, ev.BarrierWaiting):
                assert event.deadline == START + 5_000 + TIMEOUT
                break


def nested() -> Graph:
    """a -> s (subgraph: gate) -> z."""
    return (
        GraphBuilder("outer")
        .task("a", lambda s: None)
        .subgraph("s", gate())
        .task("z", lambda s: None)
        .edge("a", "s")
        .edge("s", "z")
        .start("a")
        .end("z")
        .build()
    )


async def test_a_barrier_inside_a_subgraph_keeps_its_deadline(
    store: Store, autojump_clock: trio.testing.MockClock
) -> None:
    """A run left at s/gate and resumed 60 s later waits the 40 s left there too."""
    clock = WallClock(START)
    trace, first = await leave_waiting(Executor(store=store, wall_clock=clock), nested())
    assert first.barrier_id == BarrierId("s/gate", 1)
    clock.now = START + 60
    waiting, done, waited, _ = await resume_timed(store, nested(), trace, clock)
    assert (waiting.deadline, waited, done.timed_out) == (START + TIMEOUT, 40.0, True)


# -- the pure run state ----------------------------------------------------------------------
def test_only_the_pending_occurrence_keeps_the_deadline() -> None:
    """RunState.resume keeps the deadline for the occurrence the checkpoint waited at; a
    later arrival at the same barrier gets now + timeout, and its full timeout to wait."""
    graph = gate()
    node = graph.nodes["gate"]
    assert isinstance(node, BarrierNode)
    checkpoint = Checkpoint(
        "c",
        "t",
        graph.name,
        graph.hash(),
        "gate",
        1,
        {},
        pending_barrier=BarrierId("gate", 1),
        occurrences={"gate": 1},
        deadline=START + TIMEOUT,
    )
    run = RunState.resume(graph, checkpoint, trace_id="t2", max_steps=10, policy=CheckpointPolicy())
    assert run.arrive(node, now=START + 70) == BarrierId("gate", 1)
    assert (run.inner.wait.deadline, run.inner.wait.limit) == (START + TIMEOUT, 30.0)
    run.resolve(node, Approve())
    assert run.arrive(node, now=START + 80) == BarrierId("gate", 2)
    assert (run.inner.wait.deadline, run.inner.wait.limit) == (START + 80 + TIMEOUT, TIMEOUT)
