"""The rules the reference interpreter applies step by step: the built-in reducers as
their documentation states them, what a node's return value means, how a node function
is called without Trio, and how a node's edges route (DESIGN §3-5).

Part of :mod:`~trio_graph.testing.reference` (the one reference interpreter), split out
to keep each module short; :func:`route_edges` is public so that routing tests can use
the same rule directly.
"""

from __future__ import annotations

import builtins
import numbers
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal, Protocol

import attrs

from .._model.results import Fallback, Goto
from ..reducers import Reducer
from .traces import ErrorInfo, error_info


class Unsupported(Exception):
    """The graph uses something the reference does not model."""


# -- the built-in reducers, as their documentation states them (DESIGN §4) ---------------


def _is_number(x: Any) -> bool:
    return isinstance(x, numbers.Number) and not isinstance(x, bool)


def _append(old: Any, new: Any) -> Any:
    if not isinstance(old, list):
        raise TypeError("append: not a list")
    return [*old, new]


def _extend(old: Any, new: Any) -> Any:
    if not isinstance(old, list) or not isinstance(new, list | tuple):
        raise TypeError("extend: needs a list and a list or tuple")
    return [*old, *new]


def _add(old: Any, new: Any) -> Any:
    if _is_number(old) and _is_number(new):
        return old + new
    if type(old) is type(new) and isinstance(old, str | list | tuple):
        return old + new
    raise TypeError("add: needs two numbers or two str/list of the same type")


def _merge(old: Any, new: Any) -> Any:
    if not isinstance(old, Mapping) or not isinstance(new, Mapping):
        raise TypeError("merge: needs two mappings")
    return {**old, **new}


def _union(old: Any, new: Any) -> Any:
    if isinstance(old, set | frozenset) and isinstance(new, set | frozenset | list | tuple):
        return set(old) | set(new)
    if isinstance(old, list) and isinstance(new, list | tuple | set | frozenset):
        result = list(old)
        for item in new:
            if item not in result:
                result.append(item)
        return result
    raise TypeError("union: needs sets or lists")


_BUILTIN: dict[str, tuple[Callable[[Any, Any], Any], Callable[[], Any] | None]] = {
    "append": (_append, list),
    "extend": (_extend, list),
    "add": (_add, None),
    "merge": (_merge, dict),
    "union": (_union, None),
    "max": (builtins.max, None),
    "min": (builtins.min, None),
}


def reducer_parts(reducer: Reducer) -> tuple[Callable[[Any, Any], Any], Callable[[], Any] | None]:
    if reducer.builtin and reducer.name in _BUILTIN:
        return _BUILTIN[reducer.name]
    return reducer.fn, reducer.initial


# -- node results -------------------------------------------------------------------------


@attrs.frozen
class Outcome:
    """What a node asks for: updates in order, and a Goto target or a fallback reason."""

    items: tuple[tuple[str, Any], ...] = ()
    goto: str | None = None
    fallback: str | None = None


class NodeFailed(Exception):
    """The running node failed: its ``NodeEnd(success=False)`` comes next, then the error."""

    def __init__(self, info: ErrorInfo) -> None:
        self.info = info


class RunFailed(Exception):
    """The run ends with this error (no node is open)."""

    def __init__(self, info: ErrorInfo) -> None:
        self.info = info


def state_error(node: str, key: str = "", branches: Sequence[str] = ()) -> NodeFailed:
    return NodeFailed(error_info("StateError", node=node, key=key, branches=tuple(branches)))


def _updates(node: str, updates: Mapping[Any, Any]) -> tuple[tuple[str, Any], ...]:
    """The updates of a result; a key that is not a str is a ``StateError`` (DESIGN §4)."""
    if any(not isinstance(key, str) for key in updates):
        raise state_error(node)
    return tuple(updates.items())


def read_result(node: str, raw: Any) -> Outcome:
    """A task node's return value (DESIGN §5 "Node results", §10 ``draft``)."""
    if raw is None:
        return Outcome()
    if isinstance(raw, Goto):
        if not isinstance(raw.target, str):
            raise state_error(node)
        return Outcome(_updates(node, raw.updates), goto=raw.target)
    if isinstance(raw, Fallback):
        return Outcome(_updates(node, raw.updates), fallback=str(raw.reason))
    if isinstance(raw, Mapping):
        return Outcome(_updates(node, raw))
    raise state_error(node)


def read_branch_result(node: str, raw: Any) -> dict[str, Any]:
    """A branch's return value: updates (a mapping with str keys) or None (DESIGN §7)."""
    if raw is None:
        return {}
    if isinstance(raw, Mapping) and all(isinstance(k, str) for k in raw):
        return dict(raw)
    raise state_error(node)


def call_function(fn: Any, is_async: bool, view: Mapping[str, Any]) -> Any:
    """Call a node function sequentially (see the module docstring)."""
    stand_in = getattr(fn, "reference", None)
    if callable(stand_in):
        return stand_in(view)
    if not is_async:
        return fn(view)
    coro = fn(view)
    try:
        coro.send(None)
    except StopIteration as stop:
        return stop.value
    coro.close()
    raise Unsupported(f"{fn!r} awaits something: give it a `reference` stand-in")


# -- routing (DESIGN §3) ------------------------------------------------------------------


class RoutedEdge(Protocol):
    """What routing reads of an edge: a :class:`~trio_graph._model.graph.Edge` or a
    :class:`~trio_graph.testing.spec.EdgeSpec`."""

    @property
    def to(self) -> str: ...

    @property
    def kind(self) -> str: ...

    @property
    def condition(self) -> Callable[[Any], Any] | None: ...


RouteOutcome = (
    tuple[Literal["ok"], str]
    | tuple[Literal["unrouted"], list[tuple[str, bool]]]
    | tuple[Literal["raised"], Exception]
)
"""``("ok", target)``, ``("unrouted", [(to, False), ...])`` (every condition tried, in
order) or ``("raised", exc)`` (the exception a condition raised)."""


def route_edges(edges: Sequence[RoutedEdge], state: Mapping[str, Any]) -> RouteOutcome:
    """Route by one node's edges in registration order (mixed classes): the first
    conditional edge whose condition holds, else the first normal, else the first
    fallback edge, else unrouted; a condition raising stops there."""
    tried: list[tuple[str, bool]] = []
    for edge in edges:
        if edge.kind != "conditional":
            continue
        assert edge.condition is not None
        try:
            holds = bool(edge.condition(state))
        except Exception as exc:
            return "raised", exc
        if holds:
            return "ok", edge.to
        tried.append((edge.to, False))
    for kind in ("normal", "fallback"):
        for edge in edges:
            if edge.kind == kind:
                return "ok", edge.to
    return "unrouted", tried
