"""``trio-graph cancel RUN`` (DESIGN §12): run as a user would, on a temp SQLite file.
The run is named by its id or a unique prefix of 4+ characters (a queued job too); one
line says it is cancelled; mistakes are one line on stderr, exit 2."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from test_cli_commands import cli, flows, left_waiting, usage_error

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX shells")
__all__ = ["flows"]  # the fixture, used by name


def _status(run: str, cwd: Path, db: Path) -> str:
    runs = cli("runs", cwd=cwd, db=db)
    assert runs.returncode == 0, runs.stderr
    (row,) = [line for line in runs.stdout.splitlines() if line.startswith(run)]
    return row


def test_cancel_a_waiting_run_by_prefix(tmp_path: Path, flows: Path) -> None:
    """`cancel PREFIX` of a run left waiting prints one line; `runs` says cancelled; a
    second cancel says the same (it stays cancelled); `resume` then refuses in one line."""
    run, _ = left_waiting(tmp_path, flows)
    done = cli("cancel", run[:6], cwd=tmp_path, db=flows)
    assert done.returncode == 0, done.stderr
    assert done.stdout == f"run {run} cancelled\n"
    assert "cancelled" in _status(run, tmp_path, flows)
    again = cli("cancel", run, cwd=tmp_path, db=flows)
    assert again.returncode == 0 and again.stdout == f"run {run} cancelled\n"
    resumed = cli("resume", run, "--graph", "flows:graph", cwd=tmp_path, db=flows)
    assert usage_error(resumed) == f"run {run!r} was cancelled; it is not continued"


def test_cancel_a_queued_job(tmp_path: Path, flows: Path) -> None:
    """A submitted job that has no checkpoint yet is named by its id too; `jobs` then
    lists it cancelled."""
    created = cli("run", "flows:plain", cwd=tmp_path, db=flows)
    assert created.returncode == 0, created.stderr
    job = cli("submit", "flows", cwd=tmp_path, db=flows).stdout.strip()
    done = cli("cancel", job[:8], cwd=tmp_path, db=flows)
    assert done.returncode == 0, done.stderr
    assert done.stdout == f"run {job} cancelled\n"
    (row,) = cli("jobs", "--status", "cancelled", cwd=tmp_path, db=flows).stdout.splitlines()[1:]
    assert row.split()[:3] == [job, "flows", "cancelled"]


@pytest.mark.slow
def test_cancel_mistakes_are_one_line(tmp_path: Path, flows: Path) -> None:
    """A finished run, an unknown id and a short prefix: one line on stderr, exit 2."""
    finished = cli("run", "flows:plain", cwd=tmp_path, db=flows)
    assert finished.returncode == 0, finished.stderr
    (run,) = [r.split()[0] for r in cli("runs", cwd=tmp_path, db=flows).stdout.splitlines()[1:]]
    message = usage_error(cli("cancel", run, cwd=tmp_path, db=flows))
    assert message == f"run {run!r} has already completed; nothing to cancel"
    assert usage_error(cli("cancel", "ffffffff", cwd=tmp_path, db=flows)).startswith(
        "no run 'ffffffff' in "
    )
    assert usage_error(cli("cancel", run[:3], cwd=tmp_path, db=flows)).startswith(
        f"run id prefix {run[:3]!r} is too short"
    )
