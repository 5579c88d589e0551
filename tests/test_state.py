"""State deltas (reduce_updates), parallel merges (merge_branches) and the state a node sees."""

from __future__ import annotations

import types
from collections.abc import Mapping
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from trio_graph import Executor, GraphBuilder, NodeExecutionFailed, StateError, reducers
from trio_graph import events as ev
from trio_graph._model.state import StateDelta, merge_branches, reduce_updates


def test_without_reducer_an_update_overwrites_and_last_wins() -> None:
    """No reducer: the update overwrites; a key repeated in one update sequence: last wins."""
    state = {"a": 1, "b": 2}
    assert reduce_updates(state, {}, "n", [("a", 5), ("c", 1), ("a", 7)]) == {"a": 7, "c": 1}
    assert state == {"a": 1, "b": 2}


def test_repeated_key_folds_through_its_reducer_in_order() -> None:
    """A key updated several times folds each value in order through its reducer."""
    merged = reduce_updates({"l": [0]}, {"l": reducers.append}, "n", [("l", 1), ("l", 2)])
    assert merged == {"l": [0, 1, 2]}


def test_failing_delta_names_node_and_key_and_leaves_state() -> None:
    """A delta that cannot apply raises StateError(node, key); the input state is untouched."""
    state = {"n": 1, "l": [1]}
    with pytest.raises(StateError) as info:
        reduce_updates(state, {"n": reducers.add}, "writer", [("l", [2]), ("n", 2), ("n", "x")])
    assert (info.value.node, info.value.key) == ("writer", "n")
    assert isinstance(info.value.__cause__, TypeError)
    assert state == {"n": 1, "l": [1]}


@settings(max_examples=100)
@given(
    state=st.dictionaries(st.sampled_from("abcd"), st.integers(), max_size=4),
    updates=st.lists(st.tuples(st.sampled_from("abcd"), st.integers()), max_size=8),
)
def test_reduce_updates_touches_only_updated_keys(
    state: dict[str, int], updates: list[tuple[str, int]]
) -> None:
    """reduce_updates returns exactly the updated keys, never mutates the state, and with
    add on 'a' equals a plain sequential fold."""
    before = dict(state)
    merged = reduce_updates(state, {"a": reducers.add}, "n", updates)
    assert state == before
    assert set(merged) == {k for k, _ in updates}
    expected = dict(state)
    for k, v in updates:
        expected[k] = expected[k] + v if k == "a" and k in expected else v
    assert {k: expected[k] for k in merged} == merged


def test_merge_branches_conflict_without_reducer() -> None:
    """Two branches writing a key that has no reducer: StateError('parallel merge conflict')
    naming the key and both branches."""
    with pytest.raises(StateError) as info:
        merge_branches("par", {}, [("b1", {"x": 1, "y": 1}), ("b2", {"z": 1}), ("b3", {"x": 2})])
    err = info.value
    assert (err.message, err.node, err.key, err.branches) == (
        "parallel merge conflict",
        "par",
        "x",
        ["b1", "b3"],
    )
    assert str(err) == "parallel merge conflict (node 'par', key 'x', branches ['b1', 'b3'])"


def test_merge_branches_names_the_first_written_conflicting_key_with_all_its_writers() -> None:
    """Several conflicting keys: the error names the first key in first-write order (not
    the first repeat seen) and every branch that wrote it; a reduced key never conflicts."""
    results = [
        ("b1", {"x": 1, "y": 1, "r": [1]}),
        ("b2", {"y": 2, "r": [2]}),
        ("b3", {"x": 3, "y": 3}),
    ]
    with pytest.raises(StateError) as info:
        merge_branches("par", {"r": reducers.extend}, results)
    assert (info.value.key, info.value.branches) == ("x", ["b1", "b3"])


def test_merge_branches_single_writer_needs_no_reducer() -> None:
    """Each key written by one branch: no reducer needed; deltas in declaration order."""
    deltas = merge_branches("par", {}, [("b1", {"x": 1}), ("b2", {"y": 2, "z": 3})])
    assert deltas == [StateDelta("x", 1), StateDelta("y", 2), StateDelta("z", 3)]


def test_merge_branches_with_reducer_keeps_every_write() -> None:
    """With a reducer two writers are fine; both deltas come out, in declaration order."""
    deltas = merge_branches("par", {"x": reducers.add}, [("b1", {"x": 1}), ("b2", {"x": 2})])
    assert deltas == [StateDelta("x", 1), StateDelta("x", 2)]


# -- the state as nodes see it ------------------------------------------------------------------
async def test_nodes_get_a_read_only_live_view() -> None:
    """A node gets a read-only MappingProxyType of the live state, reflecting earlier steps."""
    seen: list[Any] = []

    def first(state: Mapping[str, Any]) -> dict[str, int]:
        seen.append(state)
        return {"x": 1}

    def second(state: Mapping[str, Any]) -> None:
        seen.append(state)
        assert state["x"] == 1

    g = GraphBuilder("v").task("a", first).task("b", second).edge("a", "b")
    await Executor().run(g.start("a").end("b").build(), {"y": 0})
    assert all(isinstance(s, types.MappingProxyType) for s in seen)
    assert dict(seen[0]) == {"x": 1, "y": 0}  # the same live view, now updated


async def test_node_mutating_its_view_fails() -> None:
    """A node that tries to write into its view fails with NodeExecutionFailed(TypeError) and
    the state is unchanged."""

    def sneaky(state: Any) -> None:
        state["x"] = 99

    g = GraphBuilder("v").task("a", sneaky).start("a").end("a").build()
    async with Executor().stream(g, {"x": 1}) as run:
        events = [e async for e in run]
    err = events[-1].error
    assert isinstance(err, NodeExecutionFailed) and err.error_type == "TypeError"
    assert events[-1].state == {"x": 1}


async def test_callers_initial_state_is_not_mutated() -> None:
    """The run works on its own copy of the initial state."""
    initial = {"n": 1}
    g = GraphBuilder("c").task("a", lambda s: {"n": 2, "m": 3}).start("a").end("a").build()
    result = await Executor().run(g, initial)
    assert initial == {"n": 1}
    assert result.state == {"n": 2, "m": 3}


@pytest.mark.parametrize(
    ("state", "message"),
    [
        ([("a", 1)], r"^initial state must be a mapping, got list$"),
        ({1: "a"}, r"^state keys must be str, got int \(key '1'\)$"),
    ],
)
async def test_bad_initial_state(state: Any, message: str) -> None:
    """An initial state that is not a str-keyed mapping is a StateError before any event."""
    g = GraphBuilder("c").task("a", lambda s: None).start("a").end("a").build()
    with pytest.raises(StateError, match=message):
        await Executor().run(g, state)


async def test_update_with_non_str_key_is_state_error() -> None:
    """An update whose key is not a str is a StateError naming the node."""
    g = GraphBuilder("c").task("a", lambda s: {3: "x"}).start("a").end("a").build()
    async with Executor().stream(g, {}) as run:
        events = [e async for e in run]
    err = events[-1].error
    assert isinstance(err, StateError) and err.node == "a"
    assert str(err) == "state keys must be str, got int 3 (node 'a')"
    assert [(e.node, e.success) for e in events if isinstance(e, ev.NodeEnd)] == [("a", False)]
