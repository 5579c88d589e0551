"""Checkpoint rows in PostgreSQL: the one-statement save (with a worker's fence) and
the load of one checkpoint along its chain.

Runtime layer (psycopg, called from a worker thread on a pooled autocommit connection).
The rows are :mod:`trio_graph.stores.rows`' rows, stored as text exactly as the codec
wrote them.
"""

from __future__ import annotations

from typing import Any

import psycopg

from .._model.checkpoint import Checkpoint, RunStatus
from ..errors import CheckpointError, LeaseLost
from . import rows as codec
from .queue.jobs import Op, settles
from .queue.statements import guard

Conn = psycopg.Connection[Any]
Fence = tuple[str, int]
"""A worker's claim, ``(job_id, epoch)``, that a fenced save checks in its statement."""

# One statement per save (one round trip, its own transaction on an autocommit
# connection): the checkpoint row and the run's row, and for a worker's save the fence
# check (the job row locked FOR UPDATE until commit, so no claim can slip in between),
# and the job row. A claim that bumped the epoch first leaves ``fence`` empty: nothing
# is written. ``ON CONFLICT DO NOTHING`` leaves ``ins`` empty for a duplicate id.
_SAVE = """
WITH fence AS ({fence}),
ins AS (
    INSERT INTO trio_graph_checkpoints
        (checkpoint_id, trace_id, base_id, prev_id, link, header, body, checksum, run_id)
    SELECT %(cid)s, %(trace)s, %(base)s, %(prev)s, %(link)s, %(header)s, %(body)s, %(sum)s,
        %(run)s
    FROM fence
    ON CONFLICT (checkpoint_id) DO NOTHING RETURNING 1
),
run AS (
    INSERT INTO trio_graph_runs
        (trace_id, graph_name, status, updated_at, checkpoint_id, resumed_from, job_id,
        run_id, step, waiting)
    SELECT %(trace)s, %(graph)s, %(status)s, %(at)s, %(cid)s, %(resumed)s, %(job)s,
        %(run)s, %(step)s, %(waiting)s FROM ins
    ON CONFLICT (trace_id) DO UPDATE SET
        graph_name = EXCLUDED.graph_name, status = EXCLUDED.status,
        updated_at = EXCLUDED.updated_at, checkpoint_id = EXCLUDED.checkpoint_id,
        resumed_from = EXCLUDED.resumed_from, run_id = EXCLUDED.run_id,
        step = EXCLUDED.step, waiting = EXCLUDED.waiting,
        job_id = coalesce(EXCLUDED.job_id, trio_graph_runs.job_id)
){job}
SELECT (SELECT count(*) FROM fence), (SELECT count(*) FROM ins)
"""
_SAVE_PLAIN = _SAVE.format(fence="SELECT 1", job="")
_SAVE_FENCED = _SAVE.format(
    fence=f"""SELECT 1 FROM trio_graph_jobs
    WHERE job_id = %(job)s AND epoch = %(epoch)s AND {guard(Op.SAVE)} FOR UPDATE""",
    job=""",
job AS (
    UPDATE trio_graph_jobs SET trace_id = %(trace)s, checkpoint_id = %(cid)s,
        status = CASE WHEN %(terminal)s THEN %(status)s ELSE status END,
        error = CASE WHEN %(terminal)s THEN %(error)s ELSE error END,
        owner = CASE WHEN %(terminal)s THEN NULL ELSE owner END,
        lease_until = CASE WHEN %(terminal)s THEN NULL ELSE lease_until END,
        updated_at = clock_timestamp()
    WHERE job_id = %(job)s AND EXISTS (SELECT 1 FROM ins)
)""",
)


def load(conn: Conn, checkpoint_id: str) -> Checkpoint:
    found = (
        conn.execute(
            f"""SELECT seq, {codec.Row.COLUMNS} FROM trio_graph_checkpoints
            WHERE checkpoint_id = %s""",
            (checkpoint_id,),
        ).fetchone()
        if codec.is_text(checkpoint_id)
        else None
    )
    if found is None:
        raise CheckpointError("no such checkpoint", checkpoint_id=checkpoint_id)
    target = codec.Row.of(found[1:], checkpoint_id)
    if target.base_id is None:
        return codec.load_trace([target], checkpoint_id)[0]
    # The rows of the trace from its base on, up to this one (the chain follows prev_id).
    rows = conn.execute(
        f"""SELECT {codec.Row.COLUMNS} FROM trio_graph_checkpoints
        WHERE trace_id = %s AND seq <= %s AND seq >= coalesce(
            (SELECT seq FROM trio_graph_checkpoints WHERE checkpoint_id = %s), 0)
        ORDER BY seq""",
        (target.trace_id, found[0], target.base_id),
    ).fetchall()
    return codec.load(target, codec.LazyRows(rows, checkpoint_id))


def insert(conn: Conn, cp: Checkpoint, row: codec.Row, fence: Fence | None) -> None:
    """Write one checkpoint row (and the run's and job's rows) in one statement."""
    cid = cp.checkpoint_id
    status = RunStatus(cp.status).value
    params = {
        "cid": cid,
        "trace": cp.trace_id,
        "base": row.base_id,
        "prev": row.prev_id,
        "link": row.link,
        "header": row.header,
        "body": row.body,
        "sum": row.checksum,
        "graph": cp.graph_name,
        "status": status,
        "at": cp.created_at,
        "resumed": cp.resumed_from,
        "job": None,
        "run": cp.run_id,
        "step": cp.step,
        "waiting": None if cp.pending_barrier is None else str(cp.pending_barrier),
    }
    if fence is not None:
        ends = settles(cp)
        params["job"], params["epoch"] = fence
        params["terminal"] = ends is not None
        params["error"] = cp.error
    result = conn.execute(_SAVE_PLAIN if fence is None else _SAVE_FENCED, params).fetchone()
    fenced, inserted = result if result is not None else (0, 0)
    if not fenced:
        assert fence is not None
        raise LeaseLost(*fence)
    if not inserted:
        raise CheckpointError(
            "cannot save: a checkpoint with this id already exists", checkpoint_id=cid
        )
