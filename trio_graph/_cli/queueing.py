"""The commands of a store with a run queue (SQLite, PostgreSQL): ``submit``, ``jobs``,
``worker``."""

from __future__ import annotations

import json
import signal
import sys
from typing import Any

import trio

from .. import events as ev
from .. import serde
from .._model.decisions import brief_value
from .._worker.claimed_job import shorten
from ..stores.queue import JobStatus, QueueStore
from .graphs import load_graph
from .hints import where
from .store_options import open_store
from .tables import format_time, print_table
from .usage import EXIT_OK, UsageError

OUTPUT_WIDTH = 120
"""Characters of a streamed output the worker prints (the rest is cut, ``...``)."""


async def cmd_submit(args: Any) -> int:
    """Queue a run of a graph for the workers (a store with a run queue)."""
    try:
        state = json.loads(args.state)
    except ValueError as exc:
        raise UsageError(f"--state must be a JSON object: {exc}") from None
    if not isinstance(state, dict):
        raise UsageError(f"--state must be a JSON object, got {type(state).__name__}")
    async with open_store(args) as store:
        submit = getattr(store, "submit", None)
        if submit is None:
            raise UsageError(
                f"submit needs a store with a run queue: --dsn DSN (PostgreSQL); {store!r} has none"
            )
        job_id = await submit(args.name, state)
    print(job_id, flush=True)
    return EXIT_OK


async def cmd_jobs(args: Any) -> int:
    """The run queue: one row per submitted job, oldest first (``--status`` to filter)."""
    status = JobStatus(args.status) if args.status else None
    async with open_store(args) as store:
        if not isinstance(store, QueueStore):
            raise UsageError(f"jobs needs a store with a run queue; {store!r} has none")
        jobs = sorted(await store.jobs(status), key=lambda j: j.created_at)
    if args.json:
        for job in jobs:
            print(serde.to_json(job), flush=True)
        return EXIT_OK
    if not jobs:
        which = f"{status} " if status else ""
        print(f"no {which}jobs in {where(args)}")
        return EXIT_OK
    table = [("JOB ID", "GRAPH", "STATUS", "BARRIER", "ATTEMPTS", "OWNER", "UPDATED", "ERROR")]
    for job in jobs:
        table.append(
            (
                job.job_id,
                job.graph_name,
                str(job.status),
                str(job.pending_barrier) if job.pending_barrier else "-",
                str(job.attempts),
                job.owner or "-",
                format_time(job.updated_at),
                (job.error or "")[:60],
            )
        )
    print_table(table)
    return EXIT_OK


async def cmd_worker(args: Any) -> int:
    """Serve graphs from a store with a run queue (PostgreSQL) until interrupted."""
    graphs = [load_graph(spec) for spec in args.graph]
    if args.concurrency is not None and args.concurrency < 1:
        raise UsageError(f"--concurrency must be a positive int, got {args.concurrency}")
    from ..worker import Worker

    async with open_store(args) as store:
        if not isinstance(store, QueueStore):
            raise UsageError(
                f"worker needs a store with a run queue: --dsn DSN (PostgreSQL); {store!r} has none"
            )
        show = _json_output if args.json else _output_line
        worker = Worker(store, graphs, concurrency=args.concurrency or 1, on_event=show)
        names = ", ".join(repr(g.name) for g in graphs)
        until = "until no run is left" if args.until_idle else "Ctrl-C to stop"
        print(
            f"worker {worker.worker_id} serving {names} from {where(args)} ({until})",
            file=sys.stderr,
            flush=True,
        )
        with trio.CancelScope() as scope:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(_stop_on_signals, scope)
                await worker.serve(until_idle=args.until_idle)
                nursery.cancel_scope.cancel()
        stats = worker.stats
        print(
            f"worker stopped: {stats.claimed} claimed, {stats.completed} completed, "
            f"{stats.parked} parked at barriers, {stats.failed} failed, "
            f"{stats.cancelled} cancelled, {stats.released} released",
            file=sys.stderr,
            flush=True,
        )
    return EXIT_OK


def _output_line(job_id: str, event: ev.Event) -> None:
    """What a node of a served run streamed (``ctx.emit``): one shortened line on stdout,
    ``JOB NODE > DATA`` (text as it is, anything else as JSON)."""
    if isinstance(event, ev.NodeOutput):
        where = event.node if event.branch is None else f"{event.node}.{event.branch}"
        data = event.data if isinstance(event.data, str) else brief_value(event.data, OUTPUT_WIDTH)
        print(f"{job_id[:12]} {where} > {shorten(data, OUTPUT_WIDTH)}", flush=True)


def _json_output(job_id: str, event: ev.Event) -> None:
    """With ``--json``: a served run's ``NodeOutput`` as its event's JSON line (the
    event names its trace; its run is the job)."""
    if isinstance(event, ev.NodeOutput):
        print(serde.to_json(event, ev.Event), flush=True)


async def _stop_on_signals(scope: trio.CancelScope) -> None:
    """SIGTERM or SIGINT: stop serving gracefully (runs checkpoint, leases released)."""
    with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
        async for _ in signals:
            print("stopping: checkpointing runs in flight...", file=sys.stderr, flush=True)
            scope.cancel()
            return
