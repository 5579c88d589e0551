"""State values either come back from every store exactly (equal, same type) or are refused
when committed, naming who wrote them, the key and the path (issue 13 #5, #13, #21)."""

from __future__ import annotations

import enum
import json
import math
import re
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_store_conformance import STORE_FACTORIES, Writer

from trio_graph import Approve, BarrierId, CheckpointError, Executor, GraphBuilder, Modify, reducers
from trio_graph import events as ev
from trio_graph._model.graph import Graph
from trio_graph._model.jsonvalue import is_json_exact, json_problem
from trio_graph.stores import MemoryStore, SQLiteStore, Store

LIMIT = sys.get_int_max_str_digits()


class Colour(enum.IntEnum):
    RED = 1


# -- strategies ------------------------------------------------------------------------
texts = st.text(st.characters(codec="utf-8"), max_size=8)  # astral characters, no surrogates
exact_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(LIMIT - 2, LIMIT).map(lambda d: 10**d - 1),  # d digits: at the limit
    st.integers(LIMIT - 2, LIMIT).map(lambda d: 1 - 10**d),
    st.floats(allow_nan=False, allow_infinity=False),
    st.just(-0.0),
    texts,
)
exact_values = st.recursive(
    exact_scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(texts, inner, max_size=4),
    max_leaves=12,
)
refused_scalars = st.one_of(
    st.tuples(st.integers()),
    st.frozensets(st.integers(), max_size=2),
    st.sets(st.integers(), min_size=1, max_size=2),
    st.binary(max_size=3),
    st.sampled_from([math.nan, math.inf, -math.inf, Colour.RED]),
    st.integers(LIMIT, LIMIT + 1).map(lambda d: 10**d),  # d + 1 digits: past the limit
    st.integers(LIMIT, LIMIT + 1).map(lambda d: -(10**d)),
    st.sampled_from(["\ud800", "a\udfff", "\ud800\udfff"]),
    st.dictionaries(st.integers(), st.integers(), min_size=1, max_size=2),
)
refused_values = st.recursive(
    refused_scalars,
    lambda inner: (
        st.lists(inner, min_size=1, max_size=3).map(lambda v: [1, *v])
        | inner.map(lambda v: {"x": v})
    ),
    max_leaves=4,
)
any_values = st.recursive(
    exact_scalars | refused_scalars,
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.tuples(inner)
        | st.dictionaries(texts | st.integers(), inner, max_size=3)
    ),
    max_leaves=10,
)


