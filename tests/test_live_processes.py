"""Two real processes (issue 15): a runner streams a graph on a store and waits at a
barrier; a decider runs ``python -m trio_graph decide …`` from another process. The
decision reaches the runner, which finishes with it; the decider runs no node.

On SQLite (a file) and, when ``TRIO_GRAPH_PG_DSN`` is set, on PostgreSQL (a throw-away
schema). The bounds are hang guards, not timings: the runner must end within
``BOUND`` seconds of the decision (the follower looks at least every second).
"""

from __future__ import annotations

import json
import os
import re
import select
import shlex
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import _pg
import pytest

BOUND = 10.0
"""Seconds the runner may take to finish once the decider has recorded the decision."""

RUNNER = """
import json, sys, trio
from trio_graph import Executor, GraphBuilder
from trio_graph import events as ev
from trio_graph.stores import PostgresStore, SQLiteStore

graph = (
    GraphBuilder("review")
    .task("draft", lambda s: {"text": "hello"})
    .barrier("ok")
    .task("publish", lambda s: {"published": s["ok.approved"]})
    .edge("draft", "ok")
    .edge("ok", "publish")
    .start("draft")
    .end("publish")
    .build()
)

async def main():
    kind, where, schema = sys.argv[1:4]
    store = SQLiteStore(where) if kind == "sqlite" else PostgresStore(where, schema=schema)
    async with store:
        async with Executor(store=store).stream(graph, {}) as run:
            resolved = []
            async for event in run:
                if isinstance(event, ev.BarrierWaiting):
                    print("waiting", run.run_id, flush=True)
                elif isinstance(event, ev.BarrierResolved):
                    resolved.append(type(event.decision).__name__)
        print(json.dumps({"state": run.result.state, "resolved": resolved}), flush=True)

trio.run(main)
"""


def _store_args(kind: str, tmp_path: Path) -> Iterator[tuple[list[str], list[str]]]:
    """(the runner's arguments, the CLI's store options) for one backend."""
    if kind == "sqlite":
        db = str(tmp_path / "research.db")
        yield ["sqlite", db, "-"], ["--db", db]
        return
    dsn, schema = _pg.dsn(), _pg.new_schema()
    try:
        yield ["postgres", dsn, schema], ["--dsn", dsn, "--schema", schema]
    finally:
        _pg.drop_schema(dsn, schema)


@pytest.fixture(params=["sqlite", "postgres"])
def backend(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[tuple[list[str], list[str]]]:
    yield from _store_args(request.param, tmp_path)


def _line(proc: subprocess.Popen[str], seconds: float) -> str:
    """The process's next line of output, or fail after ``seconds`` (a hang guard)."""
    assert proc.stdout is not None
    ready, _, _ = select.select([proc.stdout], [], [], seconds)
    if not ready:
        proc.kill()
        raise AssertionError(
            f"no output within {seconds}s: {proc.stderr.read() if proc.stderr else ''}"
        )
    return proc.stdout.readline()


def test_a_decision_from_another_process_reaches_the_live_run(
    backend: tuple[list[str], list[str]], tmp_path: Path
) -> None:
    """The runner waits at its barrier; `trio-graph decide` in another process records the
    decision and says the live run takes it (running no node); the runner finishes with
    it, in its own single segment."""
    runner_args, store_options = backend
    env = {**os.environ, "PYTHONPATH": os.environ.get("PYTHONPATH", "")}
    runner = subprocess.Popen(
        [sys.executable, "-c", RUNNER, *runner_args],
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
        decider = subprocess.run(
            [sys.executable, "-m", "trio_graph", "decide", run_id, "ok", "approve", *store_options],
            cwd=tmp_path,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=60,
            env=env,
        )
        assert decider.returncode == 0, decider.stderr
        assert decider.stdout.startswith(f"decision for ok#1 of run {run_id} recorded (approve)")
        assert "the live run takes it (hold:" in decider.stdout
        assert "->" not in decider.stdout and "resumes run" not in decider.stdout  # ran nothing
        out, err = runner.communicate(timeout=BOUND)
    finally:
        if runner.poll() is None:
            runner.kill()
            runner.communicate()
    assert runner.returncode == 0, err
    result = json.loads(out.splitlines()[-1])
    assert result["resolved"] == ["Approve"] and result["state"]["published"] is True
    history = subprocess.run(
        [sys.executable, "-m", "trio_graph", "runs", *store_options],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    assert history.returncode == 0, history.stderr
    (row,) = [line for line in history.stdout.splitlines() if line.startswith(run_id)]
    assert "completed" in row


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "trio_graph", *args],
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PYTHONPATH": os.environ.get("PYTHONPATH", "")},
    )


@pytest.mark.slow
def test_decide_for_a_run_nobody_executes_records_it_for_the_printed_resume(
    tmp_path: Path,
) -> None:
    """`decide` without --resume on a run left waiting runs nothing: it records the
    decision and prints a `resume` command; that command finishes the run with it."""
    left = _cli("demo", "--leave-waiting", "--db", "d.db", cwd=tmp_path)
    assert left.returncode == 0, left.stderr
    (run_id,) = set(re.findall(r"run (\w{32}) is left waiting at review#1", left.stdout))
    assert f"decide {run_id} 'review#1' approve --resume --db d.db" in left.stdout
    decided = _cli("decide", run_id, "review", "approve", "--db", "d.db", cwd=tmp_path)
    assert decided.returncode == 0, decided.stderr
    assert decided.stdout.startswith(f"decision for review#1 of run {run_id} recorded (approve)")
    assert f"nobody is executing run {run_id}" in decided.stdout
    assert "->" not in decided.stdout  # ran nothing
    (again,) = re.findall(r"`([^`]+)`", decided.stdout)
    assert again.endswith(f"resume {run_id} --db d.db")
    done = subprocess.run(
        shlex.split(again), cwd=tmp_path, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert "-> review#1: approve" in done.stdout
    assert re.search(r"^completed in ", done.stdout, re.M), done.stdout


@pytest.mark.slow
def test_decide_resume_on_a_live_run_records_and_leaves_it_to_the_runner(
    tmp_path: Path,
) -> None:
    """`decide --resume` on a run another process executes does not resume it here: it
    records the decision, says the live run takes it and that it did not resume; the
    runner finishes with it."""
    db = str(tmp_path / "research.db")
    runner = subprocess.Popen(
        [sys.executable, "-c", RUNNER, "sqlite", db, "-"],
        cwd=tmp_path,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        _, run_id = _line(runner, 60).split()
        decided = _cli("decide", run_id, "ok", "approve", "--resume", "--db", db, cwd=tmp_path)
        assert decided.returncode == 0, decided.stderr
        assert "recorded (approve); the live run takes it (hold:" in decided.stdout
        assert "not resumed here" in decided.stdout and "->" not in decided.stdout
        out, err = runner.communicate(timeout=BOUND)
    finally:
        if runner.poll() is None:
            runner.kill()
            runner.communicate()
    assert runner.returncode == 0, err
    assert json.loads(out.splitlines()[-1])["state"]["published"] is True
