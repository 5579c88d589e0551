"""Looking after a store: ``prune --older-than DAYS`` and ``copy --to DSN_OR_PATH``.

``prune`` deletes the runs that have ended (completed, failed, cancelled) and were not
updated for that many days (``store.delete``: checkpoints and row); a run waiting,
running or interrupted is never pruned. ``copy`` saves every checkpoint of every run
into another store, each run's oldest first and the runs in the order they were last
updated, through the target's own ``save`` (DESIGN §8: a copy round-trips exactly); a
target is a PostgreSQL DSN (``postgresql://…`` or ``key=value …``) or a SQLite path.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import time
from collections.abc import AsyncIterator
from typing import Any

from .._model.checkpoint import RunStatus
from ..stores.protocol import Store
from .hints import safe_dsn, where
from .store_options import open_store
from .traces import run_key
from .usage import DEFAULT_DB, EXIT_OK, UsageError

ENDED = frozenset(s for s in RunStatus if s.value in ("completed", "failed", "cancelled"))
"""The statuses of a run that has ended (what ``prune`` may delete)."""

DAY = 86400.0


async def cmd_prune(args: Any) -> int:
    """Delete the ended runs not updated for ``--older-than`` days; say how many."""
    days = args.older_than
    if not days >= 0:  # also refuses nan
        raise UsageError(f"--older-than must be a number of days >= 0, got {days}")
    cutoff = time.time() - days * DAY
    async with open_store(args) as store:
        old = [r for r in await store.runs() if r.status in ENDED and r.updated_at < cutoff]
        if not args.dry_run:
            for row in old:
                await store.delete(run_key(row))
    verb = "would delete" if args.dry_run else "deleted"
    print(
        f"{verb} {len(old)} ended run{'' if len(old) == 1 else 's'} not updated for "
        f"{days:g} day{'' if days == 1 else 's'} from {where(args)}",
        flush=True,
    )
    return EXIT_OK


def is_dsn(target: str) -> bool:
    """A PostgreSQL connection string (URL or ``key=value`` words), not a file path."""
    return target.startswith(("postgresql://", "postgres://")) or (
        "=" in target and not os.path.exists(target)
    )


async def cmd_copy(args: Any) -> int:
    """Save every checkpoint of every run into the store ``--to`` names, in order."""
    async with open_store(args) as source:
        rows = sorted(await source.runs(), key=lambda r: r.updated_at)
        async with _target(args) as target:
            seen: set[str] = set()
            runs = 0
            for row in rows:
                saved = 0
                for checkpoint in await source.list(run_key(row)):
                    if checkpoint.checkpoint_id not in seen:
                        seen.add(checkpoint.checkpoint_id)
                        await target.save(checkpoint)
                        saved += 1
                runs += saved > 0
    shown = safe_dsn(args.to) if is_dsn(args.to) else args.to
    print(
        f"copied {len(seen)} checkpoint{'' if len(seen) == 1 else 's'} of {runs} "
        f"run{'' if runs == 1 else 's'} from {where(args)} to {shown}",
        flush=True,
    )
    return EXIT_OK


def _same_file(a: str, b: str) -> bool:
    return os.path.exists(a) and os.path.exists(b) and os.path.samefile(a, b)


@contextlib.asynccontextmanager
async def _target(args: Any) -> AsyncIterator[Store]:
    """The store ``--to`` names, opened like the source (``--to-schema`` for PostgreSQL)."""
    to: str = args.to
    if is_dsn(to):
        options = argparse.Namespace(dsn=to, db=None, schema=args.to_schema, json=False)
    else:
        if not args.dsn and _same_file(to, args.db or DEFAULT_DB):
            raise UsageError(f"copy --to {to} is the store being copied")
        options = argparse.Namespace(dsn=None, db=to, schema=None, json=False)
    async with open_store(options, create=True) as store:
        yield store
