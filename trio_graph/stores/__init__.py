"""Checkpoint stores behind one async protocol: memory, SQLite (the embedded default),
PostgreSQL (many workers, many machines)."""

from __future__ import annotations

from typing import Any

from .memory import MemoryStore as MemoryStore
from .protocol import RunInfo as RunInfo
from .protocol import Store as Store

__all__ = ["MemoryStore", "PostgresStore", "RunInfo", "SQLiteStore", "Store"]


def __getattr__(name: str) -> Any:
    # Imported lazily: sqlite3/psycopg are only loaded by those who use them.
    if name == "SQLiteStore":
        from .sqlite import SQLiteStore  # type: ignore[import-not-found, unused-ignore]

        return SQLiteStore
    if name == "PostgresStore":
        from .postgres import PostgresStore  # type: ignore[import-not-found, unused-ignore]

        return PostgresStore
    raise AttributeError(name)
