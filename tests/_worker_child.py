"""A worker process for tests/test_worker.py and benchmarks/workers.py.

    python tests/_worker_child.py postgres DSN SCHEMA [options]
    python tests/_worker_child.py sqlite STORE_PATH STEPS_PATH [options]
    options: [--concurrency N] [--lease S] [--delay S] [--until-idle] [--idle-tx-timeout S]
        [--start-when FILE] [--park-after S]

Serves three graphs from ``PostgresStore(DSN, schema=SCHEMA)`` (the side table in the same
schema) or ``SQLiteStore(STORE_PATH)`` (the side table in the file STEPS_PATH):

- ``count``: node ``step`` runs until ``n == state["steps"]``, each run sleeping
  ``--delay`` seconds and recording ``(job, step, pid, t0, t1)`` in the side table
  ``steps`` (when the state has ``record: true``); ``done`` records step 0 at the end.
- ``hitl``: ``a`` -> barrier ``review`` -> ``b``.
- ``fan``: ``step``'s ``tick`` then a fan-out of two branches sleeping ``--delay``, until
  ``n == state["steps"]``.

Prints ``ready <pid>`` once serving, and its ``WorkerStats`` as one JSON line on exit.
SIGTERM/SIGINT shut it down gracefully (in-flight runs checkpoint, leases released).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sqlite3
import sys
import threading
import time
from collections.abc import Mapping
from typing import Any

import attrs
import psycopg
import trio

from trio_graph import GraphBuilder, reducers
from trio_graph._model.graph import Graph
from trio_graph.stores.postgres import PostgresStore
from trio_graph.stores.sqlite import SQLiteStore
from trio_graph.worker import Worker


class Recorder:
    """Writes step records to the side table over one connection (one thread at a time)."""

    def __init__(self, kind: str, where: str, schema_or_path: str) -> None:
        self._lock = threading.Lock()
        self._pg = kind == "postgres"
        if self._pg:
            self._conn: Any = psycopg.connect(
                where, autocommit=True, options=f"-c search_path={schema_or_path}"
            )
        else:
            self._conn = sqlite3.connect(
                schema_or_path, timeout=30, isolation_level=None, check_same_thread=False
            )

    def record(self, job: str, step: int, t0: float, t1: float) -> None:
        mark = "%s" if self._pg else "?"
        with self._lock:
            self._conn.execute(
                f"INSERT INTO steps (job, step, pid, t0, t1) VALUES ({', '.join([mark] * 5)})",
                (job, step, os.getpid(), t0, t1),
            )


def graphs(recorder: Recorder | None, delay: float) -> dict[str, Graph]:
    async def step(state: Mapping[str, Any]) -> dict[str, Any]:
        t0 = time.time()
        if delay:
            await trio.sleep(delay)
        n = state["n"] + 1
        if recorder is not None and state.get("record"):
            await trio.to_thread.run_sync(recorder.record, state["job"], n, t0, time.time())
        return {"n": n, "path": [n]}

    async def done(state: Mapping[str, Any]) -> dict[str, Any]:
        if recorder is not None and state.get("record"):
            t = time.time()
            await trio.to_thread.run_sync(recorder.record, state["job"], 0, t, t)
        return {"finished": True}

    count = (
        GraphBuilder("count")
        .task("step", step)
        .task("done", done)
        .edge_if("step", "step", lambda s: s["n"] < s["steps"])
        .edge("step", "done")
        .reducer("path", reducers.extend)
        .start("step")
        .end("done")
        .build()
    )
    hitl = (
        GraphBuilder("hitl")
        .task("a", lambda s: {"a": 1})
        .barrier("review")
        .task("b", lambda s: {"b": 2})
        .edge("a", "review")
        .edge("review", "b")
        .start("a")
        .end("b")
        .build()
    )

    async def branch(state: Mapping[str, Any]) -> dict[str, Any]:
        t0 = time.time()
        await trio.sleep(delay)
        return {"path": [t0]}

    fan = (  # ``tick`` and a fan-out of two branches, until n == steps (docs: count)
        GraphBuilder("fan")
        .task("tick", step)
        .parallel("fan", {"one": branch, "two": branch})
        .task("done", done)
        .edge("tick", "fan")
        .edge_if("fan", "tick", lambda s: s["n"] < s["steps"])
        .edge("fan", "done")
        .reducer("path", reducers.extend)
        .start("tick")
        .end("done")
        .build()
    )
    return {"count": count, "hitl": hitl, "fan": fan}


async def main(args: argparse.Namespace) -> None:
    recorder = Recorder(args.kind, args.where, args.extra)
    store: Any
    if args.kind == "postgres":
        store = PostgresStore(
            args.where, schema=args.extra, idle_in_transaction_timeout=args.idle_tx_timeout
        )
    else:
        store = SQLiteStore(args.where)
    async with store:
        worker = Worker(
            store,
            graphs(recorder, args.delay),
            concurrency=args.concurrency,
            lease=args.lease,
            poll_interval=args.poll,
            park_after=args.park_after,
        )
        with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
            async with trio.open_nursery() as nursery:

                async def stop_on_signal() -> None:
                    async for _ in signals:
                        nursery.cancel_scope.cancel()
                        return

                nursery.start_soon(stop_on_signal)
                if args.start_when:
                    print(f"ready {os.getpid()}", flush=True)
                    await _wait_for_file(args.start_when)
                    await nursery.start(_serve, worker, args.until_idle, nursery.cancel_scope)
                else:
                    await nursery.start(_serve, worker, args.until_idle, nursery.cancel_scope)
                    print(f"ready {os.getpid()}", flush=True)
        print(json.dumps(attrs.asdict(worker.stats)), flush=True)


async def _wait_for_file(path: str) -> None:
    """Poll for ``path`` (the test's go-ahead), checking in a thread."""
    while True:
        if await trio.to_thread.run_sync(os.path.exists, path):
            return
        await trio.sleep(0.02)


async def _serve(
    worker: Worker,
    until_idle: bool,
    scope: trio.CancelScope,
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> None:
    await worker.serve(until_idle=until_idle, task_status=task_status)
    scope.cancel()


def parse(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser()
    p.add_argument("kind", choices=["postgres", "sqlite"])
    p.add_argument("where", help="the DSN, or the SQLite store's path")
    p.add_argument("extra", help="the schema, or the SQLite side table's path")
    p.add_argument("--concurrency", type=int, default=1)
    p.add_argument("--lease", type=float, default=1.0)
    p.add_argument("--poll", type=float, default=0.2)
    p.add_argument("--delay", type=float, default=0.0)
    p.add_argument("--until-idle", action="store_true")
    p.add_argument("--idle-tx-timeout", type=float, default=None)
    p.add_argument("--park-after", type=float, default=0.0, help="Worker(park_after=...)")
    p.add_argument("--start-when", default=None, help="serve only once this file exists")
    return p.parse_args(argv)


if __name__ == "__main__":
    logging.basicConfig(
        level=logging.INFO, format="%(created).3f %(name)s %(message)s", stream=sys.stderr
    )
    trio.run(main, parse(sys.argv[1:]))
