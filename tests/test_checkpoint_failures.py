"""A store whose ``save`` fails, at every site a run saves from (issue 13, items 7 and 8).

Every run ends with exactly one terminal event, whatever save fails: a store's own
exception becomes ``GraphError(CheckpointError)`` naming the checkpoint (what it
records, the run, the step, the next node, the last checkpoint saved) with the store's
exception as ``__cause__``, and ``run()`` raises it. A failure or cancel checkpoint
that cannot be saved never hides the run's first error (a ``Cancelled`` stays
``Cancelled``): it is said by an ``ObservedError`` warning before the terminal event
and a note on the error. ``CheckpointPolicy(on_request=False)`` refuses
``run.request_checkpoint()``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import pytest
import trio
import trio.testing
from hypothesis import given, settings
from hypothesis import strategies as st
from test_events_contract import check_contract

from trio_graph import (
    Approve,
    BarrierId,
    Cancelled,
    CheckpointError,
    CheckpointPolicy,
    Executor,
    GraphBuilder,
    NodeExecutionFailed,
    RunStatus,
)
from trio_graph import events as ev
from trio_graph._model.checkpoint import Checkpoint
from trio_graph._model.graph import Graph
from trio_graph.errors import LeaseLost
from trio_graph.stores import MemoryStore

SITES = "requested|every-step|barrier-waiting|barrier-resolved|adaptive|completion"


class Disk(ValueError):
    """What the flaky store raises: not a trio_graph error."""


class FlakyStore:
    """Delegates to ``inner``, but raises on the saves numbered in ``fail`` (from 1)."""

    def __init__(self, inner: MemoryStore, fail: set[int] | None = None, *, every: bool = False):
        self.inner = inner
        self.fail = fail or set()
        self.every = every
        self.saves = 0
        self.raised: list[BaseException] = []

    async def save(self, checkpoint: Checkpoint, **hints: Any) -> None:
        self.saves += 1
        if self.every or self.saves in self.fail:
            await trio.lowlevel.checkpoint()
            exc = Disk(f"disk on fire #{self.saves}")
            self.raised.append(exc)
            raise exc
        await self.inner.save(checkpoint, **hints)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


def reviewed() -> Graph:
    """a -> review (no timeout) -> b -> c (end)."""
    return (
        GraphBuilder("reviewed")
        .task("a", lambda s: {"log": ["a"]})
        .barrier("review")
        .task("b", lambda s: {"log": [*s["log"], "b"]})
        .task("c", lambda s: {"log": [*s["log"], "c"]})
        .edge("a", "review")
        .edge("review", "b")
        .edge("b", "c")
        .start("a")
        .end("c")
        .build()
    )


def failing() -> Graph:
    """a -> bad (raises) -> c."""

    def bad(state: Mapping[str, Any]) -> None:
        raise RuntimeError("bad node")

    return (
        GraphBuilder("failing")
        .task("a", lambda s: {"x": 1})
        .task("bad", bad)
        .task("c", lambda s: None)
        .edge("a", "bad")
        .edge("bad", "c")
        .start("a")
        .end("c")
        .build()
    )


async def drive(store: FlakyStore, policy: CheckpointPolicy) -> tuple[list[ev.Event], Any]:
    """Run ``reviewed()`` with a checkpoint requested up front and review#1 decided ahead."""
    executor = Executor(store=store, policy=policy)  # type: ignore[arg-type]
    async with executor.stream(reviewed(), {}) as run:
        run.request_checkpoint()
        run.decide(BarrierId("review", 1), Approve())
        events = [e async for e in run]
    return events, run


async def _scenario(fail_at: int, every_step: bool) -> None:
    policy = CheckpointPolicy(every_step=every_step)
    healthy = FlakyStore(MemoryStore())
    await drive(healthy, policy)
    store = FlakyStore(MemoryStore(), {fail_at})
    events, run = await drive(store, policy)
    check_contract(events, run.trace_id)
    terminal = events[-1]
    if fail_at > healthy.saves:  # no save failed
        assert isinstance(terminal, ev.GraphComplete)
        return
    assert isinstance(terminal, ev.GraphError)
    error = terminal.error
    assert isinstance(error, CheckpointError) and run.error is error
    assert error.__cause__ is store.raised[0]
    assert re.fullmatch(
        rf"could not save the ({SITES}) checkpoint of run '{run.trace_id}' at step \d+ "
        rf"\(next node '[^']+'; last saved checkpoint ('\w+'|None)\): store\.save raised "
        rf"Disk: disk on fire #{fail_at}",
        str(error),
    ), str(error)
    latest = await store.inner.latest(run.trace_id)  # the failure checkpoint was saved
    assert latest is not None and latest.status == RunStatus.FAILED
    assert latest.error == str(error)


