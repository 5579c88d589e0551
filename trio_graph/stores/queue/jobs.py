"""Jobs of the run queue and the rules of how they move, as a table.

Pure (no trio, no I/O): the values a queue store hands out (:class:`Job`, :class:`Claim`,
:class:`Hold`) and :data:`TRANSITIONS`, which says for each queue operation
(:class:`Op`) from which standings a job may move, to which statuses, whether the
caller's lease epoch must still be the job's (*fenced*), and how a refusal shows.

**Theory of operation.** A job's :class:`JobStatus` is what its row stores. Whether a
running job's lease has lapsed, and whether its holder is a worker or another process
continuing the run (a *hold*, see :data:`HOLD_PREFIX`), matters as much, so the table
is written over a job's :class:`Standing`: its status refined by the lease (and
``ABSENT``: no row). Every queue store checks an operation with :func:`check` (in
Python, on the row it read, locked) or with the SQL condition the rules build from the
same table (:func:`trio_graph.stores.queue.statements.guard`), so the rules exist once.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from typing import Any

import attrs

from ..._model.checkpoint import Checkpoint, RunStatus
from ..._model.decisions import BarrierId


class JobStatus(enum.StrEnum):
    """Where a job stands in the queue."""

    QUEUED = "queued"
    """Runnable: new, released by a worker that shut down, or its decision arrived."""
    RUNNING = "running"
    """Claimed by a worker holding a lease (runnable again once the lease expires)."""
    WAITING = "waiting"
    """Parked at a barrier until ``store.decide`` answers it."""
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"
    """Cancelled through the store (``store.cancel``): never claimed, held or resumed."""


@attrs.frozen
class Job:
    """One row of the run queue."""

    job_id: str
    """The id ``submit`` returned (the trace id of the job's first run)."""
    graph_name: str
    status: JobStatus
    trace_id: str
    """The job's current trace (a resume starts a new one)."""
    checkpoint_id: str | None
    """The job's latest checkpoint (None before the first)."""
    pending_barrier: BarrierId | None
    """The barrier a waiting job is parked at."""
    epoch: int
    """Claims so far; the fencing token of the current claim."""
    owner: str | None
    """The worker holding the lease, while running."""
    attempts: int
    """Claims since the job was last parked or released by its worker: claims whose
    worker stopped without letting go (killed, crashed), plus the current one."""
    error: str | None
    created_at: float
    updated_at: float


@attrs.frozen
class Claim:
    """A job a worker claimed: what it needs to start or resume it."""

    job_id: str
    graph_name: str
    epoch: int
    trace_id: str
    checkpoint_id: str | None
    state: dict[str, Any] | None
    """The submitted state, when the job has no checkpoint yet."""
    attempts: int = 1
    """The job's ``attempts`` with this claim (see :attr:`Job.attempts`)."""


HOLD_PREFIX = "hold:"
"""How the owner of a hold (a continuation outside the queue's workers) begins."""


@attrs.frozen
class Hold:
    """An exclusive continuation of a stored run by a process other than a worker
    (``Executor.resume``, the CLI's ``decide``): the queue's claim, on a run that may not
    have been submitted (``created``: its job row exists only while held)."""

    job_id: str
    epoch: int
    created: bool


class Standing(enum.Enum):
    """A job's status refined by its lease: what the transition table is written over."""

    ABSENT = "absent"
    """No job row (never submitted, or a stored run outside the queue)."""
    QUEUED = "queued"
    LEASED = "leased"
    """Running, its worker's lease live."""
    HELD = "held"
    """Running, held live by a process outside the workers (owner starts ``hold:``)."""
    LAPSED = "lapsed"
    """Running, but the lease has expired: claimable again."""
    WAITING = "waiting"
    DUE = "due"
    """Waiting at a barrier whose stored deadline has passed: claimable, so that a worker
    resumes the run, which applies the barrier's default at once (DESIGN §8)."""
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"
    """Cancelled; or running with a cancel mark (see :data:`Op.CANCEL`) whose lease
    lapsed: its process died before ending the run, which stays cancelled."""


def standing(
    status: str | None,
    live: object = False,
    owner: str | None = None,
    marked: object = False,
    due: object = False,
) -> Standing:
    """The standing of a row with ``status`` (None: no row), lease ``live``, ``owner``,
    whether a cancel is ``marked`` for it, and whether its barrier's deadline is ``due``."""
    if status is None:
        return Standing.ABSENT
    if status == JobStatus.WAITING and due:
        return Standing.DUE
    if status != JobStatus.RUNNING:
        return Standing(JobStatus(status).value)
    if not live:
        return Standing.CANCELLED if marked else Standing.LAPSED
    return Standing.HELD if (owner or "").startswith(HOLD_PREFIX) else Standing.LEASED


class Op(enum.StrEnum):
    """The queue operations that move (or refuse to touch) a job."""

    SUBMIT = "submit"
    ADOPT = "adopt"
    """A decision for a stored run outside the queue waiting at a barrier queues it."""
    DECIDE = "decide"
    """Record a decision (the job's status does not change; a held job's live run takes
    it from the store, DESIGN §8)."""
    WAKE = "wake"
    """The decision for a parked job's barrier arrived."""
    CLAIM = "claim"
    HOLD = "hold"
    RENEW = "renew"
    SAVE = "save"
    """A fenced save of a checkpoint that does not end the run."""
    SETTLE = "settle"
    """A fenced save of a terminal checkpoint: it ends the job in the same write."""
    RELEASE = "release"
    PARK = "park"
    FINISH = "finish"
    UNHOLD = "unhold"
    """A hold on a job ends: the job is runnable again."""
    DROP = "drop"
    """A hold on a run that was not in the queue ends: its job row goes (unless the run
    was cancelled: the row keeps saying so)."""
    CANCEL = "cancel"
    """``store.cancel``: a job nobody executes live ends ``cancelled`` at once (a
    worker's claim on it is refused from then on); a held one (a process executing
    the run and following its steering) is *marked*: its run ends ``cancelled`` within
    about a second, and its terminal save settles the job."""


class Refusal(enum.Enum):
    """How an operation refused by the table shows to its caller."""

    SKIPPED = "skipped"
    """Not chosen (a claim passes over the job)."""
    STALE = "stale"
    """The call returns False: the caller's claim is not current."""
    LEASE_LOST = "lease lost"
    """``LeaseLost``: a fenced save writes nothing."""
    NOTHING = "nothing"
    """The call returns None: nothing to hold."""
    BUSY = "busy"
    """``RunBusy``: another process continues the run."""
    FINISHED = "finished"
    """``BarrierError``: the run has finished; decision not applied."""
    NO_RUN = "no run"
    """``BarrierError``: no such run in the store."""
    SUBMITTED = "submitted"
    """``CheckpointError``: a run with this id was already submitted."""
    CANCELLED = "cancelled"
    """``CheckpointError``: the run was cancelled; it is not continued."""


@attrs.frozen
class Move:
    """One row of the table: ``sources`` may move to ``targets`` (None: the row goes)."""

    sources: frozenset[Standing]
    targets: frozenset[JobStatus | None]
    fenced: bool
    """The caller's epoch must be the job's (else refused as ``stale``)."""
    refusal: Refusal
    """How a refusal shows, unless ``refusals`` names the standing."""
    refusals: Mapping[Standing, Refusal] = attrs.field(factory=dict)

    def refusal_of(self, where: Standing) -> Refusal:
        """How refusing this operation on a job in standing ``where`` shows."""
        return self.refusals.get(where, self.refusal)


S, J = Standing, JobStatus
RUNNING = frozenset({S.LEASED, S.HELD, S.LAPSED})
"""Every standing of a running job: what a fenced operation starts from."""
_ENDS = frozenset({J.COMPLETED, J.FAILED})
_FINISHED = {S.COMPLETED: Refusal.FINISHED, S.FAILED: Refusal.FINISHED}

TRANSITIONS: Mapping[Op, Move] = {
    Op.SUBMIT: Move(frozenset({S.ABSENT}), frozenset({J.QUEUED}), False, Refusal.SUBMITTED),
    Op.ADOPT: Move(frozenset({S.ABSENT}), frozenset({J.WAITING, J.QUEUED}), False, Refusal.SKIPPED),
    Op.DECIDE: Move(
        frozenset({S.QUEUED, S.LEASED, S.HELD, S.LAPSED, S.WAITING, S.DUE}),
        frozenset({J.QUEUED, J.RUNNING, J.WAITING}),
        False,
        Refusal.FINISHED,
        {S.ABSENT: Refusal.NO_RUN},
    ),
    Op.WAKE: Move(frozenset({S.WAITING, S.DUE}), frozenset({J.QUEUED}), False, Refusal.SKIPPED),
    Op.CLAIM: Move(
        frozenset({S.QUEUED, S.LAPSED, S.DUE}), frozenset({J.RUNNING}), False, Refusal.SKIPPED
    ),
    Op.HOLD: Move(
        frozenset({S.ABSENT, S.QUEUED, S.WAITING, S.DUE, S.LAPSED}),
        frozenset({J.RUNNING}),
        False,
        Refusal.BUSY,
        {S.COMPLETED: Refusal.NOTHING, S.FAILED: Refusal.NOTHING, S.CANCELLED: Refusal.CANCELLED},
    ),
    Op.RENEW: Move(RUNNING, frozenset({J.RUNNING}), True, Refusal.STALE),
    Op.SAVE: Move(RUNNING, frozenset({J.RUNNING}), True, Refusal.LEASE_LOST),
    Op.SETTLE: Move(RUNNING, _ENDS | {J.CANCELLED}, True, Refusal.LEASE_LOST),
    Op.RELEASE: Move(RUNNING, frozenset({J.QUEUED}), True, Refusal.STALE),
    Op.PARK: Move(RUNNING, frozenset({J.WAITING, J.QUEUED}), True, Refusal.STALE),
    Op.FINISH: Move(RUNNING, _ENDS, True, Refusal.STALE),
    Op.UNHOLD: Move(RUNNING, frozenset({J.QUEUED}), True, Refusal.STALE),
    Op.DROP: Move(
        frozenset(Standing) - {S.ABSENT, S.CANCELLED}, frozenset({None}), True, Refusal.STALE
    ),
    Op.CANCEL: Move(
        frozenset({S.ABSENT, S.QUEUED, S.WAITING, S.DUE, S.LAPSED, S.LEASED, S.HELD, S.CANCELLED}),
        frozenset({J.CANCELLED, J.RUNNING}),
        False,
        Refusal.FINISHED,
        _FINISHED,
    ),
}
"""The job transitions: every operation, from which standings, to which statuses."""


class Refused(Exception):
    """The table refuses ``op`` on a job in standing ``where`` (shown as ``refusal``)."""

    def __init__(self, op: Op, where: Standing, refusal: Refusal) -> None:
        super().__init__(f"{op} refused on a {where.value} job ({refusal.value})")
        self.op, self.where, self.refusal = op, where, refusal


def check(op: Op, where: Standing, *, current: bool = True) -> frozenset[JobStatus | None]:
    """The statuses ``op`` may move a job in standing ``where`` to; ``Refused`` if none.

    ``current``: whether the caller's epoch is the job's (only fenced operations ask).
    """
    move = TRANSITIONS[op]
    if where not in move.sources:
        raise Refused(op, where, move.refusal_of(where))
    if move.fenced and not current:
        raise Refused(op, where, move.refusal)
    return move.targets


def check_target(op: Op, target: JobStatus) -> JobStatus:
    """``target`` if ``op`` may end there, else ``ValueError`` naming both."""
    if target not in TRANSITIONS[op].targets:
        allowed = ", ".join(sorted(str(t) for t in TRANSITIONS[op].targets))
        raise ValueError(f"{op} cannot move a job to {target!r} (only to {allowed})")
    return target


def settles(checkpoint: Checkpoint) -> JobStatus | None:
    """The status a fenced save of ``checkpoint`` ends its job with (None: not terminal)."""
    status = RunStatus(checkpoint.status)
    if status is RunStatus.CANCELLED:  # cancelled through the store: wherever it stopped
        return JobStatus.CANCELLED
    if checkpoint.next_node is None and status in (RunStatus.COMPLETED, RunStatus.FAILED):
        return JobStatus(status.value)
    return None
