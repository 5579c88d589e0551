"""The queue's PostgreSQL dialect: the database's clock, row locks, JSONB, NOTIFY.

Runtime layer. PostgreSQL's means for the rules of :mod:`.rules`: claims use ``SELECT …
FOR UPDATE SKIP LOCKED``, so workers never wait on each other's rows; leases are on the
database's clock (``clock_timestamp()``), so the workers' clocks do not matter.
Statements that must see each other's effects (a decision and the job it wakes,
parking and the decisions that arrived meanwhile) run in one transaction with the job
row locked ``FOR UPDATE``. ``LISTEN``/``NOTIFY`` wakes an idle worker when work arrives;
they also poll, for expired leases.

One idle worker listens at a time, not all of them: a NOTIFY that woke every idle worker
process sent each into a claim that all but one found empty (a thundering herd: with 4
processes, ~3 empty claim transactions per run). The listener is whoever holds a session
advisory lock on the work channel (:class:`_WorkListener`): the others wait for the lock
(``pg_advisory_lock`` under a ``lock_timeout`` of their poll interval, so they still poll).
The holder LISTENs and, on a NOTIFY, returns to claim, and keeps listening while its
worker has a free slot; a worker that fills up or stops calls ``stop_waiting``, which
UNLISTENs and unlocks. The server grants the lock to one waiter, which LISTENs and
returns at once to claim once, for what was submitted while nobody listened, then waits
on its LISTEN. A process that dies lets go of the lock with its connection.

The tables are created by the store's migrations (:mod:`trio_graph.stores.postgres`); a
run's trace finds its job through ``trio_graph_runs.job_id``.
"""

from __future__ import annotations

import hashlib
import logging
import re
import threading
import time
from collections.abc import Callable
from typing import Any

import psycopg
import trio
from psycopg import sql

from ..jsonb import dumps, loads
from .dialect import Conn, Dialect

log = logging.getLogger("trio_graph.postgres")

_SLICE = 0.05
"""Seconds a steering LISTEN waits before looking whether its waiter has gone."""
_PARAM = re.compile(r"(?<![:\w]):([A-Za-z_]\w*)")