@settings(max_examples=30)
@given(fail_at=st.integers(1, 8), every_step=st.booleans())
def test_a_save_failing_anywhere_ends_the_run_with_one_checkpoint_error(
    fail_at: int, every_step: bool
) -> None:
    """Whichever save raises, the run ends with one GraphError(CheckpointError) caused by it."""
    trio.run(_scenario, fail_at, every_step, clock=trio.testing.MockClock(autojump_threshold=0))


@pytest.mark.parametrize(
    ("every_step", "fail_at", "site", "where"),
    [
        (False, 1, "requested", "at step 0 (next node 'a'"),
        (False, 2, "barrier-waiting", "at step 1 (next node 'review'"),
        (False, 3, "barrier-resolved", "at step 2 (next node 'b'"),
        (False, 4, "completion", "at step 4 (next node 'none, run finished'"),
        (True, 2, "every-step", "at step 1 (next node 'review'"),
    ],
)
async def test_run_raises_the_checkpoint_error_naming_the_site(
    every_step: bool, fail_at: int, site: str, where: str
) -> None:
    """The failing save is named by what it records, with its step and next node."""
    store = FlakyStore(MemoryStore(), {fail_at})
    _, run = await drive(store, CheckpointPolicy(every_step=every_step))
    assert isinstance(run.error, CheckpointError)
    assert str(run.error).startswith(f"could not save the {site} checkpoint of run ")
    assert where in str(run.error)


async def test_run_raises_the_checkpoint_error_itself() -> None:
    """executor.run() raises the CheckpointError (bare), its cause the store's exception."""
    store = FlakyStore(MemoryStore(), {1})
    executor = Executor(store=store, policy=CheckpointPolicy(every_step=True))  # type: ignore[arg-type]
    with pytest.raises(CheckpointError, match=r"^could not save the every-step checkpoint ") as e:
        await executor.run(failing(), {})
    assert e.value.__cause__ is store.raised[0]


async def test_a_broken_store_keeps_the_first_save_error() -> None:
    """When every save fails, the terminal error is the first one, the lost failure
    checkpoint a warning before it."""
    store = FlakyStore(MemoryStore(), every=True)
    executor = Executor(store=store, policy=CheckpointPolicy(every_step=True))  # type: ignore[arg-type]
    async with executor.stream(reviewed(), {}) as run:
        events = [e async for e in run]
    check_contract(events, run.trace_id)
    assert isinstance(run.error, CheckpointError)
    assert run.error.__cause__ is store.raised[0]
    assert "every-step checkpoint" in str(run.error)
    warning = events[-2]
    assert isinstance(warning, ev.ObservedError) and warning.error.kind == "Warning"
    assert warning.error.message.startswith(
        "the failure checkpoint was not saved: could not save the failure checkpoint"
    )
    assert warning.error.message.endswith("Disk: disk on fire #2")
    assert run.error.__notes__ == [warning.error.message]


async def test_a_failed_failure_checkpoint_keeps_the_node_error() -> None:
    """A node fails and its failure checkpoint cannot be saved: the node's error stays."""
    store = FlakyStore(MemoryStore(), every=True)
    async with Executor(store=store).stream(failing(), {}) as run:  # type: ignore[arg-type]
        events = [e async for e in run]
    check_contract(events, run.trace_id)
    assert isinstance(run.error, NodeExecutionFailed) and run.error.node == "bad"
    warning = events[-2]
    assert isinstance(warning, ev.ObservedError)
    assert "failure checkpoint of run" in warning.error.message
    assert "(next node 'bad'" in warning.error.message


