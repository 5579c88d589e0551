"""``Worker``: serve named graphs from a shared run queue (DESIGN §11).

Runtime layer. ``await Worker(store, graphs={"name": graph}, concurrency=N).serve()``
claims runnable jobs from a queue store (:class:`~trio_graph.stores.PostgresStore`, or
:class:`~trio_graph.stores.SQLiteStore` for one machine) and runs each under a lease it
renews every third of the lease:

- a new job starts with ``executor.stream(graph, state, trace_id=job_id)``; a job with a
  checkpoint resumes with ``executor.resume`` (a new trace, ``resumed_from`` linking it),
  with the decisions the store holds for it;
- the executor writes through a :class:`~trio_graph.stores.queue.FencedStore` carrying
  the claim's ``(job_id, epoch)``: once another worker has claimed the job (this one was
  paused past its lease), every write is refused with ``LeaseLost`` and the run stops;
  a failed renewal stops it too;
- a run reaching a barrier with no decision is checkpointed and *parked*: the worker
  lets go of it, and ``store.decide`` makes it runnable again for any worker (durable
  human-in-the-loop, no process kept waiting). A parked barrier's timeout is not
  enforced while parked; it starts again when the run resumes;
- on cancellation (shutdown) in-flight runs checkpoint and their leases are released,
  so another worker takes them at once; a worker that dies loses its lease, and another
  resumes the run from its last checkpoint once the lease expires.

Checkpoints are written after every step by default (``CheckpointPolicy(every_step=True)``)
so that a failover repeats at most the step that was running. Steps run at least once:
a node interrupted by a crash runs again on the worker that takes over.
"""

from __future__ import annotations

import logging
import os
import socket
import uuid
from collections.abc import Iterable, Mapping

import attrs
import trio

from . import events as ev
from ._model.checkpoint import Checkpoint, CheckpointPolicy, RunStatus
from ._model.decisions import BarrierId, Decision, DecisionEntry, find_entry, passed
from ._model.graph import Graph
from ._model.retry import RetryPolicy
from ._runtime.executor import Executor
from ._runtime.run import Run
from .errors import Cancelled, CheckpointError, GraphError
from .stores.queue import Claim, FencedStore, JobStatus, QueueStore
from .worker_helpers import apply_decisions as _apply
from .worker_helpers import lease_lost_in as _lease_lost_in
from .worker_helpers import outage_in as _outage_in

log = logging.getLogger("trio_graph.worker")


@attrs.define
class WorkerStats:
    """What a worker did, counted per claim."""

    claimed: int = 0
    completed: int = 0
    failed: int = 0
    parked: int = 0
    released: int = 0
    """Claims given back on shutdown."""
    lease_lost: int = 0
    """Claims lost to another worker (paused past the lease, or renewals failing)."""
    refused_writes: int = 0
    """Checkpoint writes refused by the fence."""
    store_retries: int = 0
    """Times a run was taken up again after a store outage (``StoreUnavailable``)."""


@attrs.define
class _ClaimState:
    lost: bool = False
    settled: bool = False


