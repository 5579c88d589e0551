"""What a database must say for the queue rules: its SQL words, its clock, its wake-ups.

The rules (:mod:`.rules`) write every statement once, as a *template*: values bound by
name (``:job``), and in braces what differs between databases: the tables (``{jobs}``,
``{decisions}``, ``{cancels}``, ``{runs}``), the time (``{now}``, ``{lease_until}``: now plus
``:lease`` seconds), row locking (``{lock}``, ``{skip_locked}``), JSON columns
(``{jsonb}`` after a parameter that is JSON text, ``{text}`` after a JSON column read
back as text, or after a parameter that may be NULL and must be typed) and the job
columns as the rules read them (``{job_columns}``). A :class:`Dialect` renders a
template into its database's SQL once and binds values;
:class:`~.sqlite.SQLiteDialect` and :class:`~.postgres.PostgresDialect` are the two.

A statement runs on a DB-API connection as the store provides it (``sqlite3`` or
psycopg 3), inside the transaction the store opens for the operation (:class:`Tx`).
"""

from __future__ import annotations

import enum
import json
from typing import Any

import trio

from .feed import Feed

Conn = Any
"""A DB-API connection (``sqlite3.Connection`` or ``psycopg.Connection``)."""
Cursor = Any


class Tx(enum.Enum):
    """How a store runs one queue operation's function."""

    READ = "read"
    """Reads only (a consistent snapshot where the store has one)."""
    STATEMENT = "statement"
    """One writing statement (no transaction of its own needed)."""
    ATOMIC = "atomic"
    """Several statements that must commit together, seeing each other."""


_JOB_COLUMNS = (
    "job_id, graph_name, status, trace_id, checkpoint_id, pending_barrier, epoch, owner, "
    "attempts, error"
)


class Dialect:
    """One database's words for the queue's templates (see the module notes)."""

    name = "sql"
    jobs = "jobs"
    decisions = "decisions"
    cancels = "cancels"
    workers = "workers"
    runs = "runs"
    checkpoints = "checkpoints"
    now = ":now"
    lease_until = ":now + :lease"
    since = ":now - :within"
    """Now minus ``:within`` seconds."""
    wall = ":wall"
    """The claiming worker's wall clock (epoch seconds), as a timestamp."""
    available = ":available"
    """A barrier's deadline (epoch seconds, ``inf`` for none), as a timestamp."""
    seconds = "{}"
    """A timestamp column as float seconds since the epoch (``{}``: the column)."""
    lock = ""
    """Appended to a SELECT whose rows the transaction goes on to change."""
    skip_locked = ""
    """Appended to the claim's SELECT: rows locked by another claim are passed over."""
    jsonb = ""
    text = ""
    resolve = ""
    """SQL: the job ``:trace`` (a job id or any trace id of a job) belongs to."""
    link = ""
    """SQL: record that trace ``:trace`` belongs to job ``:job``."""
    unlink = ""
    """SQL: forget every trace of job ``:job``."""

    def __init__(self) -> None:
        self.feed = Feed(self.look)
        """The one wait for changes every run following this store shares."""
        self._rendered: dict[str, str] = {}
        self._words = {
            "jobs": self.jobs,
            "decisions": self.decisions,
            "cancels": self.cancels,
            "workers": self.workers,
            "since": self.since,
            "runs": self.runs,
            "checkpoints": self.checkpoints,
            "now": self.now,
            "lease_until": self.lease_until,
            "wall": self.wall,
            "available": self.available,
            "lock": self.lock,
            "skip_locked": self.skip_locked,
            "jsonb": self.jsonb,
            "text": self.text,
            "job_columns": ", ".join(
                [_JOB_COLUMNS, self.seconds.format("created_at"), self.seconds.format("updated_at")]
            ),
        }

    def render(self, template: str) -> str:
        """The template in this database's SQL (rendered once, then cached)."""
        rendered = self._rendered.get(template)
        if rendered is None:
            rendered = self._rendered[template] = self.native(template.format_map(self._words))
        return rendered

    def native(self, sql: str) -> str:
        """``sql`` with ``:name`` parameters in the driver's own style."""
        return sql

    def bind(self, params: dict[str, Any]) -> dict[str, Any]:
        """The values of one statement (a dialect may add its own, such as ``now``)."""
        return params

    def execute(self, conn: Conn, template: str, **params: Any) -> Cursor:
        """Run one templated statement on ``conn``."""
        return conn.execute(self.render(template), self.bind(params))

    def dumps(self, value: Any) -> str:
        """``value`` as the JSON text this database's JSON columns take."""
        return json.dumps(value, separators=(",", ":"), allow_nan=False)

    def loads(self, text: str) -> Any:
        """A value from a JSON column read back as text."""
        return json.loads(text)

    def notify(self, conn: Conn) -> None:
        """Tell idle workers that work arrived (nothing, where there are no notifications)."""

    def notify_steering(self, conn: Conn, job_id: str) -> None:
        """Tell the process executing job ``job_id`` that its steering changed (nothing,
        where a commit is noticed without it)."""

    async def prime(self) -> None:
        """Start noticing changes now (before a read whose changes a look must not miss)."""

    async def look(self, seconds: float) -> bool:
        """Wait up to ``seconds`` for a change another process committed; True on one
        (shared by a store's followers through :attr:`feed`)."""
        raise NotImplementedError

    async def wait_for_work(self, seconds: float) -> None:
        """Return when work may have arrived, or after ``seconds``."""
        raise NotImplementedError

    async def stop_waiting(self) -> None:
        """The caller will not wait for work for a while (nothing, where idle workers do
        not share one listener)."""
        await trio.lowlevel.checkpoint()
