"""The run queue on PostgreSQL: ``submit``, ``decide`` and what a ``Worker`` needs.

Runtime layer; a mixin of :class:`~trio_graph.stores.postgres.PostgresStore` (which
provides the pooled connections, ``_call`` and the fenced save). The model is in
:mod:`trio_graph.stores.queue`. Claims use ``SELECT … FOR UPDATE SKIP LOCKED``, so
workers never wait on each other's rows; leases are on the database's clock
(``clock_timestamp()``), so the workers' clocks do not matter. Statements that must see
each other's effects (a decision and the job it wakes, parking and the decisions that
arrived meanwhile) run in one transaction with the job row locked ``FOR UPDATE``.
``LISTEN``/``NOTIFY`` wakes idle workers when work arrives; they also poll, for expired
leases.
"""

from __future__ import annotations

import builtins
import logging
import threading
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

import psycopg
import trio
from psycopg import sql

from .. import serde
from .._model.checkpoint import RunStatus, new_id
from .._model.decisions import BarrierId, Decision, DecisionEntry, check_answers
from .._model.state import check_state
from ..errors import BarrierError, CheckpointError, RunBusy
from .jsonb import dumps, loads
from .queue import HOLD_PREFIX, Claim, DecisionsMixin, Hold, Job, JobStatus

log = logging.getLogger("trio_graph.postgres")

T = TypeVar("T")
Conn = psycopg.Connection[Any]
_DECISION: Any = Decision


def _decision_doc(decision: Decision) -> str:
    return dumps(serde.decision_doc(decision))


_JOB_COLUMNS = """
    job_id, graph_name, status, trace_id, checkpoint_id, pending_barrier, epoch, owner,
    attempts, error, extract(epoch FROM created_at)::float8,
    extract(epoch FROM updated_at)::float8
"""
_CLAIM = """
WITH c AS (
    SELECT job_id FROM trio_graph_jobs
    WHERE graph_name = ANY(%(names)s)
      AND (status = 'queued' OR (status = 'running' AND lease_until < clock_timestamp()))
    ORDER BY available_at
    LIMIT %(limit)s
    FOR UPDATE SKIP LOCKED
)
UPDATE trio_graph_jobs AS j
SET status = 'running', epoch = j.epoch + 1, owner = %(owner)s,
    lease_until = clock_timestamp() + make_interval(secs => %(lease)s),
    attempts = j.attempts + 1, pending_barrier = NULL, updated_at = clock_timestamp()
FROM c WHERE j.job_id = c.job_id
RETURNING j.job_id, j.graph_name, j.epoch, j.trace_id, j.checkpoint_id,
    CASE WHEN j.checkpoint_id IS NULL THEN j.state::text END
"""


def _job(row: tuple[Any, ...]) -> Job:
    pending = BarrierId.parse(row[5]) if row[5] else None
    return Job(
        row[0],
        row[1],
        JobStatus(row[2]),
        row[3],
        row[4],
        pending,
        int(row[6]),
        row[7],
        int(row[8]),
        row[9],
        float(row[10]),
        float(row[11]),
    )


def _refuse_continued(conn: Conn, trace_id: str) -> None:
    """``RunBusy`` if a later trace already continues ``trace_id``."""
    row = conn.execute(
        "SELECT trace_id FROM trio_graph_runs WHERE resumed_from = %s LIMIT 1", (trace_id,)
    ).fetchone()
    if row is not None:
        raise RunBusy(trace_id, f"was already continued as run {row[0]!r}")


def _refuse_held(conn: Conn, trace_id: str, job_id: str) -> None:
    """``RunBusy`` if a process outside the queue holds the job (see ``hold``)."""
    row = conn.execute(
        """SELECT owner FROM trio_graph_jobs
        WHERE job_id = %s AND status = 'running' AND starts_with(owner, %s)
        AND lease_until >= clock_timestamp()""",
        (job_id, HOLD_PREFIX),
    ).fetchone()
    if row is not None:
        raise RunBusy(trace_id, f"is being continued by another process ({row[0]})")


