"""The run queue's rules, written once for every SQL queue store.

Runtime layer. :class:`QueueRules` is the queue half of
:class:`~trio_graph.stores.sqlite.SQLiteStore` and
:class:`~trio_graph.stores.postgres.PostgresStore`: ``submit``, ``decide`` (adopting a
stored run outside the queue), ``hold``/``unhold`` and the fence of a worker's save;
the workers' operations are :mod:`.claims`, ``cancel`` :mod:`.cancels`. Each operation
is one function of a connection, run by the store in one transaction
(:meth:`QueueRules._queue_tx`); its
statements are templates that the store's :class:`~.dialect.Dialect` renders, and which
job may move where is :data:`~.jobs.TRANSITIONS`: checked in Python on a row the
transaction has read (and locked, where the database locks rows), or as the SQL
condition :func:`.statements.guard` builds from the same table.
"""

from __future__ import annotations

import builtins
import functools
import logging
import math
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, TypeVar

from ... import serde
from ..._model.checkpoint import Checkpoint, RunStatus, new_id
from ..._model.decisions import EVERY, BarrierId, Decision, DecisionEntry, check_answers
from ..._model.state import check_state
from ...errors import BarrierError, CheckpointError, LeaseLost
from . import statements as q
from .cancels import CancelRules
from .claims import SERVED_WITHIN, ClaimRules
from .dialect import Conn, Dialect, Tx
from .jobs import (
    Hold,
    Job,
    JobStatus,
    Op,
    Refusal,
    Refused,
    Standing,
    check,
    check_target,
    settles,
)
from .live import LiveRules
from .liveness import RunsRules
from .reads import busy, read, refusal_error, refuse_continued, resolve

T = TypeVar("T")
log = logging.getLogger("trio_graph.queue")
_DECISION: Any = Decision


# -- steps inside a transaction -----------------------------------------------------------
def _adopt(d: Dialect, conn: Conn, trace_id: str, pending: BarrierId | None) -> str | None:
    """Queue a stored run that waits at barrier ``pending``, so a worker can continue it
    (parked there: the decision being recorded is checked against it)."""
    run = d.execute(conn, q.RUN, trace=trace_id).fetchone()
    if run is None:
        return None
    if run[1] != RunStatus.WAITING:
        raise BarrierError(f"run {trace_id!r} is not waiting at a barrier (status {run[1]})")
    refuse_continued(d, conn, trace_id)
    status = JobStatus.WAITING if pending is not None else JobStatus.QUEUED
    check_target(Op.ADOPT, status)
    pending_text = None if pending is None else str(pending)
    job_id = run[3] or trace_id  # the job id is the run id
    d.execute(
        conn,
        q.ADOPT,
        job=job_id,
        trace=trace_id,
        graph=run[0],
        status=status.value,
        checkpoint=run[2],
        pending=pending_text,
        available=math.inf,  # the decision being recorded makes it runnable (or is refused)
    )
    d.execute(conn, d.link, trace=trace_id, job=job_id)
    return job_id


def _submit(d: Dialect, job_id: str, graph: str, state: str, conn: Conn) -> None:
    if d.execute(conn, q.SUBMIT, job=job_id, graph=graph, state=state).rowcount != 1:
        raise CheckpointError(f"a run with id {job_id!r} was already submitted")
    d.execute(conn, d.link, trace=job_id, job=job_id)
    d.notify(conn)


def _decide(
    d: Dialect, trace_id: str, entry: DecisionEntry, adopt_at: BarrierId | None, conn: Conn
) -> None:
    node, occurrence = entry.node, entry.occurrence
    job_id = resolve(d, conn, trace_id) or _adopt(d, conn, trace_id, adopt_at)
    where, pending, owner, _ = read(d, conn, job_id)
    try:
        check(Op.DECIDE, where)
    except Refused as refused:
        raise refusal_error(refused, trace_id, node, owner) from None
    waiting = where in (Standing.WAITING, Standing.DUE)
    parked = BarrierId.parse(pending) if waiting and pending else None
    if parked is not None:
        check_answers(trace_id, parked, node, occurrence)
    doc = d.dumps(serde.decision_doc(entry.decision))
    d.execute(conn, q.DECIDE, job=job_id, node=node, occurrence=occurrence, decision=doc)
    d.notify_steering(conn, str(job_id))  # a live run of the job takes it (DESIGN §8)
    if parked is not None and parked.node == node and occurrence in (EVERY, parked.occurrence):
        check(Op.WAKE, where)
        d.execute(conn, q.WAKE, job=job_id)
        d.notify(conn)


