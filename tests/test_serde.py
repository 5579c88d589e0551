"""Serialisation: every event, decision, error, RunResult and Checkpoint round-trips through
``serde.to_json`` / ``serde.from_json`` (one JSON line), and bad input is a CheckpointError."""

from __future__ import annotations

import enum
import json
import types
import typing
from collections import Counter
from typing import Any, Literal, Union, get_args, get_origin

import attrs
import pytest
import trio
import trio.testing
from hypothesis import given, settings
from hypothesis import strategies as st

from trio_graph import Approve, BarrierId, Checkpoint, Executor, Modify, Reject, Reroute, errors
from trio_graph import events as ev
from trio_graph._model.decisions import Decision
from trio_graph.serde import from_json, to_json
from trio_graph.testing import TASKS_AND_CONDITIONS, GraphSpec, build_graph, graph_and_state

# -- a strategy for any of our attrs types, derived from their field annotations ----------------
json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**63), 2**63),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=8),
)
json_values: st.SearchStrategy[Any] = st.recursive(
    json_scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=8,
)
json_states = st.dictionaries(st.text(max_size=6), json_values, max_size=4)
SPECS, STATES = graph_and_state(
    node_kinds=TASKS_AND_CONDITIONS, max_extra_edges=12, raising_conditions=8
)
"""Random graphs of task and condition nodes (runs that need nobody), and a state for each."""

_cache: dict[Any, st.SearchStrategy[Any]] = {}


def strategy_for(tp: Any) -> st.SearchStrategy[Any]:
    """Values of annotation ``tp`` (JSON-compatible wherever the annotation says Any)."""
    if tp in _cache:
        return _cache[tp]
    origin, args = get_origin(tp), get_args(tp)
    result: st.SearchStrategy[Any]
    if tp is Any:
        result = json_values
    elif tp is type(None) or tp is None:
        result = st.none()
    elif tp is bool:
        result = st.booleans()
    elif tp is int:
        result = st.integers(-(2**40), 2**40)
    elif tp is float:
        result = st.floats(allow_nan=False, allow_infinity=False)
    elif tp is str:
        result = st.text(max_size=10)
    elif origin is Literal:
        result = st.sampled_from(args)
    elif origin in (Union, types.UnionType):
        result = st.one_of([strategy_for(a) for a in args])
    elif origin is list:
        result = st.lists(strategy_for(args[0]), max_size=3)
    elif origin is dict:
        key = st.text(max_size=6) if args[0] is str else strategy_for(args[0])
        value = json_values if args[1] is Any else strategy_for(args[1])
        result = st.dictionaries(key, value, max_size=3)
    elif origin is tuple:
        if len(args) == 2 and args[1] is Ellipsis:
            result = st.lists(strategy_for(args[0]), max_size=3).map(tuple)
        else:
            result = st.tuples(*[strategy_for(a) for a in args])
    elif isinstance(tp, type) and issubclass(tp, enum.Enum):
        result = st.sampled_from(list(tp))
    elif isinstance(tp, type) and issubclass(tp, errors.GraphError) and tp is errors.GraphError:
        result = st.one_of([strategy_for(cls) for cls in errors.ERROR_TYPES])
    elif isinstance(tp, type) and attrs.has(tp):
        attrs.resolve_types(tp, globalns=vars(__import__(tp.__module__, fromlist=["_"])))
        fields = {
            f.alias: st.deferred(lambda f=f: strategy_for(f.type))
            for f in attrs.fields(tp)
            if f.init
        }
        result = st.builds(tp, **fields)
    else:
        raise NotImplementedError(f"no strategy for {tp!r}")
    _cache[tp] = result
    return result


def norm(obj: Any) -> Any:
    """A comparable form: attrs instances (errors included, which have no __eq__) become
    (type name, fields); tuples become lists, as in JSON."""
    if attrs.has(type(obj)):
        return (
            type(obj).__name__,
            {f.name: norm(getattr(obj, f.name)) for f in attrs.fields(type(obj))},
        )
    if isinstance(obj, enum.Enum):
        return obj.value
    if isinstance(obj, list | tuple):
        return [norm(x) for x in obj]
    if isinstance(obj, dict):
        return {k: norm(v) for k, v in obj.items()}
    return obj


def assert_round_trip(obj: Any, type_: Any = None) -> None:
    """to_json -> from_json gives an equal object of the same type; encoding is one line."""
    type_ = type(obj) if type_ is None else type_
    text = to_json(obj, type_)
    assert "\n" not in text
    json.loads(text)  # plain JSON
    back = from_json(text, type_)
    assert type(back) is type(obj)
    assert norm(back) == norm(obj)
    assert to_json(back, type_) == text