_HOLD_JOB = """
UPDATE trio_graph_jobs SET status = 'running', epoch = epoch + 1, owner = %(owner)s,
    lease_until = clock_timestamp() + make_interval(secs => %(lease)s),
    attempts = attempts + 1, pending_barrier = NULL, updated_at = clock_timestamp()
WHERE job_id = %(job)s RETURNING epoch
"""


class PostgresQueue(DecisionsMixin):
    """The queue methods of :class:`~trio_graph.stores.postgres.PostgresStore`."""

    if TYPE_CHECKING:  # provided by PostgresStore
        dsn: str
        _channel: str
        _listen_lock: threading.Lock
        _listener: Conn | None

        def _open_sync(self) -> None: ...
        def _notify(self, conn: Conn) -> None: ...
        async def _call(
            self, fn: Callable[[Conn], T], *, checkpoint_id: str = "", atomic: bool = True
        ) -> T: ...

    # -- the queue: anyone ---------------------------------------------------------------
    async def submit(
        self, graph_name: str, state: Mapping[str, Any], *, trace_id: str | None = None
    ) -> str:
        """Queue a new run of ``graph_name`` on ``state``; returns its id (its trace id)."""
        state = check_state(state)
        serde.check_json(state)
        text = dumps(dict(state))
        job_id = trace_id or new_id()

        def submit(conn: Conn) -> None:
            row = conn.execute(
                """INSERT INTO trio_graph_jobs (job_id, graph_name, state, status, trace_id)
                VALUES (%s, %s, %s::jsonb, 'queued', %s) ON CONFLICT (job_id) DO NOTHING
                RETURNING 1""",
                (job_id, graph_name, text, job_id),
            ).fetchone()
            if row is None:
                raise CheckpointError(f"a run with id {job_id!r} was already submitted")
            self._notify(conn)

        await self._call(submit)
        return job_id

    async def _decide(
        self,
        trace_id: str,
        node: str,
        occurrence: int,
        decision: Decision,
        adopt_at: BarrierId | None,
    ) -> None:
        doc = _decision_doc(decision)

        def decide(conn: Conn) -> None:
            job_id = self._resolve(conn, trace_id, adopt=True, pending=adopt_at)
            if job_id is None:
                raise BarrierError(f"no run {trace_id!r} in the store", node=node)
            status, pending = conn.execute(
                "SELECT status, pending_barrier FROM trio_graph_jobs WHERE job_id = %s FOR UPDATE",
                (job_id,),
            ).fetchone() or (None, None)
            if status in (JobStatus.COMPLETED, JobStatus.FAILED):
                raise BarrierError("the run has finished; decision not applied", node=node)
            if status == JobStatus.WAITING and pending:
                check_answers(trace_id, BarrierId.parse(pending), node, occurrence)
            _refuse_held(conn, trace_id, job_id)
            conn.execute(
                """INSERT INTO trio_graph_decisions (job_id, node, occurrence, decision)
                VALUES (%s, %s, %s, %s::jsonb) ON CONFLICT (job_id, node, occurrence)
                DO UPDATE SET decision = EXCLUDED.decision""",
                (job_id, node, occurrence, doc),
            )
            if status == JobStatus.WAITING and pending:
                bid = BarrierId.parse(pending)
                if bid.node == node and occurrence in (0, bid.occurrence):
                    conn.execute(
                        """UPDATE trio_graph_jobs SET status = 'queued',
                        available_at = clock_timestamp(), updated_at = clock_timestamp()
                        WHERE job_id = %s""",
                        (job_id,),
                    )
                    self._notify(conn)

        await self._call(decide)

    @staticmethod
    def _resolve(
        conn: Conn, trace_id: str, *, adopt: bool = False, pending: BarrierId | None = None
    ) -> str | None:
        """The job a job id or trace id belongs to (adopting a waiting stored run, parked
        at ``pending``: the decision being recorded is checked against it)."""
        row = conn.execute(
            """SELECT job_id FROM trio_graph_jobs WHERE job_id = %s
            UNION ALL SELECT job_id FROM trio_graph_runs
            WHERE trace_id = %s AND job_id IS NOT NULL LIMIT 1""",
            (trace_id, trace_id),
        ).fetchone()
        if row is not None:
            return str(row[0])
        if not adopt:
            return None
        run = conn.execute(
            """SELECT graph_name, status, checkpoint_id FROM trio_graph_runs
            WHERE trace_id = %s""",
            (trace_id,),
        ).fetchone()
        if run is None:
            return None
        if run[1] != RunStatus.WAITING:
            raise BarrierError(f"run {trace_id!r} is not waiting at a barrier (status {run[1]})")
        _refuse_continued(conn, trace_id)
        status = JobStatus.WAITING if pending is not None else JobStatus.QUEUED
        conn.execute(
            """INSERT INTO trio_graph_jobs
            (job_id, graph_name, status, trace_id, checkpoint_id, pending_barrier)
            VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING""",
            (trace_id, run[0], status.value, trace_id, run[2], pending and str(pending)),
        )
        conn.execute(
            "UPDATE trio_graph_runs SET job_id = %s WHERE trace_id = %s", (trace_id, trace_id)
        )
        return trace_id

    async def job(self, trace_id: str) -> Job | None:
        """The queue row of a run, by its job id or any of its trace ids; None if unknown."""

        def job(conn: Conn) -> Job | None:
            job_id = self._resolve(conn, trace_id)
            if job_id is None:
                return None
            row = conn.execute(
                f"SELECT {_JOB_COLUMNS} FROM trio_graph_jobs WHERE job_id = %s",
                (job_id,),
            ).fetchone()
            return _job(row) if row else None

        return await self._call(job, atomic=False)

    async def jobs(self, status: JobStatus | None = None) -> builtins.list[Job]:
        """Queue rows, oldest first; only those with ``status`` if given."""

        def jobs(conn: Conn) -> builtins.list[Job]:
            rows = conn.execute(
                f"""SELECT {_JOB_COLUMNS} FROM trio_graph_jobs
                WHERE %(s)s::text IS NULL OR status = %(s)s ORDER BY created_at, job_id""",
                {"s": None if status is None else JobStatus(status).value},
            ).fetchall()
            return [_job(r) for r in rows]

        return await self._call(jobs, atomic=False)

    # -- the queue: workers --------------------------------------------------------------
    async def claim(
        self, owner: str, graph_names: builtins.list[str], limit: int, lease: float
    ) -> builtins.list[Claim]:
        """Claim up to ``limit`` runnable jobs of these graphs for ``lease`` seconds."""

        def claim(conn: Conn) -> builtins.list[Claim]:
            rows = conn.execute(
                _CLAIM,
                {"names": list(graph_names), "limit": limit, "owner": owner, "lease": lease},
            ).fetchall()
            return [
                Claim(r[0], r[1], int(r[2]), r[3], r[4], loads(r[5]) if r[5] else None)
                for r in rows
            ]

        return await self._call(claim, atomic=False)

    async def renew(self, job_id: str, epoch: int, lease: float) -> bool:
        """Extend the lease of a claim; False if the claim is no longer current."""
        return await self._fenced_update(
            """UPDATE trio_graph_jobs
            SET lease_until = clock_timestamp() + make_interval(secs => %(lease)s)
            WHERE job_id = %(job)s AND epoch = %(epoch)s AND status = 'running' RETURNING 1""",
            {"job": job_id, "epoch": epoch, "lease": lease},
        )

    async def release(self, job_id: str, epoch: int) -> bool:
        """Give a claimed job back to the queue (runnable at once)."""
        return await self._fenced_update(
            """UPDATE trio_graph_jobs SET status = 'queued', owner = NULL, lease_until = NULL,
            available_at = clock_timestamp(), updated_at = clock_timestamp()
            WHERE job_id = %(job)s AND epoch = %(epoch)s AND status = 'running' RETURNING 1""",
            {"job": job_id, "epoch": epoch},
            notify=True,
        )

    async def finish(
        self, job_id: str, epoch: int, status: JobStatus, error: str | None = None
    ) -> bool:
        """Mark a claimed job completed or failed."""
        return await self._fenced_update(
            """UPDATE trio_graph_jobs SET status = %(status)s, error = %(error)s, owner = NULL,
            lease_until = NULL, updated_at = clock_timestamp()
            WHERE job_id = %(job)s AND epoch = %(epoch)s AND status = 'running' RETURNING 1""",
            {"job": job_id, "epoch": epoch, "status": JobStatus(status).value, "error": error},
        )

    async def _fenced_update(
        self, query: str, params: dict[str, Any], *, notify: bool = False
    ) -> bool:
        def update(conn: Conn) -> bool:
            ok = conn.execute(query, params).fetchone() is not None
            if ok and notify:
                self._notify(conn)
            return ok

        return await self._call(update, atomic=False)

    async def park(
        self,
        job_id: str,
        epoch: int,
        barrier_id: BarrierId,
        *,
        refused: Sequence[DecisionEntry] = (),
    ) -> bool:
        """Park a claimed job at a barrier until a decision for it arrives.

        If one arrived meanwhile (other than those in ``refused``, which the graph would
        not take) the job stays runnable, so no decision is missed.
        """
        ignore = [_decision_doc(e.decision) for e in refused]

        def park(conn: Conn) -> bool:
            row = conn.execute(
                "SELECT epoch, status FROM trio_graph_jobs WHERE job_id = %s FOR UPDATE",
                (job_id,),
            ).fetchone()
            if row is None or row[0] != epoch or row[1] != JobStatus.RUNNING:
                return False
            answered = conn.execute(
                """SELECT 1 FROM trio_graph_decisions
                WHERE job_id = %s AND node = %s AND occurrence IN (0, %s)
                AND NOT (decision = ANY(%s::jsonb[]))""",
                (job_id, barrier_id.node, barrier_id.occurrence, ignore),
            ).fetchone()
            status = JobStatus.QUEUED if answered else JobStatus.WAITING
            conn.execute(
                """UPDATE trio_graph_jobs SET status = %s, pending_barrier = %s, owner = NULL,
                lease_until = NULL, available_at = clock_timestamp(),
                updated_at = clock_timestamp() WHERE job_id = %s""",
                (status.value, str(barrier_id), job_id),
            )
            if answered:
                self._notify(conn)
            return True

        return await self._call(park)

    async def decisions(self, job_id: str) -> builtins.list[DecisionEntry]:
        """Every decision kept for a job (wildcards have occurrence 0), oldest first."""

        def decisions(conn: Conn) -> builtins.list[DecisionEntry]:
            rows = conn.execute(
                """SELECT node, occurrence, decision::text FROM trio_graph_decisions
                WHERE job_id = %s ORDER BY seq""",
                (job_id,),
            ).fetchall()
            return [
                DecisionEntry(n, o, serde.converter.structure(loads(d), _DECISION))
                for n, o, d in rows
            ]

        return await self._call(decisions, atomic=False)

    # -- exclusive continuation (Executor.resume, the CLI) ----------------------------
    async def hold(self, trace_id: str, owner: str, lease: float) -> Hold | None:
        """Claim the continuation of stored run ``trace_id`` for ``lease`` seconds, like a
        worker's claim; ``RunBusy`` if another process continues it or already has.
        None when there is nothing to hold (no such run, or its job has finished)."""

        def hold(conn: Conn) -> Hold | None:
            # The run's row first: holds (and their release) of one run take turns, so a
            # trace saved by the previous holder is seen here. Then: its job may have
            # finished meanwhile.
            conn.execute(
                "SELECT 1 FROM trio_graph_runs WHERE trace_id = %s FOR UPDATE", (trace_id,)
            )
            job_id = self._resolve(conn, trace_id)
            if job_id is not None:
                _refuse_held(conn, trace_id, job_id)
            _refuse_continued(conn, trace_id)
            if job_id is None:
                return self._hold_run(conn, trace_id, owner, lease)
            status, live, holder = conn.execute(
                """SELECT status, lease_until >= clock_timestamp(), owner FROM trio_graph_jobs
                WHERE job_id = %s FOR UPDATE""",
                (job_id,),
            ).fetchone() or (None, None, None)
            if status is None or status in (JobStatus.COMPLETED, JobStatus.FAILED):
                return None
            if status == JobStatus.RUNNING and live:
                raise RunBusy(trace_id, f"is being continued by another process ({holder})")
            row = conn.execute(_HOLD_JOB, {"owner": owner, "lease": lease, "job": job_id})
            return Hold(job_id, int(row.fetchone()[0]), created=False)  # type: ignore[index]

        return await self._call(hold)

    @staticmethod
    def _hold_run(conn: Conn, trace_id: str, owner: str, lease: float) -> Hold | None:
        run = conn.execute(
            "SELECT graph_name, checkpoint_id FROM trio_graph_runs WHERE trace_id = %s FOR UPDATE",
            (trace_id,),
        ).fetchone()
        if run is None:
            return None
        _refuse_continued(conn, trace_id)
        row = conn.execute(
            """INSERT INTO trio_graph_jobs (job_id, graph_name, status, trace_id, checkpoint_id,
            epoch, owner, lease_until, attempts)
            VALUES (%s, %s, 'running', %s, %s, 1, %s,
                clock_timestamp() + make_interval(secs => %s), 1)
            ON CONFLICT DO NOTHING RETURNING 1""",
            (trace_id, run[0], trace_id, run[1], owner, lease),
        ).fetchone()
        if row is None:
            raise RunBusy(trace_id, "is being continued by another process")
        conn.execute(
            "UPDATE trio_graph_runs SET job_id = %s WHERE trace_id = %s", (trace_id, trace_id)
        )
        return Hold(trace_id, 1, created=True)

    async def unhold(self, held: Hold) -> None:
        """End a hold: a run that was not in the queue leaves it again (its row goes), a
        job is given back to the queue (or stays settled)."""

        def unhold(conn: Conn) -> None:
            params = {"job": held.job_id, "epoch": held.epoch}
            if not held.created:
                conn.execute(
                    """UPDATE trio_graph_jobs SET status = 'queued', owner = NULL,
                    lease_until = NULL, available_at = clock_timestamp(),
                    updated_at = clock_timestamp()
                    WHERE job_id = %(job)s AND epoch = %(epoch)s AND status = 'running'""",
                    params,
                )
                self._notify(conn)
                return
            gone = conn.execute(
                "DELETE FROM trio_graph_jobs WHERE job_id = %(job)s AND epoch = %(epoch)s "
                "RETURNING 1",
                params,
            ).fetchone()
            if gone:
                conn.execute("DELETE FROM trio_graph_decisions WHERE job_id = %(job)s", params)
                conn.execute(
                    "UPDATE trio_graph_runs SET job_id = NULL WHERE job_id = %(job)s", params
                )

        await self._call(unhold)

    async def wait_for_work(self, seconds: float) -> None:
        """Return when work may have arrived (a NOTIFY) or after ``seconds``."""
        await trio.to_thread.run_sync(self._wait_sync, seconds)

    def _wait_sync(self, timeout: float) -> None:
        self._open_sync()
        with self._listen_lock:
            try:
                if self._listener is None or self._listener.closed:
                    conn = psycopg.connect(self.dsn, autocommit=True)
                    conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(self._channel)))
                    self._listener = conn
                for _ in self._listener.notifies(timeout=timeout, stop_after=1):
                    pass
            except psycopg.Error as exc:
                log.warning("LISTEN failed (%s); polling instead", exc)
                if self._listener is not None:
                    self._listener.close()
                    self._listener = None
                threading.Event().wait(timeout)


__all__ = ["PostgresQueue"]
