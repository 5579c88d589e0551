"""Which state values come back from a store exactly as they went in.

Model layer: no trio import, no I/O. Every store writes state values as JSON text
(MemoryStore included: it shares the codec), so a value is *JSON-exact* when
``loads(dumps(value))`` gives back a value equal to it **and of the same type, at
every level**. Only these are:

- ``None``, ``bool``, ``str``, ``int`` and finite ``float`` (``-0.0`` included), of
  exactly these types (a subclass such as an ``IntEnum`` comes back as its base);
- ``list`` and ``dict`` with ``str`` keys, of exactly these types, holding JSON-exact
  values, nested at most :data:`MAX_DEPTH` levels.

Refused, with the reason: tuples (they come back as lists), sets, bytes, any other
type, dict keys that are not ``str``, NaN and infinities, ints whose decimal form
exceeds Python's int-str digit limit (``sys.get_int_max_str_digits()``, 4,300 by
default: neither ``json.dumps`` nor ``json.loads`` handles them), and strings holding
surrogate code points (a store cannot encode a lone one as UTF-8, and a JSON round
trip merges two written as escapes, ``"\\ud800\\udfff"``, into one character).

:func:`json_problem` walks a value once and names the first problem with its path
inside the value (``key[2].x``); the loop calls it on every committed update when
the run has a store, so a run behaves the same whether or not it was resumed.
"""

from __future__ import annotations

import math
import reprlib
import sys
from collections.abc import Iterable, Mapping
from typing import Any

from ..errors import CheckpointError

MAX_DEPTH = 200
"""How deep lists and dicts may nest (JSON encoders and decoders recurse)."""

_LOG10_2 = math.log10(2)
_repr = reprlib.Repr()
_repr.maxstring = _repr.maxother = 40

_NOT_JSON: dict[type, str] = {
    tuple: "a tuple comes back from JSON as a list",
    set: "sets are not JSON",
    frozenset: "sets are not JSON",
    bytes: "bytes are not JSON",
    bytearray: "bytes are not JSON",
    float: "non-finite floats are not JSON",
}

_Problem = tuple[str, str, str]  # (path inside the value, what it got, why it is refused)


def json_problem(value: Any, name: str = "value") -> str | None:
    """The first reason ``value`` would not come back from a store equal and of the same
    type, as ``'name[2].x' got tuple (value (1, 2)): a tuple comes back ...``; else None."""
    found = _walk(value, 0)
    if found is None:
        return None
    path, got, why = found
    return f"{name + path!r} got {got}: {why}"


def check_value(key: str, value: Any, where: str = "") -> None:
    """Raise ``CheckpointError`` naming ``key`` (and who wrote it) unless ``value`` is
    JSON-exact; ``where`` is who wrote it, with a verb: ``"node 'count' wrote"``."""
    problem = json_problem(value, key)
    if problem is not None:
        what = "a value the store cannot give back"
        raise CheckpointError(
            f"{where} {what}: {problem}" if where else f"{what}: {problem}", key=key
        )


def check_values(state: Mapping[str, Any], keys: Any = None, where: str = "") -> None:
    """Raise ``CheckpointError`` naming the first key (of ``keys``, default all) whose value
    a store would not give back equal and of the same type; ``where`` says who wrote it,
    with a verb (``"node 'count' wrote"``)."""
    for key in state if keys is None else keys:
        check_value(key, state[key], where)


