"""Serving one claimed job: keep its lease, run it, then settle or park it.

Theory of operation. A worker's claim is ``(job_id, epoch)`` on a job row; everything
the job's run writes goes through a :class:`~trio_graph.stores.queue.FencedStore` that
carries it, so once another worker holds the job every write is refused (``LeaseLost``).
:meth:`ClaimedJob.serve` keeps the lease in a task of its own (renewed every third of
the lease; a failed renewal, or one refused, marks the claim ``lost`` and cancels the
run) and gives the claim back if it leaves early (shutdown). It runs the job with
:meth:`ClaimedJob.run_through_outages`: :meth:`ClaimedJob.run_once` again from the
job's last checkpoint after each store outage, with back-off. One attempt starts the run
(or resumes it, with the decisions the store holds), follows its events, and parks it at
the first barrier nobody answered; then the job row is settled: completed, failed, or
parked for ``store.decide`` to make runnable again.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

import attrs
import trio

from .. import events as ev
from .._model.checkpoint import Checkpoint, CheckpointPolicy, RunStatus
from .._model.decisions import BarrierId, brief_value, find_entry
from .._model.graph import Graph
from .._model.retry import RetryPolicy
from .._runtime.executor import Executor
from .._runtime.run import Run
from ..errors import Cancelled, CheckpointError, GraphError
from ..stores.queue import Claim, FencedStore, JobStatus, QueueStore
from .failures import lease_lost_in, outage_in
from .parking import Parking
from .stats import WorkerStats
from .steered import SteeredFence, fence_for
from .stored_decisions import StoredDecisions

log = logging.getLogger("trio_graph.worker")


@attrs.frozen
class JobSettings:
    """How a worker runs its jobs (see :class:`trio_graph.worker.Worker`)."""

    worker_id: str
    lease: float
    max_steps: int
    policy: CheckpointPolicy
    buffer: int
    force: bool
    retry: RetryPolicy
    """Back-off between attempts after a store outage."""
    wall_clock: Callable[[], float] = time.time
    """Epoch seconds, for barrier deadlines (the executor's, and due parked jobs)."""
    max_attempts: int | None = None
    """Claims in a row whose worker stopped without letting go, after which the job
    fails (None: no limit)."""
    park_after: float = 0.0
    """Seconds a run waits, live, at an unanswered barrier before it is parked."""
    on_event: Callable[[str, ev.Event], Any] | None = None
    """Called with the job id and each event of the job's runs, as it comes."""


@attrs.define
class ClaimedJob:
    """One claim being served; ``lost`` once another worker may hold the job, ``settled``
    once the job row says how it ended (nothing left to give back)."""

    store: QueueStore
    claim: Claim
    versions: list[Graph]
    """The served versions of the job's graph, oldest first."""
    settings: JobSettings
    stats: WorkerStats
    fenced: FencedStore = attrs.field(init=False)
    lost: bool = False
    settled: bool = False
    cancelled_meanwhile: bool = False
    """The job row said ``cancelled`` (this claim's epoch) when the lease looked lost."""

    def __attrs_post_init__(self) -> None:
        self.fenced = fence_for(self.store, self.claim.job_id, self.claim.epoch)

    @property
    def cancelled(self) -> bool:
        """Whether the store said the job's run was cancelled (``store.cancel``): its
        job row is ``cancelled`` already, and the fence refuses the run's last writes."""
        steered = isinstance(self.fenced, SteeredFence) and self.fenced.cancelled
        return steered or self.cancelled_meanwhile

    async def _lost_to_a_cancel(self) -> None:
        """A write or renewal refused: was the job cancelled (its row ``cancelled`` at
        this claim's epoch) before the follower told the run? Then it was not lost."""
        try:
            job = await self.store.job(self.claim.job_id)
        except CheckpointError:
            return
        if job is not None and job.status == JobStatus.CANCELLED and job.epoch == self.claim.epoch:
            self.cancelled_meanwhile = True

    def version_for(self, graph_hash: str) -> Graph:
        """The served version a checkpoint was written by, else the newest (which a
        resume refuses with ``GraphChanged`` unless forced)."""
        for graph in reversed(self.versions):
            if graph.hash() == graph_hash:
                return graph
        return self.versions[-1]

    async def serve(self) -> None:
        """Run the job under its lease; give the claim back if this leaves early."""
        claim = self.claim
        self.stats.claimed += 1
        log.info(
            "worker %s: claimed job %s (epoch %d, checkpoint %s)",
            self.settings.worker_id,
            claim.job_id,
            claim.epoch,
            claim.checkpoint_id,
        )
        try:
            if await self._exhausted():
                return
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._keep_lease, nursery.cancel_scope)
                await self.run_through_outages()
                nursery.cancel_scope.cancel()
        except BaseException:
            if not self.lost and not self.settled:
                with trio.CancelScope(shield=True):
                    await self._release()
            raise
        finally:
            self.stats.refused_writes += self.fenced.refused
        if self.lost and not self.cancelled:
            await self._lost_to_a_cancel()
        if self.cancelled:
            self.stats.cancelled += 1
            log.info(
                "worker %s: job %s was cancelled; run stopped",
                self.settings.worker_id,
                claim.job_id,
            )
        elif self.lost:
            self.stats.lease_lost += 1
            log_lease_lost(self.settings.worker_id, claim)

    async def _exhausted(self) -> bool:
        """Fail the job, with its last error, when this claim is one over
        ``max_attempts`` (the workers before kept stopping without letting go)."""
        limit = self.settings.max_attempts
        if limit is None or self.claim.attempts <= limit:
            return False
        job = await self.store.job(self.claim.job_id)
        latest = await self.store.latest(self.claim.job_id)
        last = (job.error if job else None) or (latest.error if latest else None)
        await self._settle(
            JobStatus.FAILED,
            f"gave up after {limit} attempts (its workers stopped without finishing it); "
            f"last error: {last or 'none recorded'}",
        )
        return True

    async def _release(self) -> None:
        try:
            if await self.store.release(self.claim.job_id, self.claim.epoch):
                self.stats.released += 1
        except CheckpointError as exc:
            log.warning("worker %s: release failed: %s", self.settings.worker_id, exc)

    async def _keep_lease(self, scope: trio.CancelScope) -> None:
        lease = self.settings.lease
        last_ok = trio.current_time()
        while True:
            await trio.sleep(lease / 3)
            try:
                ok = await self.store.renew(self.claim.job_id, self.claim.epoch, lease)
            except CheckpointError as exc:
                log.warning("worker %s: renewing lease failed: %s", self.settings.worker_id, exc)
                ok = trio.current_time() - last_ok < lease
            else:
                if ok:
                    last_ok = trio.current_time()
            if not ok:
                self.lost = True
                scope.cancel()
                return

    async def run_through_outages(self) -> None:
        """:meth:`run_once`, again from the job's last checkpoint after each store outage
        (``StoreUnavailable``), with back-off: an outage is not the run's failure. Ends
        when the run settles, or when the lease is lost (renewals fail for a whole lease;
        another worker takes over then)."""
        attempt = 0
        while True:
            try:
                if attempt:
                    await self._refresh_claim()
                    self.fenced.outage = None
                if not self.lost:
                    await self.run_once()
                return
            except Exception as exc:
                if self.lost or not outage_in(exc):
                    raise
                attempt += 1
                delay = self.settings.retry.delay(attempt)
                log.warning(
                    "worker %s: store unavailable for job %s (%s); retrying in %.2fs",
                    self.settings.worker_id,
                    self.claim.job_id,
                    exc,
                    delay,
                )
                self.stats.store_retries += 1
                await trio.sleep(delay)

    async def _refresh_claim(self) -> None:
        """Take the claim as the job row stands now (its last checkpoint and trace)."""
        job = await self.store.job(self.claim.job_id)
        if job is None or job.epoch != self.claim.epoch:
            self.lost = True
            return
        self.claim = attrs.evolve(
            self.claim, trace_id=job.trace_id, checkpoint_id=job.checkpoint_id
        )

    async def run_once(self) -> None:
        """Start or resume the job's run, follow it, then settle or park the job row."""
        claim = self.claim
        latest: Checkpoint | None = None
        if claim.checkpoint_id is not None:
            latest = await self.store.load(claim.checkpoint_id)
            if latest.next_node is None:
                # Nothing left to run, but the job row was not settled: the run failed, or
                # its end node ran and it stopped before the completion checkpoint.
                if latest.status == RunStatus.FAILED:
                    await self._settle(JobStatus.FAILED, latest.error)
                else:
                    await self._settle(JobStatus.COMPLETED)
                return
        if isinstance(self.fenced, SteeredFence):  # also the follower's first read
            entries = list((await self.fenced.first_read()).decisions)
        else:
            entries = await self.store.decisions(claim.job_id)
        decisions = StoredDecisions.ahead_of(entries, latest)
        s = self.settings
        executor = Executor(
            store=self.fenced,
            max_steps=s.max_steps,
            policy=s.policy,
            buffer=s.buffer,
            wall_clock=s.wall_clock,
        )
        try:
            if latest is None:
                ctx = executor.stream(self.versions[-1], claim.state or {}, trace_id=claim.job_id)
            else:
                graph = self.version_for(latest.graph_hash)
                ctx = executor.resume(graph, latest.trace_id, force=s.force)
            async with ctx as run:
                parked, deadline = await self._follow(run, decisions)
        except GraphError as exc:  # could not start: graph changed, bad checkpoint...
            if lease_lost_in(exc):
                self.lost = True
                return
            if outage_in(exc):
                raise
            await self._settle(JobStatus.FAILED, str(exc))
            return
        await self._after_run(run, parked, decisions, deadline)

    async def _after_run(
        self,
        run: Run,
        parked: BarrierId | None,
        decisions: StoredDecisions,
        deadline: float | None = None,
    ) -> None:
        """Settle the job row by how the run ended (or re-raise an outage, to retry)."""
        error = run.error
        if self.cancelled and run.result is None:  # the job row says so already
            self.settled = True
        elif self.lost or lease_lost_in(error):
            self.lost = True
        elif outage_in(error):
            assert error is not None
            raise error  # retried from the last checkpoint
        elif run.result is not None:
            await self._settle(JobStatus.COMPLETED)
        elif isinstance(error, Cancelled) and parked is not None:
            claim = self.claim
            refused = decisions.refused
            if await self.store.park(
                claim.job_id, claim.epoch, parked, refused=refused, deadline=deadline
            ):
                self.stats.parked += 1
            self.settled = True
        else:
            await self._settle(JobStatus.FAILED, str(error))

    async def _settle(self, status: JobStatus, error: str | None = None) -> None:
        # Usually a no-op: the run's terminal checkpoint already settled the job. Counted
        # first: a shutdown (SIGTERM) that cancels this call does not undo the run's end.
        if status == JobStatus.COMPLETED:
            self.stats.completed += 1
        else:
            self.stats.failed += 1
            log.warning(
                "worker %s: job %s failed: %s", self.settings.worker_id, self.claim.job_id, error
            )
        await self.store.finish(self.claim.job_id, self.claim.epoch, status, error)
        self.settled = True

    async def _follow(
        self, run: Run, decisions: StoredDecisions
    ) -> tuple[BarrierId | None, float | None]:
        """Give the run its stored decisions and consume its events; the barrier it was
        parked at (cancelled there, checkpointed), if any, and that barrier's deadline.
        A barrier with no decision waits ``park_after`` seconds (:class:`.parking.Parking`)
        while the executor's follower of the store's steering may answer it in place; one
        whose deadline has passed is not parked: the run applies its default at once.

        Shielded: on shutdown or a lost lease the run itself is cancelled (the same
        enclosing scope reaches it) and saves its checkpoint on the way out; the consumer
        reads to the end rather than leaving first, which would stop the run at its next
        event without that checkpoint.
        """
        decisions.hand_to(run)
        with trio.CancelScope(shield=True):
            async with trio.open_nursery() as nursery:
                parking = Parking(run, self.settings.park_after, nursery)
                async for event in run:
                    self._show(event)
                    if isinstance(event, ev.BarrierResolved):
                        parking.resolved(event.barrier_id)
                    if isinstance(event, ev.BarrierWaiting) and parking.parked is None:
                        await self._waiting(run, event, decisions, parking)
                parking.stop()
        return parking.parked, parking.deadline if parking.parked is not None else None

    async def _waiting(
        self, run: Run, event: ev.BarrierWaiting, decisions: StoredDecisions, parking: Parking
    ) -> None:
        """The run waits at a barrier: it takes a decision it holds or the store keeps
        (or its passed deadline's default) at once; else it is parked after a while."""
        bid = event.barrier_id
        if decisions.answers(bid) or _due(event.deadline, self.settings.wall_clock):
            return  # the run takes it (or its default) at once
        found = find_entry(await self.store.decisions(self.claim.job_id), bid)
        if found is not None and decisions.take(run, found):
            return
        parking.waiting(bid, event.deadline)

    def _show(self, event: ev.Event) -> None:
        """Hand ``event`` to the worker's ``on_event``; log what nodes stream (shortened)."""
        if isinstance(event, ev.NodeOutput) and log.isEnabledFor(logging.INFO):
            where = event.node if event.branch is None else f"{event.node}.{event.branch}"
            data = event.data if isinstance(event.data, str) else brief_value(event.data, 200)
            log.info("job %s: %s > %s", self.claim.job_id, where, shorten(data, 200))
        if self.settings.on_event is not None:
            self.settings.on_event(self.claim.job_id, event)


def shorten(text: str, width: int) -> str:
    """``text`` on one line, at most ``width`` characters."""
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 3] + "..."


def _due(deadline: float | None, wall_clock: Callable[[], float]) -> bool:
    return deadline is not None and deadline <= wall_clock()


def log_lease_lost(worker_id: str, claim: Claim) -> None:
    """The warning for a claim lost to another worker (the run was stopped)."""
    log.warning(
        "worker %s: lease on job %s (epoch %d) lost; run stopped",
        worker_id,
        claim.job_id,
        claim.epoch,
    )
