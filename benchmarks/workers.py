"""Runs/s and steps/s for 1, 2 and 4 worker processes sharing a PostgreSQL run queue.

Each measurement uses a fresh schema on the ``TRIO_GRAPH_PG_DSN`` server (loopback;
``eval "$(scripts/postgres.sh)"`` starts one). ``W`` worker processes (this file with
``--serve``, each a ``Worker`` with ``concurrency`` 4) start and report ready; then
``RUNS`` runs of a graph of ``STEPS`` steps (``step`` looped, then ``done``: plain async
nodes that add to a counter) are submitted and the clock runs until the last one is
completed in the queue table. Workers checkpoint after every step (their default,
``CheckpointPolicy(every_step=True)``), through the fenced save (epoch check, checkpoint
row, runs row and job row in one transaction). runs/s = RUNS / time; steps/s = node
executions / time.

The per-step checkpoint cost is measured in one process: one run of ``LONG`` steps
through a ``FencedStore`` with every_step, minus the same run checkpointed only at
completion, divided by the steps. Both are measured with durable commits (the default:
each commit waits for the WAL flush, a disk sync) and with ``synchronous_commit=False``.

Run: ``python benchmarks/workers.py [runs] [steps]`` (defaults 200, 5).
"""

from __future__ import annotations

import functools
import os
import signal
import subprocess
import sys
import time
import uuid
from typing import Any

import psycopg
import trio

from trio_graph import CheckpointPolicy, Executor, GraphBuilder
from trio_graph._model.graph import Graph
from trio_graph.stores.postgres import PostgresStore
from trio_graph.stores.queue import FencedStore
from trio_graph.worker import Worker

CONCURRENCY = 4
"""Jobs each worker process runs at once."""
LONG = 200
"""Steps of the run that measures the per-step checkpoint cost."""


def count_graph() -> Graph:
    async def step(state: Any) -> dict[str, Any]:
        return {"n": state["n"] + 1}

    async def done(state: Any) -> dict[str, Any]:
        return {"done": True}

    return (
        GraphBuilder("count")
        .task("step", step)
        .task("done", done)
        .edge_if("step", "step", lambda s: s["n"] < s["steps"])
        .edge("step", "done")
        .start("step")
        .end("done")
        .build()
    )


# -- worker processes -------------------------------------------------------------------------
async def serve(dsn: str, schema: str, sync: str) -> None:
    """A worker process: serve ``count`` until SIGTERM."""
    async with PostgresStore(dsn, schema=schema, synchronous_commit=sync == "on") as store:
        worker = Worker(store, {"count": count_graph()}, concurrency=CONCURRENCY, lease=10)
        with trio.open_signal_receiver(signal.SIGTERM) as signals:
            async with trio.open_nursery() as nursery:
                await nursery.start(worker.serve)
                print("ready", flush=True)
                async for _ in signals:
                    nursery.cancel_scope.cancel()


def drop(dsn: str, schema: str) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")


async def measure_workers(dsn: str, workers: int, runs: int, steps: int, sync: bool) -> float:
    """Seconds for ``workers`` processes to complete ``runs`` submitted runs."""
    schema = "bench_" + uuid.uuid4().hex[:10]
    try:
        async with PostgresStore(dsn, schema=schema) as store:
            command = [sys.executable, __file__, "--serve", dsn, schema, "on" if sync else "off"]
            procs = [
                await trio.to_thread.run_sync(
                    functools.partial(subprocess.Popen, command, stdout=subprocess.PIPE, text=True)
                )
                for _ in range(workers)
            ]
            try:
                for p in procs:
                    assert p.stdout is not None
                    line = await trio.to_thread.run_sync(p.stdout.readline)
                    assert line.startswith("ready"), line
                conn = await trio.to_thread.run_sync(
                    lambda: psycopg.connect(
                        dsn, autocommit=True, options=f"-c search_path={schema}"
                    )
                )
                t0 = time.perf_counter()
                for _ in range(runs):
                    await store.submit("count", {"n": 0, "steps": steps})
                while True:
                    done = conn.execute(
                        "SELECT count(*) FROM trio_graph_jobs WHERE status = 'completed'"
                    ).fetchone()
                    if done is not None and done[0] == runs:
                        break
                    await trio.sleep(0.01)
                elapsed = time.perf_counter() - t0
                conn.close()
            finally:
                for p in procs:
                    p.send_signal(signal.SIGTERM)
                for p in procs:
                    await trio.to_thread.run_sync(functools.partial(p.communicate, timeout=60))
        return elapsed
    finally:
        drop(dsn, schema)


async def measure_checkpoint_cost(dsn: str, sync: bool) -> tuple[float, float]:
    """(ms per step with a fenced checkpoint each step, ms per step without)."""
    schema = "bench_" + uuid.uuid4().hex[:10]
    graph = count_graph()
    try:
        async with PostgresStore(dsn, schema=schema, synchronous_commit=sync) as store:
            times = {}
            for every_step in (True, False):
                best = float("inf")
                for _ in range(3):
                    job = await store.submit("count", {"n": 0, "steps": LONG})
                    [claim] = await store.claim("bench", ["count"], 1, 60.0)
                    fenced = FencedStore(store, job, claim.epoch)
                    policy = CheckpointPolicy(every_step=every_step)
                    executor = Executor(store=fenced, policy=policy, max_steps=LONG + 10)
                    t0 = time.perf_counter()
                    await executor.run(graph, {"n": 0, "steps": LONG})
                    best = min(best, time.perf_counter() - t0)
                times[every_step] = best / (LONG + 1) * 1000
            return times[True], times[False]
    finally:
        drop(dsn, schema)


async def main(runs: int, steps: int) -> None:
    dsn = os.environ.get("TRIO_GRAPH_PG_DSN")
    if not dsn:
        sys.exit('benchmarks/workers.py needs TRIO_GRAPH_PG_DSN (eval "$(scripts/postgres.sh)")')
    print(f"\nWorkers on PostgreSQL (loopback): {runs} runs of {steps + 1} node executions,")
    print(f"{CONCURRENCY} jobs at once per worker process, a fenced checkpoint after every step")
    print(f"  {'commit':<13}  {'workers':>7}  {'seconds':>8}  {'runs/s':>8}  {'steps/s':>8}")
    costs = {}
    for sync in (True, False):
        label = "durable" if sync else "async commit"
        for workers in (1, 2, 4):
            elapsed = await measure_workers(dsn, workers, runs, steps, sync)
            rate = runs / elapsed
            print(
                f"  {label:<13}  {workers:>7}  {elapsed:>8.2f}  {rate:>8.1f}  "
                f"{rate * (steps + 1):>8.0f}"
            )
        costs[label] = await measure_checkpoint_cost(dsn, sync)
    print(f"\nPer-step checkpoint cost (one run of {LONG} steps in one process, fenced save):")
    for label, (with_ckpt, without) in costs.items():
        print(
            f"  {label:<13}  {with_ckpt:.2f} ms/step checkpointed, {without:.3f} ms/step not: "
            f"{with_ckpt - without:.2f} ms per checkpoint"
        )


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--serve":
        trio.run(serve, sys.argv[2], sys.argv[3], sys.argv[4])
    else:
        args = [int(a) for a in sys.argv[1:3]]
        trio.run(main, *(args + [200, 5][len(args) :]))
