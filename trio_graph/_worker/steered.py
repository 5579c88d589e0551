"""A claim's fenced store that also carries the store's steering to the claimed run.

Runtime layer. A worker's executor writes through a
:class:`~trio_graph.stores.queue.FencedStore`; :class:`SteeredFence` is that view plus
the two reads of :class:`~trio_graph._runtime.steering.Steered`, passed through to the
queue store. Because the executor's store is then ``Steered``, the executor follows it
beside the run's step loop with the same
:func:`~trio_graph._runtime.steering.follow_store` a held run uses (one
:class:`~trio_graph.stores.queue.feed.Feed` per store, shared by every run of the
process): a decision for the claimed run is applied in place within about a second,
and a ``store.cancel`` stops it. The view remembers that the store said *cancelled*
(:attr:`SteeredFence.cancelled`), so that the worker tells a run cancelled through the
store (its job already ``cancelled``, its last save refused by the fence) from a lease
lost to another worker.
"""

from __future__ import annotations

import trio

from .._runtime.steering import Steered, Steering
from ..stores.queue import FencedStore, QueueStore

GAP = 0.1
"""At least this many seconds pass between two steering reads of one claimed run."""


class SteeredFence(FencedStore):
    """A fenced view of one claim whose run follows the store's steering (see above)."""

    def __init__(self, store: QueueStore, job_id: str, epoch: int) -> None:
        super().__init__(store, job_id, epoch)
        assert isinstance(store, Steered), "a SteeredFence needs a store that keeps steering"
        self.steered: Steered = store
        self.cancelled = False
        """Whether the store said the run was cancelled (``store.cancel``)."""
        self.primed: Steering | None = None
        """The steering the worker read for its claim (:meth:`first_read`), handed to
        the follower as its first read: a claim costs no second read before its first
        step, and a change committed since wakes the follower's first wait (the read
        took the store's change mark)."""

    async def first_read(self) -> Steering:
        """Read the job's steering (its stored decisions; cancelled?) for the claim, and
        keep it as the follower's first read."""
        self.primed = await self.steered.steering(self.job_id)
        return self.primed

    async def steering(self, run_id: str) -> Steering:
        found = self.primed
        self.primed = None
        if found is None:
            found = await self.steered.steering(run_id)
        self.cancelled |= found.cancelled
        return found

    async def wait_for_steering(self, run_id: str, seconds: float) -> None:
        """The store's wait, no sooner than :data:`GAP` after the last read: on SQLite
        every commit is a change, and a worker's runs should not each read their steering
        once per checkpoint of every run. Nothing is missed meanwhile: the store's wait
        is since its last read's mark."""
        gap = min(GAP, seconds)
        await trio.sleep(gap)
        await self.steered.wait_for_steering(run_id, seconds - gap)


def fence_for(store: QueueStore, job_id: str, epoch: int) -> FencedStore:
    """The view a claim writes through: a :class:`SteeredFence` on a store that keeps
    steering (the SQL stores), a plain :class:`FencedStore` otherwise."""
    if isinstance(store, Steered):
        return SteeredFence(store, job_id, epoch)
    return FencedStore(store, job_id, epoch)
