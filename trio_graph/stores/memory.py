"""``MemoryStore``: checkpoints in a dict, for tests and short-lived runs.

Each checkpoint is kept as the JSON text the serde converter writes, so a memory
store refuses the same non-JSON state values a persistent store would, and a
loaded checkpoint never shares objects with the live run.
"""

from __future__ import annotations

import builtins
from types import TracebackType

import trio

from .. import serde
from ..checkpoint import Checkpoint
from ..errors import CheckpointError
from .protocol import RunInfo


class MemoryStore:
    """An in-memory :class:`~trio_graph.stores.protocol.Store`."""

    def __init__(self) -> None:
        self._docs: dict[str, str] = {}
        self._by_trace: dict[str, builtins.list[str]] = {}

    async def save(self, checkpoint: Checkpoint) -> None:
        serde.check_json(checkpoint.state)
        text = serde.to_json(serde.full(checkpoint))
        self._docs[checkpoint.checkpoint_id] = text
        self._by_trace.setdefault(checkpoint.trace_id, []).append(checkpoint.checkpoint_id)
        await trio.lowlevel.checkpoint()

    async def load(self, checkpoint_id: str) -> Checkpoint:
        await trio.lowlevel.checkpoint()
        text = self._docs.get(checkpoint_id)
        if text is None:
            raise CheckpointError("no such checkpoint", checkpoint_id=checkpoint_id)
        return serde.from_json(text, Checkpoint)

    async def latest(self, trace_id: str) -> Checkpoint | None:
        ids = self._by_trace.get(trace_id)
        if not ids:
            await trio.lowlevel.checkpoint()
            return None
        return await self.load(ids[-1])

    async def list(self, trace_id: str) -> builtins.list[Checkpoint]:
        return [await self.load(cid) for cid in self._by_trace.get(trace_id, [])]

    async def delete(self, trace_id: str) -> None:
        for cid in self._by_trace.pop(trace_id, []):
            self._docs.pop(cid, None)
        await trio.lowlevel.checkpoint()

    async def runs(self) -> builtins.list[RunInfo]:
        rows = []
        for trace_id, ids in self._by_trace.items():
            last = await self.load(ids[-1])
            rows.append(
                RunInfo(
                    trace_id,
                    last.graph_name,
                    last.status,
                    last.created_at,
                    last.checkpoint_id,
                    last.resumed_from,
                )
            )
        return rows

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
