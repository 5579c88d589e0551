"""Helpers of :mod:`trio_graph.worker`: how a claim's errors are classified (a lost
lease, a store outage) and how stored decisions are handed to a run.

Runtime layer (it steers a :class:`~trio_graph._runtime.run.Run`).
"""

from __future__ import annotations

import logging

from ._model.decisions import EVERY, BarrierId, Decision, DecisionEntry
from ._runtime.run import Run
from .errors import GraphError, LeaseLost, StoreUnavailable

log = logging.getLogger("trio_graph.worker")


def outage_in(exc: BaseException | None, depth: int = 0) -> bool:
    """Whether ``exc`` is, holds or was caused by a store outage (``StoreUnavailable``)."""
    if exc is None or depth > 20:
        return False
    if isinstance(exc, StoreUnavailable):
        return True
    if isinstance(exc, BaseExceptionGroup):
        return any(outage_in(e, depth + 1) for e in exc.exceptions)
    return outage_in(exc.__cause__, depth + 1)


def lease_lost_in(exc: BaseException | None, depth: int = 0) -> bool:
    """Whether ``exc`` is, holds (an exception group) or was caused by a ``LeaseLost``."""
    if exc is None or depth > 20:
        return False
    if isinstance(exc, LeaseLost):
        return True
    if isinstance(exc, BaseExceptionGroup):
        return any(lease_lost_in(e, depth + 1) for e in exc.exceptions)
    return lease_lost_in(exc.__cause__, depth + 1)


def apply_decisions(
    run: Run, exact: dict[BarrierId, Decision], wild: dict[str, Decision]
) -> list[DecisionEntry]:
    """Hand stored decisions to a run (what ``executor.resume(decisions=...)`` does). Any
    the graph refuses (not a barrier, no edge for a Reroute) is logged, dropped from
    ``exact``/``wild`` and returned, instead of failing the job: its barrier parks as if
    unanswered."""
    refused = []
    for bid, decision in list(exact.items()):
        try:
            run.decide(bid, decision)
        except GraphError as exc:
            del exact[bid]
            refused.append(DecisionEntry(bid.node, bid.occurrence, decision))
            log.warning("decision for %s not applied: %s", bid, exc)
    for node, decision in list(wild.items()):
        try:
            run.decide_all(node, decision)
        except GraphError as exc:
            del wild[node]
            refused.append(DecisionEntry(node, EVERY, decision))
            log.warning("decision for every %s not applied: %s", node, exc)
    return refused


__all__ = ["apply_decisions", "lease_lost_in", "outage_in"]
