"""Live updates: a server-sent event stream per page, driven by the store's change wake-ups.

Runtime layer (Trio). A stream reads what the page shows (:data:`Read`: a version text
and a few fields), sends ``event: change`` when the version moved, then waits for the
store to say something may have changed (``store.wait_for_steering``: SQLite's
``PRAGMA data_version`` watch, PostgreSQL's ``LISTEN``, MemoryStore's board) or for
:data:`POLL` seconds, whichever is first, and at least :data:`FLOOR` seconds: a slow
page costs one small read a second, never a busy loop. A stream ends after
``seconds`` (the browser's ``EventSource`` reconnects by itself), so no request lives
for ever.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import trio

POLL = 1.0
"""Seconds between two reads when the store says nothing (a checkpoint save by another
process wakes SQLite's watch; PostgreSQL notifies only decisions, so saves wait this)."""
FLOOR = 0.1
"""The shortest time between two reads, however often the store wakes us."""
KEEPALIVE = 15.0
"""Seconds of silence after which a comment line is sent (proxies keep the stream)."""
WATCH = "trio-graph-ui"
"""The key this page's waits go under (a store's per-run mark of its feed)."""

Read = Callable[[], Awaitable[tuple[str, dict[str, Any]]]]
"""Reads what a page shows: its version and the fields a change event carries."""


async def wait_for_change(store: object, seconds: float) -> None:
    """Return when the store may have changed, or after ``seconds``."""
    wait = getattr(store, "wait_for_steering", None)
    if wait is None:
        await trio.sleep(seconds)
    else:
        await wait(WATCH, seconds)


def message(event: str, data: dict[str, Any]) -> str:
    """One server-sent event (``data`` as one JSON line)."""
    return f"event: {event}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n"


async def changes(
    read: Read, store: object, *, seconds: float, since: str = "", poll: float = POLL
) -> AsyncIterator[str]:
    """The event stream: ``change`` each time the version read differs from the last
    one sent (``since``: the version the page already shows), for ``seconds``."""
    last, quiet = since, 0.0
    deadline = trio.current_time() + seconds
    yield "retry: 1000\n\n"
    while trio.current_time() < deadline:
        version, data = await read()
        if version != last:
            last, quiet = version, 0.0
            yield message("change", {"version": version, **data})
        elif quiet >= KEEPALIVE:
            quiet = 0.0
            yield ": keep-alive\n\n"
        started = trio.current_time()
        with trio.move_on_at(deadline):
            await wait_for_change(store, poll)
            await trio.sleep(FLOOR)
        quiet += trio.current_time() - started
