"""Reducers: the built-ins, failures as StateError through a real run, and reducer laws."""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from trio_graph import Executor, GraphBuilder, StateError, reducers
from trio_graph import events as ev
from trio_graph._model.state import merge_branches, reduce_updates
from trio_graph.reducers import Reducer, as_reducer


# -- the built-ins, one by one ---------------------------------------------------------------
def test_append_adds_one_item_without_mutating() -> None:
    """append returns a new list with the item at the end; the old list is untouched."""
    old = [1, 2]
    assert reducers.append(old, [3]) == [1, 2, [3]]
    assert old == [1, 2]


def test_extend_adds_items() -> None:
    """extend appends every item of a list or tuple."""
    old = [1]
    assert reducers.extend(old, (2, 3)) == [1, 2, 3]
    assert reducers.extend(old, [4]) == [1, 4]
    assert old == [1]


@pytest.mark.parametrize(
    ("old", "new", "out"),
    [(1, 2, 3), (1.5, 2, 3.5), ("ab", "c", "abc"), ([1], [2], [1, 2]), (-4, 4, 0)],
)
def test_add(old: Any, new: Any, out: Any) -> None:
    """add sums numbers and concatenates two str or two list values."""
    assert reducers.add(old, new) == out


def test_merge_union_max_min() -> None:
    """merge: keys of the update win; union of sets and of lists (order kept); max; min."""
    assert reducers.merge({"a": 1, "b": 2}, {"b": 3, "c": 4}) == {"a": 1, "b": 3, "c": 4}
    assert reducers.union({1, 2}, {2, 3}) == {1, 2, 3}
    assert reducers.union([1, 2], [3, 2, 4]) == [1, 2, 3, 4]
    assert reducers.max(3, 7) == 7 and reducers.max(7, 3) == 7
    assert reducers.min(3, 7) == 3 and reducers.min(7, 3) == 3


def test_builtin_names_and_registry() -> None:
    """The seven built-ins are registered by name; a plain function is wrapped by name."""
    assert set(reducers.BUILTINS) == {"append", "extend", "add", "merge", "union", "max", "min"}

    def keep_old(old: Any, new: Any) -> Any:
        return old

    r = as_reducer(keep_old)
    assert isinstance(r, Reducer) and r.name == "keep_old" and r(1, 2) == 1
    assert as_reducer(reducers.add) is reducers.add


@pytest.mark.parametrize(
    ("reducer", "update", "first"),
    [
        (reducers.append, 1, [1]),
        (reducers.extend, [1, 2], [1, 2]),
        (reducers.merge, {"a": 1}, {"a": 1}),
        (reducers.add, 5, 5),
        (reducers.union, {1}, {1}),
        (reducers.max, 5, 5),
        (reducers.min, 5, 5),
    ],
)
async def test_first_update_of_absent_key(reducer: Reducer, update: Any, first: Any) -> None:
    """An absent key starts from the reducer's initial value (append/extend/merge) or takes
    the first update as is; a second update then merges."""
    g = (
        GraphBuilder("r")
        .task("w", lambda s: {"k": update})
        .start("w")
        .end("w")
        .reducer("k", reducer)
        .build()
    )
    result = await Executor().run(g, {})
    assert result.state == {"k": first}


# -- failures through a real run -------------------------------------------------------------
def _run_graph(reducer: Reducer | Callable[[Any, Any], Any], update: Any) -> Any:
    return (
        GraphBuilder("r")
        .task("prep", lambda s: {"other": 1})
        .task("writer", lambda s: {"other": 2, "k": update})
        .edge("prep", "writer")
        .reducer("k", reducer)
        .start("prep")
        .end("writer")
        .build()
    )


def custom_boom(old: Any, new: Any) -> Any:
    raise ValueError("no thanks")


@pytest.mark.parametrize(
    ("reducer", "old", "update", "why"),
    [
        (reducers.append, 5, 1, "TypeError: append needs a list to append to, found int"),
        (reducers.extend, [], 5, "TypeError: extend needs a list or tuple of items, got int 5"),
        (reducers.extend, [], "ab", "TypeError: extend needs a list or tuple of items"),
        (reducers.add, 1, "x", "TypeError: add cannot add str 'x' to int"),
        (reducers.add, 1, True, "TypeError: add cannot add bool True to int"),
        (reducers.merge, {}, [1], "TypeError: merge needs two mappings, got dict and list"),
        (reducers.union, 5, [1], "TypeError: union needs sets or lists, got int and list"),
        (reducers.max, 1, "a", "TypeError: '>' not supported"),
        (reducers.min, 1, "a", "TypeError: '<' not supported"),
        (custom_boom, 1, 2, "ValueError: no thanks"),
    ],
)
async def test_reducer_failure_is_state_error_naming_node_and_key(
    reducer: Any, old: Any, update: Any, why: str
) -> None:
    """A reducer that raises (built-in type mismatch or a custom one) ends the run with a
    StateError naming node and key; none of the node's updates are applied (the state is as
    it stood), and the node's NodeEnd says it failed."""
    async with Executor().stream(_run_graph(reducer, update), {"k": old}) as run:
        events = [e async for e in run]
    terminal = events[-1]
    assert isinstance(terminal, ev.GraphError)
    err = terminal.error
    assert isinstance(err, StateError)
    assert (err.node, err.key) == ("writer", "k")
    name = getattr(reducer, "name", "custom_boom")
    assert re.fullmatch(
        rf"reducer '{name}' failed: {re.escape(why)}.* \(node 'writer', key 'k'\)", str(err)
    ), str(err)
    assert terminal.state == {"k": old, "other": 1}
    assert [(e.node, e.success) for e in events if isinstance(e, ev.NodeEnd)] == [
        ("prep", True),
        ("writer", False),
    ]
    assert not any(isinstance(e, ev.StateChanged) and e.node == "writer" for e in events)
    with pytest.raises(StateError):
        await Executor().run(_run_graph(reducer, update), {"k": old})


