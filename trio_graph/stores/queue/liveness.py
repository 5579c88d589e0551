"""What a SQL queue store reports about its runs: ``runs()`` with liveness, and
``wait(run_id)`` for a run's end (DESIGN §8, §11).

Runtime layer. A run's stored status is its latest checkpoint's; its job row says more:

- a job ``cancelled`` (or marked so and its process gone) reports ``cancelled``, also
  when no checkpoint says so (cancelled while queued or parked);
- a job still ``running`` whose lease (the heartbeat of the worker or ``hold:`` process
  executing it) has lapsed, or whose holder is a dead process of this machine, while
  its checkpoint is not terminal, reports ``interrupted``: the process was killed.

:meth:`RunsRules.wait` reads the run once, then waits on the store's one
:class:`~.feed.Feed` (SQLite: a commit to the file; PostgreSQL: the ``NOTIFY`` a
terminal save, a worker's ``finish`` or a cancel sends), at most ``poll`` seconds at a
time, never re-reading rows in a tight loop.
"""

from __future__ import annotations

import builtins
import functools
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

import attrs

from ... import events as ev
from ..._model.checkpoint import Checkpoint, RunStatus
from ...errors import CheckpointError, RunEnded
from ..protocol import RunInfo
from .dialect import Conn, Dialect, Tx
from .jobs import Standing
from .live import live_standing

T = TypeVar("T")

_COLUMNS = ", ".join("r." + c.strip() for c in RunInfo.COLUMNS.split(","))
RUNS = (
    "SELECT "
    + _COLUMNS
    + """, j.status, j.owner, j.lease_until >= {now},
    EXISTS (SELECT 1 FROM {cancels} m WHERE m.job_id = r.run_id)
    FROM {runs} r LEFT JOIN {jobs} j ON j.job_id = r.run_id
    WHERE r.checkpoint_id = (SELECT c.checkpoint_id FROM {checkpoints} c
        WHERE c.run_id = r.run_id ORDER BY c.seq DESC LIMIT 1)
    AND (:run{text} IS NULL OR r.run_id = :run)
    ORDER BY r.updated_at, r.trace_id"""
)
"""Each run's row of its current segment (the one that wrote its latest checkpoint),
with its job's status, owner, whether the lease is live, and its cancel mark."""
JOB_END = """SELECT status, error FROM {jobs} WHERE job_id = :job"""

_TERMINAL = frozenset({RunStatus.COMPLETED, RunStatus.FAILED, RunStatus.CANCELLED})
WAIT_POLL = 1.0
"""At most this many seconds between two reads of a run ``wait`` waits for."""


def reported(stored: RunStatus, job: tuple[Any, ...]) -> RunStatus:
    """The status ``runs()`` shows for a run whose checkpoint says ``stored``, given its
    job's ``(status, owner, live, marked)`` (status None: no job row)."""
    status, owner, live, marked = job
    if status is None or stored in (RunStatus.COMPLETED, RunStatus.FAILED):
        return stored
    where = live_standing(status, live, owner, marked)
    if where is Standing.CANCELLED:
        return RunStatus.CANCELLED
    if where is Standing.LAPSED and stored not in _TERMINAL:
        return RunStatus.INTERRUPTED
    return stored


def _runs(d: Dialect, run_id: str | None, conn: Conn) -> builtins.list[RunInfo]:
    found = []
    for row in d.execute(conn, RUNS, run=run_id).fetchall():
        info = RunInfo.from_row(tuple(row[:9]))
        status = reported(info.status, tuple(row[9:]))
        found.append(info if status is info.status else _with_status(info, status))
    return found


def _with_status(info: RunInfo, status: RunStatus) -> RunInfo:
    return attrs.evolve(info, status=status)


def _job_end(d: Dialect, job_id: str, conn: Conn) -> tuple[str, str | None] | None:
    row = d.execute(conn, JOB_END, job=job_id).fetchone()
    return None if row is None else (str(row[0]), row[1])


class RunsRules:
    """``runs()`` and ``wait()`` of a SQL queue store (see the module notes)."""

    _dialect: Dialect

    if TYPE_CHECKING:  # provided by the store

        async def _queue_tx(self, fn: Callable[[Conn], T], tx: Tx) -> T: ...
        async def latest(self, trace_id: str) -> Checkpoint | None: ...

    async def runs(self) -> builtins.list[RunInfo]:
        """One row per run (its current segment's), least recently updated first, with
        ``interrupted`` and ``cancelled`` as its job says (see the module notes)."""
        return await self._queue_tx(functools.partial(_runs, self._dialect, None), Tx.READ)

    async def wait(self, run_id: str, *, poll: float = WAIT_POLL) -> ev.RunResult:
        """Wait until the run (by run id or a segment's trace id) ends; its result when it
        completed. ``RunEnded`` when it failed or was cancelled, ``CheckpointError`` for
        an unknown run. Cancel-safe: it only reads."""
        d = self._dialect
        while True:
            await d.prime()
            mark = d.feed.mark()
            ended = await self._ended(run_id)
            if ended is not None:
                return ended
            await d.feed.wait(poll, since=mark)

    async def _ended(self, run_id: str) -> ev.RunResult | None:
        latest = await self.latest(run_id)
        run = run_id if latest is None else latest.run_id
        found = await self._queue_tx(functools.partial(_runs, self._dialect, run), Tx.READ)
        job = await self._queue_tx(functools.partial(_job_end, self._dialect, run), Tx.READ)
        if latest is None and job is None:
            raise CheckpointError(f"no run {run_id!r} in the store")
        status = found[0].status if found else RunStatus.RUNNING
        if job is not None and job[0] == RunStatus.CANCELLED:
            status = RunStatus.CANCELLED
        if status is RunStatus.COMPLETED:  # read again: it may have ended since the first read
            latest = await self.latest(run)
            done = latest is not None and latest.status is RunStatus.COMPLETED
            return _result(latest) if done and latest is not None else None
        if status in (RunStatus.FAILED, RunStatus.CANCELLED):
            error = latest.error if latest is not None else None
            raise RunEnded(run, status.value, error or (job[1] if job else None) or "")
        if job is not None and job[0] == RunStatus.FAILED:  # failed before a checkpoint
            raise RunEnded(run, RunStatus.FAILED.value, job[1] or "")
        return None


def _result(checkpoint: Checkpoint) -> ev.RunResult:
    """The result of a run as its terminal checkpoint keeps it (no execution log: the
    run's history is its checkpoints)."""
    return ev.RunResult(
        checkpoint.trace_id,
        dict(checkpoint.state),
        [],
        0.0,
        checkpoint.step,
        run_id=checkpoint.run_id,
    )
