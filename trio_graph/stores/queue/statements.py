"""The statements of the queue's rules, as templates (see :mod:`.dialect`), and the SQL
condition each fenced or claiming operation is guarded by, built from the transition
table (:data:`~.jobs.TRANSITIONS`) so that SQL and Python check the same rules.

No I/O: strings, and the decoding of the job rows they read.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

from ..._model.decisions import BarrierId
from .jobs import RUNNING, TRANSITIONS, Job, JobStatus, Op, Standing

_MARKED = "EXISTS (SELECT 1 FROM {cancels} m WHERE m.job_id = {jobs}.job_id)"
"""The job of the row at hand has a cancel mark (see ``Op.CANCEL``)."""
_WHERE = {
    Standing.QUEUED: "status = 'queued'",
    Standing.WAITING: "status = 'waiting'",
    Standing.LAPSED: "(status = 'running' AND lease_until < {now} AND NOT " + _MARKED + ")",
    Standing.DUE: "(status = 'waiting' AND available_at <= {wall})",
}
"""A waiting job's ``available_at`` is its barrier's deadline (infinite: none), compared
with ``:wall``, the claiming worker's wall clock (injectable)."""


def guard(op: Op) -> str:
    """The SQL condition (a template) that a job row may take ``op``, from the table."""
    sources = TRANSITIONS[op].sources
    parts = []
    if RUNNING <= sources:
        parts.append("status = 'running'")
        sources = sources - RUNNING
    for where in sorted(sources, key=list(Standing).index):
        if where not in _WHERE:
            raise ValueError(f"{op} is checked on the row, not in SQL ({where.value})")
        parts.append(_WHERE[where])
    return "(" + " OR ".join(parts) + ")"


# -- statements (templates: see .dialect) -------------------------------------------------
SUBMIT = """INSERT INTO {jobs} (job_id, graph_name, state, status, trace_id, created_at,
    updated_at, available_at) VALUES (:job, :graph, :state{jsonb}, 'queued', :job, {now},
    {now}, {now}) ON CONFLICT (job_id) DO NOTHING"""
CONTINUED = """SELECT trace_id FROM {runs} WHERE resumed_from = :trace
    AND run_id = (SELECT run_id FROM {runs} WHERE trace_id = :trace) LIMIT 1"""
"""A later segment of the same run (a fork from the trace is a run of its own)."""
FIRST = """SELECT coalesce((SELECT f.trace_id FROM {runs} f WHERE f.trace_id = r.run_id),
    r.trace_id) FROM {runs} r WHERE r.trace_id = :trace"""
"""The run's first segment's row (where holds of a run take turns), else the trace's."""
RUN = """SELECT graph_name, status, checkpoint_id, run_id FROM {runs}
    WHERE trace_id = :trace{lock}"""
STANDING = (
    "SELECT status, pending_barrier, owner, lease_until >= {now}, epoch, "
    + _MARKED
    + ", status = 'waiting' AND available_at <= {now} FROM {jobs} WHERE job_id = :job{lock}"
)
OWNER = "SELECT status, owner, lease_until >= {now} FROM {jobs} WHERE job_id = :job"
"""Who holds the job's lease now, and whether it is live (no lock: a look)."""
DECIDE = """INSERT INTO {decisions} (job_id, node, occurrence, decision)
    VALUES (:job, :node, :occurrence, :decision{jsonb})
    ON CONFLICT (job_id, node, occurrence) DO UPDATE SET decision = excluded.decision"""
WAKE = """UPDATE {jobs} SET status = 'queued', available_at = {now}, updated_at = {now}
    WHERE job_id = :job"""
ADOPT = """INSERT INTO {jobs} (job_id, graph_name, status, trace_id, checkpoint_id,
    pending_barrier, created_at, updated_at, available_at)
    VALUES (:job, :graph, :status, :trace, :checkpoint, :pending, {now}, {now},
    CASE WHEN :status = 'waiting' THEN {available} ELSE {now} END)
    ON CONFLICT DO NOTHING"""
JOB = "SELECT {job_columns} FROM {jobs} WHERE job_id = :job"
JOBS = """SELECT {job_columns} FROM {jobs} WHERE :status{text} IS NULL OR status = :status
    ORDER BY created_at, job_id"""
_CLAIM_SET = """status = 'running', epoch = epoch + 1, owner = :owner,
    lease_until = {lease_until}, attempts = attempts + 1, pending_barrier = NULL,
    updated_at = {now}"""
HOLD_JOB = "UPDATE {jobs} SET " + _CLAIM_SET + " WHERE job_id = :job RETURNING epoch"
HOLD_RUN = """INSERT INTO {jobs} (job_id, graph_name, status, trace_id, checkpoint_id, epoch,
    owner, lease_until, attempts, created_at, updated_at, available_at)
    VALUES (:job, :graph, 'running', :trace, :checkpoint, 1, :owner, {lease_until}, 1,
    {now}, {now}, {now}) ON CONFLICT DO NOTHING"""
DROP = "DELETE FROM {jobs} WHERE job_id = :job AND epoch = :epoch AND status <> 'cancelled'"
"""The job row of a hold on a run outside the queue goes (a cancelled one stays)."""
DROP_DECISIONS = "DELETE FROM {decisions} WHERE job_id = :job"
DROP_MARK = "DELETE FROM {cancels} WHERE job_id = :job"
CANCEL_JOB = """UPDATE {jobs} SET status = 'cancelled', owner = NULL, lease_until = NULL,
    updated_at = {now} WHERE job_id = :job"""
