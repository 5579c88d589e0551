"""One wait for a store's changes, shared by every run of the process that follows it.

Runtime layer. A SQL queue store tells a live run that its steering may have changed
(DESIGN §8) by one means per store, not per run: SQLite one
:class:`~trio_graph.stores.sqlite_changes.ChangeWatch` on the file, PostgreSQL one
``LISTEN`` connection. A :class:`Feed` lets many followers wait on it at once: the first
waiter *looks* (calls the store's ``look(seconds)``, which returns True on a change),
the others wait on an event that the looker sets when it saw one. A reader takes a
:meth:`Feed.mark` before reading, so a change committed between its read and its wait
is not missed. A follower's wait
ends on a change or after its own ``seconds``, whichever is first; nobody re-reads rows
unless something was committed.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import trio

Look = Callable[[float], Awaitable[bool]]
"""Wait up to ``seconds`` for a change; True when one was seen."""


class Feed:
    """Shares one ``look`` among every task waiting for a change."""

    def __init__(self, look: Look) -> None:
        self._look = look
        self._changes = 0
        """Changes seen so far (a waiter returns once it moved)."""
        self._looking = False
        self._turn = trio.Event()
        """Set when a look ends: on a change, or for another waiter to look on."""

    def mark(self) -> int:
        """The changes seen so far: a wait ``since`` it returns at once if one came after."""
        return self._changes

    async def wait(self, seconds: float, *, since: int | None = None) -> None:
        """Return on the next change (after ``since``, a :meth:`mark`; else from now), or
        after ``seconds``."""
        deadline = trio.current_time() + seconds
        start = self._changes if since is None else since
        with trio.move_on_after(seconds):
            while self._changes == start:
                if self._looking:
                    await self._turn.wait()
                    continue
                if not await self._take_a_look(deadline - trio.current_time()):
                    return

    async def _take_a_look(self, seconds: float) -> bool:
        self._looking = True
        seen = False
        try:
            seen = await self._look(max(0.0, seconds))
        finally:
            self._looking = False
            self._changes += seen
            self._turn.set()
            self._turn = trio.Event()
        return seen
