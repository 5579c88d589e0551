"""``Run``: the handle a caller gets from ``executor.stream()``.

Runtime layer. Iterate it for events (``async for event in run``); steer it with
the plain, never-blocking methods ``decide``, ``decide_all``, ``cancel`` and
``request_checkpoint``; ``await run.wait()`` consumes the rest and returns the
result or raises the terminal error.
"""

from __future__ import annotations

from collections import deque
from typing import TYPE_CHECKING

import trio

from .. import events as ev
from .._model.decisions import BarrierId, Decision
from ..errors import GraphError

if TYPE_CHECKING:
    from .loop import StepLoop


class Run:
    """A running graph: an async iterator of events plus the steering methods."""

    def __init__(self, loop: StepLoop, receive: trio.MemoryReceiveChannel[ev.Event]) -> None:
        self._loop = loop
        self._receive = receive
        self._buffer: deque[ev.Event] = deque()

    @property
    def trace_id(self) -> str:
        """This run's trace id (every event carries it)."""
        return self._loop.trace_id

    @property
    def run_id(self) -> str:
        """The run's id for its whole life: the same on every resume (DESIGN §8)."""
        return self._loop.state.run_id

    @property
    def result(self) -> ev.RunResult | None:
        """The result once the run completed, else None."""
        return self._loop.result

    @property
    def error(self) -> GraphError | None:
        """The terminal error once the run failed or was cancelled, else None."""
        return self._loop.error

    @property
    def done(self) -> bool:
        """True once the terminal event has been produced."""
        return self._loop.finished

    def __aiter__(self) -> Run:
        return self

    async def __anext__(self) -> ev.Event:
        # One scheduler round trip per batch: take one event (waiting if none),
        # then drain whatever else is already buffered without waiting.
        buffer = self._buffer
        if buffer:
            return buffer.popleft()
        try:
            event = await self._receive.receive()
        except (trio.EndOfChannel, trio.ClosedResourceError):
            raise StopAsyncIteration from None
        receive_nowait = self._receive.receive_nowait
        try:
            while True:
                buffer.append(receive_nowait())
        except (trio.WouldBlock, trio.EndOfChannel):
            pass
        return event

    async def wait(self) -> ev.RunResult:
        """Consume the remaining events; return the result or raise the terminal error."""
        async for _ in self:
            pass
        if self._loop.error is not None:
            raise self._loop.error
        assert self._loop.result is not None, "a finished run has a result or an error"
        return self._loop.result

    def decide(self, barrier_id: BarrierId, decision: Decision) -> None:
        """Answer one barrier occurrence (now, or before it is reached: it is kept).

        Raises ``BarrierError`` at once for a node that is not a barrier, an
        occurrence already resolved, a malformed decision, or a finished run;
        ``MissingEdge`` for a ``Reroute`` with no edge.
        """
        self._loop.decide(barrier_id, decision)

    def decide_all(self, node: str, decision: Decision) -> None:
        """Answer every occurrence of barrier ``node`` from now on (exact decisions win)."""
        self._loop.decide_all(node, decision)

    def cancel(self) -> None:
        """Stop the run at once; it ends with ``GraphError(Cancelled)``."""
        self._loop.cancel()

    def request_checkpoint(self) -> None:
        """Save a checkpoint before the next step (needs a store; ``CheckpointError`` if none)."""
        self._loop.request_checkpoint()

    async def aclose(self) -> None:
        """Stop listening: the run stops at its next event."""
        await self._receive.aclose()