MARK = """INSERT INTO {cancels} (job_id, cancelled_at) VALUES (:job, {now})
    ON CONFLICT (job_id) DO NOTHING"""
CANCEL_RUN = """INSERT INTO {jobs} (job_id, graph_name, status, trace_id, checkpoint_id,
    created_at, updated_at, available_at)
    VALUES (:job, :graph, 'cancelled', :trace, :checkpoint, {now}, {now}, {now})
    ON CONFLICT DO NOTHING"""
"""A stored run outside the queue, cancelled: its job row says so from now on."""
SEEN = """INSERT INTO {workers} (worker_id, graph_name, seen_at) VALUES (:worker, :graph, {now})
    ON CONFLICT (worker_id, graph_name) DO UPDATE SET seen_at = excluded.seen_at"""
"""A worker says it serves graph ``:graph`` (its heartbeat)."""
FORGET_WORKERS = "DELETE FROM {workers} WHERE seen_at < {since}"
SERVED = "SELECT 1 FROM {workers} WHERE graph_name = :graph AND seen_at >= {since} LIMIT 1"
"""Some worker said within ``:within`` seconds that it serves ``:graph``."""
CANCELLED = "SELECT status = 'cancelled' OR " + _MARKED + " FROM {jobs} WHERE job_id = :job"
"""Whether the job was cancelled (ended so, or marked while a process executes it)."""
ANSWERS = """SELECT decision{text} FROM {decisions} WHERE job_id = :job AND node = :node
    AND occurrence IN (:every, :occurrence)"""
PARK = """UPDATE {jobs} SET status = :status, pending_barrier = :pending, owner = NULL,
    lease_until = NULL, updated_at = {now}, attempts = 0,
    available_at = CASE WHEN :status = 'waiting' THEN {available} ELSE {now} END
    WHERE job_id = :job"""
"""A parked job is available at its barrier's deadline (``:available``, epoch seconds;
infinite without one), a runnable one now."""
DECISIONS = """SELECT node, occurrence, decision{text} FROM {decisions} WHERE job_id = :job
    ORDER BY seq"""
SAVED = """UPDATE {jobs} SET trace_id = :trace, checkpoint_id = :checkpoint,
    updated_at = {now} WHERE job_id = :job"""
SAVE_FENCED = (
    """UPDATE {jobs} SET trace_id = :trace, checkpoint_id = :checkpoint, updated_at = {now}
    WHERE job_id = :job AND epoch = :epoch AND """
    + guard(Op.SAVE)
    + " AND NOT "
    + _MARKED
)
"""A fenced save's job row in one statement, on the rows the table lets ``Op.SAVE`` through
whatever their lease (a running job, the caller's epoch, no cancel mark); a row it does
not change is read and checked in full (a marked job with a lapsed lease is refused)."""
SETTLED = """UPDATE {jobs} SET trace_id = :trace, checkpoint_id = :checkpoint,
    status = :status, error = :error, owner = NULL, lease_until = NULL, updated_at = {now}
    WHERE job_id = :job"""
_FENCE = " WHERE job_id = :job AND epoch = :epoch AND "
_REQUEUE = """status = 'queued', owner = NULL, lease_until = NULL, available_at = {now},
    updated_at = {now}"""
FENCED = {
    Op.RENEW: "UPDATE {jobs} SET lease_until = {lease_until}" + _FENCE + guard(Op.RENEW),
    Op.RELEASE: "UPDATE {jobs} SET attempts = 0, " + _REQUEUE + _FENCE + guard(Op.RELEASE),
    Op.UNHOLD: "UPDATE {jobs} SET " + _REQUEUE + _FENCE + guard(Op.UNHOLD),
    Op.FINISH: """UPDATE {jobs} SET status = :status, error = :error, owner = NULL,
        lease_until = NULL, updated_at = {now}"""
    + _FENCE
    + guard(Op.FINISH),
}
"""The fenced single-statement operations: one UPDATE each, guarded by the table."""


@functools.cache
def claim(count: int) -> str:
    """The claim of up to ``:limit`` runnable jobs of ``count`` graphs (``:g0``, …)."""
    names = ", ".join(f":g{i}" for i in range(count))
    return (
        "WITH c AS MATERIALIZED (SELECT job_id FROM {jobs} WHERE graph_name IN ("
        + names
        + ") AND "
        + guard(Op.CLAIM)
        + " ORDER BY available_at LIMIT :limit{skip_locked}) UPDATE {jobs} SET "
        + _CLAIM_SET
        + """ WHERE job_id IN (SELECT job_id FROM c) RETURNING job_id, graph_name, epoch,
        trace_id, checkpoint_id, CASE WHEN checkpoint_id IS NULL THEN state{text} END,
        attempts"""
    )


def job(row: Sequence[Any]) -> Job:
    """The job of a row read with ``{job_columns}`` (as :data:`JOB` and :data:`JOBS` do)."""
    job_id, graph, status, trace, checkpoint, pending, epoch, owner, attempts, error = row[:10]
    return Job(
        job_id,
        graph,
        JobStatus(status),
        trace,
        checkpoint,
        BarrierId.parse(pending) if pending else None,
        int(epoch),
        owner,
        int(attempts),
        error,
        float(row[10]),
        float(row[11]),
    )
