"""The run queue on SQLite: ``submit``, ``decide`` and what a ``Worker`` needs, for
several processes on one machine sharing one file.

Runtime layer; a mixin of :class:`~trio_graph.stores.sqlite.SQLiteStore`, using its
writer (one connection, writes in order, ``BEGIN IMMEDIATE``) and readers. The same
model as PostgreSQL (:mod:`trio_graph.stores.queue`), with SQLite's means: a claim is
one write transaction (SQLite allows one writer per file at a time, so there is no
``SKIP LOCKED`` to need); leases are on the machine's wall clock (``time.time()``),
which every process on it shares; the fence is checked inside the checkpoint's own
write transaction (the store's ``_commit`` calls :meth:`SQLiteQueue._before_commit`
after ``BEGIN IMMEDIATE``), so a worker whose job was claimed again writes nothing.

Tables (created on first use, versioned as ``queue_schema_version`` in ``meta``):
``jobs``, ``job_traces`` (every trace of a job, so a later trace id finds its job) and
``decisions``. Idle workers poll (there is no NOTIFY).
"""

from __future__ import annotations

import builtins
import json
import sqlite3
import time
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

import trio

from .. import serde
from .._model.checkpoint import Changes, Checkpoint, RunStatus, new_id
from .._model.decisions import BarrierId, Decision, DecisionEntry, check_answers
from .._model.state import check_state
from ..errors import BarrierError, CheckpointError, LeaseLost, RunBusy
from .queue import HOLD_PREFIX, Claim, DecisionsMixin, Hold, Job, JobStatus

T = TypeVar("T")

QUEUE_SCHEMA_VERSION = 1

