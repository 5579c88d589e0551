"""Helpers for the store and worker tests: the PostgreSQL server's DSN, throw-away
schemas, the two queue backends (PostgreSQL, SQLite) and worker processes.

PostgreSQL tests run against a real server: ``TRIO_GRAPH_PG_DSN``
(``eval "$(scripts/postgres.sh)"`` starts one). Without it they skip, except under CI,
where a missing DSN fails.
"""

from __future__ import annotations

import atexit
import hashlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import psycopg
import pytest
import trio

CHILD = str(Path(__file__).with_name("_worker_child.py"))


def dsn() -> str:
    """The test server's DSN; skips (fails under CI) when there is none."""
    value = os.environ.get("TRIO_GRAPH_PG_DSN")
    if value:
        return value
    if os.environ.get("CI"):
        pytest.fail(
            "CI is set but TRIO_GRAPH_PG_DSN is not: .ci/run must start PostgreSQL "
            "(scripts/postgres.sh) and export it"
        )
    pytest.skip('no PostgreSQL: set TRIO_GRAPH_PG_DSN (eval "$(scripts/postgres.sh)")')


def new_schema() -> str:
    return "t_" + uuid.uuid4().hex[:12]


def drop_schema(dsn: str, schema: str) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")


def connect(dsn: str, schema: str) -> psycopg.Connection[Any]:
    """A plain autocommit connection whose search_path is ``schema``."""
    return psycopg.connect(dsn, autocommit=True, options=f"-c search_path={schema}")


def tips(traces: dict[str, str | None], rows: list[tuple[str, str, str | None, int]]) -> list[str]:
    """The tips of a job's checkpoint chain across its traces (one when it never forked).

    ``traces`` maps each trace of the job to the trace it resumed; ``rows`` are
    ``(checkpoint_id, trace_id, prev_id, seq)`` in write order (``prev_id``: the run's
    previous checkpoint, as its save said). Within a trace, each
    checkpoint must follow the one before it. A trace that another trace resumed is
    continued only if all its checkpoints precede the resuming trace's first one; the
    last checkpoint of every trace not so continued is a tip.
    """
    by_trace: dict[str, list[tuple[str, str | None, int]]] = {}
    for cid, trace, parent, seq in rows:
        chain = by_trace.setdefault(trace, [])
        expected = chain[-1][0] if chain else None
        assert parent == expected, f"trace {trace} forked at {cid} (parent {parent})"
        chain.append((cid, parent, seq))
    found = []
    for trace, chain in by_trace.items():
        last_seq = chain[-1][2]
        continued = any(
            traces.get(other) == trace and other_chain[0][2] > last_seq
            for other, other_chain in by_trace.items()
        )
        if not continued:
            found.append(chain[-1][0])
    return found


class PostgresBackend:
    """A fresh schema on the test server; the side table ``steps`` in it."""

    name = "postgres"

    def __init__(self) -> None:
        self.dsn = dsn()
        self.schema = new_schema()

    def store(self) -> Any:
        from trio_graph.stores.postgres import PostgresStore

        return PostgresStore(self.dsn, schema=self.schema, max_size=4)

    def child_args(self) -> list[str]:
        return ["postgres", self.dsn, self.schema]

    def create_side_table(self) -> None:
        with connect(self.dsn, self.schema) as conn:
            conn.execute(
                """CREATE TABLE steps (job text NOT NULL, step integer NOT NULL, pid integer
                NOT NULL, t0 double precision NOT NULL, t1 double precision NOT NULL)"""
            )

    def steps(self, job: str | None = None) -> list[tuple[Any, ...]]:
        with connect(self.dsn, self.schema) as conn:
            return conn.execute(
                "SELECT job, step, pid, t0, t1 FROM steps WHERE %(j)s::text IS NULL OR job = %(j)s "
                "ORDER BY t0",
                {"j": job},
            ).fetchall()

    def tips(self, job_id: str) -> list[str]:
        with connect(self.dsn, self.schema) as conn:
            traces = dict(
                conn.execute(
                    "SELECT trace_id, resumed_from FROM trio_graph_runs WHERE job_id = %s",
                    (job_id,),
                ).fetchall()
            )
            rows = conn.execute(
                """SELECT checkpoint_id, trace_id, prev_id, seq
                FROM trio_graph_checkpoints WHERE trace_id = ANY(%s) ORDER BY seq""",
                (list(traces),),
            ).fetchall()
        return tips(traces, rows)

    def close(self) -> None:
        drop_schema(self.dsn, self.schema)


