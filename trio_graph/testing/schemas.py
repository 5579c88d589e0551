"""Hypothesis strategies for typed state (DESIGN §16): schemas, their values, and values
of the wrong type.

:func:`schemas` draws an attrs class (made with ``attrs.make_class``) whose fields take
types a JSON row would lose — tuples, sets, frozensets, enums, dates and datetimes,
nested attrs values, optionals, dicts — each with a default. :func:`values_of` draws
values of a schema's fields (a dict of the typed values: what a node returns, what a
store must give back equal and of the same type); :func:`wrong_update` draws one key and
a value its field must refuse. See ``tests/test_typed_state.py``.
"""

from __future__ import annotations

import datetime
import enum
from typing import Any

import attrs
from hypothesis import strategies as st


class Colour(enum.Enum):
    """An enum field's type (stored as its value)."""

    RED = "red"
    GREEN = "green"


@attrs.frozen
class Point:
    """A nested attrs value (stored as an object, structured back)."""

    x: int
    label: str
    when: datetime.date


_TEXT = st.text(st.characters(exclude_categories=["Cs"]), max_size=6)
_INT = st.integers(-(2**53), 2**53)
_FLOAT = st.floats(allow_nan=False, allow_infinity=False, width=64)
_DATE = st.dates(min_value=datetime.date(1900, 1, 1))
_POINT = st.builds(Point, _INT, _TEXT, _DATE)

FIELD_TYPES: dict[str, tuple[Any, st.SearchStrategy[Any], Any]] = {
    "int": (int, _INT, 0),
    "float": (float, _FLOAT, 0.0),
    "str": (str, _TEXT, ""),
    "bool": (bool, st.booleans(), False),
    "pair": (tuple[int, str], st.tuples(_INT, _TEXT), (0, "")),
    "ints": (tuple[int, ...], st.lists(_INT, max_size=4).map(tuple), ()),
    "tags": (frozenset[str], st.frozensets(_TEXT, max_size=4), frozenset()),
    "set": (set[int], st.sets(_INT, max_size=4), attrs.Factory(set)),
    "date": (datetime.date, _DATE, datetime.date(2000, 1, 1)),
    "datetime": (
        datetime.datetime,
        st.datetimes(min_value=datetime.datetime(1900, 1, 1)),
        datetime.datetime(2000, 1, 1),
    ),
    "colour": (Colour, st.sampled_from(Colour), Colour.RED),
    "point": (Point | None, st.none() | _POINT, None),
    "points": (list[Point], st.lists(_POINT, max_size=3), attrs.Factory(list)),
    "scores": (dict[str, float], st.dictionaries(_TEXT, _FLOAT, max_size=3), attrs.Factory(dict)),
    "maybe": (int | None, st.none() | _INT, None),
}
"""Each kind of field: its type, a strategy of its values, its default."""

_WRONG: dict[str, st.SearchStrategy[Any]] = {
    "int": st.sampled_from(["1", 1.5, None, [1]]),
    "float": st.sampled_from(["1.0", None, [1.0], True]),
    "str": st.sampled_from([1, None, ["a"], b"a", datetime.date(2000, 1, 1)]),
    "bool": st.sampled_from([1, 0, "true", None]),
    "pair": st.sampled_from([("a", 1), (1, 2), 3, None]),
    "ints": st.sampled_from([("a",), 3, [1.5], None]),
    "tags": st.sampled_from([[1], 3, None]),
    "set": st.sampled_from([["a"], 3, None]),
    "date": st.sampled_from(["yesterday", 3, None]),
    "datetime": st.sampled_from(["noon", 3, None]),
    "colour": st.sampled_from(["purple", 3, None]),
    "point": st.sampled_from([3, "p", {"x": "1", "label": "a", "when": "2000-01-01"}]),
    "points": st.sampled_from([3, [3], ["p"], [datetime.date(2000, 1, 1)]]),
    "scores": st.sampled_from([3, {"a": "x"}, ["a"]]),
    "maybe": st.sampled_from(["1", 1.5, [1]]),
}
"""Values each kind of field must refuse (a strict check: no coercion)."""


@st.composite
def schemas(draw: st.DrawFn, max_fields: int = 6) -> type:
    """An attrs class of 1..``max_fields`` fields, each of a kind of :data:`FIELD_TYPES`,
    with a default; ``__kinds__`` maps each field to its kind."""
    kinds = draw(st.lists(st.sampled_from(sorted(FIELD_TYPES)), min_size=1, max_size=max_fields))
    fields = {
        f"f{i}_{kind}": attrs.field(type=FIELD_TYPES[kind][0], default=FIELD_TYPES[kind][2])
        for i, kind in enumerate(kinds)
    }
    cls = attrs.make_class("Drawn", fields)
    cls.__kinds__ = {name: name.partition("_")[2] for name in fields}  # type: ignore[attr-defined]
    return cls


def _kinds(schema: type) -> dict[str, str]:
    kinds: dict[str, str] = schema.__kinds__  # type: ignore[attr-defined]
    return kinds


@st.composite
def values_of(draw: st.DrawFn, schema: type) -> dict[str, Any]:
    """A value for every field of a :func:`schemas` class (typed, as a node returns it)."""
    return {name: draw(FIELD_TYPES[kind][1]) for name, kind in _kinds(schema).items()}


@st.composite
def wrong_update(draw: st.DrawFn, schema: type) -> tuple[str, Any]:
    """One field of a :func:`schemas` class and a value of the wrong type for it."""
    name, kind = draw(st.sampled_from(sorted(_kinds(schema).items())))
    return name, draw(_WRONG[kind])
