"""The planner: a base row (the full state) or a delta row, per checkpoint.

Pure (no trio, no I/O). One :class:`Planner` per store writes a delta row only when
the run's hint (:class:`~trio_graph._model.checkpoint.Changes`) names as previous
checkpoint the last row this store wrote for the trace; otherwise (a copy from another
store, a hand-built checkpoint, another process's rows, a failed save) a base row of
the full ``checkpoint.state``. It rebases once the bytes written since the base
outweigh it ``ceiling`` (4) times: O(update) bytes per step, amortised, and a load
replays at most about four bases' worth of rows. :func:`make_row` encodes a checkpoint
as its plan says.
"""

from __future__ import annotations

import attrs

from ... import errors
from ..._model.checkpoint import Changes, Checkpoint
from .codec import Row, check_text, encode_deltas, encode_header, encode_state, row_checksum


def make_row(
    checkpoint: Checkpoint, plan: Plan, changes: Changes | None, new_at: tuple[int, ...] | None
) -> Row:
    """Encode ``checkpoint`` as ``plan`` says; a non-JSON value is refused naming its key.

    Deltas that cannot be encoded (a value refused by an earlier save, since
    overwritten) fall back to a base row: the state is the truth, the hint only a help.
    """
    check_text(checkpoint)
    body = None
    if plan.base_id is not None:
        assert changes is not None
        try:
            body = encode_deltas(changes.deltas)
        except errors.CheckpointError:
            plan, new_at = Plan(None, 0), None
    if body is None:
        body = encode_state(checkpoint.state)
    header = encode_header(checkpoint, new_at)
    cid, trace = checkpoint.checkpoint_id, checkpoint.trace_id
    prev = None if changes is None else changes.previous_id
    digest = row_checksum(cid, trace, plan.base_id, prev, plan.link, header, body)
    return Row(cid, trace, plan.base_id, prev, plan.link, header, body, digest)


@attrs.frozen
class Plan:
    """How to write one checkpoint: ``base_id`` None for a base row."""

    base_id: str | None
    link: int


@attrs.define
class _Chain:
    base_id: str
    base_bytes: int
    last_id: str
    branches: int
    since_bytes: int = 0
    links: int = 0


@attrs.define
class Planner:
    """A store's choice between a base row and a delta row, per trace (see the module notes)."""

    ceiling: int = 4
    """Rebase once the rows since the base weigh this many times the base."""
    _chains: dict[str, _Chain] = attrs.field(factory=dict)

    def plan(
        self, checkpoint: Checkpoint, changes: Changes | None
    ) -> tuple[Plan, tuple[int, ...] | None]:
        """The plan, and the places of the only branches the header lists (None: all)."""
        chain = self._chains.get(checkpoint.trace_id)
        if (
            chain is None
            or changes is None
            or changes.previous_id != chain.last_id
            or chain.since_bytes >= self.ceiling * chain.base_bytes
        ):
            return Plan(None, 0), None
        new = changes.new_branches
        if new is not None and len(checkpoint.branches) - len(new) != chain.branches:
            new = None  # not the branches of the row before: list them all
        return Plan(chain.base_id, chain.links + 1), new

    def base_bytes(self, trace_id: str) -> int | None:
        """The size of the trace's current base row, if this store wrote one."""
        chain = self._chains.get(trace_id)
        return None if chain is None else chain.base_bytes

    def wrote(self, checkpoint: Checkpoint, row: Row) -> None:
        """Record a committed row for ``checkpoint``."""
        nbytes = len(row.header) + len(row.body)
        trace, count = checkpoint.trace_id, len(checkpoint.branches)
        chain = self._chains.get(trace)
        if row.base_id is None or chain is None:
            self._chains[trace] = _Chain(row.checkpoint_id, nbytes, row.checkpoint_id, count)
            return
        chain.since_bytes += nbytes
        chain.links += 1
        chain.last_id, chain.branches = row.checkpoint_id, count

    def forget(self, trace_id: str) -> None:
        """The trace was deleted or ended: its next checkpoint is a base row."""
        self._chains.pop(trace_id, None)