_QUEUE_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS jobs (
        job_id TEXT PRIMARY KEY,
        graph_name TEXT NOT NULL,
        state TEXT,
        status TEXT NOT NULL,
        trace_id TEXT NOT NULL,
        checkpoint_id TEXT,
        pending_barrier TEXT,
        epoch INTEGER NOT NULL DEFAULT 0,
        owner TEXT,
        lease_until REAL,
        attempts INTEGER NOT NULL DEFAULT 0,
        error TEXT,
        created_at REAL NOT NULL,
        updated_at REAL NOT NULL,
        available_at REAL NOT NULL
    )""",
    "CREATE INDEX IF NOT EXISTS jobs_runnable ON jobs (status, available_at)",
    """CREATE TABLE IF NOT EXISTS job_traces (
        trace_id TEXT PRIMARY KEY,
        job_id TEXT NOT NULL
    ) WITHOUT ROWID""",
    """CREATE TABLE IF NOT EXISTS decisions (
        seq INTEGER PRIMARY KEY,
        job_id TEXT NOT NULL,
        node TEXT NOT NULL,
        occurrence INTEGER NOT NULL,
        decision TEXT NOT NULL,
        UNIQUE (job_id, node, occurrence)
    )""",
)

_JOB_COLUMNS = (
    "job_id, graph_name, status, trace_id, checkpoint_id, pending_barrier, epoch, owner, "
    "attempts, error, created_at, updated_at"
)

_DECISION: Any = Decision


def _decision_text(decision: Decision) -> str:
    return json.dumps(serde.decision_doc(decision), separators=(",", ":"))


def _job(row: tuple[Any, ...]) -> Job:
    return Job(
        row[0],
        row[1],
        JobStatus(row[2]),
        row[3],
        row[4],
        BarrierId.parse(row[5]) if row[5] else None,
        int(row[6]),
        row[7],
        int(row[8]),
        row[9],
        float(row[10]),
        float(row[11]),
    )


def _resolve(db: sqlite3.Connection, trace_id: str) -> str | None:
    row = db.execute(
        "SELECT job_id FROM jobs WHERE job_id = ? "
        "UNION ALL SELECT job_id FROM job_traces WHERE trace_id = ? LIMIT 1",
        (trace_id, trace_id),
    ).fetchone()
    return None if row is None else str(row[0])


def _refuse_continued(db: sqlite3.Connection, trace_id: str) -> None:
    """``RunBusy`` if a later trace already continues ``trace_id``."""
    row = db.execute(
        "SELECT trace_id FROM runs WHERE resumed_from = ? LIMIT 1", (trace_id,)
    ).fetchone()
    if row is not None:
        raise RunBusy(trace_id, f"was already continued as run {row[0]!r}")


def _refuse_held(db: sqlite3.Connection, trace_id: str, job_id: str) -> None:
    """``RunBusy`` if a process outside the queue holds the job (see :meth:`hold`)."""
    row = db.execute(
        "SELECT owner FROM jobs WHERE job_id = ? AND status = 'running' AND owner LIKE ? "
        "AND lease_until >= ?",
        (job_id, HOLD_PREFIX + "%", time.time()),
    ).fetchone()
    if row is not None:
        raise RunBusy(trace_id, f"is being continued by another process ({row[0]})")


class SQLiteQueue(DecisionsMixin):
    """The queue methods of :class:`~trio_graph.stores.sqlite.SQLiteStore`."""

    _queue_ready = False

    if TYPE_CHECKING:  # provided by SQLiteStore
        path: str

        async def _write(self, fn: Callable[[sqlite3.Connection], T]) -> T: ...
        async def _read(self, fn: Callable[[sqlite3.Connection], T]) -> T: ...
        async def save(self, checkpoint: Checkpoint, *, changes: Changes | None = None) -> None: ...

    # -- plumbing ------------------------------------------------------------------------
    def _fences(self) -> dict[str, tuple[str, int]]:
        fences: dict[str, tuple[str, int]] | None = self.__dict__.get("_queue_fences")
        if fences is None:
            fences = self.__dict__["_queue_fences"] = {}
        return fences

    def _create_queue(self, db: sqlite3.Connection) -> None:
        row = db.execute("SELECT value FROM meta WHERE key = 'queue_schema_version'").fetchone()
        version = 0 if row is None else int(row[0])
        if version > QUEUE_SCHEMA_VERSION:
            raise CheckpointError(
                f"{self.path!r} has queue schema version {version}, newer than the version "
                f"{QUEUE_SCHEMA_VERSION} this trio_graph knows; upgrade trio_graph"
            )
        if version < QUEUE_SCHEMA_VERSION:
            for statement in _QUEUE_SCHEMA:
                db.execute(statement)
            db.execute(
                "INSERT INTO meta (key, value) VALUES ('queue_schema_version', ?) "
                "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                (str(QUEUE_SCHEMA_VERSION),),
            )

    async def _queue_write(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``fn`` in one write transaction (creating the queue tables on first use)."""

        def tx(db: sqlite3.Connection) -> T:
            try:
                db.execute("BEGIN IMMEDIATE")
                try:
                    if not self._queue_ready:
                        self._create_queue(db)
                    result = fn(db)
                    db.execute("COMMIT")
                except BaseException:
                    if db.in_transaction:
                        db.execute("ROLLBACK")
                    raise
            except sqlite3.Error as exc:
                raise CheckpointError(f"{self.path!r}: queue write failed: {exc}") from exc
            self._queue_ready = True
            return result

        return await self._write(tx)

    async def _queue_read(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        if not self._queue_ready:
            await self._queue_write(lambda db: None)
        return await self._read(fn)

    def _before_commit(self, db: sqlite3.Connection, checkpoint: Checkpoint) -> None:
        """Inside a save's write transaction: check a worker's fence, update its job row.

        Called by ``SQLiteStore._commit`` after ``BEGIN IMMEDIATE``; raising rolls back.
        """
        fence = self._fences().get(checkpoint.checkpoint_id)
        if fence is None:
            return
        job_id, epoch = fence
        row = db.execute("SELECT epoch, status FROM jobs WHERE job_id = ?", (job_id,)).fetchone()
        if row is None or row[0] != epoch or row[1] != JobStatus.RUNNING:
            raise LeaseLost(job_id, epoch)
        status = RunStatus(checkpoint.status)
        terminal = checkpoint.next_node is None and status in (
            RunStatus.COMPLETED,
            RunStatus.FAILED,
        )
        now = time.time()
        if terminal:
            db.execute(
                "UPDATE jobs SET trace_id = ?, checkpoint_id = ?, status = ?, error = ?, "
                "owner = NULL, lease_until = NULL, updated_at = ? WHERE job_id = ?",
                (
                    checkpoint.trace_id,
                    checkpoint.checkpoint_id,
                    status.value,
                    checkpoint.error,
                    now,
                    job_id,
                ),
            )
        else:
            db.execute(
                "UPDATE jobs SET trace_id = ?, checkpoint_id = ?, updated_at = ? WHERE job_id = ?",
                (checkpoint.trace_id, checkpoint.checkpoint_id, now, job_id),
            )
        db.execute(
            "INSERT OR IGNORE INTO job_traces (trace_id, job_id) VALUES (?, ?)",
            (checkpoint.trace_id, job_id),
        )

    # -- anyone --------------------------------------------------------------------------
    async def submit(
        self, graph_name: str, state: Mapping[str, Any], *, trace_id: str | None = None
    ) -> str:
        """Queue a new run of ``graph_name`` on ``state``; returns its id (its trace id)."""
        state = check_state(state)
        serde.check_json(state)
        text = serde.dumps_value(dict(state))
        job_id = trace_id or new_id()

        def submit(db: sqlite3.Connection) -> None:
            now = time.time()
            cursor = db.execute(
                "INSERT OR IGNORE INTO jobs (job_id, graph_name, state, status, trace_id, "
                "created_at, updated_at, available_at) VALUES (?, ?, ?, 'queued', ?, ?, ?, ?)",
                (job_id, graph_name, text, job_id, now, now, now),
            )
            if cursor.rowcount != 1:
                raise CheckpointError(f"a run with id {job_id!r} was already submitted")
            db.execute(
                "INSERT OR IGNORE INTO job_traces (trace_id, job_id) VALUES (?, ?)",
                (job_id, job_id),
            )

        await self._queue_write(submit)
        return job_id

    async def _decide(
        self,
        trace_id: str,
        node: str,
        occurrence: int,
        decision: Decision,
        adopt_at: BarrierId | None,
    ) -> None:
        text = _decision_text(decision)

        def decide(db: sqlite3.Connection) -> None:
            job_id = _resolve(db, trace_id) or self._adopt(db, trace_id, adopt_at)
            if job_id is None:
                raise BarrierError(f"no run {trace_id!r} in the store", node=node)
            status, pending = db.execute(
                "SELECT status, pending_barrier FROM jobs WHERE job_id = ?", (job_id,)
            ).fetchone()
            if status in (JobStatus.COMPLETED, JobStatus.FAILED):
                raise BarrierError("the run has finished; decision not applied", node=node)
            if status == JobStatus.WAITING and pending:
                check_answers(trace_id, BarrierId.parse(pending), node, occurrence)
            _refuse_held(db, trace_id, job_id)
            db.execute(
                "INSERT INTO decisions (job_id, node, occurrence, decision) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (job_id, node, occurrence) DO UPDATE SET decision = excluded.decision",
                (job_id, node, occurrence, text),
            )
            if status == JobStatus.WAITING and pending:
                bid = BarrierId.parse(pending)
                if bid.node == node and occurrence in (0, bid.occurrence):
                    now = time.time()
                    db.execute(
                        "UPDATE jobs SET status = 'queued', available_at = ?, updated_at = ? "
                        "WHERE job_id = ?",
                        (now, now, job_id),
                    )

        await self._queue_write(decide)

    @staticmethod
    def _adopt(db: sqlite3.Connection, trace_id: str, pending: BarrierId | None) -> str | None:
        """Queue a stored run that waits at barrier ``pending``, so a worker can continue it
        (parked there: the decision being recorded is checked against it)."""
        run = db.execute(
            "SELECT graph_name, status, checkpoint_id FROM runs WHERE trace_id = ?", (trace_id,)
        ).fetchone()
        if run is None:
            return None
        if run[1] != RunStatus.WAITING:
            raise BarrierError(f"run {trace_id!r} is not waiting at a barrier (status {run[1]})")
        _refuse_continued(db, trace_id)
        now = time.time()
        status = JobStatus.WAITING if pending is not None else JobStatus.QUEUED
        db.execute(
            "INSERT INTO jobs (job_id, graph_name, status, trace_id, checkpoint_id, "
            "pending_barrier, created_at, updated_at, available_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                trace_id,
                run[0],
                status.value,
                trace_id,
                run[2],
                None if pending is None else str(pending),
                now,
                now,
                now,
            ),
        )
        db.execute(
            "INSERT OR IGNORE INTO job_traces (trace_id, job_id) VALUES (?, ?)",
            (trace_id, trace_id),
        )
        return trace_id

    async def job(self, trace_id: str) -> Job | None:
        """The queue row of a run, by its job id or any of its trace ids; None if unknown."""

        def job(db: sqlite3.Connection) -> Job | None:
            job_id = _resolve(db, trace_id)
            if job_id is None:
                return None
            row = db.execute(
                f"SELECT {_JOB_COLUMNS} FROM jobs WHERE job_id = ?", (job_id,)
            ).fetchone()
            return None if row is None else _job(row)

        return await self._queue_read(job)

    async def jobs(self, status: JobStatus | None = None) -> builtins.list[Job]:
        """Queue rows, oldest first; only those with ``status`` if given."""

        def jobs(db: sqlite3.Connection) -> builtins.list[Job]:
            if status is None:
                rows = db.execute(
                    f"SELECT {_JOB_COLUMNS} FROM jobs ORDER BY created_at, job_id"
                ).fetchall()
            else:
                rows = db.execute(
                    f"SELECT {_JOB_COLUMNS} FROM jobs WHERE status = ? ORDER BY created_at, job_id",
                    (JobStatus(status).value,),
                ).fetchall()
            return [_job(r) for r in rows]

        return await self._queue_read(jobs)

    # -- workers -------------------------------------------------------------------------
    async def claim(
        self, owner: str, graph_names: builtins.list[str], limit: int, lease: float
    ) -> builtins.list[Claim]:
        """Claim up to ``limit`` runnable jobs of these graphs for ``lease`` seconds."""

        def claim(db: sqlite3.Connection) -> builtins.list[Claim]:
            now = time.time()
            marks = ", ".join("?" * len(graph_names))
            rows = db.execute(
                "SELECT job_id FROM jobs WHERE graph_name IN (" + marks + ") AND "
                "(status = 'queued' OR (status = 'running' AND lease_until < ?)) "
                "ORDER BY available_at LIMIT ?",
                (*graph_names, now, limit),
            ).fetchall()
            claims = []
            for (job_id,) in rows:
                row = db.execute(
                    "UPDATE jobs SET status = 'running', epoch = epoch + 1, owner = ?, "
                    "lease_until = ?, attempts = attempts + 1, pending_barrier = NULL, "
                    "updated_at = ? WHERE job_id = ? "
                    "RETURNING graph_name, epoch, trace_id, checkpoint_id, state",
                    (owner, now + lease, now, job_id),
                ).fetchone()
                graph, epoch, trace, checkpoint_id, state = row
                initial = json.loads(state) if checkpoint_id is None and state else None
                claims.append(Claim(job_id, graph, int(epoch), trace, checkpoint_id, initial))
            return claims

        if not graph_names:
            return []
        return await self._queue_write(claim)

    async def _fenced(self, sql: str, params: Sequence[Any]) -> bool:
        return await self._queue_write(lambda db: db.execute(sql, params).rowcount == 1)

    async def renew(self, job_id: str, epoch: int, lease: float) -> bool:
        """Extend the lease of a claim; False if the claim is no longer current."""
        return await self._fenced(
            "UPDATE jobs SET lease_until = ? WHERE job_id = ? AND epoch = ? AND status = 'running'",
            (time.time() + lease, job_id, epoch),
        )

    async def release(self, job_id: str, epoch: int) -> bool:
        """Give a claimed job back to the queue (runnable at once)."""
        now = time.time()
        return await self._fenced(
            "UPDATE jobs SET status = 'queued', owner = NULL, lease_until = NULL, "
            "available_at = ?, updated_at = ? WHERE job_id = ? AND epoch = ? "
            "AND status = 'running'",
            (now, now, job_id, epoch),
        )

    async def finish(
        self, job_id: str, epoch: int, status: JobStatus, error: str | None = None
    ) -> bool:
        """Mark a claimed job completed or failed."""
        return await self._fenced(
            "UPDATE jobs SET status = ?, error = ?, owner = NULL, lease_until = NULL, "
            "updated_at = ? WHERE job_id = ? AND epoch = ? AND status = 'running'",
            (JobStatus(status).value, error, time.time(), job_id, epoch),
        )

    async def park(
        self,
        job_id: str,
        epoch: int,
        barrier_id: BarrierId,
        *,
        refused: Sequence[DecisionEntry] = (),
    ) -> bool:
        """Park a claimed job at a barrier until a decision for it arrives (runnable at
        once if one other than ``refused`` arrived meanwhile)."""
        ignore = [_decision_text(e.decision) for e in refused]

        def park(db: sqlite3.Connection) -> bool:
            row = db.execute(
                "SELECT epoch, status FROM jobs WHERE job_id = ?", (job_id,)
            ).fetchone()
            if row is None or row[0] != epoch or row[1] != JobStatus.RUNNING:
                return False
            marks = ", ".join("?" * len(ignore))
            answered = db.execute(
                "SELECT 1 FROM decisions WHERE job_id = ? AND node = ? AND occurrence IN (0, ?) "
                "AND decision NOT IN (" + marks + ")",
                (job_id, barrier_id.node, barrier_id.occurrence, *ignore),
            ).fetchone()
            now = time.time()
            db.execute(
                "UPDATE jobs SET status = ?, pending_barrier = ?, owner = NULL, "
                "lease_until = NULL, available_at = ?, updated_at = ? WHERE job_id = ?",
                (
                    (JobStatus.QUEUED if answered else JobStatus.WAITING).value,
                    str(barrier_id),
                    now,
                    now,
                    job_id,
                ),
            )
            return True

        return await self._queue_write(park)

    async def save_fenced(
        self, checkpoint: Checkpoint, job_id: str, epoch: int, *, changes: Changes | None = None
    ) -> None:
        """Save ``checkpoint`` only while ``epoch`` is the job's current claim, checked in
        the write's own transaction (else ``LeaseLost``, nothing written)."""
        fences = self._fences()
        fences[checkpoint.checkpoint_id] = (job_id, epoch)
        try:
            await self.save(checkpoint, changes=changes)
        finally:
            fences.pop(checkpoint.checkpoint_id, None)

    async def decisions(self, job_id: str) -> builtins.list[DecisionEntry]:
        """Every decision kept for a job (wildcards have occurrence 0), oldest first."""

        def decisions(db: sqlite3.Connection) -> builtins.list[DecisionEntry]:
            rows = db.execute(
                "SELECT node, occurrence, decision FROM decisions WHERE job_id = ? ORDER BY seq",
                (job_id,),
            ).fetchall()
            return [
                DecisionEntry(n, o, serde.converter.structure(json.loads(d), _DECISION))
                for n, o, d in rows
            ]

        return await self._queue_read(decisions)

    # -- exclusive continuation (Executor.resume, the CLI) ----------------------------
    async def hold(self, trace_id: str, owner: str, lease: float) -> Hold | None:
        """Claim the continuation of stored run ``trace_id`` for ``lease`` seconds, like a
        worker's claim; ``RunBusy`` if another process continues it or already has.
        None when there is nothing to hold (no such run, or its job has finished)."""

        def hold(db: sqlite3.Connection) -> Hold | None:
            now = time.time()
            job_id = _resolve(db, trace_id)
            if job_id is not None:
                _refuse_held(db, trace_id, job_id)
            _refuse_continued(db, trace_id)  # even when its job has finished meanwhile
            if job_id is None:
                run = db.execute(
                    "SELECT graph_name, checkpoint_id FROM runs WHERE trace_id = ?", (trace_id,)
                ).fetchone()
                if run is None:
                    return None
                db.execute(
                    "INSERT INTO jobs (job_id, graph_name, status, trace_id, checkpoint_id, "
                    "epoch, owner, lease_until, attempts, created_at, updated_at, available_at) "
                    "VALUES (?, ?, 'running', ?, ?, 1, ?, ?, 1, ?, ?, ?)",
                    (trace_id, run[0], trace_id, run[1], owner, now + lease, now, now, now),
                )
                db.execute(
                    "INSERT OR IGNORE INTO job_traces (trace_id, job_id) VALUES (?, ?)",
                    (trace_id, trace_id),
                )
                return Hold(trace_id, 1, created=True)
            status, until, holder = db.execute(
                "SELECT status, lease_until, owner FROM jobs WHERE job_id = ?", (job_id,)
            ).fetchone()
            if status in (JobStatus.COMPLETED, JobStatus.FAILED):
                return None
            if status == JobStatus.RUNNING and until is not None and until >= now:
                raise RunBusy(trace_id, f"is being continued by another process ({holder})")
            (epoch,) = db.execute(
                "UPDATE jobs SET status = 'running', epoch = epoch + 1, owner = ?, "
                "lease_until = ?, attempts = attempts + 1, pending_barrier = NULL, "
                "updated_at = ? WHERE job_id = ? RETURNING epoch",
                (owner, now + lease, now, job_id),
            ).fetchone()
            return Hold(job_id, int(epoch), created=False)

        return await self._queue_write(hold)

    async def unhold(self, held: Hold) -> None:
        """End a hold: a run that was not in the queue leaves it again (its row goes), a
        job is given back to the queue (or stays settled)."""

        def unhold(db: sqlite3.Connection) -> None:
            if held.created:
                gone = db.execute(
                    "DELETE FROM jobs WHERE job_id = ? AND epoch = ?", (held.job_id, held.epoch)
                ).rowcount
                if gone:
                    db.execute("DELETE FROM job_traces WHERE job_id = ?", (held.job_id,))
                    db.execute("DELETE FROM decisions WHERE job_id = ?", (held.job_id,))
                return
            now = time.time()
            db.execute(
                "UPDATE jobs SET status = 'queued', owner = NULL, lease_until = NULL, "
                "available_at = ?, updated_at = ? WHERE job_id = ? AND epoch = ? "
                "AND status = 'running'",
                (now, now, held.job_id, held.epoch),
            )

        await self._queue_write(unhold)

    async def wait_for_work(self, seconds: float) -> None:
        """Wait ``seconds`` (SQLite has no notifications: idle workers poll)."""
        await trio.sleep(seconds)
