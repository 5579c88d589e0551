"""Fixtures for the queue-store tests: ``backend`` (PostgreSQL, skipped without a server,
and SQLite in the test's tmp_path) and ``store`` (an opened queue store on it).

Registered for every test module by ``pytest_plugins`` in conftest.py; a module that
defines its own ``store`` or ``backend`` fixture keeps its own (pytest's nearest-first
rule), so only the queue-store modules use these.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from _pg import SKIP_WITHOUT_SERVER, PostgresBackend, SQLiteBackend


@pytest.fixture(
    params=[pytest.param("postgres", marks=SKIP_WITHOUT_SERVER), pytest.param("sqlite")]
)
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
    """The two queue backends, each a fresh database."""
    chosen = PostgresBackend() if request.param == "postgres" else SQLiteBackend(tmp_path)
    yield chosen
    chosen.close()


@pytest.fixture
async def store(backend: Any) -> AsyncIterator[Any]:
    """An opened queue store on ``backend``."""
    async with backend.store() as opened:
        yield opened
