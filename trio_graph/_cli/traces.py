"""Naming a stored run and its barriers on the command line.

A run is named by its trace id or a unique prefix of at least 4 characters
(:func:`resolve_trace`); a run resumed under a new trace id has a *successor*, and
commands that continue a run refuse the one already continued (:func:`refuse_continued`).
A barrier is ``node#n``, or a bare ``node`` for the occurrence waiting (:func:`barrier_id`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .._model.decisions import BarrierId
from ..stores.protocol import RunInfo, Store
from .hints import hint, where
from .usage import UsageError


async def resolve_trace(store: Store, text: str, args: Any) -> tuple[RunInfo, list[RunInfo]]:
    """The run whose trace id is ``text`` or starts with it; and all rows (for lineage)."""
    rows = await store.runs()
    exact = [r for r in rows if r.trace_id == text]
    matches = exact or ([r for r in rows if r.trace_id.startswith(text)] if len(text) >= 4 else [])
    if not matches:
        runs = hint(args, "runs")
        raise UsageError(f"no run {text!r} in {where(args)} (list them with {runs})")
    if len(matches) > 1:
        raise UsageError(
            f"{text!r} matches {len(matches)} runs ({', '.join(r.trace_id for r in matches[:3])}"
            f"{', ...' if len(matches) > 3 else ''}): give more of the trace id"
        )
    return matches[0], rows


def successor(trace_id: str, rows: Sequence[RunInfo]) -> RunInfo | None:
    """The latest run resumed from ``trace_id``, if any."""
    later = [r for r in rows if r.resumed_from == trace_id]
    return max(later, key=lambda r: r.updated_at) if later else None


def refuse_continued(trace: str, rows: Sequence[RunInfo], what: str) -> None:
    """Refuse to ``what`` a run that was already continued under another trace id."""
    after = successor(trace, rows)
    if after is not None:
        raise UsageError(
            f"run {trace} was already continued in run {after.trace_id} "
            f"({after.status}); {what} that one"
        )


def barrier_id(text: str, pending: BarrierId | None) -> BarrierId:
    """``node#n`` as given; a bare ``node`` is the occurrence waiting, else the first."""
    if "#" not in text and pending is not None and pending.node == text:
        return pending
    try:
        return BarrierId.parse(text)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
