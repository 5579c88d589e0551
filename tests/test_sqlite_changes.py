"""``ChangeWatch``: a commit by another connection (another process, in effect) is noticed
within the polling interval, and nothing is reported while nobody writes (virtual time)."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import trio

from trio_graph.stores.sqlite_changes import ChangeWatch


def _commit(path: Path) -> None:
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("CREATE TABLE IF NOT EXISTS t (x)")
    db.execute("INSERT INTO t VALUES (1)")
    db.close()


async def test_another_connections_commit_wakes_the_watch(
    tmp_path: Path, autojump_clock: Any
) -> None:
    """wait() returns soon after another connection commits, and runs to its timeout
    when nothing is written."""
    path = tmp_path / "w.db"
    _commit(path)
    watch = ChangeWatch(str(path), interval=0.1)
    try:
        start = trio.current_time()
        await watch.wait(3.0)  # nothing written: the whole timeout
        assert trio.current_time() - start == 3.0
        async with trio.open_nursery() as nursery:

            async def later() -> None:
                await trio.sleep(2.0)
                _commit(path)

            nursery.start_soon(later)
            start = trio.current_time()
            await watch.wait(5.0)
            assert 2.0 <= trio.current_time() - start <= 2.1 + 1e-9
    finally:
        watch.close()
