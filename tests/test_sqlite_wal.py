"""A SQLite store's WAL checkpoints: run in a thread of their own that no save waits
for, the WAL kept bounded for a writer that never pauses, and ``aclose`` leaving no
checkpoint or connection behind (even when cancelled while one runs).
"""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
import trio

from trio_graph._model.checkpoint import Checkpoint
from trio_graph.stores import SQLiteStore, sqlite_connections
from trio_graph.stores import sqlite as sqlite_store

pytestmark = pytest.mark.trio
PAGE = 4096


def cp(i: int) -> Checkpoint:
    return Checkpoint(f"c{i}", "t", "g", "h", "next", i, state={"n": i, "pad": "x" * 500})


async def test_the_wal_stays_bounded_while_saves_never_pause(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Saves back to back: checkpoints run in their thread, and the WAL starts over
    (the writer catches it up when it outgrew its bound) instead of growing with every
    save; every checkpoint is stored."""
    monkeypatch.setattr(sqlite_connections, "WAL_FRAMES_MAX", 300)
    monkeypatch.setattr(sqlite_store, "_WAL_PAGES", 100)
    path = tmp_path / "s.db"
    largest = 0
    async with SQLiteStore(path) as store:
        for i in range(1500):
            await store.save(cp(i))
            if i % 50 == 0:
                largest = max(largest, (await trio.Path(f"{path}-wal").stat()).st_size)
        assert store._db.checkpointer.passes >= 5
        assert len(await store.list("t")) == 1500
    # The bound, plus what is written while a checkpoint runs (without a restart, 1500
    # saves of 6 pages or so each, ~9000 pages).
    assert 0 < largest < 2000 * PAGE


async def test_aclose_waits_for_a_running_checkpoint(tmp_path: Path) -> None:
    """A checkpoint in progress when the store closes: ``aclose`` returns after it ended,
    its connection closed; later saves do not start another."""
    store = SQLiteStore(tmp_path / "s.db")
    await store.save(cp(0))
    checkpointer = store._db.checkpointer
    assert checkpointer.start()
    await store.aclose()
    assert checkpointer._idle.is_set() and checkpointer._db is None
    assert not checkpointer.start()


async def test_a_cancelled_aclose_leaves_the_checkpoint_to_close_itself(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``aclose`` cancelled while a (slow) checkpoint runs: the checkpoint's thread
    closes its connection when it ends; nothing is left open."""
    store = SQLiteStore(tmp_path / "s.db")
    await store.save(cp(0))
    checkpointer = store._db.checkpointer
    release = threading.Event()
    slow = checkpointer._checkpoint

    def blocked() -> tuple[int, int, int]:
        release.wait(10)
        return slow()

    monkeypatch.setattr(checkpointer, "_checkpoint", blocked)
    assert checkpointer.start()
    with trio.move_on_after(0.2) as scope:
        await store.aclose()
    assert scope.cancelled_caught and not checkpointer._idle.is_set()
    release.set()
    await trio.to_thread.run_sync(checkpointer._idle.wait, 10)
    assert checkpointer._db is None
