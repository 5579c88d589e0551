"""When a claimed run waiting at a barrier is parked: after ``park_after`` seconds.

Runtime layer. A worker's run follows the store's steering live
(:mod:`.steered`), so a decision sent while it waits at a barrier is applied in place,
in the same claim. :class:`Parking` gives such a wait ``park_after`` seconds (trio's
clock): a barrier still unanswered then is *parked*: the run is cancelled there (it
checkpoints, the worker lets go of the job, ``store.decide`` makes it runnable again).
``park_after=0`` parks at once. A barrier resolved meanwhile (a decision, or its own
deadline's default) stops its timer. Only the first barrier to time out parks the run.

A decision that arrives just as the run is parked is taken exactly once: the park
transaction sees it stored and queues the job instead of parking it, and the next
claim's run either has it in its checkpoint (the barrier passed: it is not handed
again) or takes it at the barrier.
"""

from __future__ import annotations

import attrs
import trio

from .._model.decisions import BarrierId
from .._runtime.run import Run


@attrs.define
class Parking:
    """The park timers of one run's unanswered barriers, and the barrier it parked at."""

    run: Run
    after: float
    """Seconds an unanswered barrier waits, live, before the run is parked there."""
    nursery: trio.Nursery
    parked: BarrierId | None = None
    deadline: float | None = None
    """The parked barrier's deadline (wall-clock epoch seconds), if it has one."""
    timers: dict[BarrierId, trio.CancelScope] = attrs.field(factory=dict)

    def waiting(self, bid: BarrierId, deadline: float | None) -> None:
        """The run waits at ``bid`` with no decision: park it there after :attr:`after`."""
        if self.parked is not None or bid in self.timers:
            return
        if self.after <= 0:
            self._park(bid, deadline)
            return
        scope = trio.CancelScope()
        self.timers[bid] = scope
        self.nursery.start_soon(self._later, bid, deadline, scope)

    def resolved(self, bid: BarrierId) -> None:
        """``bid`` was resolved while the run waited: it is not parked there."""
        scope = self.timers.pop(bid, None)
        if scope is not None:
            scope.cancel()

    def stop(self) -> None:
        """The run ended: no timer parks it any more."""
        for scope in self.timers.values():
            scope.cancel()
        self.timers.clear()

    async def _later(self, bid: BarrierId, deadline: float | None, scope: trio.CancelScope) -> None:
        with scope:
            await trio.sleep(self.after)
            self.timers.pop(bid, None)
            if self.parked is None:
                self._park(bid, deadline)

    def _park(self, bid: BarrierId, deadline: float | None) -> None:
        self.parked, self.deadline = bid, deadline
        self.run.cancel()
