"""How messages name things: the store (:func:`where`) and a command to run (:func:`hint`).

Hints print commands that run as printed (:func:`trio_graph._cli.output.command`), with
the options given: the store, ``--graph``, ``--max-steps``. A DSN's password is never
printed (:func:`safe_dsn`).
"""

from __future__ import annotations

import os
import re
from typing import Any

from .._model.decisions import BarrierId
from .output import command
from .usage import DEFAULT_DB, DEFAULT_MAX_STEPS


def safe_dsn(dsn: str) -> str:
    """The DSN without its password, for messages."""
    return re.sub(r"(://[^:/@]*:)[^@]*@", r"\1***@", re.sub(r"password=\S+", "password=***", dsn))


def where(args: Any) -> str:
    """The store the options name, for messages: a SQLite path or ``PostgreSQL <dsn>``."""
    if getattr(args, "dsn", None):
        return f"PostgreSQL {safe_dsn(args.dsn)}"
    return str(getattr(args, "db", None) or os.path.join(".", DEFAULT_DB))


def hint(args: Any, *words: str, run_options: bool = False, quote: str = "`") -> str:
    """A command to suggest, runnable as printed, with the options the user gave.

    Always the store (``--db`` when not the default, ``--dsn``/``--schema``); with
    ``run_options``, also ``--graph`` and a ``--max-steps`` that is not the default.
    A DSN's password is masked (it is never printed): such a hint needs it put back.
    """
    flags: list[str] = []
    if args.dsn:
        flags += ["--dsn", safe_dsn(args.dsn)]
        flags += ["--schema", args.schema] if args.schema else []
    elif args.db and os.path.normpath(args.db) != DEFAULT_DB:
        flags += ["--db", args.db]
    if run_options and getattr(args, "graph", None):
        flags += ["--graph", args.graph]
    steps = getattr(args, "max_steps", None)
    if run_options and steps is not None and steps != DEFAULT_MAX_STEPS:
        flags += ["--max-steps", str(steps)]
    return f"{quote}{command([*words, *flags])}{quote}"


def left_waiting(trace_id: str, bid: BarrierId, args: Any) -> str:
    """The note for a run left waiting at ``bid``: where it is saved, how to answer it."""
    answer = hint(
        args, "decide", trace_id, str(bid), "approve", "--resume", run_options=True, quote=""
    )
    return (
        f"run {trace_id} is left waiting at {bid} (saved in {where(args)}); answer it with:\n"
        f"  {answer}"
    )
