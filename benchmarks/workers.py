"""Runs/s and steps/s for 1, 2 and 4 worker processes sharing a PostgreSQL run queue.

Each measurement uses a fresh schema on the ``TRIO_GRAPH_PG_DSN`` server (loopback;
``eval "$(scripts/postgres.sh)"`` starts one). ``W`` worker processes (this file with
``--serve``, each a ``Worker`` with ``concurrency`` 4) start, open their store and report
ready, then wait for the word to serve. ``RUNS`` runs of a graph of ``STEPS`` steps
(``step`` looped, then ``done``: plain async nodes that add to a counter) are either all
submitted before that word (*queued*: the workers' own throughput) or submitted one by
one after it (*trickle*: one NOTIFY each while the workers serve; the submitter paces
them). The clock starts at the word and runs until the last run is completed in the
queue table. Workers checkpoint after every step (their default,
``CheckpointPolicy(every_step=True)``), through the fenced save (epoch check, checkpoint
row, runs row and job row in one statement). runs/s = RUNS / time; steps/s = node
executions / time, and per worker process. Each worker process also reports its CPU
time from the word to its exit and its claims (those that found nothing, and its idle
waits that ended); the server processes of its connections (named by ``PGAPPNAME``)
report their CPU time from ``/proc``.

The per-step checkpoint cost is measured in one process: one run of ``LONG`` steps
through a ``FencedStore`` with every_step, minus the same run checkpointed only at
completion, divided by the steps. Both are measured with durable commits (the default:
each commit waits for the WAL flush, a disk sync) and with ``synchronous_commit=False``.

**The floor** of that checkpoint, measured in the same run, interleaved with it: what
the store's save does in the database with no engine around it, issued by psycopg
directly on one held connection (no thread hand-off, no pool, no encoding: the
parameters are built before the clock starts). It is the store's shape of save, one
statement with CTEs: the job row locked ``FOR UPDATE`` where its epoch is the claim's
(the fence), the insert of a checkpoint row of ``FLOOR_BYTES`` bytes of JSON text
(the size of this graph's rows) into the checkpoints table, the upsert of the runs
row, the update of the job row. ratio = floor ms / checkpoint ms (1.0: no overhead), of
the medians of ``ROUNDS`` interleaved rounds (each round's cost is its checkpointed run
minus its plain run, back to back) and of the best of each. *thread* is the floor issued
the design's way (DESIGN §11): each statement through ``trio.to_thread.run_sync``, still
on the one held connection, so thread/ckpt is the engine's overhead beyond the hand-off.

Run: ``python benchmarks/workers.py [runs] [steps]`` (defaults 200, 5; ``runs`` 0: only the
checkpoint cost beside its floor).
"""

from __future__ import annotations

import functools
import itertools
import json
import os
import signal
import statistics
import subprocess
import sys
import time
import uuid
from typing import Any

