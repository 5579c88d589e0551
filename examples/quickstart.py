"""Quickstart: a draft -> review loop with a condition, a reducer and a barrier.

Run: python examples/quickstart.py
"""

import trio

from trio_graph import Approve, Executor, GraphBuilder, reducers
from trio_graph import events as ev


async def write(state):  # a task node: a function of the (read-only) state
    await trio.sleep(0.001)  # stands for a call to a model or an API
    return {"round": 1, "text": f"draft {state['round'] + 1}"}  # updates to merge


def good_enough(state):
    return state["round"] >= 2


graph = (
    GraphBuilder("quickstart")
    .task("write", write)
    .condition("check", [("review", good_enough)])  # first true predicate wins...
    .barrier("review", timeout=60, default="reject")  # wait for a person
    .task("publish", lambda state: {"published": state["text"]})
    .edge("write", "check")
    .edge("check", "write")  # ...else the normal edge: write again
    .edge_if("review", "write", lambda s: not s["review.approved"])
    .edge("review", "publish")
    .reducer("round", reducers.add)  # updates to "round" are added, not overwritten
    .start("write")
    .end("publish")
    .build()
)


async def amain():
    async with Executor(max_steps=20).stream(graph, {"round": 0}) as run:
        async for event in run:
            if isinstance(event, ev.NodeEnd):
                print(f"{event.node:8} {event.duration * 1000:6.2f} ms")
            elif isinstance(event, ev.BarrierWaiting):
                run.decide(event.barrier_id, Approve())  # a person would decide here
    print("published:", run.result.state["published"])
    return run.result


def main():
    return trio.run(amain)


if __name__ == "__main__":
    main()
