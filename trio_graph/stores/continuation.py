"""Exclusive continuation of a stored run on a queue store (DESIGN §11).

Runtime layer. Continuing a run (running its next step) must happen in one process at a
time, whoever does it: a worker holds the job's claim; ``Executor.resume`` (and so the
CLI's ``decide`` and ``resume``) takes the same kind of claim through
:meth:`~trio_graph.stores.queue.QueueStore.hold` before the run's next step, renews it
while the run goes on (its heartbeat), and lets go at the end; ``Executor.stream``
holds a run it starts the same way from its start (:func:`starting`), so every run
executing on a queue store is owned live. Its writes go through a
:class:`~trio_graph.stores.queue.FencedStore`, so a process paused past its lease whose
run was taken over writes nothing. A second process is refused with
:class:`~trio_graph.errors.RunBusy`; a decision sent meanwhile is recorded, and the
process executing the run takes it from the store (DESIGN §8).
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
from collections.abc import AsyncIterator

import trio

from .._runtime.groups import lone_error
from ..errors import CheckpointError
from .protocol import Store
from .queue import HOLD_PREFIX, FencedStore, Hold, QueueStore
from .queue.live import LiveRules

log = logging.getLogger("trio_graph.continuation")

LEASE = 30.0
"""Seconds a hold lasts without renewal (renewed every third of it): how long after its
process was killed on another machine a run shows ``interrupted`` (on this machine, a
hold by a process that no longer exists counts as lapsed at once). Read at each hold,
so a test (or a program) may set it."""


def owner_name() -> str:
    """This process, as a hold's owner."""
    return f"{HOLD_PREFIX}{socket.gethostname()}:{os.getpid()}"


@contextlib.asynccontextmanager
async def continuing(
    store: Store, trace_id: str, *, lease: float | None = None
) -> AsyncIterator[Store]:
    """Hold the continuation of ``trace_id`` while the body runs; yields the store to write
    through (fenced on a queue store, ``store`` itself otherwise or when nothing is held).

    Raises ``RunBusy`` when another process continues the run or already has.
    """
    if not isinstance(store, QueueStore):
        yield store
        return
    lease = LEASE if lease is None else lease
    held = await store.hold(trace_id, owner_name(), lease)
    if held is None:
        yield store
        return
    async with _holding(store, held, lease) as fenced:
        yield fenced


@contextlib.asynccontextmanager
async def starting(
    store: Store | None, run_id: str, graph_name: str, *, lease: float | None = None
) -> AsyncIterator[Store | None]:
    """Own a run this process starts (``Executor.stream``) while the body runs: on a
    queue store its job row is created held, renewed, and goes at the end, so a decision
    sent meanwhile is recorded for this process's follower and no worker claims the run.
    Yields the store to write through (fenced on a queue store)."""
    # The SQL stores themselves (not a wrapper that delegates to one: its own ``save``
    # would be bypassed by the fenced view's ``save_fenced``).
    if not (isinstance(store, LiveRules) and isinstance(store, QueueStore)):
        yield store
        return
    lease = LEASE if lease is None else lease
    held = await store.hold_new(run_id, graph_name, owner_name(), lease)
    async with _holding(store, held, lease) as fenced:
        yield fenced


@contextlib.asynccontextmanager
async def _holding(store: QueueStore, held: Hold, lease: float) -> AsyncIterator[Store]:
    """While the body runs, renew ``held`` (the heartbeat); let go at the end."""
    try:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(_renew, store, held, lease)
            try:
                yield FencedStore(store, held.job_id, held.epoch)
            finally:
                nursery.cancel_scope.cancel()
    except BaseExceptionGroup as group:  # the body's own error, not a group of one
        error = lone_error(group)
        if error is not None:
            raise error from error.__cause__
        raise
    finally:
        with trio.CancelScope(shield=True):
            try:
                await store.unhold(held)
            except CheckpointError as exc:  # the lease expires on its own
                log.warning("letting go of run %s failed: %s", held.job_id, exc)


async def _renew(store: QueueStore, held: Hold, lease: float) -> None:
    while True:
        await trio.sleep(lease / 3)
        try:
            if not await store.renew(held.job_id, held.epoch, lease):
                log.warning("hold on run %s was taken over", held.job_id)
                return  # the fence refuses this process's writes from now on
        except CheckpointError as exc:
            log.warning("renewing the hold on run %s failed: %s", held.job_id, exc)
