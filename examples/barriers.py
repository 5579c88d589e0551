"""Barriers: pause a run for a human decision (human in the loop).

A barrier node waits for one of four decisions:
- ``Approve()`` writes ``<node>.approved = True`` and continues;
- ``Reject(reason)`` writes ``<node>.approved = False`` and ``<node>.reject_reason``
  (the graph's edges decide what next, e.g. loop back);
- ``Modify(key, value)`` writes a key, then continues;
- ``Reroute(target)`` goes to ``target`` (an edge must lead there).
Decisions are level-triggered: one sent before the barrier is reached is kept.
``run.decide(BarrierId(node, n), d)`` answers the n-th arrival, ``run.decide_all(node, d)``
every arrival from then on. A barrier with a timeout takes its default when no
decision comes: "reject" (the default), "approve" or "skip".

Run: python examples/barriers.py
"""

import trio
import trio.testing

from trio_graph import Approve, BarrierId, Executor, GraphBuilder, Modify, Reject, Reroute, reducers
from trio_graph import events as ev


def write(state):
    return {"version": 1, "text": f"v{state['version'] + 1} {state.get('tone', 'plain')}"}


graph = (
    GraphBuilder("approval")
    .task("write", write)
    .barrier("review", timeout=3600, default="reject")  # an hour, then reject
    .task("publish", lambda s: {"published": s["text"]})
    .task("archive", lambda s: {"archived": True})
    .edge("write", "review")
    .edge_if("review", "write", lambda s: s.get("review.approved") is False)
    .edge("review", "publish")
    .edge("review", "archive")  # only by Reroute
    .edge("archive", "publish")
    .reducer("version", reducers.add)
    .start("write")
    .end("publish")
    .build()
)


async def interactive():
    """Answer each wait as it comes: reject once, then modify, then approve."""
    answers = [Reject("too formal"), Modify("tone", "friendly"), Approve()]
    async with Executor().stream(graph, {"version": 0}) as run:
        async for event in run:
            if isinstance(event, ev.BarrierWaiting):
                decision = answers.pop(0) if answers else Approve()
                print(f"  {event.barrier_id} waits -> {decision}")
                run.decide(event.barrier_id, decision)
    # Modify wrote "tone" but left review.approved as the Reject set it (False), so the
    # conditional edge looped back once more: the third draft is the friendly one.
    return run.result.state


async def ahead_of_time():
    """Decisions sent before the barriers are reached are kept until they are."""
    async with Executor().stream(graph, {"version": 0}) as run:
        run.decide(BarrierId("review", 1), Reject("needs a second look"))
        run.decide_all("review", Reroute("archive"))  # every later arrival
        result = await run.wait()
    return [entry.node for entry in result.execution_log]


async def timeout_default():
    """No decision: after an hour the default (reject) applies. MockClock makes the hour instant."""
    with trio.move_on_after(7200):
        async with Executor(max_steps=4).stream(graph, {"version": 0}) as run:
            async for event in run:
                if isinstance(event, ev.BarrierResolved):
                    print(f"  {event.barrier_id}: {event.decision} (timed out: {event.timed_out})")
                    break
    return trio.current_time()


def main():
    state = trio.run(interactive)
    print("interactive ->", state["published"], f"({state['version']} drafts)")
    path = trio.run(ahead_of_time)
    print("ahead of time ->", " -> ".join(path))
    now = trio.run(timeout_default, clock=trio.testing.MockClock(autojump_threshold=0))
    print(f"timeout -> the default after {now:.0f} s of (mock) time")
    return state, path


if __name__ == "__main__":
    main()