def _hold(d: Dialect, trace_id: str, owner: str, lease: float, conn: Conn) -> Hold | None:
    # The run's first segment's row first (no later segment's save writes it): holds and
    # their release take turns. Then: its job may have finished meanwhile.
    first = d.execute(conn, q.FIRST, trace=trace_id).fetchone()
    d.execute(conn, q.RUN, trace=trace_id if first is None else first[0])
    job_id = resolve(d, conn, trace_id)
    where, _, holder, _ = read(d, conn, job_id)
    if where is Standing.HELD:  # refused by the table too, but named before the lineage
        raise busy(trace_id, holder)
    refuse_continued(d, conn, trace_id)  # even when its job has finished meanwhile
    try:
        check(Op.HOLD, where)
    except Refused as refused:
        if refused.refusal is Refusal.NOTHING:
            return None
        raise refusal_error(refused, trace_id, "", holder) from None
    if job_id is None:
        return _hold_run(d, conn, trace_id, owner, lease)
    (epoch,) = d.execute(conn, q.HOLD_JOB, job=job_id, owner=owner, lease=lease).fetchone()
    return Hold(job_id, int(epoch), created=False)


def _hold_run(d: Dialect, conn: Conn, trace_id: str, owner: str, lease: float) -> Hold | None:
    """Hold a stored run outside the queue: its job row exists while held."""
    run = d.execute(conn, q.RUN, trace=trace_id).fetchone()
    if run is None:
        return None
    job_id = run[3] or trace_id  # the job id is the run id
    params = {"job": job_id, "trace": trace_id, "graph": run[0], "checkpoint": run[2]}
    if d.execute(conn, q.HOLD_RUN, owner=owner, lease=lease, **params).rowcount != 1:
        raise busy(trace_id, None)
    d.execute(conn, d.link, trace=trace_id, job=job_id)
    return Hold(job_id, 1, created=True)


def _unhold(d: Dialect, held: Hold, conn: Conn) -> None:
    # The run's first row, then the job's, then the links: the order every hold takes.
    d.execute(conn, q.RUN, trace=held.job_id)
    if not held.created:
        if d.execute(conn, q.FENCED[Op.UNHOLD], job=held.job_id, epoch=held.epoch).rowcount:
            d.notify(conn)
        return
    if d.execute(conn, q.DROP, job=held.job_id, epoch=held.epoch).rowcount:
        d.execute(conn, q.DROP_DECISIONS, job=held.job_id)
        d.execute(conn, q.DROP_MARK, job=held.job_id)
        d.execute(conn, d.unlink, job=held.job_id)


def fence_save(
    d: Dialect, conn: Conn, checkpoint: Checkpoint, job_id: str, epoch: int, *, linked: bool = False
) -> None:
    """Inside a save's own transaction: refuse it (``LeaseLost``, nothing written) unless
    ``epoch`` is the job's current claim, and record the checkpoint on the job row (a
    terminal one also ends the job). ``linked``: the caller knows this transaction's
    store already linked the trace to the job (a committed save of it under ``epoch``).

    A save that does not end the run is one conditional UPDATE (:data:`~.statements.
    SAVE_FENCED`); only when it changes no row is the job read and checked in full,
    which refuses it or (a cancel-marked job whose lease is live) lets it through."""
    ends = settles(checkpoint)
    params = {"job": job_id, "trace": checkpoint.trace_id, "checkpoint": checkpoint.checkpoint_id}
    if ends is not None or d.execute(conn, q.SAVE_FENCED, epoch=epoch, **params).rowcount != 1:
        where, _, _, current = read(d, conn, job_id)
        try:
            check(Op.SETTLE if ends else Op.SAVE, where, current=current == epoch)
        except Refused:
            raise LeaseLost(job_id, epoch) from None
        if ends is None:
            d.execute(conn, q.SAVED, **params)
        else:
            d.execute(conn, q.SETTLED, status=ends.value, error=checkpoint.error, **params)
            d.notify_steering(conn, job_id)  # for ``store.wait`` on another connection
    if not linked:
        d.execute(conn, d.link, trace=checkpoint.trace_id, job=job_id)


