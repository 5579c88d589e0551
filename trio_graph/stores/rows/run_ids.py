"""Run ids for rows written before checkpoints carried them (schema migrations).

Pure (no trio, no I/O). Before run ids (DESIGN §8), every segment of a run was a run
of its own, linked to the one it continued by ``resumed_from``; a segment's run id is
the trace id found by following ``resumed_from`` back to the first segment (the trace
that was resumed from nothing, or whose own row is gone). A fork stored then is taken
as a continuation of the run it was forked from: the old rows cannot tell them apart.
Rows of a segment that is not its run's first get ``run_id`` written into their header
and a new checksum, only when their old checksum was right (a damaged row stays
damaged, so it is still refused on load).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from .codec import row_checksum


def first_segment(trace_id: str, resumed_from: Mapping[str, str | None]) -> str:
    """The run id of ``trace_id``: ``resumed_from`` followed back as far as it goes."""
    seen = {trace_id}
    current = trace_id
    while (before := resumed_from.get(current)) is not None and before not in seen:
        seen.add(before)
        current = before
    return current


def migrate_runs(
    segments: Iterable[tuple[str, str | None, str | None]],
) -> list[tuple[str, int, str | None, str]]:
    """``(run_id, step, waiting, trace_id)`` for runs rows ``(trace_id, resumed_from,
    header of the row's latest checkpoint)``; a header that cannot be read gives step 0
    and no barrier (its checkpoint is refused on load anyway)."""
    segments = list(segments)
    resumed_from = {trace: before for trace, before, _ in segments}
    out = []
    for trace, _, header in segments:
        step, waiting = _progress(header)
        out.append((first_segment(trace, resumed_from), step, waiting, trace))
    return out


def _progress(header: str | None) -> tuple[int, str | None]:
    try:
        doc = json.loads(header or "")
        step, pending = doc["step"], doc.get("pending_barrier")
        waiting = None if pending is None else f"{pending['node']}#{int(pending['occurrence'])}"
        return (step if type(step) is int else 0), waiting
    except (ValueError, TypeError, KeyError):
        return 0, None


def migrate_rows(
    rows: Iterable[Sequence[Any]], run_of: Mapping[str, str]
) -> list[tuple[str, str, str, str]]:
    """``(run_id, header, checksum, checkpoint_id)`` for checkpoint rows in
    ``Row.COLUMNS`` order, given each trace's run id (a trace with no runs row is a run
    of its own)."""
    out = []
    for cid, trace, base, prev, link, header, body, digest in rows:
        run = run_of.get(trace, trace)
        if run != trace and digest == row_checksum(cid, trace, base, prev, link, header, body):
            header = _with_run_id(header, run)
            digest = row_checksum(cid, trace, base, prev, link, header, body)
        out.append((run, header, digest, cid))
    return out


def _with_run_id(header: str, run_id: str) -> str:
    try:
        doc = json.loads(header)
    except ValueError:
        return header
    if not isinstance(doc, dict):
        return header
    doc["run_id"] = run_id
    return json.dumps(doc, separators=(",", ":"), allow_nan=False)