async def test_a_failed_cancel_checkpoint_keeps_cancelled(autojump_clock: Any) -> None:
    """A cancel at a barrier whose checkpoint cannot be saved still ends in Cancelled."""
    store = FlakyStore(MemoryStore(), {2})  # 1: waiting at review#1, 2: the cancel
    async with Executor(store=store).stream(reviewed(), {}) as run:  # type: ignore[arg-type]
        events = []
        async for event in run:
            events.append(event)
            if isinstance(event, ev.BarrierWaiting):
                run.cancel()
    check_contract(events, run.trace_id)
    assert isinstance(run.error, Cancelled) and run.error.barrier == "review#1"
    warning = events[-2]
    assert isinstance(warning, ev.ObservedError) and warning.error.kind == "Warning"
    assert warning.error.message.startswith(
        "the cancel checkpoint was not saved: could not save the cancel checkpoint"
    )
    latest = await store.inner.latest(run.trace_id)  # still the waiting checkpoint
    assert latest is not None and latest.status == RunStatus.WAITING


async def test_an_enclosing_cancel_whose_checkpoint_fails_still_says_cancelled(
    autojump_clock: Any,
) -> None:
    """An enclosing cancel scope at a barrier: the run's error is Cancelled even when its
    checkpoint cannot be saved (said in a note), and no store exception escapes."""
    store = FlakyStore(MemoryStore(), {2})
    with trio.move_on_after(5) as scope:
        async with Executor(store=store).stream(reviewed(), {}) as run:  # type: ignore[arg-type]
            async for _ in run:
                pass
    assert scope.cancelled_caught
    assert isinstance(run.error, Cancelled) and run.error.barrier == "review#1"
    assert run.error.__notes__[0].startswith("the cancel checkpoint was not saved: ")


class LeaseLostStore(FlakyStore):
    async def save(self, checkpoint: Checkpoint, **hints: Any) -> None:
        raise LeaseLost(checkpoint.trace_id, 1)


async def test_a_lost_lease_on_the_failure_checkpoint_wins() -> None:
    """A lost lease while saving a failure is the terminal error: the run is not ours."""
    store = LeaseLostStore(MemoryStore())
    async with Executor(store=store).stream(failing(), {}) as run:  # type: ignore[arg-type]
        events = [e async for e in run]
    check_contract(events, run.trace_id)
    assert isinstance(run.error, LeaseLost)


# -- item 8: CheckpointPolicy(on_request=False) ---------------------------------------------
async def test_request_checkpoint_is_refused_when_the_policy_says_no() -> None:
    """on_request=False: request_checkpoint() raises naming the policy and writes nothing."""
    store = MemoryStore()
    policy = CheckpointPolicy(on_request=False, on_completion=False)
    async with Executor(store=store, policy=policy).stream(failing(), {}) as run:
        with pytest.raises(
            CheckpointError,
            match=r"^request_checkpoint\(\) refused: the executor's CheckpointPolicy has "
            r"on_request=False$",
        ):
            run.request_checkpoint()
        events = [e async for e in run]
    assert isinstance(run.error, NodeExecutionFailed)  # the run itself went on as usual
    saved = [e for e in events if isinstance(e, ev.CheckpointSaved)]
    assert [(e.node, e.step) for e in saved] == [("bad", 1)]  # the failure checkpoint only
    assert [c.status for c in await store.list(run.trace_id)] == [RunStatus.FAILED]


async def test_request_checkpoint_writes_when_the_policy_allows() -> None:
    """on_request=True (the default): the requested checkpoint points at the next node."""
    store = MemoryStore()
    policy = CheckpointPolicy(on_completion=False)
    async with Executor(store=store, policy=policy).stream(reviewed(), {}) as run:
        run.request_checkpoint()
        run.decide_all("review", Approve())
        await run.wait()
    first = (await store.list(run.trace_id))[0]
    assert (first.next_node, first.step) == ("a", 0)


async def test_a_failed_branch_record_ends_the_run_with_a_checkpoint_error() -> None:
    """A fan-out branch record whose save raises: one terminal CheckpointError naming it."""
    graph = (
        GraphBuilder("fan")
        .parallel("p", {"x": lambda s: {"x": 1}, "y": lambda s: {"y": 2}})
        .task("end", lambda s: None)
        .edge("p", "end")
        .start("p")
        .end("end")
        .build()
    )
    store = FlakyStore(MemoryStore(), {1})
    async with Executor(store=store).stream(graph, {}) as run:  # type: ignore[arg-type]
        events = [e async for e in run]
    check_contract(events, run.trace_id)
    assert isinstance(run.error, CheckpointError)
    assert re.match(r"^could not save the branch '[xy]' record checkpoint of run ", str(run.error))
    assert run.error.__cause__ is store.raised[0]
