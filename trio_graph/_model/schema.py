"""Typed state (DESIGN §16): a schema's fields, the reducers declared on them, and the
checks of the one cattrs converter.

Model layer: no trio, no I/O. ``GraphBuilder(name, state=Schema)`` takes an attrs class,
a dataclass or a ``TypedDict``; :meth:`StateSchema.of` reads its fields once, at build.

**Theory of operation.** The run's state stays a plain ``dict`` (key -> typed value), so
everything that works on states keeps working and a step stays O(update). What changes:

- every update is checked **before** it is committed (:meth:`StateSchema.check_items`):
  the value is unstructured and structured again by the converter for the field's type,
  with strict primitives (``"1"`` is not an ``int``); what is committed is the structured
  value, so a list given for a ``tuple`` field is kept as a tuple, an ISO string for a
  ``datetime`` field as a datetime, exactly as a store would give it back. Under a
  built-in reducer the update is checked as that reducer takes it (``append``: one item;
  ``extend``: a list of items); a custom reducer's result is checked instead.
- stores keep JSON: the executor hands them the unstructured state
  (:meth:`StateSchema.unstructure_value`) and structures what they load
  (:meth:`StateSchema.structure_state`): no pickle, no class path in a row.
- nodes read the state through a :class:`StateView`: a read-only mapping that also
  gives the fields as attributes (``state.summary``), so a node annotated with the
  schema class type-checks with mypy.
"""

from __future__ import annotations

import dataclasses
import re
import reprlib
import typing
from collections.abc import Callable, Iterator, Mapping
from typing import Any, TypeAlias

import attrs
import cattrs

from ..errors import StateError
from ..reducers import Reducer
from .converter import converter as _base

_short = reprlib.Repr()
_short.maxstring = 60
_short.maxother = 60

InitialState: TypeAlias = "Mapping[str, Any] | object"
"""A run's initial state: a mapping, or (typed graphs) an instance of the state class."""

RESERVED = frozenset({"get", "keys", "items", "values"})
"""Field names a :class:`StateView` cannot give as attributes (its mapping methods)."""


def _strict(kind: type, accepts: tuple[type, ...]) -> Callable[[Any, Any], Any]:
    def structure(value: Any, _: Any) -> Any:
        if (isinstance(value, bool) and kind is not bool) or not isinstance(value, accepts):
            raise TypeError(f"expected {kind.__name__}, got {type(value).__name__}")
        return float(typing.cast(float, value)) if kind is float else value

    return structure


checker = _base.copy()
"""The one converter, with strict primitives: a value is checked, never coerced."""
for _kind, _accepts in ((int, (int,)), (float, (int, float)), (str, (str,)), (bool, (bool,))):
    checker.register_structure_hook(_kind, _strict(_kind, _accepts))


@attrs.frozen
class Field:
    """One key of a typed state."""

    name: str
    type: Any
    """The field's type, without its ``Annotated`` metadata."""
    reducer: Reducer | None = None
    """A reducer declared on the field (``Annotated[list[str], reducers.extend]``)."""
    default: Callable[[], Any] | None = None
    """Gives the value of a key the initial state leaves out; None: the key is required."""
    required: bool = True
    """False for a ``TypedDict`` key that may be absent (``NotRequired``)."""


def _annotated(hint: Any) -> tuple[Any, Reducer | None]:
    if typing.get_origin(hint) is typing.Annotated:
        base, *extras = typing.get_args(hint)
        reducers = [x for x in extras if isinstance(x, Reducer)]
        return base, reducers[0] if reducers else None
    return hint, None


def _attrs_default(a: attrs.Attribute[Any]) -> Callable[[], Any] | None:
    if a.default is attrs.NOTHING:
        return None
    default: Any = a.default
    if isinstance(default, attrs.Factory):  # type: ignore[arg-type]
        if default.takes_self:
            return None
        factory: Callable[[], Any] = default.factory
        return factory
    value = a.default
    return lambda: value


def _dataclass_default(f: dataclasses.Field[Any]) -> Callable[[], Any] | None:
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory
    if f.default is not dataclasses.MISSING:
        value = f.default
        return lambda: value
    return None