class PostgresDialect(Dialect):
    """The queue's words on PostgreSQL, and its LISTEN connections: one for idle workers
    (``channel``, while this process is the one listening), one for the live runs of this
    process (``channel`` + ``_steering``)."""

    name = "postgres"
    jobs = "trio_graph_jobs"
    decisions = "trio_graph_decisions"
    cancels = "trio_graph_cancels"
    workers = "trio_graph_workers"
    since = "clock_timestamp() - make_interval(secs => :within)"
    runs = "trio_graph_runs"
    checkpoints = "trio_graph_checkpoints"
    now = "clock_timestamp()"
    lease_until = "clock_timestamp() + make_interval(secs => :lease)"
    wall = "to_timestamp(:wall)"
    available = "to_timestamp(:available)"
    seconds = "extract(epoch FROM {})::float8"
    lock = " FOR UPDATE"
    skip_locked = " FOR UPDATE SKIP LOCKED"
    jsonb = "::jsonb"
    text = "::text"
    resolve = """SELECT job_id FROM trio_graph_jobs WHERE job_id = :trace
        UNION ALL SELECT job_id FROM trio_graph_runs
        WHERE trace_id = :trace AND job_id IS NOT NULL LIMIT 1"""
    link = "UPDATE trio_graph_runs SET job_id = :job WHERE trace_id = :trace"
    unlink = "UPDATE trio_graph_runs SET job_id = NULL WHERE job_id = :job"

    def __init__(self, dsn: str, channel: str, opened: Callable[[], None]) -> None:
        super().__init__()
        self.channel = channel
        self.steering_channel = f"{channel}_steering"
        self._work = _WorkListener(dsn, channel, opened)
        self._steering = _Listener(dsn, self.steering_channel, opened)

    def native(self, query: str) -> str:
        return _PARAM.sub(r"%(\1)s", query)

    def dumps(self, value: Any) -> str:
        return dumps(value)

    def loads(self, text: str) -> Any:
        return loads(text)

    def notify(self, conn: Conn) -> None:
        conn.execute("SELECT pg_notify(%s, '')", (self.channel,))

    def notify_steering(self, conn: Conn, job_id: str) -> None:
        conn.execute("SELECT pg_notify(%s, %s)", (self.steering_channel, job_id))

    async def wait_for_work(self, seconds: float) -> None:
        """Return when work may have arrived (a NOTIFY, or this process just took over the
        listening) or after ``seconds``."""
        await trio.to_thread.run_sync(self._work.wait, seconds)

    async def stop_waiting(self) -> None:
        """Let another idle worker listen for work (see the module notes)."""
        if self._work.leading:
            await trio.to_thread.run_sync(self._work.step_aside)
        else:
            await trio.lowlevel.checkpoint()

    async def prime(self) -> None:
        """LISTEN from now on (once: the connection stays), so no NOTIFY is missed."""
        if not self._steering.listening:
            await trio.to_thread.run_sync(self._steering.listen)

    async def look(self, seconds: float) -> bool:
        """A steering NOTIFY (a decision for a run of this database) within ``seconds``.
        On cancel (the run ended) the thread is abandoned and told to stop: it lets go of
        the connection within a slice."""
        stop = threading.Event()
        try:
            return await trio.to_thread.run_sync(
                self._steering.wait, seconds, stop, abandon_on_cancel=True
            )
        finally:
            stop.set()

    def close(self) -> None:
        """Close the LISTEN connections (from a worker thread)."""
        self._work.close()
        self._steering.close()


class _Listener:
    """One LISTEN connection on ``channel``, opened on first use, used by one thread at a
    time; an error closes it (reopened next time) and the wait polls instead."""

    def __init__(self, dsn: str, channel: str, opened: Callable[[], None]) -> None:
        self._dsn, self._channel, self._opened = dsn, channel, opened
        self._lock = threading.Lock()
        self._conn: Conn | None = None
        self._shut = False
        """Closed by the store: a wait that was on its way (an abandoned thread) must not
        open a connection that nobody closes."""

    @property
    def listening(self) -> bool:
        return self._conn is not None and not self._conn.closed

    def listen(self) -> None:
        """Open the connection and LISTEN, if not yet (errors: the next wait retries)."""
        self._opened()
        with self._lock:
            if self._shut:
                return
            try:
                self._connect()
            except psycopg.Error as exc:
                log.warning("LISTEN failed (%s); polling instead", exc)
                self._close()

    def _connect(self) -> Conn:
        if self._conn is None or self._conn.closed:
            conn = psycopg.connect(self._dsn, autocommit=True)
            try:
                conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(self._channel)))
            except BaseException:
                conn.close()  # not left to the garbage collector (a ResourceWarning)
                raise
            self._conn = conn
        return self._conn

    def wait(self, timeout: float, stop: threading.Event | None = None) -> bool:
        """True when a notification arrived within ``timeout`` seconds (in slices of
        ``_SLICE``, between which ``stop`` ends the wait)."""
        self._opened()
        end = time.monotonic() + timeout
        with self._lock:
            if self._shut:
                return False
            try:
                conn = self._connect()
                while stop is None or not stop.is_set():
                    left = end - time.monotonic()
                    if left <= 0:
                        return False
                    slice_ = left if stop is None else min(left, _SLICE)
                    if any(True for _ in conn.notifies(timeout=slice_, stop_after=1)):
                        return True
                return False
            except psycopg.Error as exc:
                log.warning("LISTEN failed (%s); polling instead", exc)
                self._close()
                threading.Event().wait(timeout)
                return False

    def close(self) -> None:
        with self._lock:
            self._shut = True
            self._close()

    def _close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


