"""The one async protocol every checkpoint store implements.

Model of the contract (DESIGN §8, §10): ``save(checkpoint, *, changes=None)`` stores
exactly ``checkpoint`` (its ``state`` is the whole state; ``changes``, the run's hint
of what changed since its previous checkpoint, may only make the write smaller, see
``stores/rows/``); ``load(checkpoint_id)`` (unknown id:
``CheckpointError``); ``latest(trace_id)`` (unknown run: None); ``list(trace_id)``
oldest first (unknown run: ``[]``); ``delete(trace_id)`` removes the checkpoints
and the ``runs()`` row; ``runs()`` one row per run. Stores are async context
managers with ``aclose()``. A store serialises ``checkpoint.state`` (or the hint's
deltas) during ``save`` and keeps no reference to it.
"""

from __future__ import annotations

import builtins
from typing import Any, Protocol, runtime_checkable

import attrs

from .._model.checkpoint import Changes, Checkpoint, RunStatus
from ..errors import CheckpointError


@attrs.frozen
class RunInfo:
    """One row of ``store.runs()``."""

    trace_id: str
    graph_name: str
    status: RunStatus
    updated_at: float
    checkpoint_id: str | None = None
    """The run's latest checkpoint."""
    resumed_from: str | None = None

    @classmethod
    def from_row(cls, row: tuple[Any, ...]) -> RunInfo:
        """A row ``(trace_id, graph_name, status, updated_at, checkpoint_id, resumed_from)``
        as stored by the SQL stores; a corrupted one is a ``CheckpointError``."""
        trace_id, graph_name, status, updated_at, checkpoint_id, resumed_from = row
        try:
            return cls(
                str(trace_id),
                str(graph_name),
                RunStatus(status),
                float(updated_at),
                checkpoint_id,
                resumed_from,
            )
        except (TypeError, ValueError) as exc:
            raise CheckpointError(f"corrupted runs row for {trace_id!r:.80}: {exc}") from exc


@runtime_checkable
class Store(Protocol):
    """A checkpoint store (MemoryStore, SQLiteStore, PostgresStore)."""

    async def save(self, checkpoint: Checkpoint, *, changes: Changes | None = None) -> None: ...

    async def load(self, checkpoint_id: str) -> Checkpoint: ...

    async def latest(self, trace_id: str) -> Checkpoint | None: ...

    async def list(self, trace_id: str) -> builtins.list[Checkpoint]: ...

    async def delete(self, trace_id: str) -> None: ...

    async def runs(self) -> builtins.list[RunInfo]: ...

    async def aclose(self) -> None: ...
