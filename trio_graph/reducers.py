"""Reducers: how an update to a key merges with the value already there.

Model layer: no trio import. A reducer is a pure function ``(old, new) -> merged``
that returns a new value and never mutates ``old``. Without a reducer an update
overwrites. When the key is not in the state yet, a reducer with an ``initial``
factory starts from ``initial()``; one without stores the first update as is.

Built-ins: :data:`append`, :data:`extend`, :data:`add`, :data:`merge`,
:data:`union`, :data:`max`, :data:`min`. Register your own with
``GraphBuilder.reducer(key, fn)`` (a plain function is wrapped in :class:`Reducer`).
"""

from __future__ import annotations

import builtins
import numbers
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import attrs


@attrs.frozen
class Reducer:
    """A named merge function; ``initial`` gives the value to merge into when the key is absent."""

    name: str
    fn: Callable[[Any, Any], Any]
    initial: Callable[[], Any] | None = None
    builtin: bool = False

    def __call__(self, old: Any, new: Any) -> Any:
        return self.fn(old, new)


def _type(value: object) -> str:
    return type(value).__name__


_PLAIN_SEQUENCES = (list, tuple)


def _append(old: Any, new: Any) -> Any:
    if not isinstance(old, list):
        raise TypeError(f"append needs a list to append to, found {_type(old)}")
    return [*old, new]


def _extend(old: Any, new: Any) -> Any:
    if type(old) is list and type(new) in _PLAIN_SEQUENCES:  # fast path, no ABCs
        return [*old, *new]
    if not isinstance(old, list):
        raise TypeError(f"extend needs a list to extend, found {_type(old)}")
    if isinstance(new, str | bytes | Mapping) or not isinstance(new, Iterable):
        raise TypeError(f"extend needs a list or tuple of items, got {_type(new)} {new!r:.60}")
    return [*old, *new]


_PLAIN_NUMBERS = (int, float)


def _add(old: Any, new: Any) -> Any:
    if type(old) in _PLAIN_NUMBERS and type(new) in _PLAIN_NUMBERS:  # fast path, no ABCs
        return old + new
    ok_num = isinstance(old, numbers.Number) and isinstance(new, numbers.Number)
    both_bool = isinstance(old, bool) or isinstance(new, bool)
    if ok_num and not both_bool:
        return old + new
    if type(old) is type(new) and isinstance(old, str | list | tuple):
        return old + new
    raise TypeError(f"add cannot add {_type(new)} {new!r:.60} to {_type(old)}")


def _merge(old: Any, new: Any) -> Any:
    if not isinstance(old, Mapping) or not isinstance(new, Mapping):
        raise TypeError(f"merge needs two mappings, got {_type(old)} and {_type(new)}")
    return {**old, **new}


def _union(old: Any, new: Any) -> Any:
    if isinstance(old, set | frozenset) and isinstance(new, set | frozenset | list | tuple):
        return old | set(new)
    if isinstance(old, list) and isinstance(new, list | tuple | set | frozenset):
        seen = list(old)
        for item in new:
            if item not in seen:
                seen.append(item)
        return seen
    raise TypeError(f"union needs sets or lists, got {_type(old)} and {_type(new)}")


def _max(old: Any, new: Any) -> Any:
    return builtins.max(old, new)


def _min(old: Any, new: Any) -> Any:
    return builtins.min(old, new)


append = Reducer("append", _append, initial=list, builtin=True)
"""Append the update (one item) to a list."""
extend = Reducer("extend", _extend, initial=list, builtin=True)
"""Extend a list with the update (a list or tuple of items)."""
add = Reducer("add", _add, builtin=True)
"""Add numbers (or concatenate two str / list values of the same type)."""
merge = Reducer("merge", _merge, initial=dict, builtin=True)
"""Merge dicts: keys of the update win."""
union = Reducer("union", _union, builtin=True)
"""Set union; on lists, append the items not already present (order kept, JSON-friendly)."""
max = Reducer("max", _max, builtin=True)
"""Keep the larger value."""
min = Reducer("min", _min, builtin=True)
"""Keep the smaller value."""

BUILTINS: dict[str, Reducer] = {r.name: r for r in (append, extend, add, merge, union, max, min)}


def as_reducer(fn: Reducer | Callable[[Any, Any], Any], name: str | None = None) -> Reducer:
    """Wrap a plain function as a :class:`Reducer` (named after the function)."""
    if isinstance(fn, Reducer):
        return fn
    return Reducer(name or str(getattr(fn, "__name__", "custom")), fn)