_LEAD = "SELECT pg_advisory_lock(%s) FROM (SELECT set_config('lock_timeout', %s, false)) AS timeout"
"""Wait for the idle workers' lock, at most the ``lock_timeout`` set first (in the
subquery, so before the wait begins)."""
_TRY_LEAD = "SELECT pg_try_advisory_lock(%s)"
_MAX_MS = 2**31 - 1
"""The longest ``lock_timeout`` (milliseconds)."""
_UNLOCK = "SELECT pg_advisory_unlock(%s)"


def listen_lock_key(channel: str) -> int:
    """The session advisory lock (a bigint) held by the one idle worker listening on the
    work ``channel``."""
    name = f"trio_graph idle workers {channel}".encode()
    return int.from_bytes(hashlib.blake2b(name, digest_size=8).digest(), signed=True)


class _WorkListener(_Listener):
    """The idle workers' LISTEN on ``channel``, open only while this connection holds the
    channel's session advisory lock, so one idle worker among all processes is woken by a
    NOTIFY (see the module notes). :attr:`leading`: it holds the lock and LISTENs."""

    def __init__(self, dsn: str, channel: str, opened: Callable[[], None]) -> None:
        super().__init__(dsn, channel, opened)
        self._key = listen_lock_key(channel)
        self.leading = False

    def _connect(self) -> Conn:
        if self._conn is None or self._conn.closed:
            self.leading = False
            conn = psycopg.connect(self._dsn, autocommit=True)
            try:
                conn.execute("SET statement_timeout = 0")  # the wait for the lock is long
            except BaseException:
                conn.close()
                raise
            self._conn = conn
        return self._conn

    def wait(self, timeout: float, stop: threading.Event | None = None) -> bool:
        """True when work may have arrived within ``timeout`` seconds: a NOTIFY while this
        connection leads, or the lead just taken (nobody listened before)."""
        self._opened()
        with self._lock:
            if self._shut:
                return False
            try:
                conn = self._connect()
                if not self.leading:
                    return self._lead(conn, timeout)
                return any(True for _ in conn.notifies(timeout=timeout, stop_after=1))
            except psycopg.Error as exc:
                log.warning("LISTEN failed (%s); polling instead", exc)
                self._close()
                threading.Event().wait(timeout)
                return False

    def _lead(self, conn: Conn, timeout: float) -> bool:
        """Take the lock within ``timeout`` seconds and LISTEN; False if another holds it."""
        ms = min(int(timeout * 1000), _MAX_MS)
        if ms < 1:
            row = conn.execute(_TRY_LEAD, (self._key,)).fetchone()
            if row is None or not row[0]:
                return False
        else:
            try:
                conn.execute(_LEAD, (self._key, f"{ms}ms"))
            except psycopg.errors.LockNotAvailable:
                return False
        conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(self._channel)))
        self.leading = True
        _drain(conn)  # left from an earlier lead: the claim that follows covers them
        return True

    def step_aside(self) -> None:
        """UNLISTEN and unlock, unless a waiter of this process is in :meth:`wait` (then
        the lead is in use); an error closes the connection, which unlocks too."""
        if not self._lock.acquire(blocking=False):
            return
        try:
            if self.leading and self._conn is not None:
                conn, self.leading = self._conn, False
                conn.execute(sql.SQL("UNLISTEN {}").format(sql.Identifier(self._channel)))
                conn.execute(_UNLOCK, (self._key,))
                _drain(conn)
        except psycopg.Error as exc:
            log.warning("UNLISTEN failed (%s); closing the connection", exc)
            self._close()
        finally:
            self._lock.release()

    def _close(self) -> None:
        self.leading = False
        super()._close()


def _drain(conn: Conn) -> None:
    """Drop the notifications received so far (read without waiting)."""
    for _ in conn.notifies(timeout=0):
        pass
