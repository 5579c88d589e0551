"""The schema of a SQLite store's file: its versions, their migrations, and the checks
that a file is ours and writable before anything is changed.

Runtime layer (plain ``sqlite3``, called from the store's writer thread). A ``meta``
table holds the schema version; a file from a newer trio_graph is refused with
``CheckpointError``, an older one migrated in one transaction.
"""

from __future__ import annotations

import os
import sqlite3

from ..errors import CheckpointError
from . import rows as codec

SCHEMA_VERSION = 3
"""The schema this code writes. Bump it and add a step to ``MIGRATIONS`` to change it.

Version 2 added ``prev_id`` and ``checksum``; a version-1 file is migrated on open
(each row's ``prev_id`` is the row before it in its trace, its checksum computed
from the row as stored). Version 3 added run ids (DESIGN §8): ``checkpoints.run_id``,
and ``runs.run_id``, ``step`` and ``waiting``; a version-2 file is migrated on open
(:func:`trio_graph.stores.codec.migrate_v2`: a segment's run id follows
``resumed_from`` back to the first segment)."""

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
    3: (
        "ALTER TABLE checkpoints ADD COLUMN run_id TEXT NOT NULL DEFAULT ''",
        "CREATE INDEX checkpoints_by_run ON checkpoints (run_id, seq)",
        "ALTER TABLE runs ADD COLUMN run_id TEXT NOT NULL DEFAULT ''",
        "ALTER TABLE runs ADD COLUMN step INTEGER NOT NULL DEFAULT 0",
        "ALTER TABLE runs ADD COLUMN waiting TEXT",
        "CREATE INDEX runs_by_run ON runs (run_id)",
    ),
}
"""Statements that bring a database from version ``n - 1`` to ``n``, run in one transaction.

``checkpoints``: one row per checkpoint, ``seq`` is the write order; the columns are
those of :class:`~trio_graph.stores.rows.Row` (``base_id`` NULL: ``body`` is the full
state; else the deltas since the row ``prev_id``; ``link`` its place in the chain;
``checksum`` of every column).
``runs``: one row per segment (trace) of a run, kept in the transaction of each save;
``store.runs()`` shows each run's current one (the segment of its latest checkpoint).
Later versions may add columns to it: the statements here name their columns.
"""


def check_writable(path: str) -> None:
    """A read-only file, or a directory where the file or its WAL cannot be created."""
    folder = os.path.dirname(os.path.abspath(path))
    if os.path.exists(path) and not os.access(path, os.W_OK):
        raise CheckpointError(f"{path!r} is read-only")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise CheckpointError(f"{path!r} is read-only (cannot write in {folder!r})")


def check_ours(db: sqlite3.Connection, path: str) -> None:
    """Refuse, without writing, a database holding tables but not our ``meta`` table."""
    tables = {
        str(name) for (name,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
    }
    if tables <= {"meta"}:
        return  # new or empty: ours to create
    if "meta" in tables:
        row = db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        if row is not None:
            return
    others = ", ".join(sorted(tables)[:5])
    raise CheckpointError(
        f"{path!r} is not a trio_graph database (it holds other tables: {others})"
    )


def _version(db: sqlite3.Connection, path: str) -> int:
    db.execute("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
    row = db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
    try:
        version = 0 if row is None else int(row[0])
    except ValueError:
        version = -1
    if version < 0:
        raise CheckpointError(
            f"{path!r}: unreadable schema version {row[0] if row else None!r:.40}"
        )
    if version > SCHEMA_VERSION:
        raise CheckpointError(
            f"{path!r} has checkpoint schema version {version}, newer than the "
            f"version {SCHEMA_VERSION} this trio_graph knows; upgrade trio_graph"
        )
    return version


def migrate(db: sqlite3.Connection, path: str) -> None:
    """Create or migrate the schema to ``SCHEMA_VERSION``, in one transaction."""
    db.execute("BEGIN IMMEDIATE")
    try:
        version = _version(db, path)
        for step in range(version + 1, SCHEMA_VERSION + 1):
            for statement in MIGRATIONS[step]:
                db.execute(statement)
            if step == 2 and version == 1:
                _checksum_v1_rows(db)
            if step == 3 and version >= 1:
                _run_ids_v2(db)
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


def _checksum_v1_rows(db: sqlite3.Connection) -> None:
    rows = db.execute(
        "SELECT checkpoint_id, trace_id, base_id, link, header, body FROM checkpoints ORDER BY seq"
    ).fetchall()
    db.executemany(
        "UPDATE checkpoints SET prev_id = ?, checksum = ? WHERE checkpoint_id = ?",
        codec.migrate_v1(rows),
    )


def _run_ids_v2(db: sqlite3.Connection) -> None:
    """Version-2 rows get their run ids (and the runs rows their step and barrier)."""
    segments = db.execute(
        "SELECT r.trace_id, r.resumed_from, c.header FROM runs r "
        "LEFT JOIN checkpoints c ON c.checkpoint_id = r.checkpoint_id"
    ).fetchall()
    runs = codec.migrate_runs(segments)
    db.executemany("UPDATE runs SET run_id = ?, step = ?, waiting = ? WHERE trace_id = ?", runs)
    rows = db.execute(f"SELECT {codec.Row.COLUMNS} FROM checkpoints ORDER BY seq").fetchall()
    db.executemany(
        "UPDATE checkpoints SET run_id = ?, header = ?, checksum = ? WHERE checkpoint_id = ?",
        codec.migrate_rows(rows, {trace: run for run, _, _, trace in runs}),
    )
