"""Testing graphs: Trio's MockClock makes time-based behaviour instant and exact.

With ``autojump_threshold=0`` the clock jumps to the next deadline as soon as every
task is blocked, so an hour-long barrier timeout or a retry back-off takes no real
time, and durations in events are exact. In a pytest-trio suite use the
``autojump_clock`` fixture; here the tests are run by hand.

Run: python examples/testing_with_mockclock.py
"""

import trio
import trio.testing

from trio_graph import Executor, GraphBuilder
from trio_graph import events as ev


async def think(state):
    await trio.sleep(90)  # a minute and a half of (mock) thinking
    return {"idea": "ship it"}


graph = (
    GraphBuilder("slow")
    .task("think", think)
    .barrier("approve", timeout=24 * 3600, default="approve")  # a day to answer
    .edge("think", "approve")
    .start("think")
    .end("approve")
    .build()
)


async def test_durations_are_exact():
    async with Executor().stream(graph, {}) as run:
        durations = {}
        async for event in run:
            if isinstance(event, ev.NodeEnd):
                durations[event.node] = event.duration
    assert durations["think"] == 90
    assert durations["approve"] == 24 * 3600  # nobody answered: the default, a day later
    assert run.result.state["approve.approved"] is True
    return durations


def main():
    clock = trio.testing.MockClock(autojump_threshold=0)
    durations = trio.run(test_durations_are_exact, clock=clock)
    print(f"a {durations['approve'] / 3600:.0f} h barrier wait and a 90 s node, in no real time")
    return durations


if __name__ == "__main__":
    main()