def check_update(
    items: Iterable[tuple[str, Any]],
    merged: Mapping[str, Any] | None,
    reducers: Mapping[str, Any],
    where: str,
) -> None:
    """Check a node's updates before they are committed: one walk of the new values.

    A store records an update under a built-in reducer as the update itself (replayed
    on load), so the update is checked, not the merged value; a top-level tuple given
    to ``extend`` or ``union`` is only a sequence of items (each checked). A merged
    number is checked too (``add`` can overflow to ``inf`` or past the digit limit). A
    custom reducer's result is what the store records, so that is checked, once.
    ``merged`` None: the updates of one parallel branch, recorded as they are.
    """
    custom: set[str] = set()
    for key, value in items:
        reducer = reducers.get(key)
        if reducer is None or (merged is None and not reducer.builtin):
            check_value(key, value, where)
        elif merged is None:
            check_value(key, list(value) if _items_only(reducer, value) else value, where)
        elif not reducer.builtin:
            if key not in custom:
                custom.add(key)
                check_value(key, merged[key], where)
        else:
            check_value(key, list(value) if _items_only(reducer, value) else value, where)
            if type(merged[key]) in (int, float):
                check_value(key, merged[key], where)


def _items_only(reducer: Any, value: Any) -> bool:
    """A tuple given to ``extend`` / ``union`` is read as its items only."""
    return type(value) is tuple and reducer.name in ("extend", "union")


def is_json_exact(value: Any) -> bool:
    """True when ``value`` round-trips through JSON equal and of the same type."""
    return _walk(value, 0) is None


def _walk(value: Any, depth: int) -> _Problem | None:
    t = type(value)
    if value is None or t is bool:
        return None
    if t is str:
        return None if _text_ok(value) else ("", _got(value), _SURROGATE)
    if t is int:
        return None if _int_ok(value) else ("", _big_int(value), _BIG_INT)
    if t is float:
        return None if math.isfinite(value) else ("", _got(value), _NOT_JSON[float])
    if t is list or t is dict:
        if depth >= MAX_DEPTH:
            return ("", f"{t.__name__} nested {MAX_DEPTH} levels deep", _TOO_DEEP)
        return _walk_list(value, depth) if t is list else _walk_dict(value, depth)
    why = _NOT_JSON.get(t)
    if why is None:
        base = next((b for b in (bool, int, float, str, list, dict) if isinstance(value, b)), None)
        why = (
            f"a subclass of {base.__name__} comes back from JSON as {base.__name__}"
            if base is not None
            else "not a JSON type"
        )
    return ("", _got(value), why)


def _walk_list(value: list[Any], depth: int) -> _Problem | None:
    for i, item in enumerate(value):
        found = _walk(item, depth + 1)
        if found is not None:
            return (f"[{i}]{found[0]}", found[1], found[2])
    return None


def _walk_dict(value: dict[Any, Any], depth: int) -> _Problem | None:
    for k, item in value.items():
        if type(k) is not str:
            return ("", f"a dict key of type {type(k).__name__} (value {_short(k)})", _KEY)
        if not _text_ok(k):
            return ("", f"a dict key {_short(k)}", _SURROGATE)
        found = _walk(item, depth + 1)
        if found is not None:
            step = f".{k}" if k.isidentifier() else f"[{k!r}]"
            return (step + found[0], found[1], found[2])
    return None


_SURROGATE = "strings holding surrogate code points are not UTF-8 text"
_BIG_INT = "ints past Python's int-str digit limit are not JSON"
_TOO_DEEP = f"JSON values nest at most {MAX_DEPTH} levels here"
_KEY = "JSON object keys are str"


def _text_ok(text: str) -> bool:
    if text.isascii():
        return True
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _int_ok(value: int) -> bool:
    limit = sys.get_int_max_str_digits()
    if limit == 0 or value.bit_length() * _LOG10_2 + 1 < limit:
        return True
    try:
        str(value)
    except ValueError:
        return False
    return True


def _big_int(value: int) -> str:
    digits = int(value.bit_length() * _LOG10_2) + 1
    return f"int (value of about {digits} digits, limit {sys.get_int_max_str_digits()})"


def _got(value: Any) -> str:
    return f"{type(value).__name__} (value {_short(value)})"


def _short(value: Any) -> str:
    try:
        return _repr.repr(value)
    except Exception:  # a repr that raises, or an int too long to print
        return f"<{type(value).__name__}>"
