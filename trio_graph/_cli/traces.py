"""Naming a stored run and its barriers on the command line.

A run is named by its run id (or its current trace id) or a unique prefix of at least
4 characters (:func:`resolve_trace`); a run resumed under a new trace id has a
*successor*, and commands that continue a run refuse the one already continued
(:func:`refuse_continued`).
A barrier is ``node#n``, or a bare ``node`` for the occurrence waiting (:func:`barrier_id`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .._model.decisions import BarrierId
from ..stores.protocol import RunInfo, Store
from .hints import hint, where
from .usage import UsageError

MIN_PREFIX = 4
"""The shortest prefix of a run id that names a run."""


def run_key(thing: Any) -> str:
    """The id naming a run: its ``run_id`` where there is one (DESIGN §8), else its trace id."""
    return str(getattr(thing, "run_id", None) or thing.trace_id)


def _ids(row: RunInfo) -> tuple[str, ...]:
    return tuple(dict.fromkeys((run_key(row), row.trace_id)))


async def resolve_trace(store: Store, text: str, args: Any) -> tuple[RunInfo, list[RunInfo]]:
    """The run whose id (run id or trace id) is ``text`` or starts with it; and all rows.

    A prefix must be at least :data:`MIN_PREFIX` characters and match one run; else a
    :class:`UsageError` naming what matched (a few of them).
    """
    rows = await store.runs()
    return pick_run(rows, text, args), rows


def pick_run(rows: Sequence[RunInfo], text: str, args: Any) -> RunInfo:
    """The row of ``rows`` that ``text`` names (see :func:`resolve_trace`)."""
    exact = [r for r in rows if text in _ids(r)]
    if exact:
        return exact[0]
    matches = [r for r in rows if any(i.startswith(text) for i in _ids(r))] if text else []
    if len(text) < MIN_PREFIX:
        raise UsageError(
            f"run id prefix {text!r} is too short: give at least {MIN_PREFIX} characters"
            + (f" (it matches {_some(matches)})" if matches else "")
        )
    if not matches:
        runs = hint(args, "runs")
        raise UsageError(f"no run {text!r} in {where(args)} (list them with {runs})")
    if len(matches) > 1:
        raise UsageError(f"{text!r} matches {_some(matches)}: give more of the run id")
    return matches[0]


def _some(rows: Sequence[RunInfo], limit: int = 3) -> str:
    """``2 runs (ab12…, ab34…)``: how many matched, and the first few ids."""
    shown = ", ".join(run_key(r) for r in rows[:limit])
    more = ", ..." if len(rows) > limit else ""
    return f"{len(rows)} run{'' if len(rows) == 1 else 's'} ({shown}{more})"


def barrier_id(text: str, pending: BarrierId | None) -> BarrierId:
    """``node#n`` as given; a bare ``node`` is the occurrence waiting, else the first."""
    if "#" not in text and pending is not None and pending.node == text:
        return pending
    try:
        return BarrierId.parse(text)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
