"""Hypothesis tests of the checkpoint stores against a tiny in-memory model.

:class:`StoreMachine` drives one store (each of ``STORE_FACTORIES``) through random
save / load / latest / list / delete / runs calls, refused saves and, for stores that
persist, closing and reopening the file; every answer must match a plain dict of
what was saved. The property tests check that base snapshot + deltas replays to the
live state, in the model (``checkpoint.restore``) and through every store.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pytest
import trio
from _campaign import explore, sizes
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, precondition, rule, run_state_machine_as_test
from test_store_conformance import REDUCERS, STORE_FACTORIES, Writer, json_copy, same

from trio_graph._model.checkpoint import Checkpoint, RunStatus, StoredDelta
from trio_graph.errors import CheckpointError
from trio_graph.stores import MemoryStore, RunInfo, Store
from trio_graph.stores.rows import restore

# -- strategies ---------------------------------------------------------------------------
JSON: st.SearchStrategy[Any] = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**40), 2**40)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=4),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner, max_size=3)
    ),
    max_leaves=6,
)
NUMBER = st.integers(-1000, 1000) | st.floats(-1e6, 1e6, allow_nan=False)

# One strategy per key, matching the reducer REDUCERS gives it (plain keys overwrite).
UPDATE_VALUES: dict[str, st.SearchStrategy[Any]] = {
    "log": JSON,  # append
    "items": st.lists(JSON, max_size=3),  # extend
    "n": NUMBER,  # add
    "meta": st.dictionaries(st.text(max_size=3), JSON, max_size=3),  # merge
    "tags": st.lists(st.integers(0, 9), max_size=3),  # union (lists)
    "hi": NUMBER,  # max
    "lo": NUMBER,  # min
    "a": JSON,
    "b": JSON,
}
UPDATES = st.lists(
    st.sampled_from(sorted(UPDATE_VALUES)).flatmap(
        lambda k: st.tuples(st.just(k), UPDATE_VALUES[k])
    ),
    min_size=1,
    max_size=4,
).map(dict)
TRACES = st.sampled_from(["t0", "t1", "t2"])
STATUSES = st.sampled_from(list(RunStatus))


def _factories() -> list[Any]:
    return [pytest.param(p.values[0], id=p.id, marks=p.marks) for p in STORE_FACTORIES]


# -- the model: restore(base, deltas) equals the live state --------------------------------
@given(steps=st.lists(st.tuples(UPDATES, st.booleans()), max_size=40), threshold=st.integers(0, 6))
def test_restore_of_base_and_deltas_equals_live_state(
    steps: list[tuple[dict[str, Any], bool]], threshold: int
) -> None:
    """At every checkpoint, the last full snapshot plus the deltas since equals the live state."""
    w = Writer(state={})
    base: dict[str, Any] = {}
    chain: list[Any] = []
    for updates, save in steps:
        w.apply(updates)
        if not save:
            continue
        deltas = w.log.take(None).deltas
        if len(chain) >= threshold:
            base, chain = json_copy(w.state), []
        else:
            chain.append(json_copy([[d.key, d.value, d.reducer] for d in deltas]))
        replay = [[StoredDelta(*d) for d in ds] for ds in chain]
        assert restore(base, replay) == json_copy(w.state)


@pytest.mark.parametrize("examples", sizes(25, quick=8))
@pytest.mark.parametrize("factory", _factories())
def test_stores_restore_the_live_state(
    factory: Callable[[Path], Store], tmp_path_factory: pytest.TempPathFactory, examples: int
) -> None:
    """Every checkpoint a store gives back holds the live state as it was when saved."""

    def restores(steps: list[tuple[dict[str, Any], bool]]) -> None:
        tmp = tmp_path_factory.mktemp("restore")

        async def main() -> None:
            w = Writer(state={})
            saved: list[tuple[Checkpoint, Any]] = []
            async with factory(tmp) as store:
                for updates, save in steps:
                    w.apply(updates)
                    if save:
                        saved.append((await w.save(store), json_copy(w.state)))
                for checkpoint, state in saved:
                    assert (await store.load(checkpoint.checkpoint_id)).state == state
                assert [c.state for c in await store.list(w.trace_id)] == [s for _, s in saved]

        trio.run(main)

    explore(
        st.lists(st.tuples(UPDATES, st.booleans()), min_size=1, max_size=30), examples, restores
    )


# -- the stateful machine ---------------------------------------------------------------------
class StoreMachine(RuleBasedStateMachine):
    """One store against a dict of what was saved (per trace, in order) and the runs rows."""

    def __init__(self, factory: Callable[[Path], Store], tmp: Path) -> None:
        super().__init__()
        self.dir = Path(tempfile.mkdtemp(dir=tmp))
        self.factory = factory
        self.store = factory(self.dir)
        self.writers: dict[str, Writer] = {}
        self.saved: dict[str, list[tuple[Checkpoint, Any]]] = {}
        self.rows: dict[str, RunInfo] = {}
        self.clock = 1000.0

    def run(self, fn: Callable[..., Any], *args: Any) -> Any:
        return trio.run(fn, *args)

    def writer(self, trace: str) -> Writer:
        if trace not in self.writers:
            # A new run (or a run that reuses a deleted trace id): its first save is full.
            self.writers[trace] = Writer(trace_id=trace, state={})
        return self.writers[trace]

    @rule(trace=TRACES, updates=UPDATES, status=STATUSES, waiting=st.booleans())
    def save(self, trace: str, updates: dict[str, Any], status: RunStatus, waiting: bool) -> None:
        w = self.writer(trace)
        w.apply(updates)
        self.clock += 1
        checkpoint = self.run(
            lambda: w.save(
                self.store, status=status, created_at=self.clock, next_node=None if waiting else "n"
            )
        )
        self.saved.setdefault(trace, []).append((checkpoint, json_copy(w.state)))
        self.rows[trace] = RunInfo(trace, "g", status, self.clock, checkpoint.checkpoint_id, None)

    @rule(trace=TRACES, bad=st.sampled_from([{1}, object(), float("nan"), {2: "int key"}]))
    def refused_save(self, trace: str, bad: Any) -> None:
        w = self.writer(trace)
        w.apply({"a": 1, "bad": bad})
        with pytest.raises(CheckpointError, match=r"key 'bad'\)$"):
            self.run(lambda: w.save(self.store))
        del self.writers[trace]  # a failed save ends the run (Loop._fail)
        self.check_latest(trace)

    @precondition(lambda self: any(self.saved.values()))
    @rule(data=st.data())
    def load(self, data: st.DataObject) -> None:
        trace = data.draw(st.sampled_from(sorted(t for t, s in self.saved.items() if s)))
        checkpoint, state = data.draw(st.sampled_from(self.saved[trace]))
        same(self.run(self.store.load, checkpoint.checkpoint_id), checkpoint, state)

    @rule(trace=TRACES)
    def check_latest(self, trace: str) -> None:
        latest = self.run(self.store.latest, trace)
        if not self.saved.get(trace):
            assert latest is None
        else:
            same(latest, *self.saved[trace][-1])

    @rule(trace=TRACES)
    def history(self, trace: str) -> None:
        history = self.run(self.store.list, trace)
        expected = self.saved.get(trace, [])
        assert len(history) == len(expected)
        for loaded, (checkpoint, state) in zip(history, expected, strict=True):
            same(loaded, checkpoint, state)

    @rule(trace=TRACES)
    def delete(self, trace: str) -> None:
        self.run(self.store.delete, trace)
        self.saved.pop(trace, None)
        self.rows.pop(trace, None)
        self.writers.pop(trace, None)
        with pytest.raises(CheckpointError, match=r"^no such checkpoint"):
            self.run(self.store.load, "never-saved")

    @rule()
    def runs(self) -> None:
        rows = sorted(self.run(self.store.runs), key=lambda r: r.trace_id)
        assert rows == [self.rows[t] for t in sorted(self.rows)]

    @precondition(lambda self: not isinstance(self.store, MemoryStore))
    @rule()
    def reopen(self) -> None:
        """Close the file and open it again: what was committed is all still there."""
        self.run(self.store.aclose)
        self.store = self.factory(self.dir)

    def teardown(self) -> None:
        self.run(self.store.aclose)


@pytest.mark.parametrize("examples", sizes(25, quick=6))
@pytest.mark.parametrize("factory", _factories())
def test_store_against_model(
    factory: Callable[[Path], Store],
    tmp_path: Path,
    request: pytest.FixtureRequest,
    examples: int,
) -> None:
    """Random save/load/latest/list/delete/runs/reopen sequences agree with the model
    (six sequences in the fast loop, 25 in the campaign)."""
    run_state_machine_as_test(
        lambda: StoreMachine(factory, tmp_path),
        settings=settings(max_examples=examples, stateful_step_count=25, deadline=None),
    )


def test_machine_sees_every_reducer() -> None:
    """The update strategy covers every key the writer has a reducer for."""
    assert set(REDUCERS) <= set(UPDATE_VALUES)
    assert isinstance(REDUCERS, Mapping)
