"""The schema of a PostgreSQL store: its versions and their migrations.

Runtime layer (psycopg, called from a worker thread). ``trio_graph_schema`` holds the
version; a database from a newer trio_graph is refused with ``CheckpointError``, an
older one migrated in one transaction under an advisory lock, so that workers starting
together do not race.
"""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg import sql

from ..errors import CheckpointError
from . import rows as codec
from .jsonb import from_jsonb

Conn = psycopg.Connection[Any]

SCHEMA_VERSION = 5
"""The schema version this code writes; older databases are migrated on open.

Version 3 added run ids (DESIGN §8); a version-2 database's segments get theirs by
following ``resumed_from`` back to the first segment (:mod:`.rows.run_ids`). Version 4
added ``trio_graph_cancels``, the cancel marks of runs executing live; version 5
``trio_graph_workers``, the graph names workers serve (so ``submit`` can warn)."""

MIGRATIONS: tuple[str, ...] = (
    # 0 -> 1
    """
    CREATE TABLE trio_graph_checkpoints (
        seq bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        checkpoint_id text NOT NULL UNIQUE,
        trace_id text NOT NULL,
        base_id text,
        link integer NOT NULL,
        header jsonb NOT NULL,
        body jsonb NOT NULL
    );
    CREATE INDEX trio_graph_checkpoints_trace ON trio_graph_checkpoints (trace_id, seq);
    CREATE TABLE trio_graph_runs (
        trace_id text PRIMARY KEY,
        graph_name text NOT NULL,
        status text NOT NULL,
        updated_at double precision NOT NULL,
        checkpoint_id text,
        resumed_from text,
        job_id text
    );
    CREATE TABLE trio_graph_jobs (
        job_id text PRIMARY KEY,
        graph_name text NOT NULL,
        state jsonb,
        status text NOT NULL,
        trace_id text NOT NULL,
        checkpoint_id text,
        pending_barrier text,
        epoch bigint NOT NULL DEFAULT 0,
        owner text,
        lease_until timestamptz,
        attempts integer NOT NULL DEFAULT 0,
        error text,
        created_at timestamptz NOT NULL DEFAULT clock_timestamp(),
        updated_at timestamptz NOT NULL DEFAULT clock_timestamp(),
        available_at timestamptz NOT NULL DEFAULT clock_timestamp()
    );
    CREATE INDEX trio_graph_jobs_queued ON trio_graph_jobs (available_at)
        WHERE status = 'queued';
    CREATE INDEX trio_graph_jobs_leased ON trio_graph_jobs (lease_until)
        WHERE status = 'running';
    CREATE TABLE trio_graph_decisions (
        job_id text NOT NULL,
        node text NOT NULL,
        occurrence integer NOT NULL,
        decision jsonb NOT NULL,
        seq bigint GENERATED ALWAYS AS IDENTITY,
        PRIMARY KEY (job_id, node, occurrence)
    );
    """,
    # 1 -> 2: checkpoint rows as exact text with a checksum (rows filled in by
    # ``_checksum_v1_rows`` in the same transaction)
    """
    ALTER TABLE trio_graph_checkpoints
        ALTER COLUMN header TYPE text USING header::text,
        ALTER COLUMN body TYPE text USING body::text,
        ADD COLUMN prev_id text,
        ADD COLUMN checksum text NOT NULL DEFAULT '';
    """,
    # 2 -> 3: run ids (rows filled in by ``_run_ids_v2`` in the same transaction);
    # trio_graph_runs keeps one row per segment, runs() shows each run's current one
    """
    ALTER TABLE trio_graph_checkpoints ADD COLUMN run_id text NOT NULL DEFAULT '';
    CREATE INDEX trio_graph_checkpoints_run ON trio_graph_checkpoints (run_id, seq);
    ALTER TABLE trio_graph_runs
        ADD COLUMN run_id text NOT NULL DEFAULT '',
        ADD COLUMN step integer NOT NULL DEFAULT 0,
        ADD COLUMN waiting text;
    CREATE INDEX trio_graph_runs_run ON trio_graph_runs (run_id);
    """,
    # 3 -> 4: cancel marks (``store.cancel`` of a run a process executes)
    """
    CREATE TABLE IF NOT EXISTS trio_graph_cancels (
        job_id text PRIMARY KEY,
        cancelled_at timestamptz NOT NULL DEFAULT clock_timestamp()
    );
    """,
    # 4 -> 5: the graph names workers serve, with a heartbeat
    """
    CREATE TABLE IF NOT EXISTS trio_graph_workers (
        worker_id text NOT NULL,
        graph_name text NOT NULL,
        seen_at timestamptz NOT NULL,
        PRIMARY KEY (worker_id, graph_name)
    );
    """,
)
assert len(MIGRATIONS) == SCHEMA_VERSION


