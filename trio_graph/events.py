"""The events a run streams, in the order the lifecycle contract fixes (DESIGN §5).

Model layer: no trio import. Every event is a frozen attrs class carrying the run's
``trace_id``; node-level events carry the node as ``node`` and a ``span_id``
unique to that node execution. ``GraphStart`` comes first; each ``NodeStart``
has exactly one ``NodeEnd``; exactly one terminal event (``GraphComplete`` or
``GraphError``) comes last.
"""

from __future__ import annotations

from typing import Any, Literal

import attrs

from . import errors
from ._model.decisions import BarrierId, Decision

ObservedKind = Literal["Degraded", "Retrying", "Warning"]


@attrs.frozen
class ExecutionEntry:
    """One node execution in the result's log; times are ``trio.current_time()`` seconds."""

    step: int
    node: str
    start: float
    end: float
    success: bool


@attrs.frozen
class RunResult:
    """What a completed run returns.

    The execution log is bounded (DESIGN §13): it keeps the **last** entries (the
    executor's ``log_limit``), and ``execution_count`` counts every entry the run made,
    so a run of a million steps holds no per-step record. The full history is in the
    events and, with a store, its checkpoints.
    """

    trace_id: str
    state: dict[str, Any]
    execution_log: list[ExecutionEntry]
    """The last node executions of this run (segment), oldest first."""
    duration: float
    execution_count: int = 0
    """How many node executions this run (segment) made: ``len(execution_log)`` until
    the log reaches its limit, then more."""
    run_id: str = attrs.field(
        default=attrs.Factory(lambda self: self.trace_id, takes_self=True), kw_only=True
    )
    """The run's id for its whole life (DESIGN §8): its first segment's trace id."""


@attrs.frozen
class Observed:
    """A non-fatal error: a fallback taken (``Degraded``), a retry, a warning."""

    kind: ObservedKind
    message: str
    attempt: int = 0
    delay: float = 0.0


@attrs.frozen
class GraphStart:
    """The run began (or resumed) at ``node``; ``resumed_from`` links a resumed run."""

    trace_id: str
    graph: str
    node: str
    step: int = 0
    resumed_from: str | None = None
    run_id: str = attrs.field(
        default=attrs.Factory(lambda self: self.trace_id, takes_self=True), kw_only=True
    )
    """The run's id, the same on every segment (a fork starts a new run)."""


@attrs.frozen
class NodeStart:
    """A node starts; ``waited``: seconds it waited for a slot of its shared limiter
    first (``task(..., limiter=)``; not counted in its timeout or its duration)."""

    trace_id: str
    node: str
    span_id: int
    step: int
    waited: float = 0.0


@attrs.frozen
class StateChanged:
    """One delta applied: ``value`` is the update as the node returned it (pre-reducer)."""

    trace_id: str
    node: str
    span_id: int
    key: str
    value: Any


@attrs.frozen
class NodeEnd:
    trace_id: str
    node: str
    span_id: int
    success: bool
    duration: float


@attrs.frozen
class ObservedError:
    trace_id: str
    node: str
    error: Observed


@attrs.frozen
class BarrierWaiting:
    """A barrier occurrence was reached. ``answered`` is True when a decision for it (exact
    or wildcard) was already waiting: the barrier resolves at once, so a consumer that
    answers every ``BarrierWaiting`` should skip those (deciding again is "already
    resolved")."""

    trace_id: str
    node: str
    span_id: int
    barrier_id: BarrierId
    answered: bool = False
    payload: Any = None
    """What the person decides on: the barrier's ``show(state)`` (JSON-compatible with a
    store); None for a barrier without ``show``."""
    deadline: float | None = None
    """When the barrier's timeout passes, in wall-clock epoch seconds (the executor's
    ``wall_clock``); None without a timeout. A resumed run keeps its occurrence's."""


@attrs.frozen
class BarrierResolved:
    """``decision`` is None when the barrier timed out with default ``skip``; ``timed_out``
    tells a timeout's default from a person's decision."""

    trace_id: str
    node: str
    barrier_id: BarrierId
    decision: Decision | None
    timed_out: bool = False
    by: str | None = None
    """Who made the decision (its ``by``); None when unsaid or timed out."""
    at: float | None = None
    """When it was resolved, in wall-clock epoch seconds (the executor's ``wall_clock``)."""


@attrs.frozen
class ParallelStarted:
    trace_id: str
    node: str
    span_id: int
    branch_count: int


BranchOutcome = Literal["succeeded", "failed", "cancelled", "discarded"]


def _outcome(event: BranchCompleted) -> BranchOutcome:
    return "succeeded" if event.success else "failed"


@attrs.frozen
class BranchCompleted:
    """A branch of a fan-out ended. ``outcome``: ``"succeeded"`` (its updates merge),
    ``"failed"``, ``"cancelled"`` (stopped by a failing sibling or by the winners of a
    first_completed/quorum fork; ``success=False``) or ``"discarded"`` (it succeeded
    after the fork had its winners: ``success=True``, its updates dropped)."""

    trace_id: str
    node: str
    branch: str
    success: bool
    duration: float
    outcome: BranchOutcome = attrs.field(
        default=attrs.Factory(_outcome, takes_self=True), kw_only=True
    )


@attrs.frozen
class ParallelCompleted:
    trace_id: str
    node: str
    duration: float


@attrs.frozen
class CheckpointSaved:
    trace_id: str
    checkpoint_id: str
    node: str
    step: int


@attrs.frozen
class NodeOutput:
    """What a running node streamed with ``await ctx.emit(data)`` (DESIGN §14): between its
    ``NodeStart`` and ``NodeEnd``; ``branch`` names the branch of a parallel node."""

    trace_id: str
    node: str
    span_id: int
    data: Any
    branch: str | None = None


@attrs.frozen
class GraphComplete:
    trace_id: str
    result: RunResult


@attrs.frozen
class GraphError:
    """The run failed or was cancelled: ``error`` and the state of the last completed step."""

    trace_id: str
    error: errors.GraphError
    state: dict[str, Any]


Event = (
    GraphStart
    | NodeStart
    | StateChanged
    | NodeEnd
    | NodeOutput
    | ObservedError
    | BarrierWaiting
    | BarrierResolved
    | ParallelStarted
    | BranchCompleted
    | ParallelCompleted
    | CheckpointSaved
    | GraphComplete
    | GraphError
)
EVENT_TYPES: tuple[type, ...] = (
    GraphStart,
    NodeStart,
    StateChanged,
    NodeEnd,
    NodeOutput,
    ObservedError,
    BarrierWaiting,
    BarrierResolved,
    ParallelStarted,
    BranchCompleted,
    ParallelCompleted,
    CheckpointSaved,
    GraphComplete,
    GraphError,
)
TERMINAL: tuple[type, ...] = (GraphComplete, GraphError)
