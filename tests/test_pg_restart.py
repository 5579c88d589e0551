"""A PostgreSQL restart under a worker: the run is resumed, never failed (issue 13, 15).

These tests restart a server, so they start their own throw-away cluster with
``scripts/postgres.sh`` (never the shared ``TRIO_GRAPH_PG_DSN`` server) and stop it by
its directory at the end. Skipped when no PostgreSQL binaries are found (failed under
CI). The restart happens at a controlled moment: while the job's node waits on an event
the test sets, so the outcome does not depend on timing.
"""

from __future__ import annotations

import glob
import logging
import os
import re
import shutil
import subprocess
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
import trio

from trio_graph import GraphBuilder
from trio_graph.stores.postgres import PostgresStore
from trio_graph.stores.queue import JobStatus
from trio_graph.worker import Worker

SCRIPT = str(Path(__file__).parent.parent / "scripts" / "postgres.sh")


def _bindir() -> str | None:
    found = shutil.which("pg_ctl")
    if found:
        return os.path.dirname(found)
    dirs = sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True)
    return next((d for d in dirs if os.access(f"{d}/pg_ctl", os.X_OK)), None)


class Cluster:
    """A cluster of our own: ``dsn``, ``stop()``/``start()`` the server, ``remove()``."""

    def __init__(self) -> None:
        bindir = _bindir()
        if bindir is None:
            if os.environ.get("CI"):
                pytest.fail("CI is set but no PostgreSQL binaries (pg_ctl) were found")
            pytest.skip("no PostgreSQL binaries (pg_ctl) to start a throw-away cluster")
        env = {k: v for k, v in os.environ.items() if not k.startswith("TRIO_GRAPH_PG_")}
        out = subprocess.run(
            ["bash", SCRIPT], env=env, check=True, capture_output=True, text=True
        ).stdout
        self.dsn = re.search(r"TRIO_GRAPH_PG_DSN='([^']+)'", out).group(1)  # type: ignore[union-attr]
        self.dir = re.search(r"TRIO_GRAPH_PG_DIR='([^']+)'", out).group(1)  # type: ignore[union-attr]
        self.port = self.dsn.rsplit(":", 1)[1].split("/")[0]
        self.pg_ctl = f"{bindir}/pg_ctl"

    def _ctl(self, *args: str) -> None:
        owner = ["runuser", "-u", "postgres", "--"] if os.getuid() == 0 else []
        subprocess.run(
            [*owner, self.pg_ctl, "-D", f"{self.dir}/data", "-w", "-t", "60", *args],
            check=True,
            capture_output=True,
        )

    def stop(self) -> None:
        self._ctl("-m", "fast", "stop")

    def start(self) -> None:
        options = f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1"
        self._ctl("-l", f"{self.dir}/server.log", "-o", options, "start")

    def remove(self) -> None:
        subprocess.run(["bash", SCRIPT, "stop", self.dir], check=False, capture_output=True)


@pytest.fixture
def cluster() -> Iterator[Cluster]:
    own = Cluster()
    try:
        yield own
    finally:
        own.remove()


def gated_graph(go: trio.Event, entered: trio.Event) -> Any:
    """``one`` -> ``two`` (waits for ``go``) -> ``three``; counts runs per node."""

    async def two(state: Mapping[str, Any]) -> dict[str, Any]:
        entered.set()
        await go.wait()
        return {"two": state.get("two", 0) + 1}

    return (
        GraphBuilder("gated")
        .task("one", lambda s: {"one": s.get("one", 0) + 1})
        .task("two", two)
        .task("three", lambda s: {"three": s.get("three", 0) + 1})
        .edge("one", "two")
        .edge("two", "three")
        .start("one")
        .end("three")
        .build()
    )


async def _until(predicate: Any, what: str) -> None:
    """Poll ``predicate`` (the worker runs on the wall clock against a real server)."""
    with trio.fail_after(60):
        while True:
            if predicate():
                return
            await trio.sleep(0.05)


async def test_a_restart_while_a_node_runs_does_not_fail_the_job(cluster: Cluster) -> None:
    """The server restarts while the job's node runs: the pool lends no dead connection,
    the step's checkpoint lands and the job completes, each node run once."""
    go, entered = trio.Event(), trio.Event()
    async with PostgresStore(cluster.dsn, max_size=2) as store:
        job = await store.submit("gated", {})
        worker = Worker(store, [gated_graph(go, entered)], lease=60, poll_interval=0.05)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(worker.serve)
            await entered.wait()
            await trio.to_thread.run_sync(cluster.stop)
            await trio.to_thread.run_sync(cluster.start)
            go.set()
            await _until(lambda: worker.stats.completed + worker.stats.failed, "the job")
            nursery.cancel_scope.cancel()
        info = await store.job(job)
        assert info is not None and (info.status, info.error) == (JobStatus.COMPLETED, None)
        latest = await store.latest(info.trace_id)
        assert latest is not None and latest.state == {"one": 1, "two": 1, "three": 1}


async def test_a_store_down_at_a_save_is_retried_and_the_run_resumed(
    cluster: Cluster, caplog: pytest.LogCaptureFixture
) -> None:
    """The server is down when the step's checkpoint is saved: the worker backs off and,
    once the server is back, resumes the run from its last stored checkpoint (the
    interrupted node runs again) to completion; the job is never marked failed."""
    caplog.set_level(logging.WARNING, logger="trio_graph.worker")
    go, entered = trio.Event(), trio.Event()
    async with PostgresStore(cluster.dsn, max_size=2, timeout=2) as store:
        job = await store.submit("gated", {})
        worker = Worker(store, [gated_graph(go, entered)], lease=120, poll_interval=0.05)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(worker.serve)
            await entered.wait()
            await trio.to_thread.run_sync(cluster.stop)
            go.set()
            await _until(lambda: "store unavailable" in caplog.text, "a retry")
            await trio.to_thread.run_sync(cluster.start)
            await _until(lambda: worker.stats.completed + worker.stats.failed, "the job")
            nursery.cancel_scope.cancel()
        info = await store.job(job)
        assert info is not None and (info.status, info.error) == (JobStatus.COMPLETED, None)
        assert worker.stats.store_retries >= 1 and worker.stats.failed == 0
        latest = await store.latest(info.trace_id)
        assert latest is not None and latest.state == {"one": 1, "two": 1, "three": 1}
