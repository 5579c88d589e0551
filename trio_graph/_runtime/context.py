"""``NodeContext``: what a node that takes a second parameter gets (DESIGN §14).

Runtime layer. ``async def write(state, ctx)``: the builder sees the second parameter
once; the loop then builds one context per execution (none for one-argument nodes, so
they cost nothing more). ``await ctx.emit(data)`` streams ``data`` to the run's consumer
as a ``NodeOutput`` event between the node's ``NodeStart`` and ``NodeEnd``, through the
run's own channel: a slow consumer slows the node, and memory stays bounded.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, Protocol

import trio

from .. import events as ev
from .._model.jsonvalue import json_problem
from ..errors import ResourceError, StateError

if TYPE_CHECKING:
    from .._model.levels import Step
    from .._model.run_state import RunState
    from .resources import Resources
    from .services import Services


class Source(Protocol):
    """Where contexts come from: the run's loop (its state, its event send, its services)."""

    @property
    def state(self) -> RunState: ...
    @property
    def emit(self) -> Callable[[ev.Event], Awaitable[None]]: ...
    @property
    def services(self) -> Services: ...


class NodeContext:
    """Who and where the node is, and how it talks back."""

    __slots__ = (
        "_durable",
        "_emit",
        "_resources",
        "attempt",
        "branch",
        "node",
        "run_id",
        "span_id",
        "step",
        "trace_id",
    )

    def __init__(
        self,
        *,
        run_id: str,
        trace_id: str,
        node: str,
        span_id: int,
        step: int,
        emit: Callable[[ev.Event], Awaitable[None]],
        durable: bool,
        branch: str | None = None,
        resources: Resources | None = None,
    ) -> None:
        self.run_id = run_id
        self.trace_id = trace_id
        self.node = node
        """The node's name as events carry it (``"sub/node"`` inside a subgraph)."""
        self.span_id = span_id
        self.step = step
        self.branch = branch
        """The branch of a parallel node this is, else None."""
        self.attempt = 1
        """Which attempt this is, from 1 (more under a retry policy)."""
        self._emit = emit
        self._durable = durable
        self._resources = resources

    @classmethod
    def of(cls, source: Source, step: Step, branch: str | None = None) -> NodeContext:
        """The context of ``step`` of the run of ``source`` (of one of its branches, for
        a fan-out)."""
        run, emit = source.state, source.emit
        return cls(
            run_id=run.run_id,
            trace_id=run.trace_id,
            node=step.path,
            span_id=step.span,
            step=step.number,
            emit=emit,
            durable=run.durable,
            branch=branch,
            resources=source.services.resources,
        )

    @property
    def deadline(self) -> float:
        """The effective Trio deadline of this call (``trio.current_time()`` units;
        ``inf`` when nothing bounds it): the node's timeout, and any enclosing one."""
        return trio.current_effective_deadline()

    async def emit(self, data: Any) -> None:
        """Stream ``data`` to the consumer now, as ``NodeOutput``; waits while the
        consumer is behind. With a store, ``data`` must be JSON-compatible (else
        ``StateError`` naming the node)."""
        if self._durable:
            problem = json_problem(data, "data")
            if problem is not None:
                raise StateError(
                    f"node {self.node!r} emitted a value a store cannot keep: {problem}",
                    node=self.node,
                )
        await self._emit(ev.NodeOutput(self.trace_id, self.node, self.span_id, data, self.branch))

    async def resource(self, name: str) -> Any:
        """The run's resource ``name`` (``Executor(resources={name: factory})``): the value
        its async context manager entered, opened on the first use in the run and closed
        when the run is over. ``ResourceError`` naming the node and the resource for a
        name the executor does not declare, or a factory that failed."""
        if self._resources is None:
            raise ResourceError(
                "no such resource; the executor declares none", node=self.node, resource=name
            )
        return await self._resources.get(name, self.node)

    def __repr__(self) -> str:
        return f"<NodeContext {self.node} step {self.step} attempt {self.attempt}>"
