"""Node policies: retries with back-off, timeouts, and failures that take the fallback edge.

- ``retry=RetryPolicy(max_attempts, backoff, multiplier, max_backoff, jitter, retry_on)``
  retries a failing task; each retry emits ``ObservedError`` of kind ``Retrying``.
- ``timeout=`` bounds each attempt (``trio.fail_after``); running out is a ``NodeTimeout``.
- ``fallback_on=(NodeTimeout, MyError)`` turns those failures into the node's fallback
  edge (like returning ``Fallback``), instead of ending the run.
- ``blocking=True`` runs a plain (blocking) function in a worker thread.

Run: python examples/retries_timeouts.py
"""

import time

import trio

from trio_graph import Executor, GraphBuilder, NodeTimeout, RetryPolicy
from trio_graph import events as ev


class Flaky:
    """Fails twice with a connection error, then answers."""

    def __init__(self):
        self.calls = 0

    async def __call__(self, state):
        self.calls += 1
        if self.calls < 3:
            raise ConnectionError("connection reset")
        return {"quote": "42.0"}


async def stuck(state):
    await trio.sleep(10)  # a service that hangs
    return {"rate": 1.0}


def parse(state):
    time.sleep(0.001)  # blocking work (a C library, a file...): runs in a thread
    return {"value": float(state["quote"]) * state.get("rate", 1.0)}


graph = (
    GraphBuilder("policies")
    .task("quote", Flaky(), retry=RetryPolicy(max_attempts=3, backoff=0.01, jitter=False))
    .task("rate", stuck, timeout=0.05, fallback_on=(NodeTimeout,))
    .task("default_rate", lambda s: {"rate": 1.0, "rate_source": "default"})
    .task("parse", parse, blocking=True)
    .edge("quote", "rate")
    .edge("rate", "parse")
    .edge_fallback("rate", "default_rate")
    .edge("default_rate", "parse")
    .start("quote")
    .end("parse")
    .build()
)


async def amain():
    observed = []
    async with Executor().stream(graph, {}) as run:
        async for event in run:
            if isinstance(event, ev.ObservedError):
                err = event.error
                observed.append(err.kind)
                print(f"{event.node}: {err.kind} - {err.message}")
    state = run.result.state
    print("state:", state)
    return observed, state


def main():
    return trio.run(amain)


if __name__ == "__main__":
    main()
