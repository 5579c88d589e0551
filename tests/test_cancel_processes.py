"""Two real processes (issue 15): a runner streams a graph on a store and waits at a
barrier; another process cancels the run through the store alone. The runner ends with
status ``cancelled`` within a bound, its next node never run.

On SQLite (a file) and, when ``TRIO_GRAPH_PG_DSN`` is set, on PostgreSQL (a throw-away
schema). The bound is a hang guard: the runner's follower looks at least every second.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import _pg
import pytest
from test_live_processes import _line

BOUND = 10.0
"""Seconds the runner may take to end once the other process has cancelled the run."""

STORE = """
import sys
from trio_graph.stores import PostgresStore, SQLiteStore

def open_store():
    kind, where, schema = sys.argv[1:4]
    return SQLiteStore(where) if kind == "sqlite" else PostgresStore(where, schema=schema)
"""

RUNNER = (
    STORE
    + """
import json, trio
from trio_graph import Executor, GraphBuilder
from trio_graph import events as ev

graph = (
    GraphBuilder("review")
    .task("draft", lambda s: {"text": "hello"})
    .barrier("ok")
    .task("publish", lambda s: {"published": True})
    .edge("draft", "ok")
    .edge("ok", "publish")
    .start("draft")
    .end("publish")
    .build()
)

async def main():
    async with open_store() as store:
        async with Executor(store=store).stream(graph, {}) as run:
            nodes = []
            async for event in run:
                if isinstance(event, ev.NodeStart):
                    nodes.append(event.node)
                if isinstance(event, ev.BarrierWaiting):
                    print("waiting", run.run_id, flush=True)
        latest = await store.latest(run.run_id)
        [row] = [r for r in await store.runs() if r.run_id == run.run_id]
        print(json.dumps({"nodes": nodes, "checkpoint": latest.status.value,
                          "runs": row.status.value}), flush=True)

trio.run(main)
"""
)

CANCELLER = (
    STORE
    + """
import trio

async def main():
    async with open_store() as store:
        await store.cancel(sys.argv[4])

trio.run(main)
"""
)


@pytest.fixture(params=["sqlite", "postgres"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[list[str]]:
    if request.param == "sqlite":
        yield ["sqlite", str(tmp_path / "research.db"), "-"]
        return
    dsn, schema = _pg.dsn(), _pg.new_schema()
    try:
        yield ["postgres", dsn, schema]
    finally:
        _pg.drop_schema(dsn, schema)


def _canceller(how: str, backend: list[str], run_id: str) -> list[str]:
    """The other process: ``store.cancel`` in a script, or ``trio-graph cancel``."""
    if how == "api":
        return [sys.executable, "-c", CANCELLER, *backend, run_id]
    kind, where, schema = backend
    options = ["--db", where] if kind == "sqlite" else ["--dsn", where, "--schema", schema]
    return [sys.executable, "-m", "trio_graph", "cancel", run_id[:8], *options]


@pytest.mark.parametrize("how", ["api", "cli"])
def test_a_cancel_from_another_process_ends_the_live_run_cancelled(
    backend: list[str], tmp_path: Path, how: str
) -> None:
    """The runner waits at its barrier; another process calls ``store.cancel(run_id)``
    (or ``trio-graph cancel PREFIX``, which says the live run ends it); the runner ends
    within the bound, its checkpoint and runs() saying cancelled, and the node after
    the barrier never ran."""
    env = {**os.environ, "PYTHONPATH": os.environ.get("PYTHONPATH", "")}
    runner = subprocess.Popen(
        [sys.executable, "-c", RUNNER, *backend],
        cwd=tmp_path,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        word, run_id = _line(runner, 60).split()
        assert word == "waiting"
        cancel = subprocess.run(
            _canceller(how, backend, run_id),
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=60,
            env=env,
        )
        assert cancel.returncode == 0, cancel.stderr
        if how == "cli":
            assert cancel.stdout.startswith(f"run {run_id} cancelled; the live run (hold:")
        cancelled_at = time.monotonic()
        out, err = runner.communicate(timeout=BOUND)
        took = time.monotonic() - cancelled_at
    finally:
        if runner.poll() is None:
            runner.kill()
            runner.communicate()
    assert runner.returncode == 0, err
    assert took < BOUND
    result = json.loads(out.splitlines()[-1])
    assert result == {"nodes": ["draft", "ok"], "checkpoint": "cancelled", "runs": "cancelled"}
