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
from .._model.checkpoint import Changes, Checkpoint
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
        self._run_of: dict[str, str] = {}  # trace id -> run id
        self._history: dict[str, builtins.list[codec.Row]] = {}  # run id -> rows, write order
        self._runs: dict[str, RunInfo] = {}  # run id -> its row, least recently updated first
        self._planner = codec.Planner()
        self._board = Board()

    def _run(self, run_id: str) -> str | None:
        """The run of a run id or a segment's trace id, if stored."""
        if run_id in self._run_of:
            return self._run_of[run_id]
        return run_id if run_id in self._history else None

    async def save(self, checkpoint: Checkpoint, *, changes: Changes | None = None) -> None:
        cid = checkpoint.checkpoint_id
        plan, new_at = self._planner.plan(checkpoint, changes)
        row = codec.make_row(checkpoint, plan, changes, new_at)
        if cid in self._where:
            raise CheckpointError("a checkpoint with this id already exists", checkpoint_id=cid)
        trace, run = checkpoint.trace_id, checkpoint.run_id
        rows = self._rows.setdefault(trace, [])
        self._where[cid] = (trace, len(rows))
        rows.append(row)
        self._run_of.setdefault(trace, run)
        self._history.setdefault(run, []).append(row)
        self._runs.pop(run, None)  # keep runs() in order of last update
        self._runs[run] = RunInfo.of(checkpoint)
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

    async def latest(self, run_id: str) -> Checkpoint | None:
        run = self._run(run_id)
        if run is None:
            await trio.lowlevel.checkpoint()
            return None
        return await self.load(self._history[run][-1].checkpoint_id)

    async def list(self, run_id: str) -> builtins.list[Checkpoint]:
        await trio.lowlevel.checkpoint()
        run = self._run(run_id)
        return codec.load_trace(_checked(r) for r in self._history.get(run or "", []))

    async def delete(self, run_id: str) -> None:
        run = self._run(run_id)
        for row in self._history.pop(run or "", []):
            self._where.pop(row.checkpoint_id, None)
            if self._rows.pop(row.trace_id, None) is not None:
                self._run_of.pop(row.trace_id, None)
                self._planner.forget(row.trace_id)
        self._runs.pop(run or "", None)
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
