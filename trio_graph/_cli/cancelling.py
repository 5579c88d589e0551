"""``cancel RUN``: cancel a stored run for good through its store (DESIGN §8, §12).

The run is named like every other command names it (its id or a unique prefix of at
least 4 characters), among the store's runs and, on a queue store, its jobs (a job
submitted but not started has no checkpoint yet). One line says what happened: the run
is cancelled, or the process executing it is told and ends it ``cancelled``.
"""

from __future__ import annotations

import time
from typing import Any

from .._model.checkpoint import RunStatus
from ..stores.protocol import RunInfo
from ..stores.queue import QueueStore
from ..stores.queue.live import LiveRules
from .store_options import open_store
from .traces import pick_run
from .usage import EXIT_OK, UsageError


async def cmd_cancel(args: Any) -> int:
    """Cancel a run: at once when nobody executes it, else its live process ends it."""
    async with open_store(args) as store:
        cancel = getattr(store, "cancel", None)
        if cancel is None:
            raise UsageError(f"cancel needs a store that keeps runs' steering; {store!r} has none")
        rows = await store.runs()
        if isinstance(store, QueueStore):  # queued, not started: a job with no runs row
            known = {r.run_id for r in rows}
            rows += [_queued(job) for job in await store.jobs() if job.job_id not in known]
        info = pick_run(rows, args.trace, args)
        owner = await store.live_owner(info.run_id) if isinstance(store, LiveRules) else None
        await cancel(info.run_id)
    if owner is not None:
        print(f"run {info.run_id} cancelled; the live run ({owner}) ends it", flush=True)
    else:
        print(f"run {info.run_id} cancelled", flush=True)
    return EXIT_OK


def _queued(job: Any) -> RunInfo:
    """A row for a job with no checkpoint yet (named by its id like any run)."""
    return RunInfo(job.job_id, job.graph_name, RunStatus.RUNNING, job.updated_at or time.time())
