"""Liveness (issue 15, DESIGN §8): a run whose process was killed (SIGKILL, no chance to
write anything) shows ``interrupted`` in ``runs()`` and ``trio-graph show``, not
``running`` forever, once its heartbeat lapsed.

A real runner process on SQLite starts a run whose second node blocks, says so, and is
killed. Its hold names this machine and its pid, so the dead pid makes it lapse at once;
a runner whose hold names another machine (``owner_name`` replaced in the child) lapses
only when its lease (``continuation.LEASE``, set short in the child) runs out.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import trio
from test_live_processes import _line

from trio_graph._model.checkpoint import RunStatus
from trio_graph.stores.sqlite import SQLiteStore

RUNNER = """
import sys, trio
from trio_graph import CheckpointPolicy, Executor, GraphBuilder
from trio_graph.stores import SQLiteStore, continuation

continuation.LEASE = float(sys.argv[2])
if sys.argv[3] != "-":
    continuation.owner_name = lambda: sys.argv[3]

async def slow(state):
    print("blocked", flush=True)
    await trio.sleep_forever()

graph = (
    GraphBuilder("slow")
    .task("first", lambda s: {"n": 1})
    .task("slow", slow)
    .edge("first", "slow")
    .start("first")
    .end("slow")
    .build()
)

async def main():
    every = CheckpointPolicy(every_step=True)
    async with SQLiteStore(sys.argv[1]) as store:
        async with Executor(store=store, policy=every).stream(graph, {}) as run:
            print("run", run.run_id, flush=True)
            async for event in run:
                pass

trio.run(main)
"""


def _killed_run(db: Path, lease: float, owner: str) -> str:
    """Start the runner, wait until its run blocks in a node, SIGKILL it; the run id."""
    runner = subprocess.Popen(
        [sys.executable, "-c", RUNNER, str(db), str(lease), owner],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": os.environ.get("PYTHONPATH", "")},
    )
    try:
        word, run_id = _line(runner, 60).split()
        assert word == "run"
        assert _line(runner, 60).strip() == "blocked"
    finally:
        runner.send_signal(signal.SIGKILL)
        runner.communicate()
    assert runner.returncode == -signal.SIGKILL
    return run_id


def _status(db: Path, run_id: str) -> RunStatus:
    async def read() -> RunStatus:
        async with SQLiteStore(db) as store:
            [row] = [r for r in await store.runs() if r.run_id == run_id]
            return row.status

    return trio.run(read)


def test_a_killed_run_of_this_machine_is_interrupted_at_once(tmp_path: Path) -> None:
    """SIGKILL while a node runs: its hold's pid is gone, so runs() says interrupted at
    once (its lease, 30 s, has not run out), and `show` says so too."""
    db = tmp_path / "live.db"
    run_id = _killed_run(db, 30.0, "-")
    assert _status(db, run_id) is RunStatus.INTERRUPTED
    show = subprocess.run(
        [sys.executable, "-m", "trio_graph", "show", run_id[:8], "--db", str(db)],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PYTHONPATH": os.environ.get("PYTHONPATH", "")},
    )
    assert show.returncode == 0, show.stderr
    assert show.stdout.startswith(f"run {run_id} (graph 'slow'): interrupted")


@pytest.mark.parametrize("lease", [1.0])
def test_a_killed_run_elsewhere_is_interrupted_once_its_lease_lapsed(
    tmp_path: Path, lease: float
) -> None:
    """A hold naming another machine: running while its lease lasts, interrupted after
    (the lease is the heartbeat; nobody renews it)."""
    db = tmp_path / "live.db"
    run_id = _killed_run(db, lease, "hold:elsewhere:1")
    killed = time.monotonic()
    first = _status(db, run_id)
    if time.monotonic() - killed < lease * 0.5:  # read well within the lease
        assert first is RunStatus.RUNNING
    deadline = killed + lease + 10.0
    while _status(db, run_id) is not RunStatus.INTERRUPTED:
        assert time.monotonic() < deadline, "still not interrupted"
        time.sleep(0.2)
    assert time.monotonic() - killed >= lease * 0.9
