"""Checkpoints, the policy that decides when to save, and the hint a save gets.

Model layer: no trio import. A :class:`Checkpoint` is what a store saves: the node
to run next, the step count, the full state, the barrier waiting (if any), finished
branches of an interrupted fan-out, and lineage; nothing about storage. With each
save the run passes :class:`Changes` (the deltas since its previous checkpoint), so a
store can write just those (``stores/rows/`` decides) and the bytes written per
step grow with the update, not with the state.
"""

from __future__ import annotations

import enum
import time
import uuid
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import attrs

from .decisions import BarrierId, DecisionEntry

if TYPE_CHECKING:
    from ..reducers import Reducer
    from .graph import Node


class RunStatus(enum.StrEnum):
    """A run's status in ``store.runs()``."""

    RUNNING = "running"
    WAITING = "waiting"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"
    """Cancelled through its store (``store.cancel``): it stays where it was, not resumed
    by workers; ``run.cancel()`` and an enclosing cancel scope leave it resumable."""
    INTERRUPTED = "interrupted"
    """Reported by ``runs()`` only (never stored): the process executing the run stopped
    renewing its heartbeat (killed) before the run reached a terminal status."""


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

    ``state`` is always the full state at this checkpoint, whatever a store writes. It
    carries no storage fields: how a store lays out its rows is the store's business
    (DESIGN §8). When a checkpoint is saved, ``state`` may be the run's live state: a
    store must serialise it during ``save`` and keep no reference.
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
    pending_payload: Any = None
    """What the pending barrier shows the person (its ``show(state)``), or None."""
    deadline: float | None = None
    """When the pending barrier's timeout passes, in wall-clock epoch seconds (None: no
    timeout, or no barrier pending). A resume at that occurrence waits only what is left,
    and applies the barrier's default at once when it has passed (DESIGN §8)."""
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
    error: str | None = None
    """For a failed run, the terminal error's one-line description."""
    frames: list[Frame] = attrs.field(factory=list)
    """Subgraph runs in progress at ``next_node``, outermost first (resume inside them)."""
    run_id: str = attrs.field(
        default=attrs.Factory(lambda self: self.trace_id, takes_self=True), kw_only=True
    )
    """The run this checkpoint belongs to (DESIGN §8): every segment of a run keeps it;
    the first segment's trace id, so it defaults to ``trace_id``."""
    policy: CheckpointPolicy | None = attrs.field(default=None, kw_only=True)
    """The run's checkpoint policy, so a resume elsewhere keeps it (None: stored before
    runs kept their policy)."""


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
    """Unused, kept for compatibility: each store decides when to write a full snapshot."""
    branch_writes: bool = True
    """Record each finished branch of a fan-out as it completes (resume runs only the rest)."""

    def site_after(self, node: Node, took: float) -> str | None:
        """The checkpoint wanted after ``node`` ran for ``took`` seconds and the run goes
        on (what it records, for messages), or None."""
        if self.every_step:
            return "every-step"
        if self.on_barrier and node.kind == "barrier":
            return "barrier-resolved"
        adaptive = self.adaptive
        if adaptive is not None and adaptive.wants(
            took, node.meta.token_cost, node.meta.side_effects
        ):
            return "adaptive"
        return None


@attrs.frozen
class Changes:
    """The executor's hint to ``store.save``: what changed since its previous checkpoint.

    ``deltas`` are the updates applied since the checkpoint ``previous_id`` of the same
    trace (None: there was none). ``new_branches``: the positions, in the saved
    checkpoint's ``branches``, of the branches that previous checkpoint did not have;
    the others are its branches, in their order (a fan-out recording one more finished
    branch); None: no such relation. A store may use the hint (write only what
    changed) **only** when ``previous_id`` is the last row it wrote for the trace;
    otherwise it writes the checkpoint in full. ``checkpoint.state`` stays the truth.
    """

    previous_id: str | None
    deltas: tuple[StoredDelta, ...] = ()
    new_branches: tuple[int, ...] | None = None


@attrs.define
class ChangeLog:
    """The run's side of :class:`Changes`: the deltas applied since its last checkpoint."""

    pending: list[StoredDelta] = attrs.field(factory=list)

    def record(self, key: str, value: Any, reducer: str | None = None) -> None:
        """Note one applied delta: the update and its built-in reducer, or a resolved value."""
        self.pending.append(StoredDelta(key, value, reducer))

    def record_all(
        self,
        items: Sequence[tuple[str, Any]],
        merged: Mapping[str, Any],
        reducers: Mapping[str, Reducer],
    ) -> None:
        """Note a committed step: each update with its built-in reducer, and for a key with
        a custom reducer (whose result cannot be recomputed from the update) the merged
        value, once."""
        resolved: set[str] = set()
        for key, value in items:
            r = reducers.get(key)
            if r is None or r.builtin:
                self.record(key, value, r.name if r is not None else None)
            elif key not in resolved:
                resolved.add(key)
                self.record(key, merged[key])

    def take(self, previous_id: str | None, new_branches: tuple[int, ...] | None = None) -> Changes:
        """The hint for the checkpoint being written; the log starts empty again."""
        deltas, self.pending = tuple(self.pending), []
        return Changes(previous_id, deltas, new_branches)

    def put_back(self, changes: Changes) -> None:
        """A save failed: its deltas are pending again, before any recorded since."""
        self.pending[:0] = changes.deltas


def new_branches(
    previous: list[BranchResult], branches: list[BranchResult]
) -> tuple[int, ...] | None:
    """Where in ``branches`` the records not in ``previous`` are, when ``previous``'s very
    records are all in it, in order (a fan-out's records grow by one); else None
    (``Changes.new_branches``)."""
    if not previous:
        return None
    new, j = [], 0
    for i, branch in enumerate(branches):
        if j < len(previous) and branch is previous[j]:
            j += 1
        else:
            new.append(i)
    return tuple(new) if j == len(previous) else None
