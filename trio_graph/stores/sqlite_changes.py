"""Noticing another connection's commit to a SQLite file, cheaply (DESIGN §8).

Runtime layer. SQLite has no notifications; ``PRAGMA data_version`` on a connection
changes when *another* connection (of this process or any other) has committed to the
file since the last time it was asked, and costs a few microseconds, with no row read.
A :class:`ChangeWatch` keeps one such connection and asks every ``interval`` seconds (at
most), so a run waiting for a decision notices one within that time without re-reading
rows.
"""

from __future__ import annotations

import math
import sqlite3

import trio

INTERVAL = 0.125
"""Seconds between two looks at the file's data version (a binary fraction, so that the
times a virtual clock jumps to stay exact sums)."""


class ChangeWatch:
    """Waits for a commit to ``path`` by another connection."""

    def __init__(self, path: str, interval: float = INTERVAL) -> None:
        self._path = path
        self._interval = interval
        self._db: sqlite3.Connection | None = None
        self._version: int | None = None
        self._due = -math.inf  # trio time at which the next look may happen

    def _look(self) -> int:
        if self._db is None:  # opened on the Trio thread, used only there
            self._db = sqlite3.connect(self._path, isolation_level=None)
        (version,) = self._db.execute("PRAGMA data_version").fetchone()
        return int(version)

    def prime(self) -> None:
        """Take the baseline now if there is none (a commit from now on is noticed)."""
        if self._version is None:
            self._version = self._look()

    async def wait(self, seconds: float) -> bool:
        """Return once another connection has committed since the last call (or, the
        first time, since now), True; or after ``seconds``, False.

        Looks at most once per ``interval``, across calls: a run's own commits change
        the data version too, and a follower that read its steering and waits again at
        once must not turn into a busy loop of reads (one per commit) while the run
        writes a checkpoint every step. A commit is still noticed within ``interval``.
        """
        deadline = trio.current_time() + seconds
        if self._version is None:
            self._version = self._look()
            self._due = trio.current_time() + self._interval
        while True:
            now = trio.current_time()
            if now < self._due <= now + self._interval:  # looked less than an interval ago
                if deadline <= now:
                    return False
                await trio.sleep(min(self._due, deadline) - now)
                continue
            self._due = now + self._interval
            version = self._look()
            if version != self._version:
                self._version = version
                return True
            if deadline <= now:
                return False

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None
