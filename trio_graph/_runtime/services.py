"""What an executor gives each run it starts: its deadline, resources and limiters.

Runtime layer (DESIGN §14). The executor builds one :class:`Services` per run and sets it
on the run's loop; the loop reads the deadline, and every ``NodeContext`` of the run
reaches the resources through it. A loop nobody configured has none of them.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import attrs
import trio

from ..errors import Cancelled, RunTimeout
from .resources import Resources


@attrs.frozen
class Services:
    """One run's deadline (``trio.current_time()``; ``inf``: none), its resources (None:
    none declared) and the executor's shared limiters by name."""

    deadline: float = math.inf
    resources: Resources | None = None
    limiters: Mapping[str, trio.CapacityLimiter] = attrs.field(factory=dict)

    def timed_out(self, where: Cancelled, run_id: str, started: float) -> RunTimeout:
        """The ``RunTimeout`` of a run stopped by its deadline at ``where`` (the
        ``Cancelled`` naming its node or barrier); a subclass of ``Cancelled``, so it is
        checkpointed like an interruption and can be resumed."""
        return RunTimeout(
            node=where.node,
            barrier=where.barrier,
            run_id=run_id,
            deadline=self.deadline,
            limit=max(self.deadline - started, 0.0),
        )
