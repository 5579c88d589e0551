"""Runs executing live on a SQL queue store: their steering, and who owns them (DESIGN §8).

Runtime layer. A run that a process executes on a queue store is *owned live*: its job
row is held (``hold:`` owner, a lease the process renews as a heartbeat; see
:mod:`trio_graph.stores.continuation`), so no worker claims it, and ``store.decide``
on it is recorded without waking a worker. The process follows the run's steering
(:class:`~trio_graph._runtime.steering.Steered`): :meth:`LiveRules.steering` reads the
decisions kept for the run's job once; :meth:`LiveRules.wait_for_steering` returns when
another process may have changed them, through the store's one :class:`~.feed.Feed`
(SQLite: ``PRAGMA data_version`` on the file; PostgreSQL: ``LISTEN``, which a
decision's ``NOTIFY`` wakes), never by re-reading rows in a loop.
"""

from __future__ import annotations

import functools
import os
import socket
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from ... import serde
from ..._model.decisions import Decision, DecisionEntry
from ..._runtime.steering import Steering
from ...errors import RunBusy
from . import statements as q
from .dialect import Conn, Dialect, Tx
from .jobs import HOLD_PREFIX, Hold, Standing, standing

T = TypeVar("T")
_DECISION: Any = Decision


def lapsed_here(owner: str | None) -> bool:
    """True when ``owner`` is a hold by a process of this machine that no longer exists
    (killed: its lease has not run out yet, but nobody will renew it)."""
    if not owner or not owner.startswith(HOLD_PREFIX):
        return False
    host, _, pid = owner[len(HOLD_PREFIX) :].rpartition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except OSError:  # exists, not ours to signal
        return False
    return False


def live_standing(
    status: str | None,
    live: object,
    owner: str | None,
    marked: object = False,
    due: object = False,
) -> Standing:
    """A job's standing, a hold whose process died on this machine counted as lapsed."""
    if standing(status, live, owner) is Standing.HELD and lapsed_here(owner):
        live = False
    return standing(status, live, owner, marked, due)


def _steering(d: Dialect, run_id: str, conn: Conn) -> Steering:
    row = d.execute(conn, d.resolve, trace=run_id).fetchone()
    if row is None:
        return Steering()
    rows = d.execute(conn, q.DECISIONS, job=row[0]).fetchall()
    cancelled = d.execute(conn, q.CANCELLED, job=row[0]).fetchone()
    entries = [
        DecisionEntry(node, occurrence, serde.converter.structure(d.loads(text), _DECISION))
        for node, occurrence, text in rows
    ]
    return Steering(entries, bool(cancelled and cancelled[0]))


def _owner(d: Dialect, run_id: str, conn: Conn) -> str | None:
    row = d.execute(conn, d.resolve, trace=run_id).fetchone()
    found = None if row is None else d.execute(conn, q.OWNER, job=row[0]).fetchone()
    if found is None:
        return None
    status, owner, live = found
    where = live_standing(status, live, owner)
    return owner if where in (Standing.HELD, Standing.LEASED) else None


def _hold_new(d: Dialect, run_id: str, graph: str, owner: str, lease: float, conn: Conn) -> Hold:
    params = {"job": run_id, "trace": run_id, "graph": graph, "checkpoint": None}
    if d.execute(conn, q.HOLD_RUN, owner=owner, lease=lease, **params).rowcount != 1:
        raise RunBusy(run_id, "is already a job of the queue (or executing elsewhere)")
    d.execute(conn, d.link, trace=run_id, job=run_id)
    return Hold(run_id, 1, created=True)


class LiveRules:
    """The live half of a SQL queue store's rules (see the module notes)."""

    _dialect: Dialect
    _steering_marks: dict[str, int]

    if TYPE_CHECKING:  # provided by the store

        async def _queue_tx(self, fn: Callable[[Conn], T], tx: Tx) -> T: ...

    async def steering(self, run_id: str) -> Steering:
        """The decisions kept for a run (by run id or a segment's trace id), oldest first,
        and whether it was cancelled, read once (the store's feed marked first: a later
        change wakes the next wait)."""
        await self._dialect.prime()
        marks = self._marks()
        marks[run_id] = self._dialect.feed.mark()
        step = functools.partial(_steering, self._dialect, run_id)
        return await self._queue_tx(step, Tx.READ)

    async def wait_for_steering(self, run_id: str, seconds: float) -> None:
        """Return when the run's steering may have changed since it was last read
        (another process committed, or a decision was notified), or after ``seconds``."""
        since = self._marks().pop(run_id, None)
        await self._dialect.feed.wait(seconds, since=since)

    def _marks(self) -> dict[str, int]:
        """Per run id, the feed's mark when its steering was last read."""
        if not hasattr(self, "_steering_marks"):
            self._steering_marks = {}
        return self._steering_marks

    async def live_owner(self, run_id: str) -> str | None:
        """Who executes the run now: the owner of its job's live lease (a ``hold:``
        process or a worker), None when nobody does."""
        return await self._queue_tx(functools.partial(_owner, self._dialect, run_id), Tx.READ)

    async def hold_new(self, run_id: str, graph_name: str, owner: str, lease: float) -> Hold:
        """Hold a run this process starts: its job row exists (running, held, no
        checkpoint yet) while the run executes; ``RunBusy`` if a job has that id."""
        step = functools.partial(_hold_new, self._dialect, run_id, graph_name, owner, lease)
        return await self._queue_tx(step, Tx.ATOMIC)
