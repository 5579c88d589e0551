"""``SQLiteStore``: the embedded default, one SQLite file.

Runtime layer. The connections (one writer, a pool of readers, WAL, worker threads)
are :mod:`.sqlite_connections`, the statements of a save and the load of a checkpoint
:mod:`.sqlite_rows`, the schema and its migrations :mod:`.sqlite_schema`,
the run queue :mod:`.queue` (its rules once, with :mod:`.queue.sqlite`'s dialect).
Checkpoints are written in the order they were taken. Every ``save`` is one
transaction: the checkpoint row and the run's ``runs`` row (and for a worker's fenced
save, the fence check and its job row) commit together or not at all.

One exception, for speed: a small delta row (up to ``inline_max`` bytes, 64 KiB by
default) is committed on the Trio thread when nothing can make it wait: the writer
is free, no other process holds the file's write lock (``busy_timeout`` is 0 there:
a locked file sends the write to a thread, which waits), and the WAL is not behind
(automatic WAL checkpoints are off: every ~1000 pages the store starts one in a thread
of its own that no save waits for, see :class:`~.sqlite_connections.Checkpointer`;
only a WAL that grew past its bound all the same is checkpointed by the writer, after a
write in a thread). Such a commit appends a few pages to the WAL without syncing, in tens
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
import os
import sqlite3
from collections.abc import Callable
from types import TracebackType
from typing import TypeVar

import trio

from .. import serde
from .._model.checkpoint import Changes, Checkpoint
from ..errors import CheckpointError
from . import rows as codec
from .queue.dialect import Tx
from .queue.jobs import Hold, settles
from .queue.rules import QueueRules, fence_save
from .queue.sqlite import SQLiteDialect, create_queue
from .sqlite_connections import Connections, in_transaction
from .sqlite_rows import INSERT, RUN_OF, load, upsert_run
from .sqlite_schema import MIGRATIONS as MIGRATIONS
from .sqlite_schema import SCHEMA_VERSION as SCHEMA_VERSION

T = TypeVar("T")
Fence = tuple[str, int]
"""A worker's claim, ``(job_id, epoch)``, that a fenced save checks in its transaction."""

_WAL_PAGES = 1000
"""Start a WAL checkpoint (in its thread) after about this many pages (SQLite's default)."""
_YIELD_EVERY = 16
"""An inline save (no I/O wait) yields to the scheduler once in this many, like the step
loop (DESIGN §13): a loop of saves cannot starve other tasks, nor pay a pass per save."""
_PAGES_PER_COMMIT = 4
"""Pages a small commit dirties: the row, two index entries, the ``runs`` row."""

_LINKS_KEPT = 10_000  # linked traces remembered at most (past it, saves link again)


