"""``SQLiteStore``: the embedded default, one SQLite file.

Runtime layer. The file is opened in WAL mode with ``synchronous=NORMAL`` (a commit
survives a crash of the process; only a power loss may drop the last ones), its
schema created or checked on open (a ``meta`` table holds the schema version; a file
from a newer trio_graph is refused with ``CheckpointError``).

I/O runs in worker threads (``trio.to_thread.run_sync``). Writes go through **one**
writer connection behind a ``trio.CapacityLimiter(1)`` (FIFO: checkpoints are written
in the order they were taken); reads use a small pool of reader connections, so with
WAL a read never waits for a write, and never blocks the run loop. Every ``save`` is
one transaction: the checkpoint row and the run's ``runs`` row commit together or
not at all.

One exception, for speed: a small delta row (up to ``inline_max`` bytes, 64 KiB by
default) is committed on the Trio thread when nothing can make it wait: the writer
is free, no other process holds the file's write lock (``busy_timeout`` is 0 there:
a locked file sends the write to a thread, which waits), and no WAL checkpoint is
due (automatic WAL checkpoints are off; the store runs them in a thread every
~1000 pages). Such a commit appends a few pages to the WAL without syncing, in tens
of microseconds, while handing a write to a thread and back costs 40-100 us on a
2-core VM: with it, a checkpoint every step costs ~3x less. ``inline_max=0`` sends
every write to a thread (e.g. for a network file system).

Rows hold JSON written by the shared row codec in :mod:`.rows` (never pickle), each
with a checksum checked on load; every SQL statement binds its values. A checkpoint
is stored as a full state snapshot or as the deltas since the run's previous
checkpoint (:class:`~trio_graph.stores.rows.Planner` decides), so the bytes written
per step grow with the update, not with the state; ``load`` replays base + deltas
and always returns the full state.

Open it with ``async with SQLiteStore(path) as store:``, or just use it: the file
is opened on first use. Opening checks, before changing anything, that the file is
ours (an empty or new file, or one with trio_graph's ``meta`` table) and writable:
another program's database or a file that is not SQLite is refused with
``CheckpointError`` ("... is not a trio_graph database") and left as it was, a
read-only file or directory with "... is read-only". ``aclose()`` closes the
connections; a closed store raises ``CheckpointError``.
"""

from __future__ import annotations

import builtins
import contextlib
import os
import sqlite3
import threading
from collections.abc import Callable, Iterator
from types import TracebackType
from typing import TypeVar

import trio

from .. import serde
from .._model.checkpoint import Changes, Checkpoint, RunStatus
from ..errors import CheckpointError
from . import rows as codec
from .protocol import RunInfo
from .sqlite_queue import SQLiteQueue

T = TypeVar("T")

SCHEMA_VERSION = 2
"""The schema this code writes. Bump it and add a step to ``MIGRATIONS`` to change it.

Version 2 added ``prev_id`` and ``checksum``; a version-1 file is migrated on open
(each row's ``prev_id`` is the row before it in its trace, its checksum computed
from the row as stored)."""

MIGRATIONS: dict[int, tuple[str, ...]] = {
    1: (
        """CREATE TABLE checkpoints (
            seq INTEGER PRIMARY KEY,
            checkpoint_id TEXT NOT NULL UNIQUE,
            trace_id TEXT NOT NULL,
            base_id TEXT,
            link INTEGER NOT NULL,
            header TEXT NOT NULL,
            body TEXT NOT NULL
        )""",
        "CREATE INDEX checkpoints_by_trace ON checkpoints (trace_id, seq)",
        """CREATE TABLE runs (
            trace_id TEXT PRIMARY KEY,
            graph_name TEXT NOT NULL,
            status TEXT NOT NULL,
            updated_at REAL NOT NULL,
            checkpoint_id TEXT,
            resumed_from TEXT
        ) WITHOUT ROWID""",
    ),
    2: (
        "ALTER TABLE checkpoints ADD COLUMN prev_id TEXT",
        "ALTER TABLE checkpoints ADD COLUMN checksum TEXT NOT NULL DEFAULT ''",
    ),
}
"""Statements that bring a database from version ``n - 1`` to ``n``, run in one transaction.

``checkpoints``: one row per checkpoint, ``seq`` is the write order; the columns are
those of :class:`~trio_graph.stores.rows.Row` (``base_id`` NULL: ``body`` is the full
state; else the deltas since the row ``prev_id``; ``link`` its place in the chain;
``checksum`` of every column).
``runs``: one row per run, kept in the transaction of each save. Later versions may
add columns to it (a lease for workers, say): the statements here name their columns.
"""

