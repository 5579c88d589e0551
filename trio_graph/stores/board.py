"""Decisions and cancels kept for runs within one process (``MemoryStore``'s steering).

A :class:`Board` keeps, per run id, the decisions sent with ``store.decide`` /
``store.decide_all`` (oldest first; a later one for the same barrier occurrence, or the
same node's wildcard, replaces it) and whether ``store.cancel`` was called; a run
executing in the same process follows them (``_runtime/steering.py``) and wakes at once
on a change (one ``trio.Event`` per change, no polling).
"""

from __future__ import annotations

import trio

from .._model.decisions import EVERY, BarrierId, Decision, DecisionEntry, check_decision
from .._runtime.steering import Steering
from ..errors import BarrierError


class Board:
    """The steering of the runs of one in-process store."""

    def __init__(self) -> None:
        self._entries: dict[str, dict[tuple[str, int], DecisionEntry]] = {}
        self._cancelled: set[str] = set()
        self._changed = trio.Event()

    def decide(self, run_id: str, barrier_id: BarrierId | str, decision: Decision) -> None:
        bid = BarrierId.parse(barrier_id) if isinstance(barrier_id, str) else barrier_id
        if not isinstance(bid, BarrierId):
            raise BarrierError(f"decide() needs a BarrierId, got {type(barrier_id).__name__}")
        self._keep(run_id, DecisionEntry(bid.node, bid.occurrence, decision))

    def decide_all(self, run_id: str, node: str, decision: Decision) -> None:
        self._keep(run_id, DecisionEntry(node, EVERY, decision))

    def cancel(self, run_id: str) -> None:
        self._cancelled.add(run_id)
        self._wake()

    def steering(self, run_id: str) -> Steering:
        entries = list(self._entries.get(run_id, {}).values())
        return Steering(entries, run_id in self._cancelled)

    async def wait(self, seconds: float) -> None:
        with trio.move_on_after(seconds):
            await self._changed.wait()

    def forget(self, run_id: str) -> None:
        self._entries.pop(run_id, None)
        self._cancelled.discard(run_id)

    def _keep(self, run_id: str, entry: DecisionEntry) -> None:
        check_decision(entry.decision, entry.node)
        entries = self._entries.setdefault(run_id, {})
        entries.pop((entry.node, entry.occurrence), None)  # the newest is last
        entries[(entry.node, entry.occurrence)] = entry
        self._wake()

    def _wake(self) -> None:
        self._changed.set()
        self._changed = trio.Event()
