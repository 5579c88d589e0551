"""``MemoryStore``: checkpoints in a dict, for tests and short-lived runs.

Each checkpoint is kept as the row the shared codec writes (:mod:`.rows`): a base
snapshot or the deltas since the run's previous checkpoint, checksummed, exactly
like :class:`~trio_graph.stores.sqlite.SQLiteStore` does. So a memory store refuses
the same non-JSON state values a persistent store would, costs O(update) per save,
and a loaded checkpoint never shares objects with the live run.
"""

from __future__ import annotations

import builtins
from types import TracebackType

import trio

from .. import serde
from .._model.checkpoint import Changes, Checkpoint, RunStatus
from .._model.decisions import BarrierId, Decision
from .._runtime.steering import Steering
from ..errors import CheckpointError
from . import rows as codec
from .board import Board
from .protocol import RunInfo


class MemoryStore:
    """An in-memory :class:`~trio_graph.stores.protocol.Store`."""

    def __init__(self) -> None:
        serde.warm()
        self._rows: dict[str, builtins.list[codec.Row]] = {}  # trace id -> rows, write order
        self._where: dict[str, tuple[str, int]] = {}  # checkpoint id -> (trace, index)
        self._runs: dict[str, RunInfo] = {}
        self._planner = codec.Planner()
        self._board = Board()

    async def save(self, checkpoint: Checkpoint, *, changes: Changes | None = None) -> None:
        cid = checkpoint.checkpoint_id
        plan, new_at = self._planner.plan(checkpoint, changes)
        row = codec.make_row(checkpoint, plan, changes, new_at)
        if cid in self._where:
            raise CheckpointError("a checkpoint with this id already exists", checkpoint_id=cid)
        rows = self._rows.setdefault(checkpoint.trace_id, [])
        self._where[cid] = (checkpoint.trace_id, len(rows))
        rows.append(row)
        self._runs.pop(checkpoint.trace_id, None)  # keep runs() in order of last update
        self._runs[checkpoint.trace_id] = RunInfo(
            checkpoint.trace_id,
            checkpoint.graph_name,
            RunStatus(checkpoint.status),
            checkpoint.created_at,
            cid,
            checkpoint.resumed_from,
        )
        self._planner.wrote(checkpoint, row)
        # Saved: yield, but never raise Cancelled for a write that happened (the run
        # would take it as failed and write its deltas again).
        await trio.lowlevel.cancel_shielded_checkpoint()

    # -- steering (DESIGN §8): reaches a run executing in this process ----------------------
    async def decide(self, run_id: str, barrier_id: BarrierId | str, decision: Decision) -> None:
        """Keep ``decision`` for one barrier occurrence of a run; a run executing in this
        process takes it live, a stored one when it is resumed with this store."""
        self._board.decide(run_id, barrier_id, decision)
        await trio.lowlevel.checkpoint()

    async def decide_all(self, run_id: str, node: str, decision: Decision) -> None:
        """Answer every occurrence of barrier ``node`` of a run from now on."""
        self._board.decide_all(run_id, node, decision)
        await trio.lowlevel.checkpoint()

    async def cancel(self, run_id: str) -> None:
        """Cancel a run for good: an executing one stops with status CANCELLED."""
        self._board.cancel(run_id)
        await trio.lowlevel.checkpoint()

    async def steering(self, run_id: str) -> Steering:
        await trio.lowlevel.checkpoint()
        return self._board.steering(run_id)

    async def wait_for_steering(self, run_id: str, seconds: float) -> None:
        await self._board.wait(seconds)

    async def load(self, checkpoint_id: str) -> Checkpoint:
        await trio.lowlevel.checkpoint()
        where = self._where.get(checkpoint_id)
        if where is None:
            raise CheckpointError("no such checkpoint", checkpoint_id=checkpoint_id)
        trace_id, index = where
        rows = self._rows[trace_id][: index + 1]
        # As a database row is loaded: each row of its chain checked when looked up.
        earlier = codec.LazyRows((r.values() for r in rows), checkpoint_id)
        return codec.load(_checked(rows[-1], checkpoint_id), earlier)

    async def latest(self, trace_id: str) -> Checkpoint | None:
        rows = self._rows.get(trace_id)
        if not rows:
            await trio.lowlevel.checkpoint()
            return None
        return await self.load(rows[-1].checkpoint_id)

    async def list(self, trace_id: str) -> builtins.list[Checkpoint]:
        await trio.lowlevel.checkpoint()
        return codec.load_trace(_checked(r) for r in self._rows.get(trace_id, []))

    async def delete(self, trace_id: str) -> None:
        for row in self._rows.pop(trace_id, []):
            self._where.pop(row.checkpoint_id, None)
        self._runs.pop(trace_id, None)
        self._planner.forget(trace_id)
        await trio.lowlevel.checkpoint()

    async def runs(self) -> builtins.list[RunInfo]:
        await trio.lowlevel.checkpoint()
        return builtins.list(self._runs.values())

    async def aclose(self) -> None:
        await trio.lowlevel.checkpoint()

    async def __aenter__(self) -> MemoryStore:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()


def _checked(row: codec.Row, checkpoint_id: str = "") -> codec.Row:
    """The row as read back: its columns and checksum checked like a database row's."""
    return codec.Row.of(row.values(), checkpoint_id)