_WAL_PAGES = 1000
"""Checkpoint the WAL (in a worker thread) after about this many pages (SQLite's default)."""
_PAGES_PER_COMMIT = 4
"""Pages a small commit dirties: the row, two index entries, the ``runs`` row."""

_INSERT = f"INSERT INTO checkpoints ({codec.Row.COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
_UPSERT_RUN = (
    "INSERT INTO runs (trace_id, graph_name, status, updated_at, checkpoint_id, resumed_from) "
    "VALUES (?, ?, ?, ?, ?, ?) "
    "ON CONFLICT (trace_id) DO UPDATE SET graph_name = excluded.graph_name, "
    "status = excluded.status, updated_at = excluded.updated_at, "
    "checkpoint_id = excluded.checkpoint_id, resumed_from = excluded.resumed_from"
)


class SQLiteStore(SQLiteQueue):
    """A :class:`~trio_graph.stores.protocol.Store` in one SQLite file (WAL).

    ``readers`` bounds the reader connections (and concurrent reads); ``busy_timeout``
    is how long a write waits for another process holding the file's write lock.
    ``inline_max``: a checkpoint row up to this many bytes is committed on the Trio
    thread when it cannot wait (see the module notes); 0 sends every write to a worker
    thread.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        readers: int = 4,
        busy_timeout: float = 10.0,
        inline_max: int = 64 * 1024,
    ) -> None:
        self.path = os.fspath(path)
        if self.path == ":memory:" or self.path.startswith("file:"):
            raise ValueError(
                f"SQLiteStore needs a file path, got {self.path!r} (use MemoryStore in memory)"
            )
        if not isinstance(readers, int) or readers < 1:
            raise ValueError(f"readers must be a positive int, got {readers!r}")
        if not isinstance(inline_max, int) or inline_max < 0:
            raise ValueError(f"inline_max must be an int >= 0, got {inline_max!r}")
        serde.warm()
        self._busy_timeout = busy_timeout
        self._inline_max = inline_max
        self._wal_pages = 0  # WAL pages written since our last checkpoint (an estimate)
        self._writer: sqlite3.Connection | None = None
        self._idle_readers: builtins.list[sqlite3.Connection] = []
        self._all_readers: builtins.list[sqlite3.Connection] = []
        self._readers_lock = threading.Lock()
        self._write_limiter = trio.CapacityLimiter(1)
        self._read_limiter = trio.CapacityLimiter(readers)
        self._open_lock = trio.Lock()
        self._closed = False
        self._planner = codec.Planner()  # touched only under the write limiter

    def __repr__(self) -> str:
        return f"SQLiteStore({self.path!r})"

    # -- opening and closing -------------------------------------------------------
    async def __aenter__(self) -> SQLiteStore:
        await self._ensure_open()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def _ensure_open(self) -> None:
        # No checkpoint on the fast path: saves must reach the write limiter in the
        # order they were called.
        if self._writer is not None:
            return
        async with self._open_lock:
            if self._closed:
                raise CheckpointError(f"{self!r} is closed")
            if self._writer is None:
                self._writer = await trio.to_thread.run_sync(self._open_writer)

    def _connect(self, timeout: float) -> sqlite3.Connection:
        try:
            db = sqlite3.connect(
                self.path,
                timeout=timeout,
                isolation_level=None,  # we issue BEGIN / COMMIT ourselves
                check_same_thread=False,  # used from Trio's worker threads, one at a time
            )
        except sqlite3.Error as exc:
            raise CheckpointError(f"cannot open {self.path!r}: {exc}") from exc
        return db

    def _open_writer(self) -> sqlite3.Connection:
        self._check_writable()
        db = self._connect(self._busy_timeout)
        try:
            self._check_ours(db)  # reads only: a file that is not ours is left as it is
            mode = db.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                raise CheckpointError(f"{self.path!r}: cannot use WAL journal mode (got {mode})")
            db.execute("PRAGMA synchronous = NORMAL")
            self._migrate(db)
            # Inline commits must never wait: no busy wait (a locked file sends the
            # write to a thread) and no automatic WAL checkpoint (it copies pages and
            # syncs; we run it in a thread every ~_WAL_PAGES pages instead).
            db.execute("PRAGMA busy_timeout = 0")
            db.execute("PRAGMA wal_autocheckpoint = 0")
        except sqlite3.DatabaseError as exc:
            db.close()
            if "readonly" in str(exc) or "read-only" in str(exc):
                raise CheckpointError(f"{self.path!r} is read-only: {exc}") from exc
            raise CheckpointError(
                f"{self.path!r} is not a trio_graph database (not a usable SQLite file: {exc})"
            ) from exc
        except BaseException:
            db.close()
            raise
        return db

    def _check_writable(self) -> None:
        """A read-only file, or a directory where the file or its WAL cannot be created."""
        folder = os.path.dirname(os.path.abspath(self.path))
        if os.path.exists(self.path) and not os.access(self.path, os.W_OK):
            raise CheckpointError(f"{self.path!r} is read-only")
        if not os.access(folder, os.W_OK | os.X_OK):
            raise CheckpointError(f"{self.path!r} is read-only (cannot write in {folder!r})")

    def _check_ours(self, db: sqlite3.Connection) -> None:
        """Refuse, without writing, a database holding tables but not our ``meta`` table."""
        tables = {
            str(name)
            for (name,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
        }
        if tables <= {"meta"}:
            return  # new or empty: ours to create
        if "meta" in tables:
            row = db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
            if row is not None:
                return
        others = ", ".join(sorted(tables)[:5])
        raise CheckpointError(
            f"{self.path!r} is not a trio_graph database (it holds other tables: {others})"
        )

    def _migrate(self, db: sqlite3.Connection) -> None:
        db.execute("BEGIN IMMEDIATE")
        try:
            db.execute(
                "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)"
            )
            row = db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
            try:
                version = 0 if row is None else int(row[0])
            except ValueError:
                version = -1
            if version < 0:
                raise CheckpointError(
                    f"{self.path!r}: unreadable schema version {row[0] if row else None!r:.40}"
                )
            if version > SCHEMA_VERSION:
                raise CheckpointError(
                    f"{self.path!r} has checkpoint schema version {version}, newer than the "
                    f"version {SCHEMA_VERSION} this trio_graph knows; upgrade trio_graph"
                )
            for step in range(version + 1, SCHEMA_VERSION + 1):
                for statement in MIGRATIONS[step]:
                    db.execute(statement)
                if step == 2 and version == 1:
                    _checksum_v1_rows(db)
            if version < SCHEMA_VERSION:
                db.execute(
                    "INSERT INTO meta (key, value) VALUES ('schema_version', ?) "
                    "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                    (str(SCHEMA_VERSION),),
                )
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise

    async def aclose(self) -> None:
        """Close the connections (waiting for a write in progress); later calls raise."""
        async with self._open_lock:
            self._closed = True
            async with self._write_limiter:
                writer, self._writer = self._writer, None
            with self._readers_lock:
                readers, self._all_readers, self._idle_readers = self._all_readers, [], []

            def close() -> None:
                for db in [*readers, *([writer] if writer is not None else [])]:
                    db.close()

            await trio.to_thread.run_sync(close)

    # -- running statements in threads ---------------------------------------------------
    async def _write(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        await self._ensure_open()

        def job() -> T:
            db = self._writer
            if db is None:
                raise CheckpointError(f"{self!r} is closed")
            with self._patient(db):
                return fn(db)

        return await trio.to_thread.run_sync(job, limiter=self._write_limiter)

    @contextlib.contextmanager
    def _patient(self, db: sqlite3.Connection) -> Iterator[None]:
        """In a worker thread, wait up to ``busy_timeout`` for another process's lock."""
        db.execute(f"PRAGMA busy_timeout = {int(self._busy_timeout * 1000)}")
        try:
            yield
        finally:
            db.execute("PRAGMA busy_timeout = 0")

    async def _read(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``fn`` in one read transaction (a consistent snapshot) on a reader."""
        await self._ensure_open()
        return await trio.to_thread.run_sync(self._read_job, fn, limiter=self._read_limiter)

    def _read_job(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        with self._readers_lock:
            if self._closed:
                raise CheckpointError(f"{self!r} is closed")
            db = self._idle_readers.pop() if self._idle_readers else None
        if db is None:
            db = self._connect(self._busy_timeout)
            db.execute("PRAGMA query_only = ON")
            with self._readers_lock:
                self._all_readers.append(db)
        try:
            db.execute("BEGIN")
            try:
                return fn(db)
            finally:
                # Read only: ROLLBACK ends the snapshot even with a statement in
                # progress (COMMIT would fail and leave the reader on a stale snapshot).
                db.execute("ROLLBACK")
        except sqlite3.Error as exc:
            raise CheckpointError(f"{self.path!r}: read failed: {exc}") from exc
        finally:
            with self._readers_lock:
                if self._closed:
                    db.close()
                else:
                    self._idle_readers.append(db)

    # -- the protocol ----------------------------------------------------------------------
    async def save(self, checkpoint: Checkpoint, *, changes: Changes | None = None) -> None:
        """Write ``checkpoint`` and update its run's row, in one transaction."""
        await self._ensure_open()
        limiter = self._write_limiter
        try:
            limiter.acquire_nowait()  # free: nobody is writing or queued to write
        except trio.WouldBlock:
            pass
        else:
            try:
                done = self._save_inline(checkpoint, changes)
            finally:
                limiter.release()
            if done:
                # Committed: yield, but never raise Cancelled for a write that happened.
                await trio.lowlevel.cancel_shielded_checkpoint()
                return
        await trio.to_thread.run_sync(self._save_in_thread, checkpoint, changes, limiter=limiter)

    def _save_inline(self, checkpoint: Checkpoint, changes: Changes | None) -> bool:
        """Commit a small delta row on the Trio thread; False: it needs a worker thread.

        In WAL mode with ``synchronous=NORMAL`` a commit appends a few pages to the WAL
        (no sync) in tens of microseconds, less than handing the write to a thread
        costs. A run's first full snapshot (its size is not known before encoding),
        rows over ``inline_max``, a file locked by another process and due WAL
        checkpoints go to a worker thread.
        """
        db = self._writer
        if db is None or self._inline_max == 0 or self._wal_pages >= _WAL_PAGES:
            return False
        plan, new_at = self._planner.plan(checkpoint, changes)
        if plan.base_id is None:
            # A full snapshot inline only when the trace's last one was small.
            last = self._planner.base_bytes(checkpoint.trace_id)
            if last is None or last > self._inline_max // 4:
                return False
        row = codec.make_row(checkpoint, plan, changes, new_at)
        if len(row.header) + len(row.body) > self._inline_max:
            return False
        try:
            db.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError:  # another process holds the write lock
            return False
        self._commit(db, checkpoint, row)
        return True

    def _save_in_thread(self, checkpoint: Checkpoint, changes: Changes | None) -> None:
        # Runs in a worker thread while the run loop awaits the save, so the live
        # state does not change under the encoder.
        db = self._writer
        if db is None:
            raise CheckpointError(f"{self!r} is closed", checkpoint_id=checkpoint.checkpoint_id)
        plan, new_at = self._planner.plan(checkpoint, changes)
        row = codec.make_row(checkpoint, plan, changes, new_at)
        try:
            with self._patient(db):
                db.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as exc:
            raise CheckpointError(f"cannot save: {exc}", checkpoint_id=row.checkpoint_id) from exc
        self._commit(db, checkpoint, row)
        if self._wal_pages >= _WAL_PAGES:
            self._wal_pages = 0
            try:
                db.execute("PRAGMA wal_checkpoint(PASSIVE)")
            except sqlite3.Error:  # pragma: no cover - retried after the next pages
                pass

    def _commit(self, db: sqlite3.Connection, checkpoint: Checkpoint, row: codec.Row) -> None:
        """Insert the row and upsert the run inside the open transaction, then commit."""
        cid = checkpoint.checkpoint_id
        try:
            try:
                self._before_commit(db, checkpoint)  # a worker's fence (sqlite_queue.py)
                db.execute(_INSERT, row.values())
                db.execute(
                    _UPSERT_RUN,
                    (
                        checkpoint.trace_id,
                        checkpoint.graph_name,
                        RunStatus(checkpoint.status).value,
                        checkpoint.created_at,
                        cid,
                        checkpoint.resumed_from,
                    ),
                )
                db.execute("COMMIT")
            except BaseException:
                if db.in_transaction:
                    db.execute("ROLLBACK")
                raise
        except sqlite3.IntegrityError as exc:
            raise CheckpointError(
                f"cannot save: a checkpoint with this id already exists ({exc})",
                checkpoint_id=cid,
            ) from exc
        except sqlite3.Error as exc:
            raise CheckpointError(f"cannot save: {exc}", checkpoint_id=cid) from exc
        nbytes = len(row.header) + len(row.body)
        self._planner.wrote(checkpoint, row)
        self._wal_pages += _PAGES_PER_COMMIT + nbytes // 4096

    async def load(self, checkpoint_id: str) -> Checkpoint:
        """The checkpoint with its full state; ``CheckpointError`` if unknown or corrupted."""
        return await self._read(lambda db: _load(db, checkpoint_id))

    async def latest(self, trace_id: str) -> Checkpoint | None:
        """The run's newest checkpoint, or None for an unknown run."""

        def latest(db: sqlite3.Connection) -> Checkpoint | None:
            if not codec.is_text(trace_id):
                return None
            row = db.execute(
                "SELECT checkpoint_id FROM checkpoints WHERE trace_id = ? "
                "ORDER BY seq DESC LIMIT 1",
                (trace_id,),
            ).fetchone()
            return None if row is None else _load(db, row[0])

        return await self._read(latest)

    async def list(self, trace_id: str) -> builtins.list[Checkpoint]:
        """The run's checkpoints, oldest first (``[]`` for an unknown run)."""

        def history(db: sqlite3.Connection) -> builtins.list[Checkpoint]:
            if not codec.is_text(trace_id):
                return []
            rows = db.execute(
                f"SELECT {codec.Row.COLUMNS} FROM checkpoints WHERE trace_id = ? ORDER BY seq",
                (trace_id,),
            ).fetchall()
            return codec.load_trace(codec.Row.of(r) for r in rows)

        return await self._read(history)

    async def delete(self, trace_id: str) -> None:
        """Remove the run's checkpoints and its ``runs()`` row, in one transaction."""

        def delete(db: sqlite3.Connection) -> None:
            if not codec.is_text(trace_id):
                return
            try:
                db.execute("BEGIN IMMEDIATE")
                try:
                    db.execute("DELETE FROM checkpoints WHERE trace_id = ?", (trace_id,))
                    db.execute("DELETE FROM runs WHERE trace_id = ?", (trace_id,))
                    db.execute("COMMIT")
                except BaseException:
                    if db.in_transaction:
                        db.execute("ROLLBACK")
                    raise
            except sqlite3.Error as exc:
                raise CheckpointError(f"cannot delete run {trace_id!r}: {exc}") from exc
            self._planner.forget(trace_id)

        await self._write(delete)

    async def runs(self) -> builtins.list[RunInfo]:
        """One row per run, least recently updated first."""

        def runs(db: sqlite3.Connection) -> builtins.list[RunInfo]:
            rows = db.execute(
                "SELECT trace_id, graph_name, status, updated_at, checkpoint_id, resumed_from "
                "FROM runs ORDER BY updated_at, trace_id"
            ).fetchall()
            return [RunInfo.from_row(row) for row in rows]

        return await self._read(runs)


def _checksum_v1_rows(db: sqlite3.Connection) -> None:
    rows = db.execute(
        "SELECT checkpoint_id, trace_id, base_id, link, header, body FROM checkpoints ORDER BY seq"
    ).fetchall()
    db.executemany(
        "UPDATE checkpoints SET prev_id = ?, checksum = ? WHERE checkpoint_id = ?",
        codec.migrate_v1(rows),
    )


def _load(db: sqlite3.Connection, checkpoint_id: str) -> Checkpoint:
    found = (
        db.execute(
            f"SELECT seq, {codec.Row.COLUMNS} FROM checkpoints WHERE checkpoint_id = ?",
            (checkpoint_id,),
        ).fetchone()
        if codec.is_text(checkpoint_id)
        else None
    )
    if found is None:
        raise CheckpointError("no such checkpoint", checkpoint_id=checkpoint_id)
    target = codec.Row.of(found[1:], checkpoint_id)
    if target.base_id is not None:
        # The rows of the trace from its base on, up to this one (rows of other
        # writers may sit in between: the chain follows ``prev_id``).
        rows = db.execute(
            f"SELECT {codec.Row.COLUMNS} FROM checkpoints WHERE trace_id = ? AND seq <= ? "
            "AND seq >= coalesce((SELECT seq FROM checkpoints WHERE checkpoint_id = ?), 0) "
            "ORDER BY seq",
            (target.trace_id, found[0], target.base_id),
        ).fetchall()
        return codec.load(target, codec.LazyRows(rows, checkpoint_id))
    return codec.load_trace([target], checkpoint_id)[0]
