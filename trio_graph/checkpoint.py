"""Checkpoints, the policy that decides when to save, and incremental snapshots.

Model layer: no trio import. A :class:`Checkpoint` is what a store saves: the node
to run next, the step count, the state, the barrier waiting (if any), finished
branches of an interrupted fan-out, and lineage. Stores may write the state as a
base snapshot plus the deltas since it (:class:`SnapshotTracker` decides which),
so the bytes written per step grow with the update, not with the state.
"""

from __future__ import annotations

import enum
import time
import uuid
from collections.abc import Iterable, Mapping
from typing import Any

import attrs

from .decisions import BarrierId, Decision
from .reducers import BUILTINS


class RunStatus(enum.StrEnum):
    """A run's status in ``store.runs()``."""

    RUNNING = "running"
    WAITING = "waiting"
    COMPLETED = "completed"
    FAILED = "failed"


@attrs.frozen
class StoredDelta:
    """A delta as stored: the update and the built-in reducer that merges it (None: overwrite).

    An update merged by a custom reducer is stored resolved (the merged value, no
    reducer), since a store cannot know user functions.
    """

    key: str
    value: Any
    reducer: str | None = None


@attrs.frozen
class DecisionEntry:
    """A decision kept for a barrier occurrence (or, with ``occurrence == 0``, a wildcard)."""

    node: str
    occurrence: int
    decision: Decision


@attrs.frozen
class BranchResult:
    """A finished branch of an interrupted fan-out: its updates, to merge on resume."""

    branch: str
    updates: dict[str, Any]


@attrs.frozen
class Frame:
    """A subgraph run in progress inside the node ``node`` of the graph one level up:
    enough to resume inside it."""

    node: str
    next_node: str
    step: int
    state: dict[str, Any]
    collected: list[tuple[str, Any]] = attrs.field(factory=list)
    """The child's committed updates so far (the subgraph's default output)."""


@attrs.frozen
class Checkpoint:
    """A resumable point of a run.

    ``state`` is always the full state at this checkpoint. When a checkpoint is
    saved, ``state`` may be the run's live state: a store must serialise it (or,
    when ``base_id`` is set, only ``deltas``) during ``save`` and keep no reference.
    """

    checkpoint_id: str
    trace_id: str
    graph_name: str
    graph_hash: str
    next_node: str | None
    """The node a resume runs first; None once the run is finished."""
    step: int
    """Steps completed when the checkpoint was taken."""
    state: dict[str, Any]
    status: RunStatus = RunStatus.RUNNING
    pending_barrier: BarrierId | None = None
    occurrences: dict[str, int] = attrs.field(factory=dict)
    """Barrier arrivals counted so far, per node."""
    decisions: list[DecisionEntry] = attrs.field(factory=list)
    """Decisions sent ahead and wildcards, kept across a resume."""
    branches: list[BranchResult] = attrs.field(factory=list)
    """Finished branches of the parallel node ``next_node`` (pending writes)."""
    resumed_from: str | None = None
    """The trace id this run was resumed or forked from."""
    resume_count: int = 0
    created_at: float = attrs.field(factory=time.time)
    parent_id: str | None = None
    """The previous checkpoint of this trace."""
    base_id: str | None = None
    """The full snapshot this one builds on; None means this one is a full snapshot."""
    deltas: list[StoredDelta] = attrs.field(factory=list)
    """Deltas since ``parent_id`` (what an incremental save writes)."""
    error: str | None = None
    """For a failed run, the terminal error's one-line description."""
    frames: list[Frame] = attrs.field(factory=list)
    """Subgraph runs in progress at ``next_node``, outermost first (resume inside them)."""


def new_id() -> str:
    """A fresh random id (hex)."""
    return uuid.uuid4().hex


@attrs.frozen
class AdaptivePolicy:
    """Save after a node whose score passes ``threshold``.

    score = duration_s * per_second + token_cost * per_token + side_effects * side_effect
    """

    threshold: float = 1.0
    per_second: float = 1.0
    per_token: float = 0.001
    side_effect: float = 1.0

    def score(self, duration: float, token_cost: float, side_effects: bool) -> float:
        return (
            duration * self.per_second
            + token_cost * self.per_token
            + (self.side_effect if side_effects else 0.0)
        )

    def wants(self, duration: float, token_cost: float, side_effects: bool) -> bool:
        return self.score(duration, token_cost, side_effects) >= self.threshold


