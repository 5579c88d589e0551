"""``PostgresStore``: checkpoints, runs and the run queue in PostgreSQL.

Many workers on many machines share one database; nothing home-made sits between them
(DESIGN §11). psycopg 3's async API is asyncio-only, so every call runs its own short
transaction on a pooled connection (``psycopg_pool.ConnectionPool``) in a worker thread
via ``trio.to_thread.run_sync``. All SQL is parameterised. The pool checks a connection
it hands out without a round trip (:func:`check_on_checkout`): a save is one round trip.

**Schema.** Created on open and migrated by version (``trio_graph_schema`` holds it),
under an advisory lock so that workers starting together do not race. ``schema=`` picks
the PostgreSQL schema (namespace) the tables live in.

**Checkpoints** are rows like SQLite's (:class:`~trio_graph.stores.rows.Row`): a header
(the checkpoint without its state) and a body, the full state for a base snapshot or
only the deltas since the run's previous row (:class:`~trio_graph.stores.rows.Planner`
decides), as **text** exactly as the shared codec wrote it (not JSONB, which would turn
``-0.0`` into ``0`` and reorder keys), with a checksum checked on load; a load replays
base + deltas. Schema version 2 made them text; a version-1 database is migrated on
open (JSONB text as stored, checksums computed then).

**Queue**: ``submit``, ``decide``, ``claim`` and the rest are the rules of
:mod:`trio_graph.stores.queue` (:class:`~trio_graph.stores.queue.rules.QueueRules`) in
the PostgreSQL dialect (:mod:`trio_graph.stores.queue.postgres`). The save statement,
which checks a worker's claim epoch in the write's own statement (the table's condition
for a fenced save), and the chain read are :mod:`.postgres_rows`; the schema and its
migrations :mod:`.postgres_schema`.
"""

from __future__ import annotations

import builtins
import functools
import re
import select
import threading
from collections.abc import Callable
from types import TracebackType
from typing import Any, TypeVar, cast

import attrs
import psycopg
import trio
from psycopg_pool import ConnectionPool

from .._model.checkpoint import Changes, Checkpoint
from ..errors import CheckpointError, StoreUnavailable
from . import rows as codec
from .jsonb import dumps as dumps
from .jsonb import loads as loads
from .postgres_rows import insert, load
from .postgres_schema import SCHEMA_VERSION as SCHEMA_VERSION
from .postgres_schema import migrate
from .queue.dialect import Tx
from .queue.postgres import PostgresDialect
from .queue.rules import QueueRules

T = TypeVar("T")
_RUN_OF = "coalesce((SELECT run_id FROM trio_graph_runs WHERE trace_id = %(id)s), %(id)s)"
"""The run of ``id``, a run id or any of its segments' trace ids."""
Conn = psycopg.Connection[Any]

_SCHEMA_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")


@attrs.define
class _TraceLock:
    lock: trio.Lock
    users: int = 0


def store_error(exc: BaseException) -> type[CheckpointError]:
    """The one classification of PostgreSQL errors: an outage (connection lost, server
    shutting down or restarting: ``OperationalError``, which includes the pool's timeout,
    and ``InterfaceError``) is ``StoreUnavailable``, which workers retry; anything else
    is a plain ``CheckpointError``."""
    outage = (psycopg.OperationalError, psycopg.InterfaceError)
    return StoreUnavailable if isinstance(exc, outage) else CheckpointError


def check_on_checkout(conn: Conn) -> None:
    """The pool's check of a connection it hands out, with no round trip unless needed.

    A pooled connection is idle: the server sends it nothing, unless it closed it since
    its last use (a restart, an administrator's ``pg_terminate_backend``), when its
    FATAL notice or the end of the stream waits to be read. Only then is the round trip
    of ``ConnectionPool.check_connection`` paid; it raises for a dead connection, which
    the pool then drops and replaces. A connection that died without a word fails its
    statement instead (an outage, ``StoreUnavailable``) and is replaced when returned.
    """
    if conn.closed or conn.broken:
        raise psycopg.OperationalError("the connection is closed")
    poller = select.poll()
    poller.register(conn.fileno(), select.POLLIN)
    if poller.poll(0):
        ConnectionPool.check_connection(conn)


class _ThreadLimiter:
    """The limiter of the store's ``trio.to_thread.run_sync`` calls: Trio's default one
    (the same tokens, the same bound), but a free token is taken without a scheduler
    round trip; the call already checked for cancellation, and the hand-off to the
    thread is its schedule point."""

    async def acquire_on_behalf_of(self, borrower: object) -> None:
        limiter = trio.to_thread.current_default_thread_limiter()
        try:
            limiter.acquire_on_behalf_of_nowait(borrower)
        except trio.WouldBlock:
            await limiter.acquire_on_behalf_of(borrower)

    def release_on_behalf_of(self, borrower: object) -> None:
        trio.to_thread.current_default_thread_limiter().release_on_behalf_of(borrower)


