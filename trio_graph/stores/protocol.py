"""The one async protocol every checkpoint store implements.

Model of the contract (DESIGN §8, §10): ``save(checkpoint, *, changes=None)`` stores
exactly ``checkpoint`` (its ``state`` is the whole state; ``changes``, the run's hint
of what changed since its previous checkpoint, may only make the write smaller, see
``stores/rows/``); ``load(checkpoint_id)`` (unknown id:
``CheckpointError``); ``latest(run_id)`` (unknown run: None); ``list(run_id)``
every segment's checkpoints, oldest first (unknown run: ``[]``); ``delete(run_id)``
removes the run's checkpoints and its ``runs()`` row; ``runs()`` one row per run.
Where a run id is taken, any of the run's segments' trace ids is accepted too (DESIGN
§8: a run keeps its ``run_id``, each segment has its own ``trace_id``, the first
equal to the run id). Stores are async context managers with ``aclose()``. A store
serialises ``checkpoint.state`` (or the hint's deltas) during ``save`` and keeps no
reference to it.
"""

from __future__ import annotations

import builtins
from typing import Any, Protocol, runtime_checkable

import attrs

from .._model.checkpoint import Changes, Checkpoint, RunStatus
from .._model.decisions import BarrierId
from ..errors import CheckpointError


@attrs.frozen
class RunInfo:
    """One row of ``store.runs()``: a run, as its latest checkpoint left it."""

    trace_id: str
    """The run's current segment (the trace that wrote its latest checkpoint)."""
    graph_name: str
    status: RunStatus
    updated_at: float
    checkpoint_id: str | None = None
    """The run's latest checkpoint."""
    resumed_from: str | None = None
    """The trace id the current segment was resumed (or forked) from."""
    run_id: str = attrs.field(
        default=attrs.Factory(lambda self: self.trace_id, takes_self=True), kw_only=True
    )
    """The run's id for its whole life (its first segment's trace id)."""
    step: int = attrs.field(default=0, kw_only=True, eq=False)
    """Steps completed at the latest checkpoint (follows from ``checkpoint_id``, so it
    takes no part in comparisons)."""
    waiting: BarrierId | None = attrs.field(default=None, kw_only=True, eq=False)
    """The barrier the latest checkpoint waits at (follows from ``checkpoint_id``)."""

    COLUMNS = (
        "run_id, trace_id, graph_name, status, updated_at, checkpoint_id, resumed_from, "
        "step, waiting"
    )
    """The columns a SQL store's runs table gives :meth:`from_row`, in order."""

    @classmethod
    def of(cls, checkpoint: Checkpoint) -> RunInfo:
        """The row of the run that ``checkpoint`` is the latest of."""
        return cls(
            checkpoint.trace_id,
            checkpoint.graph_name,
            RunStatus(checkpoint.status),
            checkpoint.created_at,
            checkpoint.checkpoint_id,
            checkpoint.resumed_from,
            run_id=checkpoint.run_id,
            step=checkpoint.step,
            waiting=checkpoint.pending_barrier,
        )

    @classmethod
    def from_row(cls, row: tuple[Any, ...]) -> RunInfo:
        """A row of :data:`COLUMNS` as stored by the SQL stores (``waiting`` as
        ``"node#occurrence"``); a corrupted one is a ``CheckpointError``."""
        run_id, trace_id, graph_name, status, updated_at, checkpoint_id, resumed_from = row[:7]
        step, waiting = row[7:]
        try:
            return cls(
                str(trace_id),
                str(graph_name),
                RunStatus(status),
                float(updated_at),
                checkpoint_id,
                resumed_from,
                run_id=str(run_id),
                step=int(step),
                waiting=BarrierId.parse(waiting) if waiting else None,
            )
        except (TypeError, ValueError) as exc:
            raise CheckpointError(f"corrupted runs row for {trace_id!r:.80}: {exc}") from exc


@runtime_checkable
class Store(Protocol):
    """A checkpoint store (MemoryStore, SQLiteStore, PostgresStore)."""

    async def save(self, checkpoint: Checkpoint, *, changes: Changes | None = None) -> None: ...

    async def load(self, checkpoint_id: str) -> Checkpoint: ...

    async def latest(self, run_id: str) -> Checkpoint | None: ...

    async def list(self, run_id: str) -> builtins.list[Checkpoint]: ...

    async def delete(self, run_id: str) -> None: ...

    async def runs(self) -> builtins.list[RunInfo]: ...

    async def aclose(self) -> None: ...
