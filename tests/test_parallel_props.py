"""Properties of parallel merges and strategies under random branch sets and random
completion orders. Each branch sleeps a Hypothesis-drawn delay on a MockClock, so
the delays fix the completion order (ties included); each example is its own
``trio.run``. The expected results come from a tiny sequential model."""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from typing import Any

import attrs
import trio
import trio.testing
from hypothesis import given, settings
from hypothesis import strategies as st

from trio_graph import Executor, GraphBuilder, NodeExecutionFailed, StateError, reducers
from trio_graph import events as ev
from trio_graph.reducers import Reducer

KEYS = ("k0", "k1", "k2", "k3")
DELAYS = st.sampled_from([0, 0.5, 1, 2, 3, 5])
"""Few distinct delays, so that ties (branches finishing at the same instant) are common."""
INITIAL = {
    "append": list,
    "add": lambda: 0,
    "max": lambda: 0,
    "min": lambda: 100,
    "union": set,
    None: lambda: -1,
}
"""The pre-fork value of a key, by its reducer (None: no reducer)."""
ANY_REDUCER = st.sampled_from([None, "append", "add", "max", "min"])
COMMUTATIVE = st.sampled_from(["add", "max", "min", "union"])


@attrs.frozen
class Spec:
    """One branch: its name, how long it sleeps, what it returns (or that it fails)."""

    name: str
    delay: float
    updates: dict[str, Any]
    fails: bool = False


@attrs.frozen
class Outcome:
    state: dict[str, Any] | None
    error: Exception | None
    events: list[ev.Event]
    elapsed: float


def value_for(reducer: str | None) -> st.SearchStrategy[Any]:
    if reducer == "union":
        return st.frozensets(st.integers(0, 9), max_size=3)
    return st.integers(0, 20)


@st.composite
def branch_sets(
    draw: st.DrawFn, reducer: st.SearchStrategy[str | None] = ANY_REDUCER, min_size: int = 1
) -> tuple[list[Spec], dict[str, str | None]]:
    """Branches in declaration order (random names) and a reducer choice per key."""
    by_key = {k: draw(reducer) for k in KEYS}
    names = draw(
        st.lists(
            st.text("abcxyz", min_size=1, max_size=3), unique=True, min_size=min_size, max_size=6
        )
    )
    specs = []
    for name in names:
        keys = draw(st.lists(st.sampled_from(KEYS), unique=True, max_size=3))
        updates = {k: draw(value_for(by_key[k])) for k in keys}
        specs.append(Spec(name, draw(DELAYS), updates))
    return specs, by_key


def with_delays(specs: Sequence[Spec], delays: Sequence[float]) -> list[Spec]:
    return [attrs.evolve(s, delay=d) for s, d in zip(specs, delays, strict=True)]


def initial_state(by_key: Mapping[str, str | None]) -> dict[str, Any]:
    return {k: INITIAL[r]() for k, r in by_key.items()}


def run_fork(
    specs: Sequence[Spec], by_key: Mapping[str, str | None], strategy: Any = "fail_fast"
) -> Outcome:
    """Run ``par`` -> ``end`` on a fresh MockClock; collect the events."""

    def branch(spec: Spec) -> Any:
        async def run(state: Mapping[str, Any]) -> Any:
            await trio.sleep(spec.delay)
            if spec.fails:
                raise ValueError(spec.name)
            return spec.updates

        return run

    builder = (
        GraphBuilder("props")
        .parallel("par", {s.name: branch(s) for s in specs}, strategy=strategy)
        .task("end", lambda s: None)
        .edge("par", "end")
        .start("par")
        .end("end")
    )
    for key, r in by_key.items():
        if r is not None:
            builder.reducer(key, reducers.BUILTINS[r])
    graph = builder.build()

    async def main() -> Outcome:
        events: list[ev.Event] = []
        t0 = trio.current_time()
        async with Executor().stream(graph, initial_state(by_key)) as run:
            async for event in run:
                events.append(event)
        state = run.result.state if run.result is not None else None
        return Outcome(state, run.error, events, trio.current_time() - t0)

    return trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))


def sequential(specs: Sequence[Spec], by_key: Mapping[str, str | None]) -> dict[str, Any]:
    """The model: fold every branch's updates into the pre-fork state, in ``specs`` order."""
    state = initial_state(by_key)
    for spec in specs:
        for key, value in spec.updates.items():
            r: Reducer | None = reducers.BUILTINS.get(by_key[key] or "")
            state[key] = r.fn(state[key], value) if r is not None else value
    return state


def conflict(specs: Sequence[Spec], by_key: Mapping[str, str | None]) -> tuple[str, list[str]]:
    """The model's merge conflict: the first key (in first-write order) with two or more
    writers and no reducer, and its writers; ``("", [])`` when there is none."""
    writers: dict[str, list[str]] = {}
    for spec in specs:
        for key in spec.updates:
            writers.setdefault(key, []).append(spec.name)
    for key, names in writers.items():
        if len(names) > 1 and by_key[key] is None:
            return key, names
    return "", []