class SQLiteBackend:
    """A store file and a side-table file in a temporary directory."""

    name = "sqlite"

    def __init__(self, tmp: Path) -> None:
        self.path = str(tmp / "store.db")
        self.steps_path = str(tmp / "steps.db")

    def store(self) -> Any:
        from trio_graph.stores.sqlite import SQLiteStore

        return SQLiteStore(self.path)

    def child_args(self) -> list[str]:
        return ["sqlite", self.path, self.steps_path]

    def _side(self) -> sqlite3.Connection:
        return sqlite3.connect(self.steps_path, timeout=30, isolation_level=None)

    def create_side_table(self) -> None:
        db = self._side()
        db.execute("PRAGMA journal_mode = WAL")
        db.execute(
            "CREATE TABLE steps (job TEXT NOT NULL, step INTEGER NOT NULL, pid INTEGER NOT NULL,"
            " t0 REAL NOT NULL, t1 REAL NOT NULL)"
        )
        db.close()

    def steps(self, job: str | None = None) -> list[tuple[Any, ...]]:
        db = self._side()
        try:
            return db.execute(
                "SELECT job, step, pid, t0, t1 FROM steps WHERE ? IS NULL OR job = ? ORDER BY t0",
                (job, job),
            ).fetchall()
        finally:
            db.close()

    def tips(self, job_id: str) -> list[str]:
        db = sqlite3.connect(self.path, timeout=30, isolation_level=None)
        try:
            traces = dict(
                db.execute(
                    "SELECT r.trace_id, r.resumed_from FROM runs r JOIN job_traces t "
                    "ON t.trace_id = r.trace_id WHERE t.job_id = ?",
                    (job_id,),
                ).fetchall()
            )
            marks = ", ".join("?" * len(traces))
            rows = db.execute(
                "SELECT checkpoint_id, trace_id, prev_id, seq "
                f"FROM checkpoints WHERE trace_id IN ({marks}) ORDER BY seq",
                list(traces),
            ).fetchall()
        finally:
            db.close()
        return tips(traces, rows)

    def close(self) -> None:
        pass


def _stopped(pid: int) -> bool:
    """True once every thread of process ``pid`` is stopped (Linux /proc)."""
    states = set()
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            stat = (task / "stat").read_text()
        except OSError:
            continue
        states.add(stat.rsplit(")", 1)[1].split()[0])
    return states <= {"T", "t"}


class Child:
    """One worker process (tests/_worker_child.py)."""

    def __init__(self, *args: str) -> None:
        self.stderr = tempfile.TemporaryFile(mode="w+")
        self.proc = subprocess.Popen(
            [sys.executable, CHILD, *args],
            stdout=subprocess.PIPE,
            stderr=self.stderr,
            text=True,
        )
        self.pid = self.proc.pid

    def log(self) -> str:
        """What the worker logged (the end of its stderr)."""
        return self._err()

    def _err(self) -> str:
        self.stderr.seek(0)
        return self.stderr.read()[-3000:]

    async def ready(self) -> None:
        """Wait until the worker serves."""
        assert self.proc.stdout is not None
        line = await trio.to_thread.run_sync(self.proc.stdout.readline)
        assert line.startswith("ready"), f"worker did not start: {line!r}\n{self._err()}"

    def signal(self, sig: int) -> None:
        self.proc.send_signal(sig)

    async def pause(self) -> None:
        """SIGSTOP, and wait until every thread has stopped: a multi-threaded process
        stops one thread after another, so on a loaded machine a worker thread can run
        for a few milliseconds after ``kill()`` returns."""
        self.signal(signal.SIGSTOP)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if _stopped(self.pid):
                return
            await trio.sleep(0.001)
        raise AssertionError(f"worker {self.pid} did not stop")

    async def wait(self, limit: float = 60) -> dict[str, int]:
        """Wait for the process to exit; its stats (empty if it was killed)."""
        # Not communicate(): ready() read stdout through its buffer, which may already hold
        # the stats line of a worker that found nothing to do; read() returns it too. The
        # worker writes only a few short lines, so it cannot block on a full pipe.
        try:
            await trio.to_thread.run_sync(lambda: self.proc.wait(timeout=limit))
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError(f"worker {self.pid} did not exit\n{self._err()}") from None
        assert self.proc.stdout is not None
        out = await trio.to_thread.run_sync(self.proc.stdout.read)
        lines = [line for line in out.splitlines() if line.startswith("{")]
        if self.proc.returncode == 0:
            assert lines, f"worker {self.pid} printed no stats\n{self._err()}"
        return json.loads(lines[-1]) if lines else {}

    async def stop(self, limit: float = 30) -> dict[str, int]:
        """SIGTERM (graceful shutdown) and wait."""
        if self.proc.poll() is None:
            self.signal(signal.SIGTERM)
        return await self.wait(limit)

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        if self.proc.stdout is not None:
            self.proc.stdout.close()
        self.stderr.close()


_THROWAWAY: set[str] = set()


def _drop_throwaway() -> None:
    for schema in sorted(_THROWAWAY):
        try:
            drop_schema(dsn(), schema)
        except Exception:  # the server may be gone already
            pass


def throwaway_store(key: Path, **options: Any) -> Any:
    """An unopened PostgresStore for the temporary directory ``key``: the same schema for
    the same directory (so a store closed and opened again finds its data), a fresh one
    for a new directory. The schemas are dropped when the test process exits."""
    from trio_graph.stores.postgres import PostgresStore

    schema = "t_" + hashlib.sha1(str(key).encode()).hexdigest()[:16]
    if not _THROWAWAY:
        atexit.register(_drop_throwaway)
    _THROWAWAY.add(schema)
    return PostgresStore(dsn(), schema=schema, **options)


SKIP_WITHOUT_SERVER = pytest.mark.skipif(
    not os.environ.get("TRIO_GRAPH_PG_DSN") and not os.environ.get("CI"),
    reason='no PostgreSQL: set TRIO_GRAPH_PG_DSN (eval "$(scripts/postgres.sh)")',
)
"""Skip when no server is configured, except under CI (where the test then fails)."""
