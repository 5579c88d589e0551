"""The connections of a SQLite store: one writer, a pool of readers, worker threads.

Runtime layer. The file is opened in WAL mode with ``synchronous=NORMAL`` (a commit
survives a crash of the process; only a power loss may drop the last ones), its schema
created or checked on open (:mod:`.sqlite_schema`). I/O runs in worker threads
(``trio.to_thread.run_sync``): writes go through **one** writer connection behind a
``trio.CapacityLimiter(1)`` (FIFO: writes happen in the order they were asked for);
reads use a small pool of reader connections, so with WAL a read never waits for a
write. ``sqlite3`` connections are opened with ``check_same_thread=False``: each is
used by one thread at a time, under its limiter.

The writer has ``busy_timeout`` 0 and no automatic WAL checkpoint, so that a commit on
the Trio thread never waits (the store's inline path); a write in a worker thread waits
up to ``busy_timeout`` for another process's lock (:meth:`Connections.patient`).

WAL checkpoints (:class:`Checkpointer`) run on a connection of their own, in a thread
that no save waits for: a PASSIVE checkpoint copies the WAL's pages into the database
while the writer goes on appending. The WAL file starts over only at a write that finds
every frame copied, which a writer that never pauses does not give it: when the WAL has
grown past :data:`WAL_FRAMES_MAX` frames all the same, the writer checkpoints once
itself, between two of its writes (:attr:`Checkpointer.behind`).
"""

from __future__ import annotations

import builtins
import contextlib
import logging
import sqlite3
import threading
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, TypeVar

import trio

from ..errors import CheckpointError
from .sqlite_schema import check_ours, check_writable, migrate

if TYPE_CHECKING:
    import outcome

T = TypeVar("T")
log = logging.getLogger("trio_graph.sqlite")

WAL_FRAMES_MAX = 4000
"""Frames (pages) the WAL may reach before the writer checkpoints it itself (~16 MB)."""


class Checkpointer:
    """PASSIVE WAL checkpoints in a worker thread, on a connection of their own, one at a
    time; nobody waits for them but :meth:`aclose` (see the module notes)."""

    def __init__(self, connect: Callable[[], sqlite3.Connection]) -> None:
        self._connect = connect
        self._db: sqlite3.Connection | None = None
        self._lock = threading.Lock()
        self._running = False
        self._idle = threading.Event()
        self._idle.set()
        self._closed = False
        self.behind = False
        """The WAL reached ``WAL_FRAMES_MAX`` frames: the writer should checkpoint itself."""
        self.passes = 0
        """Checkpoints run (for tests)."""

    def start(self) -> bool:
        """Start a checkpoint unless one runs (or the WAL is behind, or closed); True if
        started."""
        with self._lock:
            if self._running or self._closed or self.behind:
                return False
            self._running = True
            self._idle.clear()
        trio.lowlevel.start_thread_soon(self._checkpoint, self._finished, name="wal checkpoint")
        return True

    def _checkpoint(self) -> tuple[int, int, int]:
        if self._db is None:
            self._db = self._connect()
        busy, frames, copied = self._db.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        return int(busy), int(frames), int(copied)

    def _finished(self, result: outcome.Outcome[tuple[int, int, int]]) -> None:
        # In the worker thread, after the checkpoint: never blocks.
        try:
            if result.unwrap()[1] >= WAL_FRAMES_MAX:
                self.behind = True  # cleared by the writer's catch-up
        except Exception as exc:  # tried again after the next pages
            log.debug("WAL checkpoint failed: %s", exc)
        with self._lock:
            self._running = False
            self.passes += 1
            if self._closed:
                self._close_db()
            self._idle.set()

    def caught_up(self, writer: sqlite3.Connection) -> None:
        """On the writer, between two writes: checkpoint the whole WAL (the next write
        starts it over); ``behind`` stays set if another checkpoint was running."""
        with self._lock:
            if self._running:
                return
        try:
            busy, frames, copied = writer.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        except sqlite3.Error:  # pragma: no cover - tried again after the next write
            return
        self.behind = bool(busy) or frames != copied

    def _close_db(self) -> None:
        db, self._db = self._db, None
        if db is not None:
            db.close()

    async def aclose(self) -> None:
        """Wait for a checkpoint in progress, close the connection. Cancelled, the
        checkpoint's thread closes it when it ends."""
        with self._lock:
            self._closed = True
            running = self._running
            if not running:
                self._close_db()
        if running:
            await trio.to_thread.run_sync(self._idle.wait, abandon_on_cancel=True)