def _fields(cls: type) -> list[Field]:
    hints = typing.get_type_hints(cls, include_extras=True)
    if attrs.has(cls):
        return [
            Field(a.name, *_annotated(hints.get(a.name, a.type)), default=_attrs_default(a))
            for a in attrs.fields(cls)
        ]
    if dataclasses.is_dataclass(cls):
        return [
            Field(f.name, *_annotated(hints[f.name]), default=_dataclass_default(f))
            for f in dataclasses.fields(cls)
        ]
    if typing.is_typeddict(cls):
        required = getattr(cls, "__required_keys__", frozenset(hints))
        return [
            Field(name, *_annotated(hint), required=name in required)
            for name, hint in hints.items()
        ]
    raise TypeError(f"state= must be an attrs class, a dataclass or a TypedDict, got {cls!r:.80}")


def _item_type(field: Field) -> Any:
    args = typing.get_args(field.type)
    return args[0] if args else Any


_NEEDS: dict[str, tuple[tuple[Any, ...], str]] = {
    "append": ((list,), "a list[...] field"),
    "extend": ((list,), "a list[...] field"),
    "union": ((set, frozenset, list), "a set[...] or list[...] field"),
    "merge": ((dict,), "a dict[...] field"),
}


def reducer_problem(field: Field, reducer: Reducer) -> str | None:
    """Why ``reducer`` cannot merge into ``field`` (a built-in on the wrong kind), or None."""
    need = _NEEDS.get(reducer.name) if reducer.builtin else None
    if need is None:
        return None
    origin = typing.get_origin(field.type) or field.type
    if origin in need[0]:
        return None
    return (
        f"field {field.name!r}: reducer {reducer.name!r} needs {need[1]}, got {_name(field.type)}"
    )


def _name(tp: Any) -> str:
    if isinstance(tp, type) and not typing.get_args(tp):
        return tp.__name__
    return re.sub(r"\b[\w.]+\.(\w+)", r"\1", str(tp))