def deltas(events: Sequence[ev.Event]) -> list[tuple[str, Any]]:
    return [(e.key, e.value) for e in events if isinstance(e, ev.StateChanged)]


def completed(events: Sequence[ev.Event]) -> dict[str, bool]:
    out: dict[str, bool] = {}
    for e in events:
        if isinstance(e, ev.BranchCompleted):
            assert e.branch not in out, f"two BranchCompleted for {e.branch}"
            out[e.branch] = e.success
    return out


@settings(max_examples=80)
@given(branch_sets(), st.data())
def test_merge_is_the_same_for_every_completion_order(
    drawn: tuple[list[Spec], dict[str, str | None]], data: st.DataObject
) -> None:
    """Any two completion orders give the same merged state, equal to the declaration-order
    fold; every delta is announced in declaration order (none dropped); a key written by
    two branches without a reducer is always a merge conflict naming its writers."""
    specs, by_key = drawn
    other = data.draw(st.lists(DELAYS, min_size=len(specs), max_size=len(specs)))
    key, writers = conflict(specs, by_key)
    for run in (run_fork(specs, by_key), run_fork(with_delays(specs, other), by_key)):
        assert completed(run.events) == {s.name: True for s in specs}
        if writers:
            assert isinstance(run.error, StateError)
            assert (run.error.message, run.error.key, run.error.branches) == (
                "parallel merge conflict",
                key,
                writers,
            )
            assert deltas(run.events) == []
        else:
            assert run.error is None
            assert run.state == sequential(specs, by_key)
            assert deltas(run.events) == [kv for s in specs for kv in s.updates.items()]


@settings(max_examples=60)
@given(branch_sets(COMMUTATIVE), st.randoms(use_true_random=False))
def test_commutative_reducers_equal_the_sequential_fold_in_any_order(
    drawn: tuple[list[Spec], dict[str, str | None]], rnd: Any
) -> None:
    """With associative and commutative reducers (add, union, max, min) the merged state
    equals the sequential fold of the branches in any order."""
    specs, by_key = drawn
    run = run_fork(specs, by_key)
    assert run.error is None
    shuffled = list(specs)
    rnd.shuffle(shuffled)
    assert run.state == sequential(shuffled, by_key)
    if len(specs) <= 4:
        for order in itertools.permutations(specs):
            assert run.state == sequential(order, by_key)


@settings(max_examples=60)
@given(branch_sets(min_size=2), st.data())
def test_collect_all_reports_exactly_the_failed_branches(
    drawn: tuple[list[Spec], dict[str, str | None]], data: st.DataObject
) -> None:
    """collect_all: every branch runs to its end; the failures listed are exactly the
    failing branches, in declaration order; nothing is merged."""
    specs, by_key = drawn
    failing = data.draw(st.sets(st.sampled_from([s.name for s in specs]), min_size=1))
    specs = [attrs.evolve(s, fails=s.name in failing) for s in specs]
    run = run_fork(specs, by_key, strategy="collect_all")
    assert run.elapsed == max(s.delay for s in specs)
    assert completed(run.events) == {s.name: not s.fails for s in specs}
    assert isinstance(run.error, NodeExecutionFailed)
    assert [f.branch for f in run.error.failures] == [s.name for s in specs if s.fails]
    assert isinstance(run.error.__cause__, ExceptionGroup)
    notes = [e.__notes__ for e in run.error.__cause__.exceptions]
    assert notes == [[f"in branch {s.name!r}"] for s in specs if s.fails]
    assert deltas(run.events) == []


@settings(max_examples=60)
@given(branch_sets(min_size=2), st.data())
def test_fail_fast_stops_at_the_first_failure(
    drawn: tuple[list[Spec], dict[str, str | None]], data: st.DataObject
) -> None:
    """fail_fast: the run ends at the first failure's instant; the error names a branch
    that failed then; branches due earlier succeeded, those due later were cancelled;
    every branch has exactly one BranchCompleted."""
    specs, by_key = drawn
    failing = data.draw(st.sets(st.sampled_from([s.name for s in specs]), min_size=1))
    specs = [attrs.evolve(s, fails=s.name in failing) for s in specs]
    first = min(s.delay for s in specs if s.fails)
    run = run_fork(specs, by_key)
    assert run.elapsed == first
    assert isinstance(run.error, NodeExecutionFailed)
    assert run.error.branch in {s.name for s in specs if s.fails and s.delay == first}
    done = completed(run.events)
    assert set(done) == {s.name for s in specs}
    assert all(done[s.name] for s in specs if s.delay < first)
    assert not any(done[s.name] for s in specs if s.delay > first or s.fails)
    assert deltas(run.events) == []