def same(a: Any, b: Any, signed_zero: bool = True) -> bool:
    """Equal and of the same type at every level (and the same sign of zero, and key order;
    ``signed_zero=False`` for JSONB, which keeps neither)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, list):
        return len(a) == len(b) and all(same(x, y, signed_zero) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict):
        keys_ok = list(a) == list(b) if signed_zero else set(a) == set(b)
        return keys_ok and all(same(a[k], b[k], signed_zero) for k in a)
    if isinstance(a, float) and signed_zero:
        return a == b and math.copysign(1, a) == math.copysign(1, b)
    return bool(a == b)


def json_round_trips(value: Any) -> bool:
    """The reference: written as UTF-8 JSON text, read back equal and of the same type."""
    try:
        text = json.dumps(value, allow_nan=False, ensure_ascii=False).encode("utf-8")
        return same(value, json.loads(text))
    except (TypeError, ValueError, UnicodeError):
        return False


# -- the checker -----------------------------------------------------------------------
@settings(max_examples=400)
@given(value=any_values)
async def test_the_checker_agrees_with_a_real_json_round_trip(value: Any) -> None:
    """json_problem() refuses exactly the values a UTF-8 JSON round trip does not give back."""
    assert (json_problem(value) is None) == json_round_trips(value) == is_json_exact(value)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ((1, 2), r"'k' got tuple \(value \(1, 2\)\): a tuple comes back from JSON as a list"),
        ({"a": [1, {"x": {2}}]}, r"'k\.a\[1\]\.x' got set \(value \{2\}\): sets are not JSON"),
        ({"a b": [b"x"]}, r"\"k\['a b'\]\[0\]\" got bytes \(value b'x'\): bytes are not JSON"),
        ({1: 2}, r"'k' got a dict key of type int \(value 1\): JSON object keys are str"),
        (math.nan, r"'k' got float \(value nan\): non-finite floats are not JSON"),
        ([-math.inf], r"'k\[0\]' got float \(value -inf\): non-finite floats are not JSON"),
        pytest.param(
            10**LIMIT,
            r"'k' got int \(value of about \d+ digits, limit \d+\): ints past .*",
            id="big-int",
        ),
        ("\ud800\udfff", r"'k' got str \(value '\\ud800\\udfff'\): strings holding surrogate .*"),
        ([Colour.RED], r"'k\[0\]' got Colour .*: a subclass of int comes back from JSON as int"),
    ],
)
async def test_the_problem_names_the_path_the_type_and_the_value(value: Any, message: str) -> None:
    """Each refusal says where inside the value, what it got (type and value) and why."""
    problem = json_problem(value, "k")
    assert problem is not None
    assert re.fullmatch(message, problem), problem


# -- every store gives back what the checker accepts -------------------------------------
@pytest.mark.parametrize("store_factory", STORE_FACTORIES)
@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(values=st.lists(exact_values, min_size=1, max_size=4))
async def test_json_exact_values_round_trip_through_every_store(
    store_factory: Any, values: list[Any]
) -> None:
    """Any JSON-exact value comes back from every store equal and of the same type."""
    with tempfile.TemporaryDirectory() as tmp:
        async with store_factory(Path(tmp)) as store:
            w = Writer(state={"v": values[0]})
            first = await w.save(store)
            for value in values[1:]:  # later ones as deltas
                w.apply({"v": value, "log": value})
                await w.save(store)
            last = w.parent
            assert last is not None
            loaded = await store.load(first.checkpoint_id)
            # PostgreSQL rows are text (not JSONB): the sign of zero and key order hold there too.
            assert same(loaded.state["v"], values[0])
            final = await store.load(last)
            assert same(final.state, w.state), (final.state, w.state)


@pytest.mark.parametrize("store_factory", STORE_FACTORIES)
@pytest.mark.parametrize(
    "bad",
    [10**LIMIT, "\ud800", "\ud800\udfff", (1,), {"x": [1, (2,)]}],
    ids=["big-int", "lone", "pair", "tuple", "nested-tuple"],
)
async def test_a_store_refuses_at_save_what_it_would_not_give_back(
    store_factory: Any, bad: Any, tmp_path: Path
) -> None:
    """A hand-built checkpoint holding such a value is refused at save naming the key."""
    async with store_factory(tmp_path) as store:
        with pytest.raises(CheckpointError, match=r"\(key 'bad'\)$"):
            await Writer(state={"good": 1, "bad": bad}).save(store)
        assert await store.runs() == []


# -- every entry point of a run refuses, naming who wrote it --------------------------------
def add_graph(value: Any) -> Graph:
    """``start`` writes ``value`` to ``acc`` (add reducer); ``more`` adds it again."""
    return (
        GraphBuilder("adds")
        .task("start", lambda s: {"acc": value})
        .task("more", lambda s: {"acc": value})
        .edge("start", "more")
        .reducer("acc", reducers.add)
        .start("start")
        .end("more")
        .build()
    )


async def test_tuples_are_refused_with_a_store_and_work_without_one() -> None:
    """An add reducer over tuples: fine without a store; with one, refused at the first write,
    so a run never behaves differently because it was resumed (issue 13 #5)."""
    result = await Executor().run(add_graph((1, 2)), {})
    assert result.state == {"acc": (1, 2, 1, 2)}
    with pytest.raises(
        CheckpointError,
        match=r"^node 'start' wrote a value the store cannot give back: 'acc' got tuple "
        r"\(value \(1, 2\)\): a tuple comes back from JSON as a list \(key 'acc'\)$",
    ):
        await Executor(store=MemoryStore()).run(add_graph((1, 2)), {"x": 0})


async def terminal(executor: Executor, graph: Graph, state: Mapping[str, Any]) -> ev.GraphError:
    async with executor.stream(graph, state) as run:
        events = [event async for event in run]
    assert isinstance(events[-1], ev.GraphError)
    return events[-1]


async def test_an_add_that_overflows_to_inf_is_refused_before_it_is_committed() -> None:
    """A merged value is checked too: 1e308 + 1e308 is inf, refused, the state as before."""
    end = await terminal(Executor(store=MemoryStore()), add_graph(1e308), {})
    assert end.state == {"acc": 1e308}
    assert isinstance(end.error, CheckpointError) and end.error.key == "acc"
    assert "node 'more' wrote" in str(end.error) and "(value inf)" in str(end.error)


def fan_graph(value: Any) -> Graph:
    return (
        GraphBuilder("fan")
        .parallel("fan", {"good": lambda s: {"a": 1}, "bad": lambda s: {"b": value}})
        .task("end", lambda s: None)
        .edge("fan", "end")
        .start("fan")
        .end("end")
        .build()
    )


def review_graph() -> Graph:
    return (
        GraphBuilder("review")
        .barrier("review")
        .task("end", lambda s: None)
        .edge("review", "end")
        .start("review")
        .end("end")
        .build()
    )


def sub_graph(value: Any) -> Graph:
    inner = GraphBuilder("inner").task("i", lambda s: None).start("i").end("i").build()
    return (
        GraphBuilder("outer")
        .subgraph("sub", inner, input=lambda s: {"k": value})
        .start("sub")
        .end("sub")
        .build()
    )


async def check_every_entry_point(bad: Any) -> None:
    """Each way a value enters a run with a store refuses ``bad``, naming the key."""
    store = MemoryStore()
    executor = Executor(store=store)
    key = r"\(key 'k'\)$"
    with pytest.raises(CheckpointError, match=r"^the initial state holds .*" + key):
        await executor.run(add_graph(0), {"k": bad})
    end = await terminal(executor, _writer(bad), {"s": 1})
    assert isinstance(end.error, CheckpointError) and end.error.key == "k"
    assert str(end.error).startswith("node 'w' wrote") and end.state == {"s": 1}
    end = await terminal(executor, fan_graph(bad), {"s": 1})
    assert isinstance(end.error, CheckpointError) and end.error.key == "b"
    assert str(end.error).startswith("branch 'bad' of node 'fan' wrote")
    assert end.state == {"s": 1}
    end = await terminal(executor, sub_graph(bad), {"s": 1})
    assert str(end.error).startswith("the input of subgraph 'sub' holds")
    async with executor.stream(review_graph(), {"s": 1}) as run:
        async for event in run:
            if isinstance(event, ev.BarrierWaiting):
                with pytest.raises(CheckpointError, match=r"^Modify for barrier 'review' .*" + key):
                    run.decide(event.barrier_id, Modify("k", bad))
                with pytest.raises(CheckpointError, match=key):
                    run.decide_all("review", Modify("k", bad))
                trace = run.trace_id
                run.cancel()
    latest = await store.latest(trace)
    assert latest is not None and latest.state == {"s": 1}
    with pytest.raises(CheckpointError, match=r"^the patch of checkpoint .*" + key):
        async with executor.fork(review_graph(), latest.checkpoint_id, {"k": bad}):
            pass  # pragma: no cover


def _writer(value: Any) -> Graph:
    return GraphBuilder("w").task("w", lambda s: {"k": value}).start("w").end("w").build()


@settings(max_examples=40, deadline=None)
@given(bad=refused_values)
async def test_a_refused_value_is_refused_at_every_entry_point(bad: Any) -> None:
    """Initial state, node updates, branch updates, subgraph input, Modify and fork patches
    all refuse what the checker refuses, naming the key; the state stays as it was."""
    await check_every_entry_point(bad)


async def test_modify_in_run_decisions_is_refused_naming_barrier_and_key() -> None:
    """executor.run(decisions=...) with a Modify of a big int raises CheckpointError."""
    executor = Executor(store=MemoryStore())
    with pytest.raises(CheckpointError, match=r"^Modify for barrier 'review' writes .*'k'\)$"):
        await executor.run(review_graph(), {}, decisions={"review": Modify("k", 10**LIMIT)})
    result = await executor.run(review_graph(), {}, decisions={"review": Approve()})
    assert result.state["review.approved"] is True


async def test_without_a_store_values_are_not_checked() -> None:
    """No store: nothing is refused (no cost); the values stay as the nodes wrote them."""
    value = {"t": (1, 2), "s": {3}, "n": math.nan, "big": 10**LIMIT}
    result = await Executor().run(_writer(value), {"start": ("x",)})
    assert result.state["k"] is value and result.state["start"] == ("x",)


async def test_a_big_int_is_refused_at_submit_and_store_decide(tmp_path: Path) -> None:
    """A queue store's submit and decide refuse an int past the digit limit as
    CheckpointError naming the key (it was a bare ValueError)."""
    from _pg import SQLiteBackend

    backend = SQLiteBackend(tmp_path)
    try:
        async with backend.store() as queue:
            with pytest.raises(CheckpointError, match=r"'big' got int .* \(key 'big'\)$"):
                await queue.submit("g", {"big": 10**LIMIT})
            job = await queue.submit("g", {})
            with pytest.raises(CheckpointError, match=r"'k' got int .* \(key 'k'\)$"):
                await queue.decide(job, BarrierId("r", 1), Modify("k", 10**LIMIT))
    finally:
        backend.close()


async def test_every_step_run_checkpoints_stay_loadable(tmp_path: Path) -> None:
    """A run that commits only exact values saves checkpoints that load back the same."""
    async with SQLiteStore(tmp_path / "db") as store:
        store_: Store = store
        value = {"pi": -0.0, "emoji": "\U0001f600", "big": 10**LIMIT - 1}
        result = await Executor(store=store_).run(_writer(value), {})
        [row] = await store_.runs()
        loaded = await store_.load(row.checkpoint_id)
        assert same(loaded.state, result.state)