class Connections:
    """The writer and readers of one SQLite file, opened on first use."""

    def __init__(self, path: str, *, readers: int, busy_timeout: float) -> None:
        self.path = path
        self._busy_timeout = busy_timeout
        self.writer: sqlite3.Connection | None = None
        """The writer connection, once open (used only under ``write_limiter``)."""
        self._idle_readers: builtins.list[sqlite3.Connection] = []
        self._all_readers: builtins.list[sqlite3.Connection] = []
        self._readers_lock = threading.Lock()
        self.write_limiter = trio.CapacityLimiter(1)
        self._read_limiter = trio.CapacityLimiter(readers)
        self._open_lock = trio.Lock()
        self._closed = False
        self.checkpointer = Checkpointer(lambda: self._connect(self._busy_timeout))

    def closed_error(self, checkpoint_id: str = "") -> CheckpointError:
        return CheckpointError(f"SQLiteStore({self.path!r}) is closed", checkpoint_id=checkpoint_id)

    async def ensure_open(self) -> None:
        """Open the writer (creating or migrating the schema) unless it is open."""
        # No checkpoint on the fast path: saves must reach the write limiter in the
        # order they were called.
        if self.writer is not None:
            return
        async with self._open_lock:
            if self._closed:
                raise self.closed_error()
            if self.writer is None:
                self.writer = await trio.to_thread.run_sync(self._open_writer)

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
        check_writable(self.path)
        db = self._connect(self._busy_timeout)
        try:
            check_ours(db, self.path)  # reads only: a file that is not ours is left as it is
            mode = db.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                raise CheckpointError(f"{self.path!r}: cannot use WAL journal mode (got {mode})")
            db.execute("PRAGMA synchronous = NORMAL")
            migrate(db, self.path)
            # Inline commits must never wait: no busy wait (a locked file sends the
            # write to a thread) and no automatic WAL checkpoint (it copies pages and
            # syncs; the store runs it in a thread every so many pages instead).
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

    async def aclose(self) -> None:
        """Close the connections (waiting for a write in progress); later calls raise."""
        async with self._open_lock:
            self._closed = True
            await self.checkpointer.aclose()
            async with self.write_limiter:
                writer, self.writer = self.writer, None
            with self._readers_lock:
                readers, self._all_readers, self._idle_readers = self._all_readers, [], []

            def close() -> None:
                for db in [*readers, *([writer] if writer is not None else [])]:
                    db.close()

            await trio.to_thread.run_sync(close)

    async def write(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``fn`` on the writer in a worker thread, in the order writes were asked."""
        await self.ensure_open()

        def job() -> T:
            db = self.writer
            if db is None:
                raise self.closed_error()
            with self.patient(db):
                return fn(db)

        return await trio.to_thread.run_sync(job, limiter=self.write_limiter)

    @contextlib.contextmanager
    def patient(self, db: sqlite3.Connection) -> Iterator[None]:
        """In a worker thread, wait up to ``busy_timeout`` for another process's lock."""
        db.execute(f"PRAGMA busy_timeout = {int(self._busy_timeout * 1000)}")
        try:
            yield
        finally:
            db.execute("PRAGMA busy_timeout = 0")

    async def read(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``fn`` in one read transaction (a consistent snapshot) on a reader."""
        await self.ensure_open()
        return await trio.to_thread.run_sync(self._read_job, fn, limiter=self._read_limiter)

    def _read_job(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        with self._readers_lock:
            if self._closed:
                raise self.closed_error()
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


def in_transaction(db: sqlite3.Connection, fn: Callable[[sqlite3.Connection], T]) -> T:
    """``fn(db)`` inside ``BEGIN IMMEDIATE`` … ``COMMIT`` (rolled back if it raises)."""
    db.execute("BEGIN IMMEDIATE")
    try:
        result = fn(db)
        db.execute("COMMIT")
    except BaseException:
        if db.in_transaction:
            db.execute("ROLLBACK")
        raise
    return result
