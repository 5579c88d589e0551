"""Without a PostgreSQL server the PostgreSQL tests skip quietly (tests/conftest.py):
one summary line instead of a ``SKIPPED`` line per test location; under CI they fail."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def pytest_without_server(*args: str, ci: bool) -> subprocess.CompletedProcess[str]:
    """``pytest -q tests/test_postgres.py`` with no DSN in the environment."""
    env = {k: v for k, v in os.environ.items() if k not in ("TRIO_GRAPH_PG_DSN", "CI")}
    if ci:
        env["CI"] = "1"
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_skips_without_a_server_are_one_summary_line() -> None:
    """No DSN: every PostgreSQL test skips, no SKIPPED line is printed, and one line says
    how many were skipped and how to run them; pytest still exits 0."""
    proc = pytest_without_server("tests/test_postgres.py", "tests/test_store_wait.py", ci=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "SKIPPED" not in proc.stdout, proc.stdout
    lines = [line for line in proc.stdout.splitlines() if "PostgreSQL tests skipped" in line]
    assert len(lines) == 1, proc.stdout
    count = int(lines[0].split()[0])
    assert count >= 18, lines  # all of test_postgres.py, and the postgres cases of the other
    assert 'eval "$(scripts/postgres.sh)"' in lines[0]
    assert f"{count} skipped without PostgreSQL" in proc.stdout.splitlines()[-1]


@pytest.mark.slow
def test_under_ci_a_missing_server_fails() -> None:
    """CI set and no DSN: the PostgreSQL tests fail instead of skipping."""
    proc = pytest_without_server("tests/test_store_wait.py", ci=True)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "CI is set but TRIO_GRAPH_PG_DSN is not" in proc.stdout
    assert "PostgreSQL tests skipped" not in proc.stdout
