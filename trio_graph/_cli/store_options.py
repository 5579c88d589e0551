"""Opening the store the options name (``--db PATH`` or ``--dsn DSN [--schema NAME]``).

A store is opened and checked before a command does anything: a missing SQLite file
(unless the command creates one), a file that is not a trio_graph database or cannot be
written, an unreachable PostgreSQL server: each is one line on stderr, exit 2.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterator
from typing import Any

import trio

from ..stores.protocol import Store
from .hints import hint, safe_dsn
from .usage import DEFAULT_DB, UsageError


@contextlib.asynccontextmanager
async def open_store(args: Any, *, create: bool = False) -> AsyncIterator[Store]:
    """The store the options name, opened and checked before the command does anything.

    ``create=False`` refuses a SQLite file that is missing. A file that is not a
    trio_graph database, or that cannot be written, fails here (``CheckpointError``,
    one line, exit 2), before a run takes its first step.
    """
    store: Any
    if args.dsn:
        store = await _postgres(args)
    else:
        path = _sqlite_path(args, create=create)
        from ..stores.sqlite import SQLiteStore

        store = SQLiteStore(path)
    try:
        await store.__aenter__()  # open it now: a bad file is refused before any step
        yield store
    finally:
        with trio.CancelScope(shield=True):
            await store.aclose()


async def _postgres(args: Any) -> Store:
    try:
        from ..stores.postgres import PostgresStore
    except ImportError as exc:
        raise UsageError(
            f"--dsn needs PostgreSQL support: pip install 'trio_graph[postgres]' ({exc})"
        ) from exc
    await trio.to_thread.run_sync(_probe_postgres, args.dsn)
    try:
        return PostgresStore(args.dsn, schema=args.schema or "public")
    except ValueError as exc:
        raise UsageError(str(exc)) from None


def _probe_postgres(dsn: str) -> None:
    """Connect once, quickly, so an unreachable server is one clear error, not a long wait."""
    import psycopg

    try:
        psycopg.connect(dsn, connect_timeout=5).close()
    except psycopg.Error as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise UsageError(f"cannot connect to PostgreSQL ({safe_dsn(dsn)}): {first}") from None


def _sqlite_path(args: Any, *, create: bool) -> str:
    path: str = args.db or DEFAULT_DB
    folder = os.path.dirname(os.path.abspath(path))
    if not create and not os.path.exists(path):
        demo = hint(args, "demo")
        raise UsageError(f"no database at {path} (run {demo} to create one, or pass --db PATH)")
    if create and not os.path.isdir(folder):
        raise UsageError(f"cannot create database {path}: folder {folder} does not exist")
    return path
