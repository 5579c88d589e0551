"""A SQLite store's rows: the statements of a save, and the load of one checkpoint.

Runtime layer (statements on a ``sqlite3`` connection the store gives, in its thread).
The row format is :mod:`.rows`'s; this module is where SQLite reads and writes it.
"""

from __future__ import annotations

import sqlite3

from .._model.checkpoint import Checkpoint, RunStatus
from ..errors import CheckpointError
from . import rows as codec
from .protocol import RunInfo

INSERT = f"INSERT INTO checkpoints ({codec.Row.COLUMNS}, run_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
_SET_RUN = (
    "graph_name = excluded.graph_name, status = excluded.status, "
    "updated_at = excluded.updated_at, checkpoint_id = excluded.checkpoint_id, "
    "resumed_from = excluded.resumed_from, step = excluded.step, waiting = excluded.waiting"
)
UPSERT_RUN = (
    f"INSERT INTO runs ({RunInfo.COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) "
    f"ON CONFLICT (trace_id) DO UPDATE SET run_id = excluded.run_id, {_SET_RUN}"
)
UPSERT_SAME_RUN = (
    f"INSERT INTO runs ({RunInfo.COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) "
    f"ON CONFLICT (trace_id) DO UPDATE SET {_SET_RUN} WHERE run_id = excluded.run_id"
)
""":data:`UPSERT_RUN` for a trace whose row names the same run (the usual case): it
leaves ``run_id`` out of the update, which spares a rewrite of its index entry (a WAL
page per save); it changes no row when the run differs (then :data:`UPSERT_RUN`)."""
RUN_OF = "coalesce((SELECT run_id FROM runs WHERE trace_id = :id), :id)"
"""The run of ``:id``, a run id or any of its segments' trace ids."""


def upsert_run(db: sqlite3.Connection, checkpoint: Checkpoint) -> None:
    """Insert or update the ``runs`` row of the checkpoint's trace."""
    values = run_row(checkpoint)
    if db.execute(UPSERT_SAME_RUN, values).rowcount != 1:
        db.execute(UPSERT_RUN, values)


def run_row(checkpoint: Checkpoint) -> tuple[object, ...]:
    """The values of ``RunInfo.COLUMNS`` for the run whose latest checkpoint this is."""
    pending = checkpoint.pending_barrier
    return (
        checkpoint.run_id,
        checkpoint.trace_id,
        checkpoint.graph_name,
        RunStatus(checkpoint.status).value,
        checkpoint.created_at,
        checkpoint.checkpoint_id,
        checkpoint.resumed_from,
        checkpoint.step,
        None if pending is None else str(pending),
    )


def load(db: sqlite3.Connection, checkpoint_id: str) -> Checkpoint:
    found = (
        db.execute(
            f"SELECT seq, {codec.Row.COLUMNS} FROM checkpoints WHERE checkpoint_id = ?",
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
    # The rows of the trace from its base on, up to this one (rows of other writers
    # may sit in between: the chain follows ``prev_id``).
    rows = db.execute(
        f"SELECT {codec.Row.COLUMNS} FROM checkpoints WHERE trace_id = ? AND seq <= ? "
        "AND seq >= coalesce((SELECT seq FROM checkpoints WHERE checkpoint_id = ?), 0) "
        "ORDER BY seq",
        (target.trace_id, found[0], target.base_id),
    ).fetchall()
    return codec.load(target, codec.LazyRows(rows, checkpoint_id))
