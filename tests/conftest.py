"""Shared test settings. Area-specific fixtures live in the test modules themselves; the
queue-store fixtures, shared by several modules, in `_queue_fixtures.py`.

Without a PostgreSQL server (no ``TRIO_GRAPH_PG_DSN``) the PostgreSQL tests skip; their
skips are counted under their own heading and summed up in one line at the end, instead
of one ``SKIPPED`` line per test location. Under CI a missing DSN fails (tests/_pg.py).
"""

from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, settings

pytest_plugins = ["_queue_fixtures"]  # the queue-store fixtures, shared by their modules

settings.register_profile(
    "default",
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile(
    "ci",
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    derandomize=True,
)
settings.load_profile("ci" if os.environ.get("CI") else "default")

NO_SERVER = "no PostgreSQL"
"""How every PostgreSQL skip reason starts (tests/_pg.py, tests/test_pg_restart.py)."""
PG_SKIPPED = "skipped without PostgreSQL"
"""The report category of those skips (its own count in pytest's last line)."""


def _skip_reason(report: pytest.TestReport) -> str:
    longrepr = report.longrepr
    if isinstance(longrepr, tuple) and len(longrepr) == 3:
        return str(longrepr[2]).removeprefix("Skipped: ")
    return ""


def pytest_report_teststatus(
    report: pytest.TestReport, config: pytest.Config
) -> tuple[str, str, str] | None:
    """A skip for want of a PostgreSQL server goes to its own category, so ``-ra`` does
    not print a ``SKIPPED`` line for each; other skips are reported as usual."""
    if report.skipped and _skip_reason(report).startswith(NO_SERVER):
        return PG_SKIPPED, "s", "SKIPPED (no PostgreSQL)"
    return None


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """One line: how many PostgreSQL tests did not run, and how to run them."""
    skipped = terminalreporter.stats.get(PG_SKIPPED, [])
    if skipped:
        terminalreporter.write_line(
            f"{len(skipped)} PostgreSQL tests skipped: no server; to run them, "
            'eval "$(scripts/postgres.sh)" (sets TRIO_GRAPH_PG_DSN) and run pytest again',
            yellow=True,
        )
