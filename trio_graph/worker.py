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
- a claimed run follows the store's steering live, as any executing run does (DESIGN
  §8): a decision sent through the store is applied in place within about a second,
  and ``store.cancel`` stops it (its job is ``cancelled`` at once);
- a run reaching a barrier with no decision waits there ``park_after`` seconds (a
  decision sent meanwhile answers it in the same claim), then is checkpointed and
  *parked*: the worker lets go of it, and ``store.decide`` makes it runnable again for
  any worker (durable human-in-the-loop, no process kept waiting). A parked
  barrier's deadline holds while parked: once it passes, a worker claims the job and
  the run applies the barrier's default at once;
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
import time
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import trio

from . import events as ev
from ._model.checkpoint import CheckpointPolicy
from ._model.graph import Graph
from ._model.retry import RetryPolicy
from ._worker.claimed_job import ClaimedJob, JobSettings, log_lease_lost
from ._worker.failures import lease_lost_in
from ._worker.stats import WorkerStats
from .errors import CheckpointError
from .stores.queue import Claim, QueueStore

log = logging.getLogger("trio_graph.worker")

PARK_AFTER = 1.0
"""Seconds a claimed run waits, live, at an unanswered barrier before it is parked:
long enough for a decider that answers at once, short enough not to keep a slot."""


