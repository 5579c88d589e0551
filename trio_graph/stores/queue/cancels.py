"""``store.cancel(run_id)`` on a SQL queue store (DESIGN §8), as the table says.

Runtime layer. A cancel is checked against :data:`~.jobs.TRANSITIONS` (``Op.CANCEL``)
on the job row the transaction read and locked:

- a run **no process executes** (queued, parked at a barrier, a lapsed lease, a stored
  run outside the queue, which gets a job row) ends at once: its job's status is
  ``cancelled``, so no worker claims it, no hold (resume) continues it, and ``runs()``
  says ``cancelled``;
- a worker's live lease: the job ends ``cancelled`` at once too; the worker's next
  renewal is refused and its writes are fenced off (workers do not follow steering);
- a run a process executes **live** (a ``hold:``): the job gets a *cancel mark* (a row
  of the ``cancels`` table) and the process is told (PostgreSQL ``NOTIFY``; SQLite: the
  commit). Its follower reads ``Steering.cancelled`` and ends the run ``cancelled``;
  that terminal save settles the job. Should the process die first, the marked job
  with a lapsed lease counts as cancelled (never claimed again).

Why a table of its own and not a column: the mark must not change the job's status
(the live run's fenced saves go on until it ends), it is created ``IF NOT EXISTS``
(no ``ALTER TABLE`` of ``jobs`` on either database) and its primary key makes a second
cancel a no-op. Cancelling a run that completed or failed is a ``CheckpointError``;
cancelling a cancelled run again does nothing.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar

from ..._model.checkpoint import Checkpoint, RunStatus
from ...errors import CheckpointError
from . import statements as q
from .dialect import Conn, Dialect, Tx
from .jobs import JobStatus, Op, Refusal, Refused, Standing, check, check_target
from .reads import read, resolve

T = TypeVar("T")


def _finished(run_id: str, status: str) -> CheckpointError:
    return CheckpointError(f"run {run_id!r} has already {status}; nothing to cancel")


def _cancel_stored(d: Dialect, conn: Conn, trace_id: str) -> None:
    """Cancel a stored run outside the queue: its job row, ``cancelled``, says so."""
    run = d.execute(conn, q.RUN, trace=trace_id).fetchone()
    if run is None:
        raise CheckpointError(f"no run {trace_id!r} in the store")
    if run[1] in (RunStatus.COMPLETED, RunStatus.FAILED):
        raise _finished(trace_id, run[1])
    if run[1] == RunStatus.CANCELLED:
        return
    job_id = run[3] or trace_id  # the job id is the run id
    params = {"job": job_id, "trace": trace_id, "graph": run[0], "checkpoint": run[2]}
    d.execute(conn, q.CANCEL_RUN, **params)
    d.execute(conn, d.link, trace=trace_id, job=job_id)


def _cancel(d: Dialect, trace_id: str, conn: Conn) -> None:
    job_id = resolve(d, conn, trace_id)
    where, _, _, _ = read(d, conn, job_id)
    try:
        check(Op.CANCEL, where)
    except Refused as refused:
        assert refused.refusal is Refusal.FINISHED
        raise _finished(trace_id, where.value) from None
    if job_id is None:
        _cancel_stored(d, conn, trace_id)
    elif where is Standing.HELD:  # a process executes it and follows its steering
        check_target(Op.CANCEL, JobStatus.RUNNING)
        d.execute(conn, q.MARK, job=job_id)
        d.notify_steering(conn, job_id)
    elif where is not Standing.CANCELLED:
        check_target(Op.CANCEL, JobStatus.CANCELLED)
        d.execute(conn, q.CANCEL_JOB, job=job_id)
        d.notify_steering(conn, job_id)


class CancelRules:
    """``cancel`` of a SQL queue store (see the module notes)."""

    _dialect: Dialect

    if TYPE_CHECKING:  # provided by the store

        async def _queue_tx(self, fn: Callable[[Conn], T], tx: Tx) -> T: ...
        async def latest(self, trace_id: str) -> Checkpoint | None: ...

    async def cancel(self, run_id: str) -> None:
        """Cancel a stored run for good (by run id or a segment's trace id): one nobody
        executes is ``cancelled`` at once; one a process executes ends ``cancelled``
        within about a second. ``CheckpointError`` for an unknown run or one that has
        completed or failed; a cancelled run stays so (no error)."""
        trace_id = run_id
        latest = await self.latest(run_id)
        if latest is not None:  # the current segment (a job is found by any of them)
            trace_id = latest.trace_id
        await self._queue_tx(functools.partial(_cancel, self._dialect, trace_id), Tx.ATOMIC)
