"""One idle worker listens at a time on PostgreSQL: a submit wakes one claim, not a herd.

Each worker here has its own ``PostgresStore`` on one schema (its own LISTEN connection,
as a worker process has), and a poll interval of a minute: a run that waited for a poll
would fail the test's limits, so every run here was claimed through a wake-up. The
listener is whoever holds the work channel's session advisory lock; the tests read it in
``pg_locks``. Real time (the database's locks and notifications are not on Trio's clock).
A worker's shutdown waits for its wait to end (the poll interval at most): the tests end
theirs with a NOTIFY (:func:`kick`).
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

import pytest
import trio
from _pg import SKIP_WITHOUT_SERVER, PostgresBackend, connect

from trio_graph import GraphBuilder
from trio_graph._model.graph import Graph
from trio_graph.stores.queue import JobStatus
from trio_graph.stores.queue.postgres import listen_lock_key
from trio_graph.worker import Worker

pytestmark = SKIP_WITHOUT_SERVER

POLL = 60.0
"""The workers' poll interval: far beyond every limit below."""
LIMIT = 10.0
"""Seconds a run may take from submit to completed (it takes milliseconds when woken)."""

GATES: dict[str, trio.Event] = {}
"""Runs whose state names a gate wait on it (for runs that keep a worker busy)."""


def graph() -> Graph:
    async def work(state: Any) -> dict[str, Any]:
        if state.get("gate"):
            await GATES[state["gate"]].wait()
        return {"done": True}

    return GraphBuilder("work").task("work", work).start("work").end("work").build()


@pytest.fixture
def backend() -> Any:
    chosen = PostgresBackend()
    yield chosen
    chosen.close()


class Counted:
    """A worker on its own store, counting the claims it made and what they found, and
    whether it is waiting for work now."""

    def __init__(self, store: Any, concurrency: int) -> None:
        self.store = store
        self.claims = 0
        self.empty = 0
        self.waiting = False
        self.worker = Worker(store, {"work": graph()}, concurrency=concurrency, poll_interval=POLL)
        claim, wait = store.claim, store.wait_for_work

        async def counted(*args: Any, **kwargs: Any) -> Any:
            got = await claim(*args, **kwargs)
            self.claims += 1
            self.empty += not got
            return got

        async def waiting(seconds: float) -> None:
            self.waiting = True
            try:
                await wait(seconds)
            finally:
                self.waiting = False

        store.claim, store.wait_for_work = counted, waiting
        self.running = 0
        serve_claim = self.worker._serve_claim

        async def serving(claim: Any, slots: trio.Semaphore) -> None:
            self.running += 1
            try:
                await serve_claim(claim, slots)  # frees its slot before it returns
            finally:
                self.running -= 1

        self.worker._serve_claim = serving  # type: ignore[method-assign]


@asynccontextmanager
async def serving(
    backend: PostgresBackend, count: int, concurrency: int
) -> AsyncIterator[list[Counted]]:
    """``count`` workers, each on its own store, serving until the block ends."""
    async with AsyncExitStack() as stack:
        stores = [await stack.enter_async_context(backend.store()) for _ in range(count)]
        workers = [Counted(store, concurrency) for store in stores]
        nursery = await stack.enter_async_context(trio.open_nursery())
        for w in workers:
            await nursery.start(w.worker.serve)
        try:
            yield workers
        finally:
            nursery.cancel_scope.cancel()
            with trio.CancelScope(shield=True):
                await kick(backend)


async def kick(backend: PostgresBackend) -> None:
    """A NOTIFY on the work channel: the listening worker's wait returns (a cancelled one
    then stops, and the next in line takes the lock, returns and stops, and so on)."""

    def notify() -> None:
        with connect(backend.dsn, backend.schema) as conn:
            conn.execute("SELECT pg_notify(%s, '')", (f"trio_graph_{backend.schema}",))

    await trio.to_thread.run_sync(notify)