class Worker:
    """Serves the graphs in ``graphs``, keyed by the name jobs are submitted under (a plain
    list of graphs is keyed by ``graph.name``). A name may have several versions (a
    sequence of graphs, or the same name twice in a list, oldest first): a stored run
    continues on the version whose ``graph.hash()`` its checkpoint names, so runs parked
    under an old version finish on it; new runs start on the newest.

    ``concurrency`` runs at most that many jobs at once; ``lease`` (seconds) is how long
    a claim lasts without renewal; ``poll_interval`` bounds how long an idle worker
    waits before looking again (expired leases are found by polling; new work and
    decisions also wake it through the store). ``max_steps``, ``policy`` and ``buffer``
    configure the worker's :class:`~trio_graph._runtime.executor.Executor`; ``force`` resumes
    checkpoints written by a different version of a graph (else the job fails with
    ``GraphChanged``). ``max_attempts``: a job claimed that many times in a row by workers
    that stopped without letting go of it (killed, crashed) fails on the next claim, with
    its last error (None: no limit; parking or releasing a job starts its count again).
    ``wall_clock`` (epoch seconds, injectable for tests) decides when a parked barrier's
    deadline has passed: such a job is claimed, and its run applies the default at once.
    ``park_after`` (seconds, 0: at once) is how long a run waits, live, at a barrier
    nobody answered before it is parked. ``on_event(job_id, event)``, if given, is called
    (in the worker's task: keep it quick) with every event of every run it serves; a
    node's streamed outputs (``NodeOutput``) are also logged at INFO, shortened.
    """

    def __init__(
        self,
        store: QueueStore,
        graphs: Mapping[str, Graph | Sequence[Graph]] | Iterable[Graph],
        *,
        concurrency: int = 1,
        lease: float = 30.0,
        poll_interval: float = 1.0,
        max_steps: int = 50,
        policy: CheckpointPolicy | None = None,
        buffer: int = 256,
        force: bool = False,
        worker_id: str | None = None,
        max_attempts: int | None = None,
        wall_clock: Callable[[], float] = time.time,
        park_after: float = PARK_AFTER,
        on_event: Callable[[str, ev.Event], Any] | None = None,
    ) -> None:
        if not isinstance(concurrency, int) or concurrency < 1:
            raise ValueError(f"concurrency must be a positive int, got {concurrency!r}")
        if not lease > 0:
            raise ValueError(f"lease must be positive seconds, got {lease!r}")
        if not poll_interval > 0:
            raise ValueError(f"poll_interval must be positive seconds, got {poll_interval!r}")
        if not park_after >= 0:
            raise ValueError(f"park_after must be seconds >= 0, got {park_after!r}")
        if max_attempts is not None and (not isinstance(max_attempts, int) or max_attempts < 1):
            raise ValueError(f"max_attempts must be a positive int or None, got {max_attempts!r}")
        self.versions = _versions(graphs)
        self.store = store
        self.graphs = {name: versions[-1] for name, versions in self.versions.items()}
        """The newest version of each graph, by name."""
        self.concurrency = concurrency
        self.lease = float(lease)
        self.poll_interval = float(poll_interval)
        self.max_steps = max_steps
        self.policy = policy or CheckpointPolicy(every_step=True)
        self.buffer = buffer
        self.force = force
        self.worker_id = worker_id or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.max_attempts = max_attempts
        self.wall_clock = wall_clock
        self.park_after = float(park_after)
        self.on_event = on_event
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
            await self._announce()
            nursery.start_soon(self._keep_announcing)
            task_status.started()
            try:
                while True:
                    await slots.acquire()
                    want = 1
                    while slots.value > 0:
                        slots.acquire_nowait()
                        want += 1
                    claims = await self._claim(names, want)
                    # No checkpoint between the claim and start_soon: a claim is never dropped.
                    for claim in claims:
                        nursery.start_soon(self._serve_claim, claim, slots)
                    for _ in range(want - len(claims)):
                        slots.release()
                    if len(claims) == want:  # a full batch: there may be more
                        if slots.value == 0:  # busy: another idle worker listens meanwhile
                            await self.store.stop_waiting()
                        continue
                    if until_idle and slots.value == self.concurrency:
                        nursery.cancel_scope.cancel()  # the announcing task
                        return
                    await self.store.wait_for_work(self.poll_interval)
            finally:
                with trio.CancelScope(shield=True):
                    await self.store.stop_waiting()

    async def _claim(self, names: list[str], want: int) -> list[Claim]:
        """Up to ``want`` claims (none when the store fails: it is logged)."""
        try:
            return await self.store.claim(
                self.worker_id, names, want, self.lease, now=self.wall_clock()
            )
        except CheckpointError as exc:
            log.warning("worker %s: claim failed: %s", self.worker_id, exc)
            return []

    async def _announce(self) -> None:
        """Say in the store which graph names this worker serves (``submit`` warns of a
        name nobody serves); a failure is logged, the worker goes on."""
        try:
            await self.store.announce(self.worker_id, list(self.graphs))
        except CheckpointError as exc:
            log.warning("worker %s: announcing its graphs failed: %s", self.worker_id, exc)

    async def _keep_announcing(self) -> None:
        while True:
            await trio.sleep(min(self.lease / 3, 30.0))
            await self._announce()

    async def _serve_claim(self, claim: Claim, slots: trio.Semaphore) -> None:
        """Serve one claim (:class:`~trio_graph._worker.claimed_job.ClaimedJob`), then free
        its slot; an unexpected error is logged, and the lease expires for a retry."""
        job = ClaimedJob(
            self.store, claim, self.versions[claim.graph_name], self._settings(), self.stats
        )
        try:
            await job.serve()
        except Exception as exc:
            if lease_lost_in(exc):  # refused inside a fan-out or a group: a lost lease
                self.stats.lease_lost += 1
                log_lease_lost(self.worker_id, claim)
            else:  # a bug or a store outage: the lease expires and another worker retries
                log.exception("worker %s: job %s failed unexpectedly", self.worker_id, claim.job_id)
        finally:
            slots.release()

    def _settings(self) -> JobSettings:
        return JobSettings(
            worker_id=self.worker_id,
            lease=self.lease,
            max_steps=self.max_steps,
            policy=self.policy,
            buffer=self.buffer,
            force=self.force,
            retry=self.retry,
            wall_clock=self.wall_clock,
            max_attempts=self.max_attempts,
            park_after=self.park_after,
            on_event=self.on_event,
        )


def _versions(
    graphs: Mapping[str, Graph | Sequence[Graph]] | Iterable[Graph],
) -> dict[str, list[Graph]]:
    """The versions of each served graph by name, oldest first (``ValueError`` if none,
    or for anything that is not a built graph)."""
    versions: dict[str, list[Graph]] = {}
    items = graphs.items() if isinstance(graphs, Mapping) else ((g.name, g) for g in graphs)
    for name, given in items:
        for graph in list(given) if isinstance(given, list | tuple) else [given]:
            if not isinstance(name, str) or not isinstance(graph, Graph):
                raise ValueError(f"graphs must map names to built graphs, got {name!r}: {graph!r}")
            versions.setdefault(name, []).append(graph)
    if not versions or not all(versions.values()):
        raise ValueError("graphs must name at least one graph")
    return versions


__all__ = ["Worker", "WorkerStats"]
