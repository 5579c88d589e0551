"""The command line: ``python -m trio_graph`` / ``trio-graph`` (DESIGN §12).

Commands: ``demo``, ``run module:attr``, ``runs``, ``show RUN``, ``history RUN``,
``diff RUN [A B]``, ``decide RUN BARRIER ACTION ...``, ``resume RUN --graph module:attr``,
``mermaid module:attr``, ``submit GRAPH``, ``jobs``, ``prune --older-than DAYS``,
``copy --to DSN_OR_PATH``, ``worker --graph module:attr``, ``ui`` (the inspector page; the
table in :mod:`.parser`).
``--db PATH`` picks the SQLite file (default ``./trio_graph.db``), ``--dsn`` a PostgreSQL store;
``--json`` prints events (and rows) as JSON lines through :mod:`trio_graph.serde`.

:func:`main` parses, runs the command's handler under ``trio.run`` and turns what the
user can fix into one line on stderr (:func:`_as_usage`, the one funnel); the exit
codes are in :mod:`.usage`.
"""

from __future__ import annotations

import argparse
import sqlite3
import sys
from collections.abc import Sequence
from typing import Any, TextIO, cast

import trio

from ..errors import GraphError
from .hints import where
from .logs import setup_logging
from .output import StdoutGuard
from .parser import Handler, build_parser
from .usage import EXIT_INTERRUPTED, EXIT_OK, EXIT_PIPE, EXIT_USAGE, INTERRUPTED, PROG, UsageError


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code."""
    saved = sys.stdout
    guard = StdoutGuard(saved)
    sys.stdout = cast(TextIO, guard)
    try:
        code = _main(argv)
    finally:
        sys.stdout = saved
    return EXIT_PIPE if guard.gone and code == EXIT_OK else code


def _main(argv: Sequence[str] | None) -> int:
    setup_logging()
    try:
        args = build_parser().parse_args(argv)
        if args.db is not None and args.dsn is not None:
            raise UsageError("give --db or --dsn, not both")
        handler: Handler = args.handler
        return trio.run(_guarded, handler, args)
    except UsageError as exc:
        return _fail(str(exc))
    except KeyboardInterrupt:
        lead = "\n" if sys.stderr.isatty() else ""
        trace = INTERRUPTED.get("trace")
        hint = f"; run {trace} is saved: `{INTERRUPTED['resume']}`" if trace else ""
        print(f"{lead}{PROG}: interrupted{hint}", file=sys.stderr)
        return EXIT_INTERRUPTED


def _fail(message: str) -> int:
    text = " ".join(message.split())  # one line, whatever the message held
    print(f"{PROG}: error: {text}", file=sys.stderr)
    return EXIT_USAGE


async def _guarded(handler: Handler, args: argparse.Namespace) -> int:
    """Run a command; turn user-facing failures into ``UsageError`` (one line, exit 2)."""
    try:
        return await handler(args)
    except BaseExceptionGroup as group:
        leaf = _single(group)
        if leaf is None:
            raise
        raise _as_usage(leaf, args) from leaf
    except (GraphError, sqlite3.Error, OSError) as exc:
        raise _as_usage(exc, args) from exc
    except Exception as exc:
        if _is_db_error(exc):
            raise _as_usage(exc, args) from exc
        raise


def _single(group: BaseExceptionGroup[BaseException]) -> BaseException | None:
    leaves = [e for e in group.exceptions if not isinstance(e, trio.Cancelled)]
    if len(leaves) != 1:
        return None
    leaf = leaves[0]
    return _single(leaf) if isinstance(leaf, BaseExceptionGroup) else leaf


def _as_usage(exc: BaseException, args: Any) -> BaseException:
    if isinstance(exc, UsageError | KeyboardInterrupt):
        return exc
    if isinstance(exc, GraphError):
        return UsageError(str(exc))
    if isinstance(exc, sqlite3.Error | OSError) or _is_db_error(exc):
        return UsageError(f"database {where(args)}: {exc}")
    return exc


def _is_db_error(exc: BaseException) -> bool:
    return type(exc).__module__.split(".")[0] in ("psycopg", "psycopg_pool")