# -- properties --------------------------------------------------------------------------------
@pytest.mark.parametrize("cls", ev.EVENT_TYPES, ids=lambda c: c.__name__)
@settings(max_examples=40)
@given(data=st.data())
def test_every_event_type_round_trips(cls: type, data: st.DataObject) -> None:
    """Each event type round-trips as itself and through the tagged Event union."""
    event = data.draw(strategy_for(cls))
    assert_round_trip(event)
    assert_round_trip(event, ev.Event)
    doc = json.loads(to_json(event, ev.Event))
    assert doc["type"] == cls.__name__


@pytest.mark.parametrize("cls", errors.ERROR_TYPES, ids=lambda c: c.__name__)
@settings(max_examples=25)
@given(data=st.data())
def test_every_error_round_trips(cls: type, data: st.DataObject) -> None:
    """Each GraphError subclass round-trips as itself and as the GraphError base type, and
    keeps its message."""
    err = data.draw(strategy_for(cls))
    assert_round_trip(err)
    assert_round_trip(err, errors.GraphError)
    assert str(from_json(to_json(err), cls)) == str(err)


@settings(max_examples=60)
@given(decision=strategy_for(Decision))
def test_decisions_round_trip(decision: Any) -> None:
    """Approve, Reject, Modify (any JSON value) and Reroute round-trip via the Decision union."""
    assert_round_trip(decision, Decision)
    assert_round_trip(decision)


def test_each_decision_kind_by_example() -> None:
    """The four decisions, by example, keep their type and fields."""
    for d in (Approve(), Reject("too long"), Modify("k", {"a": [1, None]}), Reroute("draft")):
        back = from_json(to_json(d, Decision), Decision)
        assert back == d and type(back) is type(d)


@settings(max_examples=60)
@given(result=strategy_for(ev.RunResult))
def test_run_result_round_trips(result: ev.RunResult) -> None:
    """RunResult with a JSON state and an execution log round-trips."""
    assert_round_trip(result)


@settings(max_examples=60)
@given(checkpoint=strategy_for(Checkpoint), state=json_states)
def test_checkpoint_round_trips(checkpoint: Checkpoint, state: dict[str, Any]) -> None:
    """Checkpoint with any JSON-compatible state (and every optional part) round-trips."""
    assert_round_trip(attrs.evolve(checkpoint, state=state))


@settings(max_examples=40)
@given(spec=SPECS, state=STATES)
def test_every_event_of_real_runs_round_trips(spec: GraphSpec, state: dict[str, Any]) -> None:
    """Every event a random run emits (terminal errors included) round-trips."""

    async def main() -> list[Any]:
        async with Executor(max_steps=12).stream(build_graph(spec), state) as run:
            return [e async for e in run]

    events = trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))
    kinds: Counter[str] = Counter()
    for e in events:
        kinds[type(e).__name__] += 1
        assert_round_trip(e, ev.Event)
    assert kinds["GraphStart"] == 1


def test_barrier_id_and_none_decision_round_trip() -> None:
    """BarrierResolved with a None decision (skip on timeout) keeps it None."""
    e = ev.BarrierResolved("t", "gate", BarrierId("gate", 2), None, timed_out=True)
    assert from_json(to_json(e, ev.Event), ev.Event) == e


# -- bad input -------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "type_"),
    [
        ("{", ev.GraphStart),
        ("[]", ev.GraphStart),
        ('{"trace_id": "t"}', ev.NodeStart),
        ('{"type": "Nope", "trace_id": "t"}', ev.Event),
        ('{"type": "os.system", "trace_id": "t"}', ev.Event),
        ('{"type": "Approve2"}', Decision),
        ('{"type": "SystemExit"}', errors.GraphError),
        ('{"trace_id": "t", "node": "n", "span_id": "x", "step": 1}', ev.NodeStart),
    ],
)
def test_malformed_documents_are_checkpoint_errors(text: str, type_: Any) -> None:
    """Malformed JSON, missing fields, unknown tags and wrong types raise CheckpointError
    naming what could not be loaded."""
    with pytest.raises(errors.CheckpointError, match=r"^cannot load "):
        from_json(text, type_)


def test_non_json_values_are_refused() -> None:
    """A value JSON cannot represent (NaN, an arbitrary object) is refused, not mangled."""
    with pytest.raises((ValueError, TypeError)):
        to_json(ev.StateChanged("t", "n", 1, "k", float("nan")))
    with pytest.raises((ValueError, TypeError)):
        to_json(ev.StateChanged("t", "n", 1, "k", object()))


def test_event_fields_are_annotated() -> None:
    """Guard for the derived strategies: every event field has a resolvable annotation."""
    for cls in ev.EVENT_TYPES:
        hints = typing.get_type_hints(cls)
        assert set(hints) >= {f.name for f in attrs.fields(cls)}
