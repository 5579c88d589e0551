"""What a node may return besides a plain mapping of updates: ``Goto`` and ``Fallback``.

Model layer: no trio import. ``normalise`` turns any node result into one
:class:`Outcome`, raising :class:`~trio_graph.errors.StateError` for anything else.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import attrs

from ..errors import StateError

Updates = Mapping[str, Any]


def _updates_field(value: Mapping[str, Any] | None) -> dict[str, Any]:
    return dict(value) if value else {}


@attrs.frozen
class Goto:
    """Go to ``target`` next (an edge of any class from this node must lead there)."""

    target: str
    updates: dict[str, Any] = attrs.field(factory=dict, converter=_updates_field)


@attrs.frozen
class Fallback:
    """Take this node's fallback edge; emits an ``ObservedError`` of kind ``Degraded``."""

    reason: str
    updates: dict[str, Any] = attrs.field(factory=dict, converter=_updates_field)


@attrs.define(slots=True)
class Outcome:
    """A node result, normalised: ``(key, value)`` updates in order (a key may repeat when a
    fan-out folds several branches into it), and where to go (``goto``) or a fallback.

    Built once per step and read once, by ``RunState.finish``, like ``Finished``: not
    frozen, as a frozen class's ``__init__`` costs about 0.2 µs more, a tenth of what the
    engine adds to a step above its floor (``benchmarks/limits.py``). Never mutated
    (``NEXT`` is shared)."""

    items: Sequence[tuple[str, Any]]
    goto: str | None = None
    fallback: str | None = None


NEXT = Outcome(())


def normalise(node: str, result: object) -> Outcome:
    """Turn a node's return value into an :class:`Outcome`, or raise ``StateError``."""
    if result is None:
        return NEXT
    if type(result) is dict:  # the common case, without an ABC check
        for key in result:  # a plain loop: all() over a generator costs more than the rest
            if type(key) is not str:
                _check_keys(node, result)
        return Outcome(list(result.items()))
    if isinstance(result, Mapping):
        _check_keys(node, result)
        return Outcome(list(result.items()))
    if isinstance(result, Goto):
        if not isinstance(result.target, str):
            raise StateError(
                f"Goto target must be a node name, got {type(result.target).__name__}", node=node
            )
        _check_keys(node, result.updates)
        return Outcome(list(result.updates.items()), goto=result.target)
    if isinstance(result, Fallback):
        _check_keys(node, result.updates)
        return Outcome(list(result.updates.items()), fallback=str(result.reason))
    raise StateError(
        "node result must be a mapping of updates, None, Goto or Fallback, "
        f"got {type(result).__name__}",
        node=node,
    )


def _check_keys(node: str, updates: Mapping[Any, Any]) -> None:
    for key in updates:
        if not isinstance(key, str):
            raise StateError(f"state keys must be str, got {type(key).__name__} {key!r}", node=node)
