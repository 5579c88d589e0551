"""Hypothesis strategies for the parts of a graph: values, updates, node behaviours,
edge conditions, and the drawing helpers the graph strategies compose them with.

The ``draw_*`` helpers draw inside a ``@st.composite`` (faster than building a
strategy per draw); the strategies wrap them for tests.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any, TypeVar

from hypothesis import strategies as st

from .._model.decisions import Approve, Modify
from .._model.results import Fallback, Goto
from .spec import Behaviour, Cond, CondOp, GraphSpec

KIND_VALUES: dict[str, st.SearchStrategy[Any]] = {
    "int": st.integers(-2, 5),
    "str": st.sampled_from(["", "a", "b", "ab"]),
    "list": st.lists(st.integers(0, 3), max_size=3),
    "dict": st.dictionaries(st.sampled_from(["x", "y"]), st.integers(0, 3), max_size=2),
}
"""Values of each kind of key."""

KIND_REDUCERS: dict[str, tuple[str | None, ...]] = {
    "int": (None, None, "add", "add", "max", "min", "inc_only"),
    "str": (None, "add", "max", "min", "concat"),
    "list": (None, "append", "extend", "union", "add"),
    "dict": (None, "merge"),
}
"""Reducers that make sense for each kind of key (None: overwrite)."""

KeyInfo = tuple[str, str, str | None]
"""A state key: name, kind of value, reducer name (or None)."""

MALFORMED_RESULTS: tuple[Any, ...] = (42, "text", [("a", 1)], ("a", 1), {1: 2}, Goto(7))  # type: ignore[arg-type]
"""Results no node may return: the executor must refuse them with a typed error."""

MALFORMED_DECISIONS: tuple[Any, ...] = ("approve", None, 1, Modify(1, "x"), Approve)  # type: ignore[arg-type]
"""Decisions ``decide`` must refuse with ``BarrierError``."""

# Drawing is the slow part of an example: the helpers below draw from a few strategies
# built once (building strategies inside a draw costs more than running the graph).

_ITEM = st.integers(0, 3)
_WRONG = {k: st.one_of(*(s for j, s in KIND_VALUES.items() if j != k)) for k in KIND_VALUES}


@functools.cache
def below(n: int) -> st.SearchStrategy[int]:
    return st.integers(0, n - 1)


_T = TypeVar("_T")


def pick(draw: st.DrawFn, items: Sequence[_T]) -> _T:
    """One of ``items`` (shrinks towards the first)."""
    return items[draw(below(len(items)))]


def percent(draw: st.DrawFn) -> int:
    return draw(below(100))


def keys_of(spec: GraphSpec) -> list[KeyInfo]:
    reducers = dict(spec.reducers)
    return [(name, kind, reducers.get(name)) for name, kind in spec.keys]


def draw_value(draw: st.DrawFn, kind: str, reducer: str | None) -> Any:
    if draw(below(30)) == 29:
        return draw(_WRONG[kind])
    return draw(_ITEM if reducer == "append" else KIND_VALUES[kind])


def values_for(kind: str, reducer: str | None = None) -> st.SearchStrategy[Any]:
    """Update values for a key: mostly the right kind (an item for ``append``), now and
    then another kind, to reach reducer and condition type errors."""
    return st.composite(lambda draw: draw_value(draw, kind, reducer))()


def draw_updates(draw: st.DrawFn, keys: Sequence[KeyInfo]) -> dict[str, Any]:
    updates: dict[str, Any] = {}
    for _ in range(draw(below(3)) if keys else 0):
        name, kind, reducer = pick(draw, keys)
        updates[name] = draw_value(draw, kind, reducer)
    return updates


def draw_behaviour(
    draw: st.DrawFn,
    targets: Sequence[str],
    keys: Sequence[KeyInfo],
    sleeps: Sequence[float],
    failures: int,
    malformed: bool,
    routing: bool,
) -> Behaviour:
    roll = percent(draw)  # the simplest example (0) must be benign
    sleep = pick(draw, sleeps)
    if roll >= 100 - failures:
        if roll % 3 == 2 and malformed:
            return Behaviour(pick(draw, MALFORMED_RESULTS), sleep=sleep)
        return Behaviour(raises=pick(draw, ["boom", "bad input"]), sleep=sleep)
    roll = percent(draw)
    if roll < 70:
        return Behaviour(draw_updates(draw, keys), sleep=sleep)
    if roll < 80 or not routing:
        return Behaviour(None, sleep=sleep)
    if roll < 93:
        target = pick(draw, [*targets, *targets, "nowhere"])
        return Behaviour(Goto(target, draw_updates(draw, keys)), sleep=sleep)
    return Behaviour(Fallback(pick(draw, ["flaky", "slow"]), draw_updates(draw, keys)))


@st.composite
def node_behaviours(
    draw: st.DrawFn,
    targets: Sequence[str] = ("n0",),
    keys: Sequence[KeyInfo] = (("a", "int", None),),
    *,
    sleeps: Sequence[float] = (0.0, 0.0, 0.5, 1.0),
    failures: int = 5,
    malformed: bool = True,
    routing: bool = True,
) -> Behaviour:
    """One call's behaviour: updates (most often), None, ``Goto`` (to one of ``targets``
    or to a node with no edge) and ``Fallback`` (with ``routing``; parallel branches
    may return neither), and, in about ``failures`` percent of calls (default 5), raising or (with
    ``malformed``) returning a malformed result. ``keys`` are (name, kind, reducer)."""
    return draw_behaviour(draw, targets, keys, sleeps, failures, malformed, routing)


_COND_OPS: dict[str, tuple[CondOp, ...]] = {
    "int": ("eq", "lt", "odd", "has"),
    "str": ("eq", "lt", "has"),
    "list": ("eq", "has"),
    "dict": ("has", "eq"),
    "bool": ("eq", "has"),
}
_COND_VALUES: dict[str, st.SearchStrategy[Any]] = {
    **KIND_VALUES,
    "int": st.integers(-1, 4),
    "bool": st.booleans(),
}
_ANY_COND_VALUE = st.one_of(*_COND_VALUES.values())


def draw_condition(draw: st.DrawFn, keys: Sequence[tuple[str, str]], raising: int = 0) -> Cond:
    """See :func:`conditions`."""
    if raising and percent(draw) >= 100 - raising:
        return Cond("raise", value=pick(draw, ("boom", "kaput")))
    roll = percent(draw)
    if roll >= 85 or not keys:
        return Cond("true" if roll % 2 else "false")
    key, kind = pick(draw, keys)
    if roll >= 4:
        return Cond(pick(draw, _COND_OPS[kind]), key, draw(_COND_VALUES[kind]))
    return Cond(pick(draw, ("lt", "odd")), key, draw(_ANY_COND_VALUE))


@st.composite
def conditions(
    draw: st.DrawFn, keys: Sequence[tuple[str, str]] = (("a", "int"),), *, raising: int = 0
) -> Cond:
    """An edge condition on one of ``keys`` (name, kind): mostly a test that suits the
    kind, now and then a constant, rarely one that raises ``TypeError``; and in about
    ``raising`` percent of draws (default 0) a ``Cond("raise")`` that always raises
    ``RuntimeError``."""
    return draw_condition(draw, keys, raising)
