"""The queue's PostgreSQL dialect: the database's clock, row locks, JSONB, NOTIFY.

Runtime layer. PostgreSQL's means for the rules of :mod:`.rules`: claims use ``SELECT …
FOR UPDATE SKIP LOCKED``, so workers never wait on each other's rows; leases are on the
database's clock (``clock_timestamp()``), so the workers' clocks do not matter.
Statements that must see each other's effects (a decision and the job it wakes,
parking and the decisions that arrived meanwhile) run in one transaction with the job
row locked ``FOR UPDATE``. ``LISTEN``/``NOTIFY`` wakes idle workers when work arrives;
they also poll, for expired leases. The tables are created by the store's migrations
(:mod:`trio_graph.stores.postgres`); a run's trace finds its job through
``trio_graph_runs.job_id``.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Callable
from typing import Any

import psycopg
import trio
from psycopg import sql

from ..jsonb import dumps, loads
from .dialect import Conn, Dialect

log = logging.getLogger("trio_graph.postgres")

_PARAM = re.compile(r"(?<![:\w]):([A-Za-z_]\w*)")


class PostgresDialect(Dialect):
    """The queue's words on PostgreSQL, and its LISTEN connection for idle workers."""

    name = "postgres"
    jobs = "trio_graph_jobs"
    decisions = "trio_graph_decisions"
    runs = "trio_graph_runs"
    now = "clock_timestamp()"
    lease_until = "clock_timestamp() + make_interval(secs => :lease)"
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
        self._dsn, self.channel, self._opened = dsn, channel, opened
        self._listen_lock = threading.Lock()
        self._listener: Conn | None = None

    def native(self, query: str) -> str:
        return _PARAM.sub(r"%(\1)s", query)

    def dumps(self, value: Any) -> str:
        return dumps(value)

    def loads(self, text: str) -> Any:
        return loads(text)

    def notify(self, conn: Conn) -> None:
        conn.execute("SELECT pg_notify(%s, '')", (self.channel,))

    async def wait_for_work(self, seconds: float) -> None:
        """Return when work may have arrived (a NOTIFY) or after ``seconds``."""
        await trio.to_thread.run_sync(self._wait_sync, seconds)

    def _wait_sync(self, timeout: float) -> None:
        self._opened()
        with self._listen_lock:
            try:
                if self._listener is None or self._listener.closed:
                    conn = psycopg.connect(self._dsn, autocommit=True)
                    conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(self.channel)))
                    self._listener = conn
                for _ in self._listener.notifies(timeout=timeout, stop_after=1):
                    pass
            except psycopg.Error as exc:
                log.warning("LISTEN failed (%s); polling instead", exc)
                self._close_listener()
                threading.Event().wait(timeout)

    def close(self) -> None:
        """Close the LISTEN connection (from a worker thread)."""
        with self._listen_lock:
            self._close_listener()

    def _close_listener(self) -> None:
        if self._listener is not None:
            self._listener.close()
            self._listener = None
