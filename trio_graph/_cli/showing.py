"""Looking into one run: ``show RUN`` (where it stands) and ``diff RUN [A B]`` (what
changed between two of its checkpoints).

``show`` reads the run's row and its latest checkpoint: status, graph, step, the node
next, the waiting barrier with what it shows (``Checkpoint.pending_payload``, when the
store has it) and its deadline, and the current state. ``diff`` names checkpoints as
``history`` numbers them (``1`` the oldest, ``-1`` the latest) or by a checkpoint id
prefix of at least 4 characters; without ``A B`` it compares the last two.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from typing import Any

import attrs

from .. import serde
from .._model.checkpoint import Checkpoint
from .._model.decisions import brief_value
from ..stores.queue import QueueStore
from .hints import hint
from .inspecting import answer_hint
from .output import standing
from .prompt import payload_lines
from .store_options import open_store
from .tables import format_time
from .traces import MIN_PREFIX, resolve_trace, run_key
from .usage import EXIT_OK, UsageError

_STATE_WIDTH = 100


async def cmd_show(args: Any) -> int:
    """Where a run stands: status, graph, step, the waiting barrier, the current state."""
    async with open_store(args) as store:
        info, _ = await resolve_trace(store, args.trace, args)
        checkpoint = await store.latest(run_key(info))
        job = await store.job(run_key(info)) if isinstance(store, QueueStore) else None
    if args.json:
        doc = {
            "run": json.loads(serde.to_json(info)),
            "checkpoint": json.loads(serde.to_json(checkpoint)) if checkpoint else None,
        }
        print(json.dumps(doc), flush=True)
        return EXIT_OK
    print(f"run {run_key(info)} (graph {info.graph_name!r}): {info.status}")
    if info.trace_id != run_key(info):
        print(f"  segment {info.trace_id}")
    print(f"  updated {format_time(info.updated_at)}")
    if checkpoint is None:
        print("  no checkpoint yet")
        return EXIT_OK
    print(f"  step {checkpoint.step}, next node {checkpoint.next_node or '-'}")
    stands = standing(checkpoint, job)
    if stands is not None:
        print(f"  {stands}{answer_hint(args, checkpoint, job)}")
    for line in _barrier_lines(checkpoint):
        print(line)
    print(f"state ({len(checkpoint.state)} keys):")
    for key, value in checkpoint.state.items():
        print(f"  {key} = {brief_value(value, _STATE_WIDTH)}")
    return EXIT_OK


def _barrier_lines(checkpoint: Checkpoint) -> list[str]:
    """The waiting barrier's deadline and what it shows (fields a store may not have)."""
    if checkpoint.pending_barrier is None:
        return []
    lines = []
    deadline = getattr(checkpoint, "deadline", None)
    if deadline is not None:
        left = deadline - time.time()
        when = f"in {left:.0f} s" if left > 0 else "passed"
        lines.append(f"  its default applies at {format_time(deadline)} ({when})")
    payload = getattr(checkpoint, "pending_payload", None)
    if payload is not None:
        lines += [f"  {checkpoint.pending_barrier} shows:", *payload_lines(payload, "    ")]
    return lines


@attrs.frozen
class StateDiff:
    """What changed from one state to another: keys added, removed, changed."""

    added: dict[str, Any]
    removed: dict[str, Any]
    changed: dict[str, tuple[Any, Any]]
    """key -> (before, after)."""

    @classmethod
    def between(cls, before: Mapping[str, Any], after: Mapping[str, Any]) -> StateDiff:
        """The diff from ``before`` to ``after`` (keys in ``after``'s order, then removed)."""
        return cls(
            {k: v for k, v in after.items() if k not in before},
            {k: v for k, v in before.items() if k not in after},
            {k: (before[k], v) for k, v in after.items() if k in before and before[k] != v},
        )

    def lines(self) -> list[str]:
        """``+ key = value``, ``- key = value``, ``~ key: old -> new``."""
        out = [f"+ {k} = {brief_value(v, _STATE_WIDTH)}" for k, v in self.added.items()]
        out += [f"- {k} = {brief_value(v, _STATE_WIDTH)}" for k, v in self.removed.items()]
        for key, (before, after) in self.changed.items():
            a, b = brief_value(before, _STATE_WIDTH), brief_value(after, _STATE_WIDTH)
            if len(a) + len(b) <= _STATE_WIDTH - len(key):
                out.append(f"~ {key}: {a} -> {b}")
            else:
                out += [f"~ {key}:", f"    was {a}", f"    now {b}"]
        return out

    def to_json(self) -> dict[str, Any]:
        """A JSON document: ``added``, ``removed``, ``changed`` (``{"from":…, "to":…}``)."""
        return {
            "added": self.added,
            "removed": self.removed,
            "changed": {k: {"from": a, "to": b} for k, (a, b) in self.changed.items()},
        }


