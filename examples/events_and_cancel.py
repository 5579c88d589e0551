"""Running a graph: the event stream, the one-call form, and cancellation.

``executor.stream(graph, state)`` opens a nursery that runs the graph and yields a
``Run`` to iterate events from. The contract: ``GraphStart`` first; every
``NodeStart`` has exactly one ``NodeEnd``; exactly one terminal event
(``GraphComplete`` or ``GraphError``), then the stream ends. Leaving the block
cancels whatever is still running: no task outlives it.

Cancellation is immediate, even inside a sleeping node, and ends the run with
``GraphError(Cancelled)`` carrying the state of the last completed step.

Run: python examples/events_and_cancel.py
"""

import trio

from trio_graph import Cancelled, Executor, GraphBuilder
from trio_graph import events as ev


async def fetch(state):
    await trio.sleep(0.01)
    return {"pages": state["pages"] + 1}


async def slow(state):
    await trio.sleep(3600)  # an hour: only a cancel gets us out of here quickly
    return {"slow": "done"}


graph = (
    GraphBuilder("events")
    .task("fetch", fetch)
    .task("slow", slow)
    .edge_if("fetch", "fetch", lambda s: s["pages"] < 3)  # a loop: fetch three pages
    .edge("fetch", "slow")
    .start("fetch")
    .end("slow")
    .build()
)


async def amain():
    seen = []
    # 1. Stream the events and cancel from the handle once the slow node starts.
    async with Executor().stream(graph, {"pages": 0}) as run:
        async for event in run:
            seen.append(type(event).__name__)
            if isinstance(event, ev.NodeStart):
                print(f"step {event.step}: {event.node} (span {event.span_id})")
                if event.node == "slow":
                    run.cancel()  # plain method: never blocks
            elif isinstance(event, ev.StateChanged):
                print(f"    {event.key} <- {event.value!r}")
            elif isinstance(event, ev.GraphError):
                print("terminal:", event.error, "| state:", event.state)
    assert isinstance(run.error, Cancelled)
    print("events:", " ".join(seen))

    # 2. An enclosing cancel scope (here a timeout) cancels the run just the same.
    with trio.move_on_after(0.1) as scope:
        await Executor().run(graph, {"pages": 0})
    print("gave up after 0.1 s:", scope.cancelled_caught)

    # 3. The one-call form returns the result or raises the terminal error.
    quick = GraphBuilder("quick").task("fetch", fetch).start("fetch").end("fetch").build()
    result = await Executor().run(quick, {"pages": 41})
    print("run() ->", result.state, f"in {len(result.execution_log)} step(s)")
    return seen


def main():
    return trio.run(amain)


if __name__ == "__main__":
    main()
