"""Barrier nodes at run time: wait for a person's decision, or the default (DESIGN §6).

Runtime layer. The step loop runs a barrier node with :func:`run_barrier`: what it shows
(``show``), the arrival counted by the run's state (a cancel from then on names the
occurrence), the ``barrier-waiting`` checkpoint, ``BarrierWaiting``; then the wait for
a decision (``StepLoop.decide`` sets the loop's wakeup) or the timeout's default;
``BarrierResolved``.
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

import trio

from .. import events as ev
from .._model.checkpoint import RunStatus
from .._model.decisions import BarrierId, Decision
from .._model.graph import BarrierNode
from .._model.levels import Step
from .._model.results import Outcome
from .._model.run_state import RunState
from .calls import call


class Waits(Protocol):
    """What a barrier needs of its run (a :class:`~trio_graph._runtime.loop.StepLoop`)."""

    state: RunState
    store: Any
    wall_clock: Callable[[], float]
    emit: Callable[[ev.Event], Awaitable[None]]
    wakeup: trio.Event | None
    """Set when a decision may answer the wait (by ``StepLoop.decide``)."""

    @property
    def trace_id(self) -> str: ...

    async def checkpoint(
        self, site: str, *, status: RunStatus = ..., pending: BarrierId | None = ...
    ) -> None: ...


async def run_barrier(loop: Waits, step: Step) -> Outcome:
    node, state = step.node, loop.state
    assert isinstance(node, BarrierNode)
    payload = None
    if node.show is not None:  # what the person decides on (DESIGN §6)
        payload = await call(node.name, node.show, node.show_is_async, step.level.view, None)
    # A cancel from here on names this occurrence.
    bid = state.arrive(node, now=loop.wall_clock(), payload=payload)
    if loop.store is not None and state.policy.on_barrier:
        await loop.checkpoint("barrier-waiting", status=RunStatus.WAITING, pending=bid)
    answered = state.registry.answers(bid)  # answered at once (DESIGN §6)
    wait = step.level.wait
    await loop.emit(
        ev.BarrierWaiting(
            loop.trace_id, step.path, step.span, bid, answered, payload, wait.deadline
        )
    )
    decision, timed_out = await _decision(loop, node, bid, wait.limit)
    loop.wakeup = None
    outcome = state.resolve(node, decision)
    by = None if decision is None else decision.by
    resolved = ev.BarrierResolved(
        loop.trace_id, step.path, bid, decision, timed_out, by, loop.wall_clock()
    )
    await loop.emit(resolved)
    return outcome


async def _decision(
    loop: Waits, node: BarrierNode, bid: BarrierId, limit: float | None
) -> tuple[Decision | None, bool]:
    """The decision for ``bid``, or the default once ``limit`` seconds (trio time)
    passed with none; True when it timed out."""
    registry = loop.state.registry
    with trio.move_on_after(math.inf if limit is None else limit):
        while True:
            decision = registry.take(bid)
            if decision is not None:
                return decision, False
            loop.wakeup = trio.Event()
            await loop.wakeup.wait()
    # A decision accepted after the deadline passed but before we woke up wins:
    # decide() returned without error, so it must not be dropped.
    decision = registry.take(bid)
    if decision is not None:
        return decision, False
    return loop.state.time_out(node, bid), True