import attrs
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
ROUNDS = 7
"""Interleaved rounds of (checkpointed run, plain run, floor)."""
FLOOR_BYTES = 600
"""Bytes of header + body text in the floor's checkpoint row (this graph's are ~660)."""
FLOOR = """
WITH fence AS (
    SELECT 1 FROM trio_graph_jobs
    WHERE job_id = %(job)s AND epoch = %(epoch)s AND status = 'running' FOR UPDATE
),
ins AS (
    INSERT INTO trio_graph_checkpoints
        (checkpoint_id, trace_id, base_id, prev_id, link, header, body, checksum, run_id)
    SELECT %(cid)s, %(job)s, NULL, %(prev)s, 0, %(header)s, %(body)s, %(sum)s, %(job)s
    FROM fence RETURNING 1
),
run AS (
    INSERT INTO trio_graph_runs (trace_id, graph_name, status, updated_at, checkpoint_id,
        run_id, step)
    SELECT %(job)s, 'count', 'running', %(at)s, %(cid)s, %(job)s, %(step)s FROM ins
    ON CONFLICT (trace_id) DO UPDATE SET status = EXCLUDED.status,
        updated_at = EXCLUDED.updated_at, checkpoint_id = EXCLUDED.checkpoint_id,
        step = EXCLUDED.step
),
job AS (
    UPDATE trio_graph_jobs SET checkpoint_id = %(cid)s, updated_at = clock_timestamp()
    WHERE job_id = %(job)s AND EXISTS (SELECT 1 FROM ins)
)
SELECT (SELECT count(*) FROM fence), (SELECT count(*) FROM ins)
"""
"""The floor's one statement: a fenced checkpoint with no engine (see the module notes)."""


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
    """A worker process: serve ``count`` until SIGTERM, then print what it did (its CPU
    seconds since it was ready, claims, empty claims, wake-ups) as one JSON line."""
    async with PostgresStore(dsn, schema=schema, synchronous_commit=sync == "on") as store:
        worker = Worker(store, {"count": count_graph()}, concurrency=CONCURRENCY, lease=10)
        counts = {"claims": 0, "empty": 0, "wakes": 0}
        claim, wait = store.claim, store.wait_for_work

        async def counted_claim(*args: Any, **kwargs: Any) -> Any:
            got = await claim(*args, **kwargs)
            counts["claims"] += 1
            counts["empty"] += not got
            return got

        async def counted_wait(seconds: float) -> None:
            await wait(seconds)
            counts["wakes"] += 1

        store.claim, store.wait_for_work = counted_claim, counted_wait  # type: ignore[method-assign]
        with trio.open_signal_receiver(signal.SIGTERM) as signals:
            async with trio.open_nursery() as nursery:
                print("ready", flush=True)
                assert await trio.to_thread.run_sync(sys.stdin.readline) == "go\n"
                ready = time.process_time()
                await nursery.start(worker.serve)
                async for _ in signals:
                    nursery.cancel_scope.cancel()
        print(json.dumps({"cpu": time.process_time() - ready, **counts}), flush=True)


def backend_cpu(conn: psycopg.Connection[Any], app: str) -> float:
    """CPU seconds so far of the server processes serving connections named ``app``
    (``/proc``: the server runs on this machine; 0 where it cannot be read)."""
    pids = conn.execute(
        "SELECT pid FROM pg_stat_activity WHERE application_name = %s", (app,)
    ).fetchall()
    total = 0
    for (pid,) in pids:
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime + stime, in clock ticks
    return total / os.sysconf("SC_CLK_TCK")


def drop(dsn: str, schema: str) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")


@attrs.frozen
class Measured:
    """One workers measurement: wall seconds, and per run the CPU milliseconds of the
    worker processes and of their server processes, claims and empty claims."""

    seconds: float
    worker_cpu: float
    server_cpu: float
    claims: float
    empty: float
    wakes: float


async def measure_workers(
    dsn: str, workers: int, runs: int, steps: int, sync: bool, backlog: bool
) -> Measured:
    """``workers`` processes complete ``runs`` submitted runs: all queued before the
    workers start (``backlog``), or submitted one by one while they serve."""
    schema = "bench_" + uuid.uuid4().hex[:10]
    env = {**os.environ, "PGAPPNAME": schema}  # names the workers' server connections
    try:
        async with PostgresStore(dsn, schema=schema) as store:
            await store.announce("bench", ["count"])  # the workers announce only at the word
            command = [sys.executable, __file__, "--serve", dsn, schema, "on" if sync else "off"]
            pipes = {"stdin": subprocess.PIPE, "stdout": subprocess.PIPE}
            popen = functools.partial(subprocess.Popen, command, text=True, env=env, **pipes)
            procs = [await trio.to_thread.run_sync(popen) for _ in range(workers)]
            outputs = []
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
                for _ in range(runs if backlog else 0):
                    await store.submit("count", {"n": 0, "steps": steps})
                server_start = backend_cpu(conn, schema)
                t0 = time.perf_counter()
                for p in procs:
                    assert p.stdin is not None
                    p.stdin.write("go\n")
                    p.stdin.flush()
                for _ in range(0 if backlog else runs):
                    await store.submit("count", {"n": 0, "steps": steps})
                while True:
                    done = conn.execute(
                        "SELECT count(*) FROM trio_graph_jobs WHERE status = 'completed'"
                    ).fetchone()
                    if done is not None and done[0] == runs:
                        break
                    await trio.sleep(0.01)
                elapsed = time.perf_counter() - t0
                server = backend_cpu(conn, schema) - server_start
                conn.close()
            finally:
                for p in procs:
                    p.send_signal(signal.SIGTERM)
                for p in procs:
                    out, _ = await trio.to_thread.run_sync(
                        functools.partial(p.communicate, timeout=60)
                    )
                    outputs.append(json.loads(out.strip().splitlines()[-1]))
        total = {k: sum(o[k] for o in outputs) for k in ("cpu", "claims", "empty", "wakes")}
        return Measured(
            elapsed,
            total["cpu"] / runs * 1000,
            server / runs * 1000,
            total["claims"] / runs,
            total["empty"] / runs,
            total["wakes"] / runs,
        )
    finally:
        drop(dsn, schema)


