"""Run-scoped resources: ``Executor(resources={name: factory})`` and ``ctx.resource(name)``.

Runtime layer (DESIGN §14). A factory returns an async context manager (an HTTP client,
an MCP session, a browser). Each run gets its own :class:`Resources`: a resource is
opened on its first ``ctx.resource(name)`` in the run (once, even when branches ask at
the same time) and closed when the run ends, fails or is cancelled, in the reverse order
of opening.

**One keeper task per run.** Every resource is entered *and* exited by one task, the
run's keeper, started beside the run's loop (:meth:`Resources.serve`) on an
``AsyncExitStack``. A node asks the keeper and waits for the value. So a context manager
that opens a nursery or a cancel scope (an anyio task group in an MCP session) is exited
by the task that entered it, as Trio requires, and whichever node used it first may be
long gone. The keeper is shielded: closing is owed even when the run is cancelled, for
at most :data:`CLOSE_GRACE` seconds once the run is over. A run with no resources
declared starts no keeper.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Awaitable, Callable, Mapping
from contextlib import AbstractAsyncContextManager
from typing import Any

import attrs
import trio

from ..errors import ResourceError

Factory = Callable[[], AbstractAsyncContextManager[Any]]

CLOSE_GRACE = 10.0
"""Seconds the resources of a finished (or cancelled) run have to close."""


@attrs.define
class _Ask:
    """A node's request to the keeper: open ``name``; ``done`` once answered."""

    name: str
    done: trio.Event = attrs.field(factory=trio.Event)
    error: BaseException | None = None


class Resources:
    """The resources of one run: opened on first use, closed when the run is over."""

    def __init__(self, factories: Mapping[str, Factory]) -> None:
        self._factories = factories
        self._values: dict[str, Any] = {}
        self._lock = trio.Lock()
        self._asks: trio.MemorySendChannel[_Ask] | None = None
        self._keeper = trio.CancelScope(shield=True)

    async def get(self, name: str, node: str) -> Any:
        """The value of resource ``name`` in this run (opened now if it is the first use);
        ``ResourceError`` naming ``node`` and ``name`` for a name nobody declared, a run
        that is over, or a factory that failed (its exception the cause)."""
        try:
            return self._values[name]
        except KeyError:
            pass
        if name not in self._factories:
            known = ", ".join(map(repr, self._factories)) or "none"
            raise ResourceError(
                f"no such resource; the executor declares {known}", node=node, resource=name
            )
        async with self._lock:  # concurrent first uses: one opens, the others wait
            if name not in self._values:
                await self._open(name, node)
        return self._values[name]

    async def _open(self, name: str, node: str) -> None:
        if self._asks is None:
            raise ResourceError("the run is over", node=node, resource=name)
        ask = _Ask(name)
        await self._asks.send(ask)
        await ask.done.wait()  # if cancelled meanwhile, the keeper still keeps the value
        if ask.error is not None:
            err = ask.error
            raise ResourceError(
                f"could not open it: {type(err).__name__}: {err}", node=node, resource=name
            ) from err

    async def serve(self, fn: Callable[..., Awaitable[None]], *args: Any) -> None:
        """Run ``fn(*args)`` (the run's loop) with the keeper beside it; when it is over,
        close what was opened (within :data:`CLOSE_GRACE`) before returning."""
        if not self._factories:
            await fn(*args)
            return
        async with trio.open_nursery() as nursery:
            send, receive = trio.open_memory_channel[_Ask](math.inf)
            self._asks = send
            nursery.start_soon(self._keep, receive)
            try:
                await fn(*args)
            finally:
                send.close()  # the keeper leaves its loop and closes the stack
                self._asks = None
                self._keeper.deadline = trio.current_time() + CLOSE_GRACE

    async def _keep(self, receive: trio.MemoryReceiveChannel[_Ask]) -> None:
        with self._keeper:
            async with contextlib.AsyncExitStack() as stack, receive:
                async for ask in receive:
                    if ask.name not in self._values:
                        try:
                            cm = self._factories[ask.name]()
                            self._values[ask.name] = await stack.enter_async_context(cm)
                        except Exception as exc:
                            ask.error = exc
                    ask.done.set()