class Worker:
    """Serves the graphs in ``graphs``, keyed by the name jobs are submitted under (a plain
    list of graphs is keyed by ``graph.name``).

    ``concurrency`` runs at most that many jobs at once; ``lease`` (seconds) is how long
    a claim lasts without renewal; ``poll_interval`` bounds how long an idle worker
    waits before looking again (expired leases are found by polling; new work and
    decisions also wake it through the store). ``max_steps``, ``policy`` and ``buffer``
    configure the worker's :class:`~trio_graph._runtime.executor.Executor`; ``force`` resumes
    checkpoints written by a different version of a graph (else the job fails with
    ``GraphChanged``).
    """

    def __init__(
        self,
        store: QueueStore,
        graphs: Mapping[str, Graph] | Iterable[Graph],
        *,
        concurrency: int = 1,
        lease: float = 30.0,
        poll_interval: float = 1.0,
        max_steps: int = 50,
        policy: CheckpointPolicy | None = None,
        buffer: int = 256,
        force: bool = False,
        worker_id: str | None = None,
    ) -> None:
        if not isinstance(concurrency, int) or concurrency < 1:
            raise ValueError(f"concurrency must be a positive int, got {concurrency!r}")
        if not lease > 0:
            raise ValueError(f"lease must be positive seconds, got {lease!r}")
        if not poll_interval > 0:
            raise ValueError(f"poll_interval must be positive seconds, got {poll_interval!r}")
        if not isinstance(graphs, Mapping):
            graphs = {g.name: g for g in graphs}
        if not graphs:
            raise ValueError("graphs must name at least one graph")
        for name, graph in graphs.items():
            if not isinstance(name, str) or not isinstance(graph, Graph):
                raise ValueError(f"graphs must map names to built graphs, got {name!r}: {graph!r}")
        self.store = store
        self.graphs = dict(graphs)
        self.concurrency = concurrency
        self.lease = float(lease)
        self.poll_interval = float(poll_interval)
        self.max_steps = max_steps
        self.policy = policy or CheckpointPolicy(every_step=True)
        self.buffer = buffer
        self.force = force
        self.worker_id = worker_id or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.stats = WorkerStats()
        self.retry = RetryPolicy(backoff=0.05, max_backoff=max(self.lease / 3, 0.05))
        """Back-off between attempts at a job after a store outage (pure arithmetic)."""

    async def serve(
        self,
        *,
        until_idle: bool = False,
        task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        """Claim and run jobs until cancelled (or, with ``until_idle``, until none is left).

        Cancelling it shuts down gracefully: in-flight runs checkpoint and release their
        leases before it returns.
        """
        names = list(self.graphs)
        slots = trio.Semaphore(self.concurrency)
        async with trio.open_nursery() as nursery:
            task_status.started()
            while True:
                await slots.acquire()
                want = 1
                while slots.value > 0:
                    slots.acquire_nowait()
                    want += 1
                try:
                    claims = await self.store.claim(self.worker_id, names, want, self.lease)
                except CheckpointError as exc:
                    log.warning("worker %s: claim failed: %s", self.worker_id, exc)
                    claims = []
                # No checkpoint between the claim and start_soon: a claim is never dropped.
                for claim in claims:
                    nursery.start_soon(self._serve_claim, claim, slots)
                for _ in range(want - len(claims)):
                    slots.release()
                if claims:
                    continue
                if until_idle and slots.value == self.concurrency:
                    return
                await self.store.wait_for_work(self.poll_interval)

    async def _serve_claim(self, claim: Claim, slots: trio.Semaphore) -> None:
        try:
            await self._run_claim(claim)
        except Exception as exc:
            if _lease_lost_in(exc):  # refused inside a fan-out or a group: a lost lease
                self.stats.lease_lost += 1
                log.warning(
                    "worker %s: lease on job %s (epoch %d) lost; run stopped",
                    self.worker_id,
                    claim.job_id,
                    claim.epoch,
                )
            else:  # a bug or a store outage: the lease expires and another worker retries
                log.exception("worker %s: job %s failed unexpectedly", self.worker_id, claim.job_id)
        finally:
            slots.release()

    async def _run_claim(self, claim: Claim) -> None:
        self.stats.claimed += 1
        log.info(
            "worker %s: claimed job %s (epoch %d, checkpoint %s)",
            self.worker_id,
            claim.job_id,
            claim.epoch,
            claim.checkpoint_id,
        )
        fenced = FencedStore(self.store, claim.job_id, claim.epoch)
        state = _ClaimState()
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._keep_lease, claim, state, nursery.cancel_scope)
                await self._drive_retrying(claim, fenced, state)
                nursery.cancel_scope.cancel()
        except BaseException:
            if not state.lost and not state.settled:
                with trio.CancelScope(shield=True):
                    try:
                        if await self.store.release(claim.job_id, claim.epoch):
                            self.stats.released += 1
                    except CheckpointError as exc:
                        log.warning("worker %s: release failed: %s", self.worker_id, exc)
            raise
        finally:
            self.stats.refused_writes += fenced.refused
        if state.lost:
            self.stats.lease_lost += 1
            log.warning(
                "worker %s: lease on job %s (epoch %d) lost; run stopped",
                self.worker_id,
                claim.job_id,
                claim.epoch,
            )

    async def _keep_lease(self, claim: Claim, state: _ClaimState, scope: trio.CancelScope) -> None:
        every = self.lease / 3
        last_ok = trio.current_time()
        while True:
            await trio.sleep(every)
            try:
                ok = await self.store.renew(claim.job_id, claim.epoch, self.lease)
            except CheckpointError as exc:
                log.warning("worker %s: renewing lease failed: %s", self.worker_id, exc)
                ok = trio.current_time() - last_ok < self.lease
            else:
                if ok:
                    last_ok = trio.current_time()
            if not ok:
                state.lost = True
                scope.cancel()
                return

    async def _drive_retrying(self, claim: Claim, fenced: FencedStore, state: _ClaimState) -> None:
        """``_drive``, again from the job's last checkpoint after each store outage
        (``StoreUnavailable``), with back-off: an outage is not the run's failure. Ends
        when the run settles, or when the lease is lost (renewals fail for a whole lease;
        another worker takes over then)."""
        attempt = 0
        while True:
            try:
                if attempt:
                    claim = await self._refreshed(claim, state)
                    fenced.outage = None
                if not state.lost:
                    await self._drive(claim, fenced, state)
                return
            except Exception as exc:
                if state.lost or not _outage_in(exc):
                    raise
                attempt += 1
                delay = self.retry.delay(attempt)
                log.warning(
                    "worker %s: store unavailable for job %s (%s); retrying in %.2fs",
                    self.worker_id,
                    claim.job_id,
                    exc,
                    delay,
                )
                self.stats.store_retries += 1
                await trio.sleep(delay)

    async def _refreshed(self, claim: Claim, state: _ClaimState) -> Claim:
        """The claim as the job row stands now (its last checkpoint and trace)."""
        job = await self.store.job(claim.job_id)
        if job is None or job.epoch != claim.epoch:
            state.lost = True
            return claim
        return attrs.evolve(claim, trace_id=job.trace_id, checkpoint_id=job.checkpoint_id)

    async def _drive(self, claim: Claim, fenced: FencedStore, state: _ClaimState) -> None:
        """Start or resume the job's run, watch it, then settle the job row."""
        store, job_id, epoch = self.store, claim.job_id, claim.epoch
        graph = self.graphs[claim.graph_name]
        executor = Executor(
            store=fenced, max_steps=self.max_steps, policy=self.policy, buffer=self.buffer
        )
        latest: Checkpoint | None = None
        if claim.checkpoint_id is not None:
            latest = await store.load(claim.checkpoint_id)
            if latest.next_node is None:
                # Nothing left to run, but the job row was not settled: the run failed, or
                # its end node ran and it stopped before the completion checkpoint.
                if latest.status == RunStatus.FAILED:
                    await self._settle(claim, state, JobStatus.FAILED, latest.error)
                else:
                    await self._settle(claim, state, JobStatus.COMPLETED)
                return
        entries = await store.decisions(job_id)
        if latest is not None:
            entries = [
                e for e in entries if not passed(e, latest.occurrences, latest.pending_barrier)
            ]
        exact = {BarrierId(e.node, e.occurrence): e.decision for e in entries if not e.every}
        wild = {e.node: e.decision for e in entries if e.every}
        try:
            if latest is None:
                ctx = executor.stream(graph, claim.state or {}, trace_id=job_id)
            else:
                ctx = executor.resume(graph, latest.trace_id, force=self.force)
            async with ctx as run:
                parked, refused = await self._watch(run, job_id, exact, wild)
        except GraphError as exc:  # could not start: graph changed, bad checkpoint...
            if _lease_lost_in(exc):
                state.lost = True
                return
            if _outage_in(exc):
                raise
            await self._settle(claim, state, JobStatus.FAILED, str(exc))
            return
        error = run.error
        if state.lost or _lease_lost_in(error):
            state.lost = True
        elif _outage_in(error):
            assert error is not None
            raise error  # retried from the last checkpoint
        elif run.result is not None:
            await self._settle(claim, state, JobStatus.COMPLETED)
        elif isinstance(error, Cancelled) and parked is not None:
            if await store.park(job_id, epoch, parked, refused=refused):
                self.stats.parked += 1
            state.settled = True
        else:
            await self._settle(claim, state, JobStatus.FAILED, str(error))

    async def _settle(
        self, claim: Claim, state: _ClaimState, status: JobStatus, error: str | None = None
    ) -> None:
        # Usually a no-op: the run's terminal checkpoint already settled the job.
        await self.store.finish(claim.job_id, claim.epoch, status, error)
        state.settled = True
        if status == JobStatus.COMPLETED:
            self.stats.completed += 1
        else:
            self.stats.failed += 1
            log.warning("worker %s: job %s failed: %s", self.worker_id, claim.job_id, error)

    async def _watch(
        self,
        run: Run,
        job_id: str,
        exact: dict[BarrierId, Decision],
        wild: dict[str, Decision],
    ) -> tuple[BarrierId | None, list[DecisionEntry]]:
        """Consume the run's events; returns the barrier it was parked at, if any, and
        the stored decisions the graph refused.

        Shielded: on shutdown or a lost lease the run itself is cancelled (the same
        enclosing scope reaches it) and saves its checkpoint on the way out; the consumer
        reads to the end rather than leaving first, which would stop the run at its next
        event without that checkpoint.
        """
        refused = _apply(run, exact, wild)
        parked = None
        with trio.CancelScope(shield=True):
            parked = await self._consume(run, job_id, exact, wild, refused)
        return parked, refused

    async def _consume(
        self,
        run: Run,
        job_id: str,
        exact: dict[BarrierId, Decision],
        wild: dict[str, Decision],
        refused: list[DecisionEntry],
    ) -> BarrierId | None:
        parked: BarrierId | None = None
        async for event in run:
            if not isinstance(event, ev.BarrierWaiting) or parked is not None:
                continue
            bid = event.barrier_id
            if bid in exact or bid.node in wild:
                continue  # the run takes it at once
            found = find_entry(await self.store.decisions(job_id), bid)
            if found is not None:
                more_exact = {} if found.every else {bid: found.decision}
                more_wild = {bid.node: found.decision} if found.every else {}
                refused += _apply(run, more_exact, more_wild)
                exact.update(more_exact)
                wild.update(more_wild)
                if more_exact or more_wild:
                    continue
            parked = bid
            run.cancel()
        return parked


__all__ = ["Worker", "WorkerStats"]
