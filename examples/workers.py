"""Workers: many processes on many machines share runs through PostgreSQL.

Anyone submits runs and decisions with the store alone (``store.submit``,
``store.decide``); a ``Worker`` serving the graph claims runnable runs with
``SELECT ... FOR UPDATE SKIP LOCKED`` under a lease it renews, runs them, and parks a
run that reaches a barrier with no decision: no process stays waiting for a person.
A decision makes the run runnable again for any worker; a crashed worker's lease
expires and another worker resumes the run from its last checkpoint.

Needs a PostgreSQL server: set TRIO_GRAPH_PG_DSN, e.g. ``eval "$(scripts/postgres.sh)"``
starts a throw-away one. From the command line the same flow is
``trio-graph submit``, ``trio-graph worker`` and ``trio-graph decide`` with ``--dsn``.

Run: python examples/workers.py
"""

import os
import uuid

import trio

from trio_graph import Approve, GraphBuilder, Reject
from trio_graph.stores.queue import JobStatus
from trio_graph.worker import Worker

graph = (
    GraphBuilder("expenses")
    .task("check", lambda s: {"ok": s["amount"] < 1000})
    .barrier("manager")  # parked in the database until someone decides
    .task("pay", lambda s: {"paid": s["amount"] if s["manager.approved"] else 0})
    .edge("check", "manager")
    .edge("manager", "pay")
    .start("check")
    .end("pay")
    .build()
)


async def amain(dsn):
    from trio_graph.stores import PostgresStore

    schema = "example_" + uuid.uuid4().hex[:8]  # a private corner of the database
    async with PostgresStore(dsn, schema=schema) as store:
        try:
            # Anyone (a web handler, a script) submits runs...
            jobs = [await store.submit("expenses", {"amount": a}) for a in (120, 4500)]
            worker = Worker(store, [graph], concurrency=2, poll_interval=0.05)
            await worker.serve(until_idle=True)  # runs both until they park at the barrier
            parked = await store.jobs(JobStatus.WAITING)
            print("parked at the barrier:", len(parked), "runs")
            # ...and decisions, later, from anywhere.
            await store.decide(jobs[0], "manager", Approve())
            await store.decide(jobs[1], "manager", Reject("over the limit"))
            await worker.serve(until_idle=True)  # any worker picks them up again
            results = {}
            for job_id in jobs:
                job = await store.job(job_id)
                state = (await store.latest(job.trace_id)).state
                results[state["amount"]] = (job.status.value, state["paid"])
                print(f"amount {state['amount']:5}: {job.status.value}, paid {state['paid']}")
            return results
        finally:
            await _drop(dsn, schema)


async def _drop(dsn, schema):
    import psycopg

    def drop():
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")

    await trio.to_thread.run_sync(drop)


def main():
    dsn = os.environ.get("TRIO_GRAPH_PG_DSN")
    if not dsn:
        print('no PostgreSQL: set TRIO_GRAPH_PG_DSN (eval "$(scripts/postgres.sh)")')
        return None
    return trio.run(amain, dsn)


if __name__ == "__main__":
    main()
