"""The queue's SQLite dialect, and its tables in a SQLite store's file.

Runtime layer. SQLite's means for the rules of :mod:`.rules`, for several processes on
one machine sharing one file: a claim is one write transaction (SQLite allows one
writer per file at a time, so there is no ``SKIP LOCKED`` to need, nor row locks);
leases are on the machine's wall clock (``time.time()``, bound as ``:now``), which
every process on it shares; the fence is checked inside the checkpoint's own write
transaction (:func:`~.rules.fence_save`, called by the store's commit). Idle workers
poll (there is no NOTIFY); a live run notices a decision by a commit to the file
(:class:`~trio_graph.stores.sqlite_changes.ChangeWatch`).

Tables (created on first use, versioned as ``queue_schema_version`` in ``meta``):
``jobs``, ``job_traces`` (every trace of a job, so a later trace id finds its job),
``decisions``, ``cancels`` (the cancel marks of runs executing live) and ``workers``
(which graph names a worker serves, and when it last said so).
"""

from __future__ import annotations

import sqlite3
import time
from typing import Any

import trio

from ... import serde
from ...errors import CheckpointError
from ..sqlite_changes import ChangeWatch
from .dialect import Dialect

QUEUE_SCHEMA_VERSION = 3
"""Version 2 added ``cancels``, version 3 ``workers`` (every statement is ``IF NOT
EXISTS``: older files are brought up by running them all again)."""

QUEUE_SCHEMA = (
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
    """CREATE TABLE IF NOT EXISTS cancels (
        job_id TEXT PRIMARY KEY,
        cancelled_at REAL NOT NULL
    ) WITHOUT ROWID""",
    """CREATE TABLE IF NOT EXISTS workers (
        worker_id TEXT NOT NULL,
        graph_name TEXT NOT NULL,
        seen_at REAL NOT NULL,
        PRIMARY KEY (worker_id, graph_name)
    ) WITHOUT ROWID""",
)


class SQLiteDialect(Dialect):
    """The queue's words on SQLite: the time is bound, JSON is plain text."""

    name = "sqlite"
    resolve = """SELECT job_id FROM jobs WHERE job_id = :trace
        UNION ALL SELECT job_id FROM job_traces WHERE trace_id = :trace LIMIT 1"""
    link = "INSERT INTO job_traces (trace_id, job_id) VALUES (:trace, :job) ON CONFLICT DO NOTHING"
    unlink = "DELETE FROM job_traces WHERE job_id = :job"

    def __init__(self, path: str | None = None) -> None:
        super().__init__()
        self._watch = None if path is None else ChangeWatch(path)

    async def look(self, seconds: float) -> bool:
        """A commit to the file by another connection (``PRAGMA data_version``), within
        ``seconds``; one watch per store, shared by its followers."""
        if self._watch is None:
            await trio.sleep(seconds)
            return False
        return await self._watch.wait(seconds)

    async def prime(self) -> None:
        if self._watch is not None:
            self._watch.prime()
        await trio.lowlevel.checkpoint()

    def close(self) -> None:
        """Close the watch's connection (it reopens if used again)."""
        if self._watch is not None:
            self._watch.close()

    def bind(self, params: dict[str, Any]) -> dict[str, Any]:
        params["now"] = time.time()
        return params

    def dumps(self, value: Any) -> str:
        return serde.dumps_value(value)

    async def wait_for_work(self, seconds: float) -> None:
        """Wait ``seconds`` (SQLite has no notifications: idle workers poll)."""
        await trio.sleep(seconds)


def create_queue(db: sqlite3.Connection, path: str) -> None:
    """Create (or check) the queue's tables, inside the caller's write transaction."""
    row = db.execute("SELECT value FROM meta WHERE key = 'queue_schema_version'").fetchone()
    version = 0 if row is None else int(row[0])
    if version > QUEUE_SCHEMA_VERSION:
        raise CheckpointError(
            f"{path!r} has queue schema version {version}, newer than the version "
            f"{QUEUE_SCHEMA_VERSION} this trio_graph knows; upgrade trio_graph"
        )
    if version < QUEUE_SCHEMA_VERSION:
        for statement in QUEUE_SCHEMA:
            db.execute(statement)
        db.execute(
            "INSERT INTO meta (key, value) VALUES ('queue_schema_version', ?) "
            "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            (str(QUEUE_SCHEMA_VERSION),),
        )
