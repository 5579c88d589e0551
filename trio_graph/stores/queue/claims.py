"""The workers' half of the queue rules: claims, leases, parking and the end of a job.

Runtime layer. :class:`ClaimRules` is mixed into :class:`~.rules.QueueRules`: ``claim``
(the table's ``CLAIM`` guard as SQL: queued, or running with a lapsed lease and no
cancel mark), ``renew``, ``release``, ``finish`` (fenced single statements),
``park`` (one transaction: a decision that arrived meanwhile keeps the job runnable),
``decisions``, ``wait_for_work`` and ``stop_waiting`` (an idle worker's wait, and the
word that it will not wait for a while), and ``announce``/``served``: the graph names
workers serve, as a heartbeat row per worker and name (``workers`` table), so that
``submit`` of a name no worker serves warns.
"""

from __future__ import annotations

import builtins
import functools
import json
import math
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from ... import serde
from ..._model.decisions import EVERY, BarrierId, Decision, DecisionEntry
from . import statements as q
from .dialect import Conn, Dialect, Tx
from .jobs import Claim, JobStatus, Op, Refused, check, check_target
from .reads import read

T = TypeVar("T")
_DECISION: Any = Decision
SERVED_WITHIN = 120.0
"""A worker that announced a graph name this many seconds ago still counts as serving
it (workers announce every third of their lease, at most every 30 s)."""


def _canonical(doc: Any) -> str:
    return json.dumps(doc, sort_keys=True, separators=(",", ":"))


def _park(
    d: Dialect,
    job_id: str,
    epoch: int,
    bid: BarrierId,
    ignore: set[str],
    deadline: float | None,
    conn: Conn,
) -> bool:
    where, _, _, current = read(d, conn, job_id)
    try:
        check(Op.PARK, where, current=current == epoch)
    except Refused:
        return False
    answers = d.execute(
        conn, q.ANSWERS, job=job_id, node=bid.node, every=EVERY, occurrence=bid.occurrence
    ).fetchall()
    answered = any(_canonical(d.loads(text)) not in ignore for (text,) in answers)
    status = JobStatus.QUEUED if answered else JobStatus.WAITING
    available = math.inf if deadline is None else float(deadline)
    status_text = check_target(Op.PARK, status).value
    d.execute(conn, q.PARK, job=job_id, status=status_text, pending=str(bid), available=available)
    if answered:
        d.notify(conn)
    return True


class ClaimRules:
    """The queue methods workers call (see the module notes)."""

    _dialect: Dialect

    if TYPE_CHECKING:  # provided by the store

        async def _queue_tx(self, fn: Callable[[Conn], T], tx: Tx) -> T: ...

    async def claim(
        self,
        owner: str,
        graph_names: builtins.list[str],
        limit: int,
        lease: float,
        *,
        now: float | None = None,
    ) -> builtins.list[Claim]:
        """Claim up to ``limit`` runnable jobs of these graphs for ``lease`` seconds: new,
        woken, with a lapsed lease, or parked at a barrier whose deadline is at or before
        ``now`` (the worker's wall clock, epoch seconds; default ``time.time()``)."""
        if not graph_names:
            return []
        d = self._dialect
        wall = time.time() if now is None else float(now)
        names = {f"g{i}": name for i, name in enumerate(graph_names)}
        query = q.claim(len(names))

        def update(conn: Conn) -> builtins.list[Claim]:
            rows = d.execute(conn, query, owner=owner, limit=limit, lease=lease, wall=wall, **names)
            return [
                Claim(r[0], r[1], int(r[2]), r[3], r[4], d.loads(r[5]) if r[5] else None, int(r[6]))
                for r in rows.fetchall()
            ]

        return await self._queue_tx(update, Tx.STATEMENT)

    async def _fenced(self, op: Op, **params: Any) -> bool:
        d, query = self._dialect, q.FENCED[op]

        def update(conn: Conn) -> bool:
            ok = bool(d.execute(conn, query, **params).rowcount == 1)
            if ok and op is Op.RELEASE:
                d.notify(conn)
            if ok and op is Op.FINISH:  # for ``store.wait`` on another connection
                d.notify_steering(conn, str(params["job"]))
            return ok

        return await self._queue_tx(update, Tx.STATEMENT)

    async def renew(self, job_id: str, epoch: int, lease: float) -> bool:
        """Extend the lease of a claim; False if the claim is no longer current."""
        return await self._fenced(Op.RENEW, job=job_id, epoch=epoch, lease=lease)

    async def release(self, job_id: str, epoch: int) -> bool:
        """Give a claimed job back to the queue (runnable at once)."""
        return await self._fenced(Op.RELEASE, job=job_id, epoch=epoch)

    async def finish(
        self, job_id: str, epoch: int, status: JobStatus, error: str | None = None
    ) -> bool:
        """Mark a claimed job completed or failed."""
        status = check_target(Op.FINISH, JobStatus(status))
        return await self._fenced(
            Op.FINISH, job=job_id, epoch=epoch, status=status.value, error=error
        )

    async def park(
        self,
        job_id: str,
        epoch: int,
        barrier_id: BarrierId,
        *,
        refused: Sequence[DecisionEntry] = (),
        deadline: float | None = None,
    ) -> bool:
        """Park a claimed job at a barrier until a decision for it arrives, or until its
        ``deadline`` (epoch seconds, the waiting checkpoint's) passes: then a claim takes
        it again and the resumed run applies the barrier's default.

        If a decision arrived meanwhile (other than those in ``refused``, which the graph
        would not take) the job stays runnable, so no decision is missed.
        """
        ignore = {_canonical(serde.decision_doc(e.decision)) for e in refused}
        step = functools.partial(_park, self._dialect, job_id, epoch, barrier_id, ignore, deadline)
        return await self._queue_tx(step, Tx.ATOMIC)

    async def decisions(self, job_id: str) -> builtins.list[DecisionEntry]:
        """Every decision kept for a job (wildcards have occurrence 0), oldest first."""
        d = self._dialect

        def select(conn: Conn) -> builtins.list[DecisionEntry]:
            rows = d.execute(conn, q.DECISIONS, job=job_id).fetchall()
            return [
                DecisionEntry(n, o, serde.converter.structure(d.loads(text), _DECISION))
                for n, o, text in rows
            ]

        return await self._queue_tx(select, Tx.READ)

    async def wait_for_work(self, seconds: float) -> None:
        """Return when work may have arrived or after ``seconds`` (SQLite: after them)."""
        await self._dialect.wait_for_work(seconds)

    async def stop_waiting(self) -> None:
        """A worker will not wait for work for a while (no free slot, or it stops): on
        PostgreSQL, where one idle worker at a time listens, another takes over."""
        await self._dialect.stop_waiting()

    async def announce(self, worker_id: str, graph_names: Sequence[str]) -> None:
        """A worker's heartbeat: it serves ``graph_names`` now (``submit`` of a name no
        worker announced lately warns). Rows not renewed for a day go."""
        d = self._dialect

        def upsert(conn: Conn) -> None:
            for name in graph_names:
                d.execute(conn, q.SEEN, worker=worker_id, graph=name)
            d.execute(conn, q.FORGET_WORKERS, within=86400.0)

        await self._queue_tx(upsert, Tx.ATOMIC)

    async def served(self, graph_name: str, within: float = SERVED_WITHIN) -> bool:
        """Whether some worker announced within ``within`` seconds that it serves
        ``graph_name``."""
        d = self._dialect

        def select(conn: Conn) -> bool:
            return d.execute(conn, q.SERVED, graph=graph_name, within=within).fetchone() is not None

        return await self._queue_tx(select, Tx.READ)
