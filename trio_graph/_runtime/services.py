"""What an executor gives each run it starts: its deadline, resources and limiters.

Runtime layer (DESIGN §14). The executor builds one :class:`Services` per run and sets it
on the run's loop; the loop reads the deadline, and every ``NodeContext`` of the run
reaches the resources through it. A loop nobody configured has none of them.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import TYPE_CHECKING

import attrs
import trio

from .._model.graph import Graph, TaskNode
from ..errors import Cancelled, InvalidGraph, RunTimeout
from .resources import Factory, Resources

if TYPE_CHECKING:
    from .._model.run_state import RunState


@attrs.frozen
class Services:
    """One run's deadline (``trio.current_time()``; ``inf``: none), its resources (None:
    none declared) and the executor's shared limiters by name."""

    deadline: float = math.inf
    resources: Resources | None = None
    limiters: Mapping[str, trio.CapacityLimiter] = attrs.field(factory=dict)

    def stopped(self, run: RunState, deadline_passed: bool, started: float) -> Cancelled:
        """Why ``run`` stopped when its loop's scope was cancelled: ``Cancelled`` naming
        its node or barrier, or a ``RunTimeout`` (a ``Cancelled``, so checkpointed like an
        interruption and resumable) when its deadline passed."""
        where = run.inner.cancelled()
        if not deadline_passed:
            return where
        return RunTimeout(
            node=where.node,
            barrier=where.barrier,
            run_id=run.run_id,
            deadline=self.deadline,
            limit=max(self.deadline - started, 0.0),
        )

    def slot(self, node: object) -> trio.CapacityLimiter | None:
        """The shared limiter a task node holds while it runs, if it names one."""
        name = node.limiter if isinstance(node, TaskNode) else None
        return None if name is None else self.limiters[name]

    def shared(self, name: str | None) -> trio.CapacityLimiter | None:
        """The shared limiter called ``name`` (None for None)."""
        return None if name is None else self.limiters[name]

    @staticmethod
    async def wait(slot: trio.CapacityLimiter) -> float:
        """Take a slot of ``slot``; the seconds it took (``NodeStart.waited``)."""
        t0 = trio.current_time()
        await slot.acquire()
        return trio.current_time() - t0

    @staticmethod
    def release(slot: trio.CapacityLimiter | None) -> None:
        if slot is not None:
            slot.release()


def seconds(what: str, value: float | None, *, absolute: bool = False) -> float | None:
    """A ``timeout`` (seconds >= 0) or ``deadline`` (any time) argument, checked."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or math.isnan(value):
        raise ValueError(f"{what} must be a number of seconds or None, got {value!r}")
    if not absolute and value < 0:
        raise ValueError(f"{what} must be >= 0 seconds, got {value!r}")
    return float(value)


def checked_factories(resources: Mapping[str, Factory]) -> dict[str, Factory]:
    """``Executor(resources=...)``, checked: names to callables."""
    for name, factory in resources.items():
        if not isinstance(name, str) or not callable(factory):
            raise ValueError(f"resources maps names to factories, got {name!r}: {factory!r}")
    return dict(resources)


def shared_limiters(limiters: Mapping[str, int]) -> dict[str, trio.CapacityLimiter]:
    """``Executor(limiters={name: slots})``: one ``trio.CapacityLimiter`` per name."""
    made = {}
    for name, size in limiters.items():
        if not isinstance(size, int) or isinstance(size, bool) or size < 1:
            raise ValueError(f"limiter {name!r} needs a positive int of slots, got {size!r}")
        made[name] = trio.CapacityLimiter(size)
    return made


def check_limiters(graph: Graph, limiters: Mapping[str, trio.CapacityLimiter]) -> None:
    """Every shared limiter ``graph`` names must be one of the executor's: else
    ``InvalidGraph`` naming each node and limiter."""
    known = ", ".join(map(repr, limiters)) or "none"
    problems = [
        f"node {path!r}: limiter {name!r} is not one of the executor's limiters ({known})"
        for path, name in graph.limiters()
        if name not in limiters
    ]
    if problems:
        raise InvalidGraph(graph.name, problems)