class QueueRules(ClaimRules, CancelRules, RunsRules, LiveRules):
    """The queue methods of a SQL queue store, on its dialect and transactions: the
    workers' (:class:`~.claims.ClaimRules`), ``cancel`` (:class:`~.cancels.CancelRules`),
    ``runs`` and ``wait`` (:class:`~.liveness.RunsRules`), and the steering and
    ownership of its live runs (:class:`~.live.LiveRules`)."""

    _dialect: Dialect
    """The store's database words (set by the store)."""

    if TYPE_CHECKING:  # provided by the store

        async def _queue_tx(self, fn: Callable[[Conn], T], tx: Tx) -> T: ...
        async def latest(self, trace_id: str) -> Checkpoint | None: ...

    # -- anyone: runs and decisions -----------------------------------------------------
    async def submit(
        self, graph_name: str, state: Mapping[str, Any], *, trace_id: str | None = None
    ) -> str:
        """Queue a new run of ``graph_name`` on ``state``; returns its id (its trace id).
        Logs a warning when no worker has announced lately that it serves the name."""
        state = check_state(state)
        serde.check_json(state)
        text = self._dialect.dumps(dict(state))
        job_id = trace_id or new_id()
        await self._queue_tx(
            functools.partial(_submit, self._dialect, job_id, graph_name, text), Tx.ATOMIC
        )
        if not await self.served(graph_name):
            log.warning(
                "no worker serves graph %r (none announced it in the last %.0f s): job %s "
                "waits until one does",
                graph_name,
                SERVED_WITHIN,
                job_id,
            )
        return job_id

    async def decide(self, trace_id: str, barrier_id: BarrierId | str, decision: Decision) -> None:
        """Keep ``decision`` for one barrier occurrence of a run (by job or trace id).

        Level-triggered like ``run.decide``: kept until that occurrence is reached. A run
        parked there becomes runnable; a run executing live (held) takes it from the store
        (NOTIFY, a commit); one not for a parked run's barrier is refused (``BarrierError``,
        :func:`check_answers`). A stored run waiting outside the queue is adopted.
        """
        bid = BarrierId.parse(barrier_id) if isinstance(barrier_id, str) else barrier_id
        if not isinstance(bid, BarrierId):
            raise BarrierError(f"decide() needs a BarrierId, got {type(barrier_id).__name__}")
        await self._record(trace_id, DecisionEntry(bid.node, bid.occurrence, decision))

    async def decide_all(self, trace_id: str, node: str, decision: Decision) -> None:
        """Answer every occurrence of barrier ``node`` of a run from now on (a wildcard)."""
        await self._record(trace_id, DecisionEntry(node, EVERY, decision))

    async def _record(self, trace_id: str, entry: DecisionEntry) -> None:
        adopt_at = None
        if await self.job(trace_id) is None:  # a stored run outside the queue: its barrier
            latest = await self.latest(trace_id)  # (by run id or any segment's trace id)
            if latest is not None:
                trace_id, adopt_at = latest.trace_id, latest.pending_barrier
        step = functools.partial(_decide, self._dialect, trace_id, entry, adopt_at)
        await self._queue_tx(step, Tx.ATOMIC)

    async def job(self, trace_id: str) -> Job | None:
        """The queue row of a run, by its job id or any of its trace ids; None if unknown."""
        d = self._dialect

        def select(conn: Conn) -> Job | None:
            job_id = resolve(d, conn, trace_id)
            row = None if job_id is None else d.execute(conn, q.JOB, job=job_id).fetchone()
            return None if row is None else q.job(row)

        return await self._queue_tx(select, Tx.READ)

    async def jobs(self, status: JobStatus | None = None) -> builtins.list[Job]:
        """Queue rows, oldest first; only those with ``status`` if given."""
        value = None if status is None else JobStatus(status).value
        d = self._dialect

        def select(conn: Conn) -> builtins.list[Job]:
            return [q.job(r) for r in d.execute(conn, q.JOBS, status=value).fetchall()]

        return await self._queue_tx(select, Tx.READ)

    # -- exclusive continuation (Executor.resume, the CLI) --------------------------------
    async def hold(self, trace_id: str, owner: str, lease: float) -> Hold | None:
        """Claim the continuation of stored run ``trace_id`` for ``lease`` seconds, like a
        worker's claim; ``RunBusy`` if another process continues it or already has.
        None when there is nothing to hold (no such run, or its job has finished)."""
        step = functools.partial(_hold, self._dialect, trace_id, owner, lease)
        return await self._queue_tx(step, Tx.ATOMIC)

    async def unhold(self, held: Hold) -> None:
        """End a hold: a run that was not in the queue leaves it again (its row goes), a
        job is given back to the queue (or stays settled)."""
        await self._queue_tx(functools.partial(_unhold, self._dialect, held), Tx.ATOMIC)