class SQLiteStore(QueueRules):
    """A :class:`~trio_graph.stores.protocol.Store` in one SQLite file (WAL), and a run
    queue for the workers of one machine.

    ``readers`` bounds the reader connections (and concurrent reads); ``busy_timeout``
    is how long a write waits for another process holding the file's write lock.
    ``inline_max``: a checkpoint row up to this many bytes is committed on the Trio
    thread when it cannot wait (see the module notes); 0 sends every write to a worker
    thread.
    """

    _dialect: SQLiteDialect

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
        self._db = Connections(self.path, readers=readers, busy_timeout=busy_timeout)
        self._dialect = SQLiteDialect(self.path)
        self._queue_ready = False  # the queue's tables exist (created on first use)
        self._inline_max = inline_max
        self._wal_pages = 0  # WAL pages written since our last checkpoint (an estimate)
        self._inline_saves = 0
        self._planner = codec.Planner()  # touched only by writes (see _save)
        self._linked: set[tuple[str, int, str]] = set()
        """``(job_id, epoch, trace_id)`` of fenced saves committed here: the trace is linked
        to its job (``job_traces``), so later saves of it skip that statement."""

    def __repr__(self) -> str:
        return f"SQLiteStore({self.path!r})"

    async def __aenter__(self) -> SQLiteStore:
        await self._db.ensure_open()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the connections (waiting for a write in progress); later calls raise."""
        self._dialect.close()
        await self._db.aclose()

    # -- the queue's transactions ----------------------------------------------------------
    async def _queue_tx(self, fn: Callable[[sqlite3.Connection], T], tx: Tx) -> T:
        """Run a queue operation: a read on a reader, else one write transaction (the
        queue's tables are created by the first one)."""
        if tx is Tx.READ and self._queue_ready:
            return await self._db.read(fn)

        def write(db: sqlite3.Connection) -> T:
            def step(db: sqlite3.Connection) -> T:
                if not self._queue_ready:
                    create_queue(db, self.path)
                return fn(db)

            try:
                result = in_transaction(db, step)
            except sqlite3.Error as exc:
                raise CheckpointError(f"{self.path!r}: queue write failed: {exc}") from exc
            self._queue_ready = True
            return result

        return await self._db.write(write)

    # -- saving ------------------------------------------------------------------------------
    async def save(self, checkpoint: Checkpoint, *, changes: Changes | None = None) -> None:
        """Write ``checkpoint`` and update its run's row, in one transaction."""
        await self._save(checkpoint, changes, None)

    async def save_fenced(
        self, checkpoint: Checkpoint, job_id: str, epoch: int, *, changes: Changes | None = None
    ) -> None:
        """Save ``checkpoint`` only while ``epoch`` is the job's current claim, checked in
        the write's own transaction (else ``LeaseLost``, nothing written). A terminal
        checkpoint also settles the job (completed or failed) in that transaction."""
        await self._save(checkpoint, changes, (job_id, epoch))

    async def _save(
        self, checkpoint: Checkpoint, changes: Changes | None, fence: Fence | None
    ) -> None:
        if self._db.writer is None:  # ensure_open's fast path, without its coroutine
            await self._db.ensure_open()
        limiter = self._db.write_limiter
        # Free: nobody is writing or queued to write (a queued write holds the token as
        # soon as it is woken). The inline save never awaits, so it has the writer to
        # itself as if it held the token, without the limiter's bookkeeping.
        if limiter.borrowed_tokens == 0 and self._save_inline(checkpoint, changes, fence):
            self._checkpoint_soon()
            self._inline_saves += 1
            if self._inline_saves % _YIELD_EVERY == 0:
                # Committed: yield, but never raise Cancelled for a write that happened.
                await trio.lowlevel.cancel_shielded_checkpoint()
            return
        await trio.to_thread.run_sync(
            self._save_in_thread, checkpoint, changes, fence, limiter=limiter
        )
        self._checkpoint_soon()

    def _checkpoint_soon(self) -> None:
        """Every ~``_WAL_PAGES`` pages, start a WAL checkpoint that nobody waits for."""
        if self._wal_pages < _WAL_PAGES:
            return
        if self._db.checkpointer.start():
            self._wal_pages = 0
        elif self._wal_pages >= 3 * _WAL_PAGES:  # a slow checkpoint: the writer catches up
            self._db.checkpointer.behind = True

    def _save_inline(
        self, checkpoint: Checkpoint, changes: Changes | None, fence: Fence | None
    ) -> bool:
        """Commit a small delta row on the Trio thread; False: it needs a worker thread.

        In WAL mode with ``synchronous=NORMAL`` a commit appends a few pages to the WAL
        (no sync) in tens of microseconds, less than handing the write to a thread
        costs. A run's first full snapshot (its size is not known before encoding),
        rows over ``inline_max``, a file locked by another process and a WAL behind
        (see the module notes) go to a worker thread.
        """
        db = self._db.writer
        if db is None or self._inline_max == 0 or self._db.checkpointer.behind:
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
        self._commit(db, checkpoint, row, fence)
        return True

    def _save_in_thread(
        self, checkpoint: Checkpoint, changes: Changes | None, fence: Fence | None
    ) -> None:
        # Runs in a worker thread while the run loop awaits the save, so the live
        # state does not change under the encoder.
        db = self._db.writer
        if db is None:
            raise self._db.closed_error(checkpoint.checkpoint_id)
        plan, new_at = self._planner.plan(checkpoint, changes)
        row = codec.make_row(checkpoint, plan, changes, new_at)
        try:
            with self._db.patient(db):
                db.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as exc:
            raise CheckpointError(f"cannot save: {exc}", checkpoint_id=row.checkpoint_id) from exc
        self._commit(db, checkpoint, row, fence)
        # Between two writes, the WAL starts over: when it is behind, and after a row of
        # a checkpoint's worth of pages by itself (a big snapshot: this save waits for a
        # thread anyway, and its pages are copied while they are at hand, as before).
        big = (len(row.header) + len(row.body)) // 4096 >= _WAL_PAGES
        if self._db.checkpointer.behind or big:
            self._db.checkpointer.caught_up(db)
            self._wal_pages = 0

    def _commit(
        self, db: sqlite3.Connection, checkpoint: Checkpoint, row: codec.Row, fence: Fence | None
    ) -> None:
        """Check the fence, insert the row and upsert the run inside the open
        transaction, then commit (or roll back: nothing written)."""
        cid = checkpoint.checkpoint_id
        link = None if fence is None else (*fence, checkpoint.trace_id)
        try:
            try:
                if fence is not None:
                    linked = link in self._linked
                    fence_save(self._dialect, db, checkpoint, *fence, linked=linked)
                db.execute(INSERT, (*row.values(), checkpoint.run_id))
                upsert_run(db, checkpoint)
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
        if link is not None:
            self._remember_link(link, ended=settles(checkpoint) is not None)
        self._wal_pages += _PAGES_PER_COMMIT + nbytes // 4096

    def _remember_link(self, link: tuple[str, int, str], *, ended: bool) -> None:
        if ended:  # the job ends: no more fenced saves under this claim
            self._linked.discard(link)
        elif len(self._linked) < _LINKS_KEPT:
            self._linked.add(link)

    async def unhold(self, held: Hold) -> None:
        """End a hold (see :meth:`QueueRules.unhold`); its job's traces are linked again
        by their next saves (a run outside the queue loses its job row and links)."""
        try:
            await super().unhold(held)
        finally:
            self._linked = {link for link in self._linked if link[0] != held.job_id}

    # -- reading and deleting ----------------------------------------------------------------
    async def load(self, checkpoint_id: str) -> Checkpoint:
        """The checkpoint with its full state; ``CheckpointError`` if unknown or corrupted."""
        return await self._db.read(lambda db: load(db, checkpoint_id))

    async def latest(self, run_id: str) -> Checkpoint | None:
        """The run's newest checkpoint (of any segment), or None for an unknown run."""

        def newest(db: sqlite3.Connection) -> Checkpoint | None:
            if not codec.is_text(run_id):
                return None
            row = db.execute(
                f"SELECT checkpoint_id FROM checkpoints WHERE run_id = {RUN_OF} "
                "ORDER BY seq DESC LIMIT 1",
                {"id": run_id},
            ).fetchone()
            return None if row is None else load(db, row[0])

        return await self._db.read(newest)

    async def list(self, run_id: str) -> builtins.list[Checkpoint]:
        """The run's checkpoints, every segment's, oldest first (``[]`` for an unknown run)."""

        def history(db: sqlite3.Connection) -> builtins.list[Checkpoint]:
            if not codec.is_text(run_id):
                return []
            rows = db.execute(
                f"SELECT {codec.Row.COLUMNS} FROM checkpoints WHERE run_id = {RUN_OF} ORDER BY seq",
                {"id": run_id},
            ).fetchall()
            return codec.load_trace(codec.Row.of(r) for r in rows)

        return await self._db.read(history)

    async def delete(self, run_id: str) -> None:
        """Remove the run's checkpoints and its ``runs()`` row, in one transaction."""

        def remove(db: sqlite3.Connection) -> builtins.list[str]:
            (run,) = db.execute(f"SELECT {RUN_OF}", {"id": run_id}).fetchone()
            traces = db.execute(
                "SELECT DISTINCT trace_id FROM checkpoints WHERE run_id = ?", (run,)
            ).fetchall()
            db.execute("DELETE FROM checkpoints WHERE run_id = ?", (run,))
            db.execute("DELETE FROM runs WHERE run_id = ?", (run,))
            return [trace for (trace,) in traces]

        def write(db: sqlite3.Connection) -> None:
            if not codec.is_text(run_id):
                return
            try:
                traces = in_transaction(db, remove)
            except sqlite3.Error as exc:
                raise CheckpointError(f"cannot delete run {run_id!r}: {exc}") from exc
            for trace in traces:
                self._planner.forget(trace)
            self._linked.clear()

        await self._db.write(write)
