"""What a worker did, counted per claim (:attr:`trio_graph.worker.Worker.stats`)."""

from __future__ import annotations

import attrs


@attrs.define
class WorkerStats:
    """What a worker did, counted per claim."""

    claimed: int = 0
    completed: int = 0
    failed: int = 0
    parked: int = 0
    released: int = 0
    """Claims given back on shutdown."""
    cancelled: int = 0
    """Runs stopped because they were cancelled through the store (``store.cancel``)."""
    lease_lost: int = 0
    """Claims lost to another worker (paused past the lease, or renewals failing)."""
    refused_writes: int = 0
    """Checkpoint writes refused by the fence."""
    store_retries: int = 0
    """Times a run was taken up again after a store outage (``StoreUnavailable``)."""
