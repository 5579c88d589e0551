"""State deltas, applying them through reducers, and merging parallel branches.

Model layer: no trio import. The state is a plain ``dict``; nodes see it through
a read-only view. Every failure to apply a delta is a :class:`StateError` naming
the node and the key: nothing is skipped.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import attrs

from ..errors import StateError
from ..reducers import Reducer
from ..reducers import append as _append
from ..reducers import extend as _extend

State = dict[str, Any]
_SEQUENCES = (list, tuple)
_NONE: frozenset[str] = frozenset()


@attrs.frozen
class StateDelta:
    """One update: ``key`` receives ``value`` (merged by the key's reducer, if any)."""

    key: str
    value: Any


def reduce_updates(
    state: Mapping[str, Any],
    reducers: Mapping[str, Reducer],
    node: str,
    updates: Iterable[tuple[str, Any]],
) -> dict[str, Any]:
    """The new values of the keys ``updates`` touch, folded in order; ``state`` is untouched.

    The caller commits them with ``state.update(...)``, so a failing delta leaves the
    state exactly as it stood (a ``StateError`` naming node and key). O(update).
    """
    merged: dict[str, Any] = {}
    grown: frozenset[str] | set[str] = _NONE  # keys whose merged list was made here
    for key, value in updates:
        reducer = reducers.get(key)
        if reducer is None:
            merged[key] = value
            continue
        if key in grown:  # a fan-out folding many updates into one list: O(total), not O(n^2)
            if reducer is _extend and type(value) in _SEQUENCES:
                merged[key].extend(value)
                continue
            if reducer is _append:
                merged[key].append(value)
                continue
        if key in merged:
            old = merged[key]
        elif key in state:
            old = state[key]
        elif reducer.initial is not None:
            old = reducer.initial()
        else:
            merged[key] = value
            continue
        try:
            merged[key] = reducer.fn(old, value)
            if (reducer is _extend or reducer is _append) and type(merged[key]) is list:
                grown = grown | {key}  # a new list the built-in made: ours to grow in place
        except Exception as exc:
            raise StateError(
                f"reducer {reducer.name!r} failed: {type(exc).__name__}: {exc}",
                node=node,
                key=key,
            ) from exc
    return merged


def merge_branches(
    node: str,
    reducers: Mapping[str, Reducer],
    results: Sequence[tuple[str, Mapping[str, Any]]],
) -> list[StateDelta]:
    """The deltas of a parallel node, in branch declaration order then update order.

    ``results`` must already be in declaration order. A key written by two or more
    branches with no reducer is a ``StateError("parallel merge conflict", ...)``
    naming the key and the branches; with a reducer the updates fold in order.
    """
    return [StateDelta(key, value) for key, value in merged_items(node, reducers, results)]


def merged_items(
    node: str,
    reducers: Mapping[str, Reducer],
    results: Sequence[tuple[str, Mapping[str, Any]]],
) -> list[tuple[str, Any]]:
    """:func:`merge_branches` as ``(key, value)`` pairs, what a step commits (no delta
    object per update)."""
    items: list[tuple[str, Any]] = []
    plain: set[str] = set()  # keys written with no reducer
    for _, updates in results:
        items.extend(updates.items())
        for key in updates:
            if key not in reducers:
                if key in plain:  # a conflict: named as the full scan names it
                    return _conflicts(node, reducers, results)
                plain.add(key)
    return items


def _conflicts(
    node: str,
    reducers: Mapping[str, Reducer],
    results: Sequence[tuple[str, Mapping[str, Any]]],
) -> list[tuple[str, Any]]:
    """:func:`merged_items`'s full scan: the first key (in first-write order) written by
    two or more branches with no reducer is the ``StateError`` naming those branches."""
    writers: dict[str, list[str]] = {}
    items: list[tuple[str, Any]] = []
    for branch, updates in results:
        for key, value in updates.items():
            writers.setdefault(key, []).append(branch)
            items.append((key, value))
    for key, branches in writers.items():
        if len(branches) > 1 and key not in reducers:
            raise StateError("parallel merge conflict", node=node, key=key, branches=branches)
    return items


def check_state(state: object) -> dict[str, Any]:
    """The initial state as a fresh dict with str keys, or ``StateError``."""
    if not isinstance(state, Mapping):
        raise StateError(f"initial state must be a mapping, got {type(state).__name__}")
    for key in state:
        if not isinstance(key, str):
            raise StateError(f"state keys must be str, got {type(key).__name__}", key=repr(key))
    return dict(state)