def migrate(conn: Conn, schema: str) -> None:
    """Create or migrate the tables in ``schema`` to ``SCHEMA_VERSION``, in one transaction,
    under an advisory lock (workers starting together do not race)."""
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", ("trio_graph:" + schema,))
        conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(schema)))
        conn.execute("CREATE TABLE IF NOT EXISTS trio_graph_schema (version integer NOT NULL)")
        row = conn.execute("SELECT version FROM trio_graph_schema").fetchone()
        version = int(row[0]) if row else 0
        if version < 0:
            raise CheckpointError(f"unreadable database schema version {version}")
        if version > SCHEMA_VERSION:
            raise CheckpointError(
                f"database schema version {version} is newer than this trio_graph "
                f"understands ({SCHEMA_VERSION}); upgrade trio_graph"
            )
        for step, migration in enumerate(MIGRATIONS[version:], version + 1):
            conn.execute(migration)
            if step == 2 and version == 1:
                _checksum_v1_rows(conn)
            if step == 3 and version >= 1:
                _run_ids_v2(conn)
        if row is None:
            conn.execute("INSERT INTO trio_graph_schema VALUES (%s)", (SCHEMA_VERSION,))
        elif version < SCHEMA_VERSION:
            conn.execute("UPDATE trio_graph_schema SET version = %s", (SCHEMA_VERSION,))


def _checksum_v1_rows(conn: Conn) -> None:
    """Version-1 rows (JSONB text, made plain again) get their prev_id and checksum."""
    rows = conn.execute(
        """SELECT checkpoint_id, trace_id, base_id, link, header, body
        FROM trio_graph_checkpoints ORDER BY seq"""
    ).fetchall()
    plain = [(c, t, b, n, from_jsonb(h), from_jsonb(d)) for c, t, b, n, h, d in rows]
    with conn.cursor() as cur:
        cur.executemany(
            "UPDATE trio_graph_checkpoints SET header = %s, body = %s WHERE checkpoint_id = %s",
            [(h, d, c) for c, _, _, _, h, d in plain],
        )
        cur.executemany(
            """UPDATE trio_graph_checkpoints SET prev_id = %s, checksum = %s
            WHERE checkpoint_id = %s""",
            codec.migrate_v1(plain),
        )


def _run_ids_v2(conn: Conn) -> None:
    """Version-2 rows get their run ids (and the runs rows their step and barrier)."""
    segments = conn.execute(
        """SELECT r.trace_id, r.resumed_from, c.header FROM trio_graph_runs r
        LEFT JOIN trio_graph_checkpoints c ON c.checkpoint_id = r.checkpoint_id"""
    ).fetchall()
    runs = codec.migrate_runs(segments)
    rows = conn.execute(
        f"SELECT {codec.Row.COLUMNS} FROM trio_graph_checkpoints ORDER BY seq"
    ).fetchall()
    with conn.cursor() as cur:
        cur.executemany(
            "UPDATE trio_graph_runs SET run_id = %s, step = %s, waiting = %s WHERE trace_id = %s",
            runs,
        )
        cur.executemany(
            """UPDATE trio_graph_checkpoints SET run_id = %s, header = %s, checksum = %s
            WHERE checkpoint_id = %s""",
            codec.migrate_rows(rows, {trace: run for run, _, _, trace in runs}),
        )