async def timed_run(store: PostgresStore, every_step: bool) -> float:
    """ms per step of one fenced run of ``LONG`` steps (checkpointed each step or not)."""
    job = await store.submit("count", {"n": 0, "steps": LONG})
    [claim] = await store.claim("bench", ["count"], 1, 60.0)
    fenced = FencedStore(store, job, claim.epoch)
    policy = CheckpointPolicy(every_step=every_step)
    executor = Executor(store=fenced, policy=policy, max_steps=LONG + 10)
    t0 = time.perf_counter()
    await executor.run(count_graph(), {"n": 0, "steps": LONG})
    return (time.perf_counter() - t0) / (LONG + 1) * 1000


def floor_params(job: str, epoch: int) -> list[dict[str, Any]]:
    """The parameters of ``LONG`` floor saves, a chain of checkpoints of the claimed job."""
    header = json.dumps({"pad": "x" * (FLOOR_BYTES - 60)}, separators=(",", ":"))
    body = json.dumps([["n", 1, None]], separators=(",", ":"))
    params = [
        {
            "job": job,
            "epoch": epoch,
            "cid": uuid.uuid4().hex,
            "prev": None,
            "header": header,
            "body": body,
            "sum": "0" * 32,
            "at": time.time(),
            "step": i,
        }
        for i in range(LONG)
    ]
    for prev, p in itertools.pairwise(params):
        p["prev"] = prev["cid"]
    return params


def floor_save(conn: psycopg.Connection[Any], params: dict[str, Any]) -> None:
    row = conn.execute(FLOOR, params).fetchone()
    assert row == (1, 1), row


def floor_run(conn: psycopg.Connection[Any], job: str, epoch: int) -> float:
    """ms per fenced save of the floor: ``LONG`` statements on one held connection."""
    params = floor_params(job, epoch)
    t0 = time.perf_counter()
    for p in params:
        floor_save(conn, p)
    return (time.perf_counter() - t0) / LONG * 1000


async def floor_thread_run(conn: psycopg.Connection[Any], job: str, epoch: int) -> float:
    """ms per fenced save of the floor issued from Trio the design's way (DESIGN §11):
    each statement in ``trio.to_thread.run_sync``, still on the one held connection."""
    params = floor_params(job, epoch)
    t0 = time.perf_counter()
    for p in params:
        await trio.to_thread.run_sync(floor_save, conn, p)
    return (time.perf_counter() - t0) / LONG * 1000


async def measure_checkpoint_cost(
    dsn: str, sync: bool
) -> tuple[list[float], list[float], list[float]]:
    """Per round of ``ROUNDS`` interleaved rounds: the per-step checkpoint cost (ms per
    step of a run checkpointed each step minus that of a run checkpointed at the end,
    measured back to back), the floor's ms per save, and the floor's through a thread."""
    schema = "bench_" + uuid.uuid4().hex[:10]
    try:
        async with PostgresStore(dsn, schema=schema, synchronous_commit=sync) as store:
            await store.announce("bench", ["count"])  # so that submit does not warn
            job = await store.submit("count", {"n": 0, "steps": LONG})
            [claim] = await store.claim("floor", ["count"], 1, 600.0)
            options = f"-c search_path={schema} -c synchronous_commit={'on' if sync else 'off'}"
            conn = psycopg.connect(dsn, autocommit=True, options=options)
            try:
                floor_run(conn, job, claim.epoch)  # warm-up: plans, caches
                await timed_run(store, True)
                costs, floors, threaded = [], [], []
                for _ in range(ROUNDS):
                    with_ckpt = await timed_run(store, True)
                    costs.append(with_ckpt - await timed_run(store, False))
                    floors.append(floor_run(conn, job, claim.epoch))
                    threaded.append(await floor_thread_run(conn, job, claim.epoch))
            finally:
                conn.close()
            return costs, floors, threaded
    finally:
        drop(dsn, schema)


