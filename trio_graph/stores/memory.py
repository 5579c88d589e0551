"""``MemoryStore``: checkpoints in a dict, for tests and short-lived runs.

Each checkpoint is kept as the JSON text the shared codec writes (``serde.encode_*``),
as a base snapshot or as the deltas since the previous checkpoint of its trace, exactly
like :class:`~trio_graph.stores.sqlite.SQLiteStore` does. So a memory store refuses the
same non-JSON state values a persistent store would, costs O(update) per save, and a
loaded checkpoint never shares objects with the live run.
"""

from __future__ import annotations

import builtins
from types import TracebackType

import attrs
import trio

from .. import serde
from ..checkpoint import ChainPlanner, Checkpoint, RunStatus
from ..errors import CheckpointError
from .protocol import RunInfo


@attrs.frozen
class _Row:
    checkpoint_id: str
    base_id: str | None
    """None: ``body`` is the full state; else the deltas since the previous row."""
    link: int
    """0 for a base snapshot, then 1, 2, ... along the chain."""
    header: str
    body: str


class MemoryStore:
    """An in-memory :class:`~trio_graph.stores.protocol.Store`."""

    def __init__(self) -> None:
        serde.warm()
        self._rows: dict[str, builtins.list[_Row]] = {}
        self._where: dict[str, tuple[str, int]] = {}  # checkpoint id -> (trace, index)
        self._runs: dict[str, RunInfo] = {}
        self._planner = ChainPlanner()

    async def save(self, checkpoint: Checkpoint) -> None:
        cid = checkpoint.checkpoint_id
        if cid in self._where:
            raise CheckpointError("a checkpoint with this id already exists", checkpoint_id=cid)
        base_id, link = self._planner.plan(checkpoint)
        header = serde.encode_header(checkpoint)
        if base_id is None:
            body = serde.encode_state(checkpoint.state, cid)
        else:
            body = serde.encode_deltas(checkpoint.deltas, cid)
        rows = self._rows.setdefault(checkpoint.trace_id, [])
        self._where[cid] = (checkpoint.trace_id, len(rows))
        rows.append(_Row(cid, base_id, link, header, body))
        self._runs.pop(checkpoint.trace_id, None)  # keep runs() in order of last update
        self._runs[checkpoint.trace_id] = RunInfo(
            checkpoint.trace_id,
            checkpoint.graph_name,
            RunStatus(checkpoint.status),
            checkpoint.created_at,
            cid,
            checkpoint.resumed_from,
        )
        self._planner.wrote(checkpoint, base_id, len(header) + len(body))
        # Saved: yield, but never raise Cancelled for a write that happened (the run
        # would take it as failed and write its deltas again).
        await trio.lowlevel.cancel_shielded_checkpoint()

    async def load(self, checkpoint_id: str) -> Checkpoint:
        await trio.lowlevel.checkpoint()
        where = self._where.get(checkpoint_id)
        if where is None:
            raise CheckpointError("no such checkpoint", checkpoint_id=checkpoint_id)
        trace_id, index = where
        return self._restore(self._rows[trace_id], index)

    def _restore(self, rows: builtins.list[_Row], index: int) -> Checkpoint:
        row = rows[index]
        start = index - row.link
        if start < 0 or rows[start].checkpoint_id != (row.base_id or row.checkpoint_id):
            raise CheckpointError(
                "corrupted checkpoint: its chain of deltas is broken",
                checkpoint_id=row.checkpoint_id,
            )
        return serde.decode_checkpoint(
            row.checkpoint_id,
            row.header,
            rows[start].body,
            [r.body for r in rows[start + 1 : index + 1]],
        )

    async def latest(self, trace_id: str) -> Checkpoint | None:
        rows = self._rows.get(trace_id)
        if not rows:
            await trio.lowlevel.checkpoint()
            return None
        return await self.load(rows[-1].checkpoint_id)

    async def list(self, trace_id: str) -> builtins.list[Checkpoint]:
        await trio.lowlevel.checkpoint()
        rows = self._rows.get(trace_id, [])
        return serde.decode_trace(
            (r.checkpoint_id, r.base_id, r.link, r.header, r.body) for r in rows
        )

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
