"""The queue store protocol and the fenced view a claim writes through.

A **job** is a submitted run: ``store.submit(graph_name, state)`` returns its id, which
is also the trace id of its first run. A worker *claims* a runnable job (new, released,
or waiting at a barrier whose decision has arrived, or held by a worker whose lease
expired); each claim increments the job's lease **epoch** and sets a lease the worker
renews while it runs the job.

**Fencing.** The worker's executor writes checkpoints through a :class:`FencedStore`,
a per-claim view carrying ``(job_id, epoch)``: its ``save`` passes them to the store's
``save_fenced``, whose write checks, in its own transaction, that the job's epoch is
still the claim's. A worker paused past its lease (SIGSTOP, a long GC) whose job was
claimed again has its writes refused with :class:`~trio_graph.errors.LeaseLost`, so a
job's checkpoint chain never forks.

**Traces.** Resuming a stored run starts a new trace (a segment, ``resumed_from`` links
it) under the same run id, so a job that failed over or waited at a barrier spans
several traces: ``job_id`` is the run id (its first trace id), ``Job.trace_id`` the
current one. ``store.runs()`` keeps one row per run (its current segment's);
``store.job(id)`` accepts the job id or any of its trace ids, and so do ``decide`` and
``decide_all``.

No trio import.
"""

from __future__ import annotations

import builtins
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from ..._model.checkpoint import Changes, Checkpoint
from ..._model.decisions import BarrierId, Decision, DecisionEntry
from ...errors import LeaseLost, StoreUnavailable
from ..protocol import Store
from .jobs import Claim, Hold, Job, JobStatus

if TYPE_CHECKING:
    from ..protocol import RunInfo


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
        self,
        owner: str,
        graph_names: builtins.list[str],
        limit: int,
        lease: float,
        *,
        now: float | None = None,
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
        deadline: float | None = None,
    ) -> bool: ...
    async def finish(
        self, job_id: str, epoch: int, status: JobStatus, error: str | None = None
    ) -> bool: ...
    async def save_fenced(
        self, checkpoint: Checkpoint, job_id: str, epoch: int, *, changes: Changes | None = None
    ) -> None: ...
    async def decisions(self, job_id: str) -> builtins.list[DecisionEntry]: ...
    async def wait_for_work(self, seconds: float) -> None: ...
    async def stop_waiting(self) -> None: ...
    async def announce(self, worker_id: str, graph_names: Sequence[str]) -> None: ...

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