async def main(runs: int, steps: int) -> None:
    dsn = os.environ.get("TRIO_GRAPH_PG_DSN")
    if not dsn:
        sys.exit('benchmarks/workers.py needs TRIO_GRAPH_PG_DSN (eval "$(scripts/postgres.sh)")')
    if runs > 0:
        await print_workers(dsn, runs, steps)
    print(f"\nPer-step checkpoint cost (one run of {LONG} steps in one process, fenced save)")
    print("beside its floor (one statement by psycopg on one connection), medians of")
    print(f"{ROUNDS} interleaved rounds; best: the ratio of the best of each; thread: the floor")
    print("with each statement through trio.to_thread.run_sync (the design's way, DESIGN §11):")
    print(
        f"  {'commit':<13}  {'ckpt ms':>8}  {'floor ms':>8}  {'floor/ckpt':>10}  {'best':>6}"
        f"  {'thread ms':>9}  {'thread/ckpt':>11}"
    )
    for sync in (True, False):
        costs, floors, threaded = await measure_checkpoint_cost(dsn, sync)
        cost, floor = statistics.median(costs), statistics.median(floors)
        thread = statistics.median(threaded)
        label = "durable" if sync else "async commit"
        print(
            f"  {label:<13}  {cost:>8.3f}  {floor:>8.3f}  {floor / cost:>9.2f}x"
            f"  {min(floors) / min(costs):>5.2f}x  {thread:>9.3f}  {thread / cost:>10.2f}x"
        )


async def print_workers(dsn: str, runs: int, steps: int) -> None:
    """The workers table: 1, 2 and 4 processes, durable and with asynchronous commit."""
    print(f"\nWorkers on PostgreSQL (loopback): {runs} runs of {steps + 1} node executions,")
    print(f"{CONCURRENCY} jobs at once per worker process, a fenced checkpoint after every step;")
    print("per wkr: steps/s per worker process; CPU ms per run of the worker processes (from")
    print("the word to exit) and of their server processes (during the runs); per run: claims,")
    print("claims that found nothing, idle waits that ended (a NOTIFY or the poll interval).")
    print("queued: all runs submitted before the workers start; trickle: submitted one by one")
    print("(one NOTIFY each) while the workers serve, so the submitter paces them")
    print(
        f"  {'commit, runs':<22}  {'workers':>7}  {'seconds':>7}  {'runs/s':>7}  {'steps/s':>7}  "
        f"{'per wkr':>7}  {'wkr cpu':>7}  {'db cpu':>7}  {'claims':>6}  {'empty':>6}  {'wakes':>6}"
    )
    for backlog, sync in ((True, True), (True, False), (False, True)):
        label = ("durable" if sync else "async commit") + (", queued" if backlog else ", trickle")
        for workers in (1, 2, 4):
            m = await measure_workers(dsn, workers, runs, steps, sync, backlog)
            rate = runs / m.seconds
            steps_s = rate * (steps + 1)
            print(
                f"  {label:<22}  {workers:>7}  {m.seconds:>7.2f}  {rate:>7.1f}  {steps_s:>7.0f}"
                f"  {steps_s / workers:>7.0f}  {m.worker_cpu:>7.2f}  {m.server_cpu:>7.2f}"
                f"  {m.claims:>6.2f}  {m.empty:>6.2f}  {m.wakes:>6.2f}"
            )


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--serve":
        trio.run(serve, sys.argv[2], sys.argv[3], sys.argv[4])
    else:
        args = [int(a) for a in sys.argv[1:3]]
        trio.run(main, *(args + [200, 5][len(args) :]))
