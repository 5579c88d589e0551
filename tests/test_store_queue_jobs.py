"""The run queue's job transition table: every operation on a job in every standing is
allowed (to the statuses the table names) or refused (shown the way the table says),
first on the pure table, then through both queue stores (SQLite, and PostgreSQL when
``TRIO_GRAPH_PG_DSN`` is set), whose SQL must agree with it.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any

import attrs
import pytest

from trio_graph import Approve, BarrierId
from trio_graph._model.checkpoint import Checkpoint, RunStatus
from trio_graph.errors import BarrierError, CheckpointError, LeaseLost, RunBusy
from trio_graph.stores.queue import TRANSITIONS, Hold, JobStatus, Op
from trio_graph.stores.queue.jobs import (
    Refusal,
    Refused,
    Standing,
    check,
    check_target,
    settles,
    standing,
)
from trio_graph.stores.queue.postgres import PostgresDialect
from trio_graph.stores.queue.sqlite import SQLiteDialect
from trio_graph.stores.queue.statements import guard

S, J, R = Standing, JobStatus, Refusal
_RUNNING = {S.LEASED: None, S.HELD: None, S.LAPSED: None}

# The table as this test expects it, written out by hand: op -> standing -> the
# statuses it may move to, or the refusal. Standings not named are refused with
# ``otherwise``.
EXPECTED: dict[Op, tuple[dict[Standing, Any], Refusal]] = {
    Op.SUBMIT: ({S.ABSENT: {J.QUEUED}}, R.SUBMITTED),
    Op.ADOPT: ({S.ABSENT: {J.WAITING, J.QUEUED}}, R.SKIPPED),
    Op.DECIDE: (
        {
            s: {J.QUEUED, J.RUNNING, J.WAITING}
            for s in (S.QUEUED, S.LEASED, S.HELD, S.LAPSED, S.WAITING, S.DUE)
        }
        | {S.ABSENT: R.NO_RUN},
        R.FINISHED,
    ),
    Op.WAKE: ({S.WAITING: {J.QUEUED}, S.DUE: {J.QUEUED}}, R.SKIPPED),
    Op.CLAIM: ({s: {J.RUNNING} for s in (S.QUEUED, S.LAPSED, S.DUE)}, R.SKIPPED),
    Op.HOLD: (
        {s: {J.RUNNING} for s in (S.ABSENT, S.QUEUED, S.WAITING, S.DUE, S.LAPSED)}
        | {S.COMPLETED: R.NOTHING, S.FAILED: R.NOTHING, S.CANCELLED: R.CANCELLED},
        R.BUSY,
    ),
    Op.RENEW: ({s: {J.RUNNING} for s in _RUNNING}, R.STALE),
    Op.SAVE: ({s: {J.RUNNING} for s in _RUNNING}, R.LEASE_LOST),
    Op.SETTLE: ({s: {J.COMPLETED, J.FAILED, J.CANCELLED} for s in _RUNNING}, R.LEASE_LOST),
    Op.RELEASE: ({s: {J.QUEUED} for s in _RUNNING}, R.STALE),
    Op.PARK: ({s: {J.WAITING, J.QUEUED} for s in _RUNNING}, R.STALE),
    Op.FINISH: ({s: {J.COMPLETED, J.FAILED} for s in _RUNNING}, R.STALE),
    Op.UNHOLD: ({s: {J.QUEUED} for s in _RUNNING}, R.STALE),
    Op.DROP: ({s: {None} for s in Standing if s not in (S.ABSENT, S.CANCELLED)}, R.STALE),
    Op.CANCEL: (
        {
            s: {J.CANCELLED, J.RUNNING}
            for s in (
                S.ABSENT,
                S.QUEUED,
                S.WAITING,
                S.DUE,
                S.LAPSED,
                S.LEASED,
                S.HELD,
                S.CANCELLED,
            )
        },
        R.FINISHED,
    ),
}
FENCED = {Op.RENEW, Op.SAVE, Op.SETTLE, Op.RELEASE, Op.PARK, Op.FINISH, Op.UNHOLD, Op.DROP}


def expected(op: Op, where: Standing) -> set[JobStatus | None] | Refusal:
    allowed, otherwise = EXPECTED[op]
    return allowed.get(where, otherwise)  # type: ignore[no-any-return]


def outcome(op: Op, where: Standing, *, current: bool = True) -> set[JobStatus | None] | Refusal:
    try:
        return set(check(op, where, current=current))
    except Refused as refused:
        assert (refused.op, refused.where) == (op, where)
        return refused.refusal


# -- the pure table ---------------------------------------------------------------------
def test_the_table_names_every_operation() -> None:
    """The table has one row per queue operation, and only fenced ones need the epoch."""
    assert set(TRANSITIONS) == set(Op) == set(EXPECTED)
    assert {op for op, move in TRANSITIONS.items() if move.fenced} == FENCED


@pytest.mark.parametrize("op", list(Op))
def test_every_operation_on_every_standing(op: Op) -> None:
    """check() allows each operation from exactly the standings expected, to the
    statuses expected, and refuses the others the way expected."""
    got = {where: outcome(op, where) for where in Standing}
    assert got == {where: expected(op, where) for where in Standing}


@pytest.mark.parametrize("op", sorted(FENCED))
def test_a_stale_epoch_is_refused_by_every_fenced_operation(op: Op) -> None:
    """A fenced operation from an allowed standing is still refused for a stale epoch
    (the operation's own refusal: False, or LeaseLost for a save)."""
    for where in Standing:
        if isinstance(expected(op, where), set):
            assert outcome(op, where, current=False) == EXPECTED[op][1]


def test_refused_says_what_and_where() -> None:
    """Refused names the operation, the standing and how the refusal shows."""
    with pytest.raises(Refused, match=r"^claim refused on a waiting job \(skipped\)$"):
        check(Op.CLAIM, S.WAITING)


def test_standing_of_a_row() -> None:
    """A row's standing: its status, a running one refined by its lease and holder."""
    assert standing(None) is S.ABSENT
    assert standing("queued", True) is S.QUEUED
    assert standing("running", True, "w1") is S.LEASED
    assert standing("running", 1, "hold:host:1") is S.HELD
    assert standing("running", False, "hold:host:1") is S.LAPSED
    assert standing("running", None, "w1") is S.LAPSED
    assert standing("failed") is S.FAILED
    assert standing("cancelled") is S.CANCELLED
    assert standing("waiting", due=True) is S.DUE and standing("waiting") is S.WAITING
    # a cancel mark: a live run keeps running (it ends itself), a lapsed one is cancelled
    assert standing("running", True, "hold:host:1", marked=True) is S.HELD
    assert standing("running", False, "hold:host:1", marked=True) is S.CANCELLED


def test_check_target_refuses_a_status_the_operation_cannot_reach() -> None:
    """finish() may end a job only completed or failed."""
    assert check_target(Op.FINISH, J.FAILED) is J.FAILED
    with pytest.raises(
        ValueError,
        match=r"^finish cannot move a job to <JobStatus.QUEUED: 'queued'> "
        r"\(only to completed, failed\)$",
    ):
        check_target(Op.FINISH, J.QUEUED)


def test_settles_only_terminal_checkpoints() -> None:
    """A fenced save ends its job for a completed or failed checkpoint with no next
    node, and for a cancelled one."""
    cp = Checkpoint("c", "t", "g", "h", "next", 1, state={})
    assert settles(cp) is None
    assert settles(attrs.evolve(cp, next_node=None, status=RunStatus.COMPLETED)) is J.COMPLETED
    assert settles(attrs.evolve(cp, next_node=None, status=RunStatus.FAILED)) is J.FAILED
    assert settles(attrs.evolve(cp, status=RunStatus.FAILED)) is None
    assert settles(attrs.evolve(cp, next_node=None, status=RunStatus.WAITING)) is None
    # cancelled through the store: wherever it stopped
    assert settles(attrs.evolve(cp, status=RunStatus.CANCELLED)) is J.CANCELLED


def test_sql_guards_follow_the_table() -> None:
    """The SQL conditions of the claim and the fenced statements are the table's sources."""
    assert guard(Op.CLAIM) == (
        "(status = 'queued' OR (status = 'running' AND lease_until < {now} AND NOT "
        "EXISTS (SELECT 1 FROM {cancels} m WHERE m.job_id = {jobs}.job_id)) "
        "OR (status = 'waiting' AND available_at <= {wall}))"
    )
    for op in (Op.RENEW, Op.SAVE, Op.RELEASE, Op.FINISH, Op.UNHOLD):
        assert guard(op) == "(status = 'running')"
    with pytest.raises(ValueError, match=r"^hold is checked on the row, not in SQL \(absent\)$"):
        guard(Op.HOLD)


def test_dialects_render_one_template_each_their_way() -> None:
    """A template's words and named parameters become each database's SQL; casts
    (``::``) are left alone; SQLite binds the time as ``:now``."""
    template = "SELECT :a{jsonb}, x::text FROM {jobs} WHERE t < {now}{lock}"
    pg = PostgresDialect("postgresql://unused", "chan", lambda: None)
    assert pg.render(template) == (
        "SELECT %(a)s::jsonb, x::text FROM trio_graph_jobs WHERE t < clock_timestamp() FOR UPDATE"
    )
    lite = SQLiteDialect()
    assert lite.render(template) == "SELECT :a, x::text FROM jobs WHERE t < :now"
    bound = lite.bind({"a": 1})
    assert set(bound) == {"a", "now"} and isinstance(bound["now"], float)
    assert pg.bind({"a": 1}) == {"a": 1}


# -- through both queue stores ----------------------------------------------------------
async def place(store: Any, job: str, where: Standing, op: Op) -> None:
    """Bring job ``job`` (graph ``job``) into standing ``where`` with the queue's own
    calls (for a hold on an absent job: a stored run outside the queue to hold)."""
    if where is S.ABSENT:
        if op in (Op.HOLD, Op.CANCEL):
            await store.save(cp(job, job + "-0"))
        return
    await store.submit(job, {}, trace_id=job)
    if where is S.QUEUED:
        return
    if where is S.CANCELLED:
        await store.cancel(job)
        return
    if where is S.HELD:
        assert await store.hold(job, "hold:test:1", 30.0) is not None
        return
    [claim] = await store.claim("w1", [job], 1, 0.0 if where is S.LAPSED else 30.0)
    if where is S.WAITING:
        assert await store.park(job, claim.epoch, BarrierId("b", 1))
    elif where is S.DUE:  # its barrier's deadline passed a minute ago
        due = time.time() - 60
        assert await store.park(job, claim.epoch, BarrierId("b", 1), deadline=due)
    elif where in (S.COMPLETED, S.FAILED):
        assert await store.finish(job, claim.epoch, J(where.value))


def cp(job: str, cid: str, *, end: bool = False) -> Checkpoint:
    done = {"next_node": None, "status": RunStatus.COMPLETED} if end else {}
    return attrs.evolve(Checkpoint(cid, job, job, "h", "next", 1, state={}), **done)


Call = Callable[[Any, str, int], Awaitable[Any]]
CALLS: dict[Op, Call] = {
    Op.SUBMIT: lambda s, j, e: s.submit(j, {}, trace_id=j),
    Op.DECIDE: lambda s, j, e: s.decide(j, BarrierId("b", 1), Approve()),
    Op.CLAIM: lambda s, j, e: s.claim("w2", [j], 5, 30.0),
    Op.HOLD: lambda s, j, e: s.hold(j, "hold:other:2", 30.0),
    Op.RENEW: lambda s, j, e: s.renew(j, e, 30.0),
    Op.SAVE: lambda s, j, e: s.save_fenced(cp(j, j + "-c"), j, e),
    Op.SETTLE: lambda s, j, e: s.save_fenced(cp(j, j + "-c", end=True), j, e),
    Op.RELEASE: lambda s, j, e: s.release(j, e),
    Op.PARK: lambda s, j, e: s.park(j, e, BarrierId("b", 1)),
    Op.FINISH: lambda s, j, e: s.finish(j, e, J.COMPLETED),
    Op.UNHOLD: lambda s, j, e: s.unhold(Hold(j, e, created=False)),
    Op.CANCEL: lambda s, j, e: s.cancel(j),
}
"""Each operation a store exposes (ADOPT, WAKE and DROP happen inside decide/unhold)."""

_RAISED = {LeaseLost: R.LEASE_LOST, RunBusy: R.BUSY, CheckpointError: R.SUBMITTED}


def refusal_of(op: Op, result: Any, before: JobStatus | None, after: JobStatus | None) -> Any:
    """The refusal a store call's return value shows (None: it did the operation)."""
    if op is Op.CLAIM:
        return None if result else R.SKIPPED
    if op is Op.HOLD:
        return None if isinstance(result, Hold) else R.NOTHING
    if op is Op.UNHOLD:
        return None if after != before else R.STALE
    return R.STALE if result is False else None


async def run_case(store: Any, op: Op, where: Standing) -> tuple[Any, JobStatus | None]:
    """Run ``op`` on a job placed in ``where``: the refusal it showed ("ok" if none) and
    the job's status after."""
    job = f"{op.value}-{where.value}"
    await place(store, job, where, op)
    before = await store.job(job)
    status = None if before is None else before.status
    try:
        result = await CALLS[op](store, job, 1 if before is None else before.epoch)
    except BarrierError as exc:
        return (R.FINISHED if "has finished" in str(exc) else R.NO_RUN), status
    except CheckpointError as exc:
        if "nothing to cancel" in str(exc):
            return R.FINISHED, status
        return (R.CANCELLED if "was cancelled" in str(exc) else R.SUBMITTED), status
    except (LeaseLost, RunBusy) as exc:
        return _RAISED[type(exc)], status
    if op is Op.CLAIM:
        result = [c.job_id for c in result] == [job]
    after = await store.job(job)
    now = None if after is None else after.status
    return refusal_of(op, result, status, now) or "ok", now


async def test_both_stores_follow_the_table(store: Any) -> None:
    """Every operation a queue store exposes, on a job in every standing, does what the
    table says: an allowed one succeeds and leaves the job in one of the table's
    target statuses; a refused one shows the table's refusal (False, None, not claimed,
    or its error) and leaves the job as it was."""
    mismatches = []
    for op in CALLS:
        for where in Standing:
            (shown, status), answer = await run_case(store, op, where), expected(op, where)
            if isinstance(answer, set):
                ok = shown == "ok" and status in answer
            else:
                ok = shown == answer and status == (None if where is S.ABSENT else _status(where))
            if not ok:
                mismatches.append(f"{op} on {where.value}: {shown}, {status}; table: {answer}")
    assert mismatches == []


def _status(where: Standing) -> JobStatus:
    if where is S.DUE:
        return J.WAITING
    return J.RUNNING if where in _RUNNING else J(where.value)