@attrs.frozen(eq=False)
class StateSchema:
    """A graph's typed state: its fields by name, read once from the schema class."""

    cls: type
    fields: Mapping[str, Field]

    @classmethod
    def of(cls, schema: type) -> StateSchema:
        """The schema of an attrs class, a dataclass or a TypedDict (``TypeError`` else)."""
        return cls(schema, {f.name: f for f in _fields(schema)})

    def problems(self) -> list[str]:
        """What ``build()`` refuses in the schema itself (names a view cannot give)."""
        bad = [n for n in self.fields if n in RESERVED or n.startswith("_")]
        return [
            f"state field {n!r} cannot be read as an attribute of the state view; rename it"
            for n in bad
        ]

    def hashed(self) -> list[list[str]]:
        """The fields as the graph's structural hash sees them: name and type."""
        return [[n, _name(f.type)] for n, f in self.fields.items()]

    def declared_reducers(self) -> dict[str, Reducer]:
        """The reducers declared on fields with ``Annotated``."""
        return {n: f.reducer for n, f in self.fields.items() if f.reducer is not None}

    def _structure(self, node: str, key: str, value: Any, tp: Any, what: str) -> Any:
        try:
            try:  # as the field's type unstructures it: a datetime is no str
                plain = checker.unstructure(value, tp)
            except Exception:  # not of the type: its JSON form may be ("keen", an ISO date)
                plain = checker.unstructure(value)
            return checker.structure(plain, tp)
        except Exception as exc:
            detail = _detail(exc)
            raise StateError(
                f"{what} {_short.repr(value)} is not {_name(tp)}"
                + (f" ({detail})" if detail else ""),
                node=node,
                key=key,
            ) from None

    def _field(self, node: str, key: str) -> Field:
        field = self.fields.get(key)
        if field is None:
            known = ", ".join(sorted(self.fields))
            raise StateError(
                f"unknown state key {key!r} (the fields of {self.cls.__name__}: {known})",
                node=node,
                key=key,
            )
        return field

    def check_items(
        self, node: str, items: Any, reducers: Mapping[str, Reducer]
    ) -> list[tuple[str, Any]]:
        """``items`` (key, update) checked and structured, in order; ``StateError`` names
        the node, the key, the expected type and the value. Custom reducers' updates
        pass as they are (their result is checked by :meth:`check_merged`)."""
        checked = []
        for key, value in items:
            field = self._field(node, key)
            reducer = reducers.get(key)
            if reducer is None:
                value = self._structure(node, key, value, field.type, "value")
            elif reducer.name == "append" and reducer.builtin:
                value = self._structure(node, key, value, _item_type(field), "item")
            elif reducer.name in ("extend", "union") and reducer.builtin:
                tp: Any = list[_item_type(field)]  # type: ignore[misc]
                value = self._structure(node, key, value, tp, "update")
            elif reducer.builtin:
                value = self._structure(node, key, value, field.type, "update")
            checked.append((key, value))
        return checked

    def check_merged(
        self, node: str, merged: dict[str, Any], reducers: Mapping[str, Reducer]
    ) -> None:
        """Check (and structure, in place) the results of custom reducers."""
        for key, value in merged.items():
            reducer = reducers.get(key)
            if reducer is not None and not reducer.builtin:
                tp = self.fields[key].type
                merged[key] = self._structure(node, key, value, tp, "merged value")

    def initial(self, state: object) -> dict[str, Any]:
        """The initial state (a mapping or an instance of the schema class) checked,
        with the defaults of the keys it leaves out; missing or unknown keys are errors."""
        if not typing.is_typeddict(self.cls) and isinstance(state, self.cls):
            state = {n: getattr(state, n) for n in self.fields}
        if not isinstance(state, Mapping):
            raise StateError(
                f"initial state must be a mapping or a {self.cls.__name__}, "
                f"got {type(state).__name__}"
            )
        try:
            given = self.check_patch(state, node="")
        except StateError as exc:
            raise StateError(f"the initial state: {exc.message}", key=exc.key) from None
        for name, field in self.fields.items():
            if name in given or not field.required:
                continue
            if field.default is None:
                raise StateError(
                    f"the initial state leaves out {name!r}, a {self.cls.__name__} field "
                    "with no default",
                    key=name,
                )
            given[name] = self._structure("", name, field.default(), field.type, "default")
        return given

    def check_patch(self, patch: Mapping[str, Any], node: str = "") -> dict[str, Any]:
        """Values that replace keys (a fork's patch), checked and structured."""
        return dict(self.check_items(node, patch.items(), {}))

    def unstructure_value(self, key: str, value: Any) -> Any:
        """``value`` of ``key`` as a store keeps it (JSON types)."""
        field = self.fields.get(key)
        return checker.unstructure(value, field.type if field is not None else Any)

    def unstructure_state(self, state: Mapping[str, Any]) -> dict[str, Any]:
        """A whole state as a store keeps it."""
        return {k: self.unstructure_value(k, v) for k, v in state.items()}

    def structure_state(self, state: Mapping[str, Any], where: str) -> dict[str, Any]:
        """A state a store gave back, with its types again; ``where`` names the checkpoint
        (a row that does not fit the schema is a ``StateError`` saying which)."""
        try:
            return self.check_patch(state, node="")
        except StateError as exc:
            raise StateError(f"{where}: {exc.message}", key=exc.key) from None


def _detail(exc: BaseException) -> str:
    """What the converter found, where in the value (``@ attribute text``): the leaf of
    a validation error; nothing for Python's own complaints about the wrong shape."""
    where = ""
    while isinstance(exc, cattrs.BaseValidationError) and exc.exceptions:
        leaf = exc.exceptions[0]
        notes = [n for n in getattr(leaf, "__notes__", ()) if "@" in n]
        where = notes[0].rpartition("@")[2].strip() if notes else where
        exc = leaf
    text = str(exc).splitlines()[0] if str(exc) else ""
    if not (isinstance(exc, ValueError) or text.startswith("expected ")):
        return ""
    return f"{where}: {text[:120]}" if where else text[:120]


class StateView(Mapping[str, Any]):
    """A typed graph's state as nodes read it: a read-only mapping whose fields are
    also attributes (``state.summary``; ``state["summary"]`` works too)."""

    __slots__ = ("_state",)

    def __init__(self, state: Mapping[str, Any]) -> None:
        object.__setattr__(self, "_state", state)

    def __getattr__(self, name: str) -> Any:
        try:
            return self._state[name]
        except KeyError:
            raise AttributeError(f"the state has no key {name!r}") from None

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("the state is read-only: a node returns its updates")

    def __getitem__(self, key: str) -> Any:
        return self._state[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._state)

    def __len__(self) -> int:
        return len(self._state)

    def __repr__(self) -> str:
        return f"StateView({dict(self._state)!r})"
