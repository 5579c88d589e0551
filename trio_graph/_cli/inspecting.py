"""The commands that only read: ``runs``, ``history TRACE``, ``mermaid MODULE:ATTR``."""

from __future__ import annotations

import sys
from typing import Any

import trio

from .. import serde
from .._model.checkpoint import Checkpoint, RunStatus
from ..stores.queue import Job, QueueStore
from .graphs import graph_for, load_graph
from .hints import hint, where
from .output import standing
from .store_options import open_store
from .tables import format_time, print_table
from .traces import resolve_trace
from .usage import EXIT_OK


async def cmd_runs(args: Any) -> int:
    """List runs, oldest first; a run continued under a new trace id says so."""
    async with open_store(args) as store:
        rows = sorted(await store.runs(), key=lambda r: r.updated_at)
    if args.json:
        for row in rows:
            print(serde.to_json(row), flush=True)
        return EXIT_OK
    if not rows:
        print(f"no runs in {where(args)} yet (try {hint(args, 'demo')})")
        return EXIT_OK
    table = [("RUN ID", "GRAPH", "STATUS", "STEP", "WAITING AT", "UPDATED")]
    for row in rows:
        waiting = str(row.waiting) if row.waiting is not None else ""
        updated = format_time(row.updated_at)
        table.append((row.run_id, row.graph_name, str(row.status), str(row.step), waiting, updated))
    print_table(table)
    return EXIT_OK


async def cmd_history(args: Any) -> int:
    """A run's checkpoints, oldest first."""
    async with open_store(args) as store:
        info, _ = await resolve_trace(store, args.trace, args)
        checkpoints = await store.list(info.trace_id)
        job = await store.job(info.trace_id) if isinstance(store, QueueStore) else None
    if args.json:
        for cp in checkpoints:
            print(serde.to_json(cp), flush=True)
        return EXIT_OK
    segments = len({cp.trace_id for cp in checkpoints})
    head = f"run {info.run_id} (graph {info.graph_name!r}, {info.status}): "
    head += f"{len(checkpoints)} checkpoint(s) in {segments} segment(s)"
    print(head)
    print_table(_checkpoint_table(checkpoints))
    last = checkpoints[-1] if checkpoints else None
    line = standing(last, job)
    if line is not None:
        print(line + answer_hint(args, last, job))
    return EXIT_OK


def _checkpoint_table(checkpoints: list[Checkpoint]) -> list[tuple[str, ...]]:
    table: list[tuple[str, ...]] = [
        ("#", "CHECKPOINT", "STEP", "NEXT", "STATUS", "BARRIER", "KEYS", "TIME")
    ]
    for i, cp in enumerate(checkpoints, 1):
        table.append(
            (
                str(i),
                cp.checkpoint_id[:12],
                str(cp.step),
                cp.next_node or "-",
                str(cp.status),
                str(cp.pending_barrier) if cp.pending_barrier else "-",
                str(len(cp.state)),
                format_time(cp.created_at, with_ms=True),
            )
        )
    return table


def answer_hint(args: Any, last: Checkpoint | None, job: Job | None) -> str:
    """``; answer it with `decide ...``` for a waiting run, when that runs as printed:
    a queued job (a worker resumes it) or the bundled demo (no ``--graph`` needed)."""
    if last is None or last.pending_barrier is None or last.status != RunStatus.WAITING:
        return ""
    if job is None and graph_for(None, last) is None:
        return ""  # a user's graph: decide needs its --graph, which we cannot know
    here = [] if job is not None else ["--resume"]  # a worker resumes a job; else, here
    decide = hint(args, "decide", last.trace_id, str(last.pending_barrier), "approve", *here)
    return f"; answer it with {decide}"


async def cmd_mermaid(args: Any) -> int:
    """Print the graph as Mermaid flowchart text."""
    await trio.lowlevel.checkpoint()
    sys.stdout.write(load_graph(args.graph).to_mermaid())
    return EXIT_OK
