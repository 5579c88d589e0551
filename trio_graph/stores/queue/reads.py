"""What every queue operation reads first inside its transaction: which job a trace id
belongs to, where that job stands (its row locked), and the errors a refusal shows.

Runtime layer (statements run on the connection the store's transaction gives). Shared
by :mod:`.rules`, :mod:`.claims` and :mod:`.cancels`.
"""

from __future__ import annotations

from typing import Any

from ...errors import BarrierError, CheckpointError, RunBusy
from . import statements as q
from .dialect import Conn, Dialect
from .jobs import Refusal, Refused, Standing
from .live import live_standing


def resolve(d: Dialect, conn: Conn, trace_id: str) -> str | None:
    """The job ``trace_id`` (a job id or any trace id of a job) belongs to, if any."""
    row = d.execute(conn, d.resolve, trace=trace_id).fetchone()
    return None if row is None else str(row[0])


def refuse_continued(d: Dialect, conn: Conn, trace_id: str) -> None:
    """``RunBusy`` if a later trace already continues ``trace_id``."""
    row = d.execute(conn, q.CONTINUED, trace=trace_id).fetchone()
    if row is not None:
        raise RunBusy(trace_id, f"was already continued as run {row[0]!r}")


def read(d: Dialect, conn: Conn, job_id: str | None) -> tuple[Standing, Any, str | None, int]:
    """The job's standing, pending barrier, owner and epoch (its row locked)."""
    row = None if job_id is None else d.execute(conn, q.STANDING, job=job_id).fetchone()
    if row is None:
        return Standing.ABSENT, None, None, 0
    status, pending, owner, live, epoch, marked, due = row
    return live_standing(status, live, owner, marked, due), pending, owner, int(epoch)


def busy(trace_id: str, owner: str | None) -> RunBusy:
    suffix = f" ({owner})" if owner else ""
    return RunBusy(trace_id, f"is being continued by another process{suffix}")


def refusal_error(refused: Refused, trace_id: str, node: str, owner: str | None) -> Exception:
    """The error a refusal of ``decide`` or ``hold`` shows (see :class:`Refusal`)."""
    if refused.refusal is Refusal.BUSY:
        return busy(trace_id, owner)
    if refused.refusal is Refusal.NO_RUN:
        return BarrierError(f"no run {trace_id!r} in the store", node=node)
    if refused.refusal is Refusal.FINISHED:
        return BarrierError("the run has finished; decision not applied", node=node)
    if refused.refusal is Refusal.CANCELLED:
        return CheckpointError(f"run {trace_id!r} was cancelled; it is not continued")
    return refused  # pragma: no cover - the table names no other refusal for these