async def cmd_diff(args: Any) -> int:
    """What changed between two checkpoints of a run (default: the last two)."""
    if (args.a is None) != (args.b is None):
        raise UsageError("diff takes two checkpoints (A B) or none (the last two)")
    async with open_store(args) as store:
        info, _ = await resolve_trace(store, args.trace, args)
        checkpoints = await store.list(run_key(info))
    if args.a is None:
        if len(checkpoints) < 2:
            raise UsageError(
                f"run {run_key(info)} has {len(checkpoints)} checkpoint(s): nothing to compare"
            )
        first, second = len(checkpoints) - 1, len(checkpoints)
    else:
        first = pick_checkpoint(checkpoints, args.a, run_key(info), args)
        second = pick_checkpoint(checkpoints, args.b, run_key(info), args)
    a, b = checkpoints[first - 1], checkpoints[second - 1]
    diff = StateDiff.between(a.state, b.state)
    if args.json:
        print(json.dumps({"from": a.checkpoint_id, "to": b.checkpoint_id, **diff.to_json()}))
        return EXIT_OK
    print(f"run {run_key(info)}: {_name(first, a)} -> {_name(second, b)}")
    if a.next_node != b.next_node or a.status != b.status:
        print(f"  next {a.next_node or '-'} ({a.status}) -> {b.next_node or '-'} ({b.status})")
    for line in diff.lines() or ["no state changes"]:
        print(line)
    return EXIT_OK


def _name(number: int, checkpoint: Checkpoint) -> str:
    return f"#{number} ({checkpoint.checkpoint_id[:12]}, step {checkpoint.step})"


def _number(text: str) -> int | None:
    try:
        return int(text)
    except ValueError:
        return None


def pick_checkpoint(checkpoints: Sequence[Checkpoint], text: str, run: str, args: Any) -> int:
    """The 1-based position (as ``history`` numbers them) of the checkpoint ``text`` names:
    a number (negative counts from the latest) or a checkpoint id prefix (≥ 4 characters;
    digits that are no checkpoint's number are tried as one)."""
    count = len(checkpoints)
    number = _number(text)
    if number is not None and 1 <= abs(number) <= count:
        return number if number > 0 else count + 1 + number
    out_of_range = UsageError(f"run {run} has checkpoints #1 to #{count}, not #{text}")
    if number is not None and len(text.lstrip("-")) < MIN_PREFIX:
        raise out_of_range
    found = [i for i, cp in enumerate(checkpoints, 1) if cp.checkpoint_id == text]
    if not found and len(text) >= MIN_PREFIX:
        found = [i for i, cp in enumerate(checkpoints, 1) if cp.checkpoint_id.startswith(text)]
    if len(found) == 1:
        return found[0]
    if len(text) < MIN_PREFIX:
        raise UsageError(
            f"checkpoint {text!r} is too short: give its # in history (1 the oldest, "
            f"-1 the latest) or at least {MIN_PREFIX} characters of its id"
        )
    if not found and number is not None:
        raise out_of_range  # digits that are no checkpoint id's prefix either
    if not found:
        listing = hint(args, "history", run)
        raise UsageError(f"run {run} has no checkpoint {text!r} (list them with {listing})")
    ids = ", ".join(checkpoints[i - 1].checkpoint_id for i in found[:3])
    raise UsageError(f"{text!r} matches {len(found)} checkpoints ({ids}): give more of the id")