def listen_lock(backend: PostgresBackend) -> tuple[int, int]:
    """(sessions holding the work channel's advisory lock, sessions waiting for it)."""
    key = listen_lock_key(f"trio_graph_{backend.schema}") & 0xFFFFFFFFFFFFFFFF
    with connect(backend.dsn, backend.schema) as conn:
        rows = conn.execute(
            "SELECT granted FROM pg_locks WHERE locktype = 'advisory' AND classid = %s::oid"
            " AND objid = %s::oid AND objsubid = 1",
            (key >> 32, key & 0xFFFFFFFF),
        ).fetchall()
    return sum(g for (g,) in rows), sum(not g for (g,) in rows)


async def settled(
    backend: PostgresBackend, waiting: int, held: int = 1, idle: Sequence[Counted] = ()
) -> None:
    """Until ``held`` sessions hold the listen lock, ``waiting`` wait for it, and the
    ``idle`` workers are all in their wait for work with every slot free."""
    deadline = time.monotonic() + LIMIT
    while True:
        lock = await trio.to_thread.run_sync(listen_lock, backend)
        if lock == (held, waiting) and all(w.waiting and not w.running for w in idle):
            return
        assert time.monotonic() < deadline, lock
        await trio.sleep(0.02)


async def completed(store: Any, job: str) -> None:
    """Until ``job`` completed, within ``LIMIT`` seconds."""
    with trio.fail_after(LIMIT):
        while True:
            info = await store.job(job)
            if info is not None and info.status is JobStatus.COMPLETED:
                return
            await trio.sleep(0.01)


async def test_each_submit_wakes_one_claim_among_idle_workers(backend: PostgresBackend) -> None:
    """4 idle workers, 12 runs submitted one at a time, each once the workers are idle
    again: each is claimed by one claim (the listener's), none found nothing, and none
    waited for the poll interval."""
    async with serving(backend, 4, concurrency=2) as workers:
        await settled(backend, waiting=3, idle=workers)
        before = sum(w.claims for w in workers), sum(w.empty for w in workers)
        for _ in range(12):
            await completed(workers[0].store, await workers[0].store.submit("work", {}))
            await settled(backend, waiting=3, idle=workers)  # the run's slot freed again
        assert sum(w.claims for w in workers) - before[0] == 12
        assert sum(w.empty for w in workers) - before[1] == 0
        await settled(backend, waiting=3, idle=workers)  # the listener stayed the listener


async def test_a_run_submitted_while_every_worker_is_busy_is_claimed_at_a_free_slot(
    backend: PostgresBackend,
) -> None:
    """With both workers busy nobody listens; a run submitted then is claimed as soon as
    one of them finishes, and the worker left idle takes over listening."""
    gates = {name: GATES.setdefault(name, trio.Event()) for name in ("a", "b")}
    async with serving(backend, 2, concurrency=1) as workers:
        store = workers[0].store
        await settled(backend, waiting=1)
        busy = [await store.submit("work", {"gate": name}) for name in gates]
        with trio.fail_after(LIMIT):
            while True:
                jobs = await store.jobs(JobStatus.RUNNING)
                if len(jobs) == 2:
                    break
                await trio.sleep(0.01)
        await settled(backend, waiting=0, held=0)  # nobody listens
        late = await store.submit("work", {})
        gates["a"].set()
        await completed(store, late)
        gates["b"].set()
        for job in busy:
            await completed(store, job)
        await settled(backend, waiting=1)


async def test_a_listener_that_stops_hands_the_listening_over(backend: PostgresBackend) -> None:
    """The listening worker stops serving: the one waiting for the lock takes it at once
    and hears the next submit (not at its poll)."""
    async with backend.store() as first, backend.store() as other:
        leader, second = Counted(first, 2), Counted(other, 2)
        scope = trio.CancelScope()

        async def lead(task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
            with scope:
                await leader.worker.serve(task_status=task_status)

        async with trio.open_nursery() as nursery:
            await nursery.start(lead)
            await settled(backend, waiting=0)
            await nursery.start(second.worker.serve)
            await settled(backend, waiting=1)
            scope.cancel()
            await kick(backend)  # its wait ends, so it stops (see the module notes)
            await settled(backend, waiting=0, idle=[second])
            claims = leader.claims
            await completed(first, await first.submit("work", {}))
            assert leader.claims == claims  # stopped
            assert second.claims - second.empty == 1
            nursery.cancel_scope.cancel()
            with trio.CancelScope(shield=True):
                await kick(backend)