@attrs.frozen
class CheckpointPolicy:
    """When to save. Defaults: on barrier waits/resolutions, completion and request."""

    every_step: bool = False
    on_barrier: bool = True
    on_completion: bool = True
    on_request: bool = True
    adaptive: AdaptivePolicy | None = None
    full_every: int = 20
    """Write a full snapshot once more than this many deltas are pending."""
    branch_writes: bool = True
    """Record each finished branch of a fan-out as it completes (resume runs only the rest)."""


@attrs.define
class SnapshotTracker:
    """Decides full vs incremental and collects the deltas since the last checkpoint."""

    threshold: int = 20
    base_id: str | None = None
    since_base: int = 0
    pending: list[StoredDelta] = attrs.field(factory=list)

    def record(self, key: str, value: Any, reducer: str | None = None) -> None:
        """Note one applied delta: the update and its built-in reducer, or a resolved value."""
        self.pending.append(StoredDelta(key, value, reducer))

    def take(self, checkpoint_id: str) -> tuple[str | None, list[StoredDelta]]:
        """(base_id, deltas) for the checkpoint being written; a None base means full."""
        deltas, self.pending = self.pending, []
        self.since_base += len(deltas)
        if self.base_id is None or self.since_base > self.threshold:
            self.base_id = checkpoint_id
            self.since_base = 0
            return None, deltas
        return self.base_id, deltas

    def reset(self) -> None:
        """Forget the base (the next checkpoint is full), e.g. after a failed save."""
        self.base_id = None
        self.since_base = 0


def restore(base: Mapping[str, Any], chain: Iterable[Iterable[StoredDelta]]) -> dict[str, Any]:
    """The state of a base snapshot plus each checkpoint's deltas, in order."""
    state = dict(base)
    for deltas in chain:
        for d in deltas:
            if d.reducer is None:
                state[d.key] = d.value
                continue
            reducer = BUILTINS[d.reducer]
            if d.key in state:
                state[d.key] = reducer.fn(state[d.key], d.value)
            elif reducer.initial is not None:
                state[d.key] = reducer.fn(reducer.initial(), d.value)
            else:
                state[d.key] = d.value
    return state


@attrs.define
class _Chain:
    base_id: str
    base_bytes: int
    since_bytes: int = 0
    links: int = 0


@attrs.define
class ChainPlanner:
    """A store's choice between a full snapshot and a delta row, per trace (pure).

    A store writes each checkpoint as the deltas since the previous checkpoint of its
    trace, in write order (``checkpoint.deltas`` always holds exactly those), unless
    the trace has no base in this store yet (its first checkpoint, or one written by
    another process), or the bytes written since the base have outgrown the base and
    the run's :class:`SnapshotTracker` asks for a full snapshot (``base_id`` None;
    after ``ceiling`` times the base, without asking). Rebasing only once the deltas
    outweigh the base keeps the bytes written per step O(update), amortised, whatever
    the size of the state, and a load replays at most about one base's worth of deltas.

    Each row also gets a *link*: 0 for a base snapshot, then 1, 2, ... along its
    chain, so a load can tell a complete chain from one with a row missing.
    """

    ceiling: int = 4
    _chains: dict[str, _Chain] = attrs.field(factory=dict)

    def plan(self, checkpoint: Checkpoint) -> tuple[str | None, int]:
        """``(base_id, link)`` to write ``checkpoint`` with; a None base: write it in full."""
        chain = self._chains.get(checkpoint.trace_id)
        if chain is None or checkpoint.parent_id is None:
            return None, 0
        if chain.since_bytes >= chain.base_bytes and (
            checkpoint.base_id is None or chain.since_bytes >= self.ceiling * chain.base_bytes
        ):
            return None, 0
        return chain.base_id, chain.links + 1

    def base_bytes(self, trace_id: str) -> int | None:
        """The size of the trace's current base row, if this store wrote one."""
        chain = self._chains.get(trace_id)
        return None if chain is None else chain.base_bytes

    def wrote(self, checkpoint: Checkpoint, base_id: str | None, nbytes: int) -> None:
        """Record a committed row of ``nbytes`` (header and body) for ``checkpoint``."""
        if base_id is None:
            self._chains[checkpoint.trace_id] = _Chain(checkpoint.checkpoint_id, nbytes)
        else:
            chain = self._chains[checkpoint.trace_id]
            chain.since_bytes += nbytes
            chain.links += 1

    def forget(self, trace_id: str) -> None:
        """The trace was deleted: its next checkpoint is a full snapshot."""
        self._chains.pop(trace_id, None)
