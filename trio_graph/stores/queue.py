"""The run queue shared by workers: jobs, leases with epochs, and the fenced store view.

A **job** is a submitted run: ``store.submit(graph_name, state)`` returns its id, which
is also the trace id of its first run. A worker *claims* a runnable job (new, released,
or waiting at a barrier whose decision has arrived, or held by a worker whose lease
expired); each claim increments the job's lease **epoch** and sets a lease the worker
renews while it runs the job.

**Fencing.** The worker's executor writes checkpoints through a :class:`FencedStore`,
a per-claim view carrying ``(job_id, epoch)``: its ``save`` checks, in the same
transaction as the write, that the job's epoch is still the claim's. A worker paused
past its lease (SIGSTOP, a long GC) whose job was claimed again has its writes refused
with :class:`~trio_graph.errors.LeaseLost`, so a job's checkpoint chain never forks.

**Traces.** Resuming a stored run starts a new trace (``resumed_from`` links it), so a
job that failed over or waited at a barrier spans several traces: ``job_id`` is the
first, ``Job.trace_id`` the current one. ``store.runs()`` keeps one row per trace (the
lineage stays visible); ``store.job(id)`` accepts the job id or any of its trace ids,
and so do ``decide`` and ``decide_all``.

Model layer: no trio import.
"""

from __future__ import annotations

import builtins
import enum
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import attrs

from .._model.checkpoint import Changes, Checkpoint
from .._model.decisions import EVERY, BarrierId, Decision, DecisionEntry
from ..errors import BarrierError, LeaseLost, StoreUnavailable
from .protocol import Store

if TYPE_CHECKING:
    from .protocol import RunInfo


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


@runtime_checkable
class QueueStore(Store, Protocol):
    """A store that also keeps the run queue (PostgresStore, SQLiteStore)."""

    # -- anyone: submit runs and decisions -------------------------------------------
    async def submit(
        self, graph_name: str, state: Mapping[str, Any], *, trace_id: str | None = None
    ) -> str: ...
    async def decide(
        self, trace_id: str, barrier_id: BarrierId | str, decision: Decision
    ) -> None: ...
    async def decide_all(self, trace_id: str, node: str, decision: Decision) -> None: ...
    async def job(self, trace_id: str) -> Job | None: ...
    async def jobs(self, status: JobStatus | None = None) -> builtins.list[Job]: ...

    # -- workers -----------------------------------------------------------------------
    async def claim(
        self, owner: str, graph_names: builtins.list[str], limit: int, lease: float
    ) -> builtins.list[Claim]: ...
    async def renew(self, job_id: str, epoch: int, lease: float) -> bool: ...
    async def release(self, job_id: str, epoch: int) -> bool: ...
    async def park(
        self,
        job_id: str,
        epoch: int,
        barrier_id: BarrierId,
        *,
        refused: Sequence[DecisionEntry] = (),
    ) -> bool: ...
    async def finish(
        self, job_id: str, epoch: int, status: JobStatus, error: str | None = None
    ) -> bool: ...
    async def save_fenced(
        self, checkpoint: Checkpoint, job_id: str, epoch: int, *, changes: Changes | None = None
    ) -> None: ...
    async def decisions(self, job_id: str) -> builtins.list[DecisionEntry]: ...
    async def wait_for_work(self, seconds: float) -> None: ...

    # -- anyone continuing a stored run (exclusive) ----------------------------------
    async def hold(self, trace_id: str, owner: str, lease: float) -> Hold | None: ...
    async def unhold(self, held: Hold) -> None: ...


class FencedStore:
    """The store as one claim of one job sees it: reads pass through, writes are fenced.

    ``save`` writes only while ``epoch`` is still the job's epoch (checked in the
    write's own transaction), else raises ``LeaseLost`` and writes nothing.
    """

    def __init__(self, store: QueueStore, job_id: str, epoch: int) -> None:
        self.store = store
        self.job_id = job_id
        self.epoch = epoch
        self.refused = 0
        """Writes refused because the lease was lost."""
        self.outage: str | None = None
        """The store outage that refuses this view's saves (the worker retries anew)."""

    async def save(self, checkpoint: Checkpoint, *, changes: Changes | None = None) -> None:
        """Fenced save. After an outage (``StoreUnavailable``) every later save of this
        view is refused the same way: the run's failure checkpoint must not record an
        outage as the job's failure once the store is back (the worker retries)."""
        if self.outage is not None:
            raise StoreUnavailable(self.outage, checkpoint_id=checkpoint.checkpoint_id)
        try:
            await self.store.save_fenced(checkpoint, self.job_id, self.epoch, changes=changes)
        except LeaseLost:
            self.refused += 1
            raise
        except StoreUnavailable as exc:
            self.outage = exc.message
            raise

    async def load(self, checkpoint_id: str) -> Checkpoint:
        return await self.store.load(checkpoint_id)

    async def latest(self, trace_id: str) -> Checkpoint | None:
        return await self.store.latest(trace_id)

    async def list(self, trace_id: str) -> builtins.list[Checkpoint]:
        return await self.store.list(trace_id)

    async def delete(self, trace_id: str) -> None:
        await self.store.delete(trace_id)

    async def runs(self) -> builtins.list[RunInfo]:
        return await self.store.runs()

    async def aclose(self) -> None:
        """Nothing to close: the view does not own the store."""

    async def __aenter__(self) -> FencedStore:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()


class DecisionsMixin:
    """``decide``/``decide_all`` for the queue stores, on their ``_decide(trace, node,
    occurrence, decision, adopt_at)`` (occurrence 0 is a wildcard; ``adopt_at`` is the
    barrier a stored run not yet in the queue waits at, read from its checkpoint)."""

    if TYPE_CHECKING:  # provided by the store

        async def job(self, trace_id: str) -> Job | None: ...
        async def latest(self, trace_id: str) -> Checkpoint | None: ...

    async def _decide(
        self,
        trace_id: str,
        node: str,
        occurrence: int,
        decision: Decision,
        adopt_at: BarrierId | None,
    ) -> None:
        raise NotImplementedError

    async def _adopt_at(self, trace_id: str) -> BarrierId | None:
        """The barrier a stored run outside the queue is parked at (None if in the queue)."""
        if await self.job(trace_id) is not None:
            return None
        latest = await self.latest(trace_id)
        return None if latest is None else latest.pending_barrier

    async def decide(self, trace_id: str, barrier_id: BarrierId | str, decision: Decision) -> None:
        """Keep ``decision`` for one barrier occurrence of a run (by job or trace id).

        Level-triggered like ``run.decide``: kept until that occurrence is reached. A run
        parked at that barrier becomes runnable; for a parked run, a decision that is not
        for its barrier is refused (``BarrierError``, see :func:`check_answers`). A stored
        run not started from the queue but waiting at a barrier is adopted into the queue.
        """
        bid = BarrierId.parse(barrier_id) if isinstance(barrier_id, str) else barrier_id
        if not isinstance(bid, BarrierId):
            raise BarrierError(f"decide() needs a BarrierId, got {type(barrier_id).__name__}")
        adopt_at = await self._adopt_at(trace_id)
        await self._decide(trace_id, bid.node, bid.occurrence, decision, adopt_at)

    async def decide_all(self, trace_id: str, node: str, decision: Decision) -> None:
        """Answer every occurrence of barrier ``node`` of a run from now on (a wildcard)."""
        await self._decide(trace_id, node, EVERY, decision, await self._adopt_at(trace_id))
