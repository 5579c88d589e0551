"""Parallel nodes: fan out into branches, merge their updates deterministically.

Each branch is a child task in a nursery under the parallel node's cancel scope and
sees the same copy of the pre-fork state. Their updates merge in **declaration
order**, whatever order they finished in; two branches writing the same key need a
reducer for it (else a ``StateError`` "parallel merge conflict"). With
``strategy="fail_fast"`` (the default) the first failure cancels the siblings at
once; with ``"collect_all"`` every branch finishes and every failure is reported.
``limit`` caps how many branches run at once.

Run: python examples/parallel.py
"""

import trio

from trio_graph import Executor, GraphBuilder, NodeExecutionFailed, reducers
from trio_graph import events as ev


def checker(name, delay, fail=False):
    async def check(state):
        await trio.sleep(delay)
        if fail:
            raise RuntimeError(f"{name} is down")
        return {"results": [name], "latency": {name: delay}}

    check.__name__ = name
    return check


def build(strategy="fail_fast", fail=False, limit=None):
    branches = {
        "slow": checker("slow", 0.03),
        "medium": checker("medium", 0.02, fail=fail),
        "fast": checker("fast", 0.01),
    }
    return (
        GraphBuilder(f"parallel-{strategy}")
        .parallel("checks", branches, strategy=strategy, limit=limit)
        .task("report", lambda s: {"summary": ", ".join(s["results"])})
        .edge("checks", "report")
        .reducer("results", reducers.extend)  # several branches write "results"
        .reducer("latency", reducers.merge)
        .start("checks")
        .end("report")
        .build()
    )


async def amain():
    finished = []
    async with Executor().stream(build(), {}) as run:
        async for event in run:
            if isinstance(event, ev.BranchCompleted):
                finished.append(event.branch)
    print("finished in order:", finished)  # fast, medium, slow
    print("merged in order:  ", run.result.state["results"])  # slow, medium, fast

    for strategy in ("fail_fast", "collect_all"):
        try:
            await Executor().run(build(strategy, fail=True), {})
        except NodeExecutionFailed as exc:
            print(f"{strategy}: {exc}")

    started = trio.current_time()
    await Executor().run(build(limit=1), {})  # one branch at a time: 0.01+0.02+0.03 s
    print(f"limit=1 took {trio.current_time() - started:.2f} s")
    return finished, run.result.state["results"]


def main():
    return trio.run(amain)


if __name__ == "__main__":
    main()
