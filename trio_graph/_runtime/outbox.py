"""The send side of a run's event channel, as the step loop uses it.

Runtime layer. Events go out with ``send_nowait`` while the channel has room and
``await send`` only when it is full (back-pressure without a scheduler round trip per
event). A consumer that has gone (the receive side closed) stops the run at its next
send with :class:`ConsumerGone`, once; from then on, while the run shuts down, events
that cannot be sent at once are dropped, so shutting down never blocks on it.
"""

from __future__ import annotations

import trio

from .. import events as ev


async def not_started(event: ev.Event) -> None:
    """The send of a run that has not started: no event can be sent."""
    raise RuntimeError("the run has not started: no event can be sent")


UNSENT = (trio.WouldBlock, trio.BrokenResourceError, trio.ClosedResourceError)
"""What ``send_nowait`` raises when it did not send: :meth:`Outbox.put` the event then
(it waits for room, drops it, or raises :class:`ConsumerGone`, as the channel says)."""


def not_sent(event: ev.Event) -> None:
    """The ``send_nowait`` of a run that has not started: nothing is sent."""
    raise trio.ClosedResourceError


class ConsumerGone(Exception):
    """The receive side of the event channel was closed: stop quietly."""


class Outbox:
    """Sends one run's events; :attr:`closing` once nobody may be listening."""

    def __init__(self, send: trio.MemorySendChannel[ev.Event]) -> None:
        self._send = send
        self.send_nowait = send.send_nowait
        """Send at once or raise one of :data:`UNSENT` (no checkpoint, no scheduler
        round trip): the step loop's fast path, with :meth:`put` as its fallback."""
        self.closing = False
        """Set once the consumer is gone or an outer scope cancelled the run."""

    async def put(self, event: ev.Event) -> None:
        send = self._send
        try:
            send.send_nowait(event)
        except trio.WouldBlock:
            if self.closing:
                return  # shutting down: never block on a consumer that has gone
            try:
                await send.send(event)
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                self.closing = True
                raise ConsumerGone from None
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            if self.closing:
                return
            self.closing = True
            raise ConsumerGone from None

    def close(self) -> None:
        """Close the channel, synchronously: an awaited ``aclose()`` would be a checkpoint
        at which a cancel could replace an exception on its way out."""
        self._send.close()