async def test_state_changed_carries_the_update_not_the_merged_value() -> None:
    """StateChanged.value is the update the node returned; the state holds the merged value."""
    g = _run_graph(reducers.add, 5)
    async with Executor().stream(g, {"k": 10}) as run:
        events = [e async for e in run]
    (change,) = [e for e in events if isinstance(e, ev.StateChanged) and e.key == "k"]
    assert change.value == 5
    assert events[-1].result.state["k"] == 15


# -- laws --------------------------------------------------------------------------------------
ints = st.integers(-(10**6), 10**6)
LAWFUL: dict[str, tuple[Reducer, st.SearchStrategy[Any]]] = {
    "add": (reducers.add, ints),
    "max": (reducers.max, ints),
    "min": (reducers.min, ints),
    "union": (reducers.union, st.frozensets(st.integers(0, 20), max_size=5)),
}


def fold(reducer: Reducer, initial: Any, values: list[Any]) -> Any:
    return functools.reduce(reducer.fn, values, initial)


@st.composite
def lawful_case(draw: st.DrawFn) -> tuple[Reducer, Any, list[Any]]:
    name = draw(st.sampled_from(sorted(LAWFUL)))
    reducer, values = LAWFUL[name]
    return reducer, draw(values), draw(st.lists(values, min_size=1, max_size=8))


@st.composite
def disjoint_dicts(draw: st.DrawFn) -> list[dict[str, int]]:
    keys = draw(st.lists(st.text("abcdefgh", min_size=1, max_size=3), unique=True, max_size=12))
    parts = draw(st.lists(st.integers(0, 3), min_size=len(keys), max_size=len(keys)))
    dicts: list[dict[str, int]] = [{} for _ in range(4)]
    for key, part in zip(keys, parts, strict=True):
        dicts[part][key] = draw(ints)
    return dicts


@settings(max_examples=200)
@given(case=lawful_case(), data=st.data())
def test_associative_commutative_reducers_ignore_delta_order(
    case: tuple[Reducer, Any, list[Any]], data: st.DataObject
) -> None:
    """add (ints), max, min and union (sets): applying the deltas in any order through
    reduce_updates gives the sequential fold; the reducer is associative and commutative."""
    reducer, initial, values = case
    expected = fold(reducer, initial, values)
    order = data.draw(st.permutations(values))
    merged = reduce_updates({"k": initial}, {"k": reducer}, "n", [("k", v) for v in order])
    assert merged == {"k": expected}
    if len(values) >= 3:
        a, b, c = values[:3]
        assert reducer(reducer(a, b), c) == reducer(a, reducer(b, c))
        assert reducer(a, b) == reducer(b, a)


@settings(max_examples=100)
@given(dicts=disjoint_dicts(), data=st.data())
def test_merge_of_disjoint_dicts_ignores_order(
    dicts: list[dict[str, int]], data: st.DataObject
) -> None:
    """merge of dicts with disjoint keys: any order gives the union of all of them."""
    order = data.draw(st.permutations(dicts))
    merged = reduce_updates({}, {"k": reducers.merge}, "n", [("k", d) for d in order])
    assert merged == {"k": {k: v for d in dicts for k, v in d.items()}}


@settings(max_examples=150)
@given(case=lawful_case(), data=st.data())
def test_parallel_merge_ignores_branch_order_for_lawful_reducers(
    case: tuple[Reducer, Any, list[Any]], data: st.DataObject
) -> None:
    """Branches writing one key with an associative and commutative reducer: merging their
    deltas in any branch order gives the same state as the sequential fold."""
    reducer, initial, values = case
    branches = [(f"b{i}", {"k": v}) for i, v in enumerate(values)]
    order = data.draw(st.permutations(branches))
    deltas = merge_branches("par", {"k": reducer}, order)
    merged = reduce_updates(
        {"k": initial}, {"k": reducer}, "par", [(d.key, d.value) for d in deltas]
    )
    assert merged == {"k": fold(reducer, initial, values)}


branch_updates = st.lists(
    st.dictionaries(st.sampled_from(["log", "seen", "x", "y"]), st.integers(0, 9), max_size=4),
    min_size=1,
    max_size=6,
)


@settings(max_examples=150)
@given(updates=branch_updates)
def test_merge_never_drops_a_delta(updates: list[dict[str, int]]) -> None:
    """Every update of every branch comes out of merge_branches, in declaration order then
    update order; with append on every key the folded state holds every value."""
    all_keys = ("log", "seen", "x", "y")
    reds = dict.fromkeys(all_keys, reducers.append)
    results = [(f"b{i}", u) for i, u in enumerate(updates)]
    deltas = merge_branches("par", reds, results)
    assert [(d.key, d.value) for d in deltas] == [kv for _, u in results for kv in u.items()]
    merged = reduce_updates({}, reds, "par", [(d.key, d.value) for d in deltas])
    for key in all_keys:
        assert merged.get(key, []) == [u[key] for u in updates if key in u]
