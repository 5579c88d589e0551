"""Decisions and cancels sent through the store reach a live run (DESIGN §8).

Runtime layer. A store that keeps steering for its runs (:class:`Steered`: the SQL
stores, and ``MemoryStore`` within one process) lets anyone call
``store.decide(run_id, …)``, ``store.decide_all(run_id, …)`` or ``store.cancel(run_id)``.
While a process executes that run, :func:`follow_store` runs beside its step loop: it
waits for the store to say something may have changed (PostgreSQL: ``LISTEN``; SQLite:
``PRAGMA data_version`` on a connection of its own; never re-reading rows in a tight
loop), then reads the run's steering once and hands what is new to the run, as
``run.decide``/``run.decide_all``/``run.cancel`` would. A decision the run refuses
(already resolved, not for this graph) is logged and not applied again; a store that
fails is retried with back-off, never failing the run.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Protocol, runtime_checkable

import attrs
import trio

from .. import serde
from .._model.decisions import BarrierId, DecisionEntry
from ..errors import GraphError

if TYPE_CHECKING:
    from .loop import StepLoop

log = logging.getLogger("trio_graph.steering")

POLL = 1.0
"""At most this many seconds pass between two reads of a run's steering."""


@attrs.frozen
class Steering:
    """What was sent to a run through its store: the decisions kept for it (oldest
    first) and whether it was cancelled."""

    decisions: list[DecisionEntry] = attrs.field(factory=list)
    cancelled: bool = False


@runtime_checkable
class Steered(Protocol):
    """A store that keeps decisions and cancels for the runs it stores."""

    async def steering(self, run_id: str) -> Steering: ...

    async def wait_for_steering(self, run_id: str, seconds: float) -> None:
        """Return when the run's steering may have changed, or after ``seconds``."""
        ...


async def follow_store(
    loop: StepLoop,
    store: Steered,
    run_id: str,
    poll: float = POLL,
    ready: trio.Event | None = None,
) -> None:
    """Hand the run in ``loop`` what is sent to ``run_id`` through ``store``, until the
    run ends (the caller cancels this task then). ``ready`` is set once the first read
    was handed over (or failed), so that the caller can start the run after it: a
    decision recorded while nobody executed the run is in it before its first step, and
    a resume at that barrier finds it answered."""
    seen: set[str] = set()
    backoff = poll
    ready = trio.Event() if ready is None else ready
    while not loop.finished:
        try:
            steering = await store.steering(run_id)
        except GraphError as exc:  # an outage: the run goes on; try again later
            log.warning("reading the steering of run %s failed: %s", run_id, exc)
            ready.set()
            await trio.sleep(backoff)
            backoff = min(backoff * 2, 30.0)
            continue
        backoff = poll
        if steering.cancelled:
            loop.cancel(cancelled=True)
            ready.set()
            return
        for entry in steering.decisions:
            key = serde.to_json(entry)
            if key not in seen:
                seen.add(key)
                _hand(loop, run_id, entry)
        ready.set()
        await store.wait_for_steering(run_id, poll)


def _hand(loop: StepLoop, run_id: str, entry: DecisionEntry) -> None:
    try:
        if entry.every:
            loop.decide_all(entry.node, entry.decision)
            return
        bid = BarrierId(entry.node, entry.occurrence)
        if bid in loop.state.registry.resolved:  # taken by an earlier segment of the run
            log.debug("decision for %s of run %s was already taken", bid, run_id)
            return
        loop.decide(bid, entry.decision)
    except GraphError as exc:
        log.warning("decision for run %s not applied: %s", run_id, exc)
