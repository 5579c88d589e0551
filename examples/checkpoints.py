"""Checkpoints and resume: durable runs in SQLite, history, resume, fork (time travel).

With a store, a run saves checkpoints: by default when a barrier waits or resolves,
when the run completes, and when ``run.request_checkpoint()`` asks; with
``CheckpointPolicy(every_step=True)`` after every step. A checkpoint holds the state,
the node to run next and the step count, so ``executor.resume(graph, trace_id)``
continues where the run stopped, even in another process, under a new trace id
linked to the old one. ``store.list(trace_id)`` is the history; ``executor.fork``
starts a new run from any checkpoint, optionally patching the state.

Run: python examples/checkpoints.py
"""

import os
import tempfile

import trio

from trio_graph import Approve, BarrierId, CheckpointPolicy, Executor, GraphBuilder, reducers
from trio_graph import events as ev
from trio_graph.stores import SQLiteStore

graph = (
    GraphBuilder("invoice")
    .task("extract", lambda s: {"amount": 120, "log": "extract"})
    .task("enrich", lambda s: {"vat": round(s["amount"] * 0.2, 2), "log": "enrich"})
    .barrier("approve")  # no timeout: waits as long as it takes, even across processes
    .task("pay", lambda s: {"paid": s["amount"] + s["vat"], "log": "pay"})
    .edge("extract", "enrich")
    .edge("enrich", "approve")
    .edge("approve", "pay")
    .reducer("log", reducers.append)
    .start("extract")
    .end("pay")
    .build()
)


async def start_and_leave(path):
    """Process 1: run until the barrier waits, then leave (the process could exit)."""
    async with SQLiteStore(path) as store:
        executor = Executor(store=store, policy=CheckpointPolicy(every_step=True))
        async with executor.stream(graph, {}) as run:
            async for event in run:
                if isinstance(event, ev.BarrierWaiting):
                    break  # leaving the block cancels the run; its checkpoint stays
        return run.trace_id


async def approve_later(path, trace_id):
    """Process 2, maybe days later: look at the history, approve, finish."""
    async with SQLiteStore(path) as store:
        for cp in await store.list(trace_id):
            print(f"  step {cp.step}  next {cp.next_node:8} {cp.status}")
        executor = Executor(store=store)
        decisions = {BarrierId("approve", 1): Approve()}
        async with executor.resume(graph, trace_id, decisions=decisions) as run:
            result = await run.wait()
        print("resumed as", result.trace_id, "->", result.state["log"])

        # Time travel: a new run from the checkpoint after "extract", with a patched amount.
        first = (await store.list(trace_id))[0]
        async with executor.fork(graph, first.checkpoint_id, patch={"amount": 1000}) as run:
            run.decide_all("approve", Approve())
            forked = await run.wait()
        print("forked with amount=1000 -> paid", forked.state["paid"])
        for row in sorted(await store.runs(), key=lambda r: r.updated_at):
            print(f"  run {row.trace_id[:8]} {row.status:9} from {str(row.resumed_from)[:8]}")
        return result.state, forked.state


def main():
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "runs.db")
        trace_id = trio.run(start_and_leave, path)
        print("left run", trace_id, "waiting at the barrier")
        return trio.run(approve_later, path, trace_id)


if __name__ == "__main__":
    main()