# ``limiter=`` takes any "CapacityLimiter-like object" (trio's documentation); the
# annotation names the class only.
_LIMITER = cast(trio.CapacityLimiter, _ThreadLimiter())


class PostgresStore(QueueRules):
    """A :class:`~trio_graph.stores.protocol.Store` and run queue on PostgreSQL.

    ``dsn`` is a libpq connection string or URI. The pool opens (and the schema is
    created or migrated) on first use or on ``async with``; ``aclose()`` closes it.
    ``schema`` is the PostgreSQL schema holding the tables; ``min_size``/``max_size``
    size the connection pool and ``timeout`` bounds waiting for a connection;
    ``idle_in_transaction_timeout`` (seconds) has the server end a session left inside
    a transaction, e.g. by a paused process, so its locks do not block other workers.
    ``synchronous_commit=False`` does not wait for the WAL flush at each commit (a
    checkpoint then costs a round trip instead of a disk sync); a crash of the *server*
    may lose the last fraction of a second of commits, never their order or the fencing.
    """

    _dialect: PostgresDialect

    def __init__(
        self,
        dsn: str,
        *,
        schema: str = "public",
        min_size: int = 1,
        max_size: int = 8,
        timeout: float = 30.0,
        idle_in_transaction_timeout: float | None = 60.0,
        synchronous_commit: bool = True,
    ) -> None:
        if not _SCHEMA_NAME.match(schema):
            raise ValueError(f"schema must be a plain SQL identifier, got {schema!r}")
        self.dsn = dsn
        self.schema = schema
        options = f"-c search_path={schema}"
        if idle_in_transaction_timeout is not None:
            # Our transactions last milliseconds. A process paused inside one (SIGSTOP)
            # would hold the job's row lock, so no other worker could take the job over:
            # the server ends such a session instead.
            ms = max(1, round(idle_in_transaction_timeout * 1000))
            options += f" -c idle_in_transaction_session_timeout={ms}"
        if not synchronous_commit:
            options += " -c synchronous_commit=off"
        self._pool = ConnectionPool(
            dsn,
            min_size=min_size,
            max_size=max_size,
            timeout=timeout,
            open=False,
            check=check_on_checkout,  # a connection a restart killed is dropped
            kwargs={"options": options, "autocommit": True},
            name=f"trio_graph.{schema}",
        )
        self._open_lock = threading.Lock()
        self._opened = False
        self._closed = False
        self._dialect = PostgresDialect(dsn, f"trio_graph_{schema}", self._open_sync)
        self._planner = codec.Planner()  # touched on the Trio thread, under a trace's lock
        self._trace_locks: dict[str, _TraceLock] = {}

    # -- plumbing ----------------------------------------------------------------------
    def _open_sync(self) -> None:
        with self._open_lock:
            if self._closed:
                raise CheckpointError("the store is closed")
            if self._opened:
                return
            self._pool.open(wait=True)
            with self._pool.connection() as conn:
                migrate(conn, self.schema)
            self._opened = True

    def _tx(self, fn: Callable[[Conn], T], checkpoint_id: str, atomic: bool) -> T:
        """Run ``fn(conn)`` in a worker thread: in one transaction when ``atomic`` (else
        each statement commits on its own: for single statements and plain reads)."""
        if not self._opened:
            self._open_sync()
        try:
            with self._pool.connection() as conn:
                if not atomic:
                    return fn(conn)
                with conn.transaction():
                    return fn(conn)
        except psycopg.Error as exc:
            message = str(exc).splitlines()[0] if str(exc) else ""
            raise store_error(exc)(
                f"postgres: {type(exc).__name__}: {message}", checkpoint_id=checkpoint_id
            ) from exc

    async def _call(
        self, fn: Callable[[Conn], T], *, checkpoint_id: str = "", atomic: bool = True
    ) -> T:
        call = functools.partial(self._tx, fn, checkpoint_id, atomic)
        return await trio.to_thread.run_sync(call, limiter=_LIMITER)

    async def _queue_tx(self, fn: Callable[[Conn], T], tx: Tx) -> T:
        """A queue operation: one transaction when it has several statements."""
        return await self._call(fn, atomic=tx is Tx.ATOMIC)

    async def open(self) -> None:
        """Open the pool and create or migrate the schema (also done on first use)."""
        await trio.to_thread.run_sync(self._open_sync)

    async def aclose(self) -> None:
        def close() -> None:
            with self._open_lock:
                self._closed = True
                self._opened = False
            self._dialect.close()
            self._pool.close()

        await trio.to_thread.run_sync(close)

    async def __aenter__(self) -> PostgresStore:
        await self.open()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    # -- the store protocol --------------------------------------------------------------
    async def save(self, checkpoint: Checkpoint, *, changes: Changes | None = None) -> None:
        """Write ``checkpoint`` and update its run's row, in one transaction."""
        await self._write(checkpoint, changes, None)

    async def _write(
        self, checkpoint: Checkpoint, changes: Changes | None, fence: tuple[str, int] | None
    ) -> None:
        """Save in the order saves were called, per trace (deltas are since the last row).

        The planner is consulted and updated on the Trio thread, under the trace's lock;
        encoding and the transaction run in a worker thread while the run awaits.
        """
        trace_id = checkpoint.trace_id
        entry = self._trace_locks.get(trace_id)
        if entry is None:
            entry = self._trace_locks[trace_id] = _TraceLock(trio.Lock())
        entry.users += 1
        try:
            try:  # a free lock is taken without a scheduler round trip (the hand-off is one)
                entry.lock.acquire_nowait()
            except trio.WouldBlock:
                await entry.lock.acquire()  # FIFO: rows are written in the order taken
            try:
                plan, new_at = self._planner.plan(checkpoint, changes)

                def write(conn: Conn) -> codec.Row:
                    row = codec.make_row(checkpoint, plan, changes, new_at)
                    insert(conn, checkpoint, row, fence)
                    return row

                row = await self._call(write, checkpoint_id=checkpoint.checkpoint_id, atomic=False)
                self._planner.wrote(checkpoint, row)
                if checkpoint.next_node is None or checkpoint.error is not None:
                    # The run has ended (a later save of this trace would just be full):
                    # a long-lived worker does not keep a chain per run it ever served.
                    self._planner.forget(trace_id)
            finally:
                entry.lock.release()
        finally:
            entry.users -= 1
            if not entry.users:
                del self._trace_locks[trace_id]

    async def load(self, checkpoint_id: str) -> Checkpoint:
        """The checkpoint with its full state; ``CheckpointError`` if unknown or corrupted."""
        return await self._call(lambda conn: load(conn, checkpoint_id), atomic=False)

    async def latest(self, run_id: str) -> Checkpoint | None:
        """The run's newest checkpoint (of any segment), or None for an unknown run."""

        def latest(conn: Conn) -> Checkpoint | None:
            if not codec.is_text(run_id):
                return None
            row = conn.execute(
                f"""SELECT checkpoint_id FROM trio_graph_checkpoints WHERE run_id = {_RUN_OF}
                ORDER BY seq DESC LIMIT 1""",
                {"id": run_id},
            ).fetchone()
            return None if row is None else load(conn, row[0])

        return await self._call(latest, atomic=False)

    async def list(self, run_id: str) -> builtins.list[Checkpoint]:
        """The run's checkpoints, every segment's, oldest first (``[]`` for an unknown run)."""

        def history(conn: Conn) -> builtins.list[Checkpoint]:
            if not codec.is_text(run_id):
                return []
            rows = conn.execute(
                f"""SELECT {codec.Row.COLUMNS} FROM trio_graph_checkpoints
                WHERE run_id = {_RUN_OF} ORDER BY seq""",
                {"id": run_id},
            ).fetchall()
            return codec.load_trace(codec.Row.of(r) for r in rows)

        return await self._call(history, atomic=False)

    async def delete(self, run_id: str) -> None:
        """Remove the run's checkpoints and ``runs()`` row (and its queue row)."""

        def delete(conn: Conn) -> builtins.list[str]:
            if not codec.is_text(run_id):
                return []
            found = conn.execute(f"SELECT {_RUN_OF}", {"id": run_id}).fetchone()
            run = found[0] if found is not None else run_id
            traces = conn.execute(
                "SELECT trace_id FROM trio_graph_runs WHERE run_id = %s", (run,)
            ).fetchall()
            conn.execute("DELETE FROM trio_graph_checkpoints WHERE run_id = %s", (run,))
            conn.execute("DELETE FROM trio_graph_runs WHERE run_id = %s", (run,))
            conn.execute("DELETE FROM trio_graph_jobs WHERE job_id = %s", (run,))
            conn.execute("DELETE FROM trio_graph_decisions WHERE job_id = %s", (run,))
            conn.execute("DELETE FROM trio_graph_cancels WHERE job_id = %s", (run,))
            return [run_id, *(t for (t,) in traces)]

        for trace in await self._call(delete):
            self._planner.forget(trace)

    async def save_fenced(
        self, checkpoint: Checkpoint, job_id: str, epoch: int, *, changes: Changes | None = None
    ) -> None:
        """Save ``checkpoint`` only while ``epoch`` is the job's current claim, checked in
        the write's own transaction (else ``LeaseLost``, nothing written). A terminal
        checkpoint also settles the job (completed or failed) in that transaction."""
        await self._write(checkpoint, changes, (job_id, epoch))


__all__ = ["SCHEMA_VERSION", "PostgresStore", "check_on_checkout", "dumps", "loads", "store_error"]
