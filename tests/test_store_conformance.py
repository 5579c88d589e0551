"""One conformance suite for every checkpoint store (DESIGN §8, §10).

Each store in ``STORE_FACTORIES`` must pass every test here. To add a store, append
``pytest.param(factory, id="name", marks=...)``: a factory takes a fresh temporary
directory (``pathlib.Path``) and returns an unopened store; the ``store`` fixture
opens it with ``async with`` and closes it afterwards. A store that needs a server
can skip itself with ``marks=pytest.mark.skipif(...)``.

:class:`Writer` plays the part of ``Loop.save``: it keeps a live state, a
``ChangeLog`` and its last checkpoint's id, and passes the same ``changes`` hint a run
passes, so the rows a store writes look exactly like a run's (base snapshots and deltas).
"""

from __future__ import annotations

import json
import math
import sqlite3
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import attrs
import pytest
import trio
import trio.lowlevel
import trio.testing

from trio_graph import reducers, serde
from trio_graph._model.checkpoint import (
    BranchResult,
    ChangeLog,
    Checkpoint,
    DecisionEntry,
    Frame,
    RunStatus,
    new_id,
)
from trio_graph._model.decisions import Approve, BarrierId, Modify, Reject, Reroute
from trio_graph._model.state import reduce_updates
from trio_graph.errors import CheckpointError
from trio_graph.reducers import Reducer
from trio_graph.stores import MemoryStore, RunInfo, Store
from trio_graph.stores import rows as codec
from trio_graph.stores.sqlite import SCHEMA_VERSION, SQLiteStore

StoreFactory = Callable[[Path], Store]


def memory_store(tmp: Path) -> Store:
    return MemoryStore()


def sqlite_store(tmp: Path) -> Store:
    return SQLiteStore(tmp / "checkpoints.db")


def sqlite_threaded_store(tmp: Path) -> Store:
    """Every write in a worker thread (no inline commits)."""
    return SQLiteStore(tmp / "checkpoints.db", inline_max=0)


def postgres_store(tmp: Path) -> Store:
    """A PostgresStore in a fresh schema of the TRIO_GRAPH_PG_DSN server (dropped after)."""
    from _pg import throwaway_store

    store: Store = throwaway_store(tmp)
    return store


def _skip_without_postgres() -> Any:
    from _pg import SKIP_WITHOUT_SERVER

    return SKIP_WITHOUT_SERVER


STORE_FACTORIES: list[Any] = [
    pytest.param(memory_store, id="memory"),
    pytest.param(sqlite_store, id="sqlite"),
    pytest.param(sqlite_threaded_store, id="sqlite-threaded"),
    pytest.param(postgres_store, id="postgres", marks=_skip_without_postgres()),
]
"""Every store under test; extend with ``pytest.param(factory, id=..., marks=...)``."""


@pytest.fixture(params=STORE_FACTORIES)
def store_factory(request: pytest.FixtureRequest) -> StoreFactory:
    factory: StoreFactory = request.param
    return factory


@pytest.fixture
async def store(store_factory: StoreFactory, tmp_path: Path) -> Any:
    async with store_factory(tmp_path) as opened:
        yield opened


REDUCERS: dict[str, Reducer] = {
    "log": reducers.append,
    "items": reducers.extend,
    "n": reducers.add,
    "meta": reducers.merge,
    "tags": reducers.union,
    "hi": reducers.max,
    "lo": reducers.min,
}


@attrs.define
class Writer:
    """Makes checkpoints of one trace the way ``Loop.save`` does."""

    trace_id: str = attrs.field(factory=new_id)
    state: dict[str, Any] = attrs.field(factory=dict)
    graph_name: str = "g"
    log: ChangeLog = attrs.field(factory=ChangeLog)
    parent: str | None = None
    step: int = 0
    reducers: Mapping[str, Reducer] = attrs.field(factory=lambda: REDUCERS)

    def apply(self, updates: Mapping[str, Any]) -> None:
        """Commit updates through the reducers and record them for the next checkpoint."""
        items = list(updates.items())
        self.state.update(reduce_updates(self.state, self.reducers, "node", items))
        for key, value in items:
            r = self.reducers.get(key)
            self.log.record(key, value, r.name if r is not None else None)
        self.step += 1

    def checkpoint(self, **fields: Any) -> Checkpoint:
        cid = fields.pop("checkpoint_id", None) or new_id()
        return Checkpoint(
            checkpoint_id=cid,
            trace_id=self.trace_id,
            graph_name=self.graph_name,
            graph_hash="hash",
            next_node=fields.pop("next_node", "next"),
            step=self.step,
            state=self.state,
            **fields,
        )

    async def save(self, store: Store, **fields: Any) -> Checkpoint:
        """Save a checkpoint of the live state with the hint; on failure, like ``Loop.save``."""
        checkpoint = self.checkpoint(**fields)
        changes = self.log.take(self.parent)
        try:
            await store.save(checkpoint, changes=changes)
        except BaseException:
            self.log.put_back(changes)
            raise
        self.parent = checkpoint.checkpoint_id
        return checkpoint


def json_copy(value: Any) -> Any:
    return json.loads(json.dumps(value))


def same(loaded: Checkpoint, saved: Checkpoint, state: Mapping[str, Any]) -> None:
    """``loaded`` is ``saved`` with its full ``state`` as JSON gives it back."""
    assert loaded == attrs.evolve(saved, state=json_copy(dict(state)))


# -- save / load --------------------------------------------------------------------------
async def test_round_trip_keeps_every_field(store: Store) -> None:
    """A loaded checkpoint equals the saved one: every field, the full state."""
    w = Writer(state={"text": "draft", "n": 1, "nested": {"a": [1, 2.5, None, True]}})
    saved = await w.save(
        store,
        next_node="review",
        status=RunStatus.WAITING,
        pending_barrier=BarrierId("review", 2),
        occurrences={"review": 2, "other": 1},
        decisions=[
            DecisionEntry("review", 3, Modify("text", {"x": [1]})),
            DecisionEntry("review", 0, Approve()),
            DecisionEntry("other", 1, Reject("no")),
            DecisionEntry("other", 2, Reroute("draft")),
        ],
        branches=[BranchResult("style", {"score": 0.5}), BranchResult("facts", {})],
        resumed_from="previous-trace",
        resume_count=2,
        error="boom",
        frames=[Frame("sub", "inner", 2, {"k": {"v": [1]}}, [("k", {"v": [1]})])],
    )
    loaded = await store.load(saved.checkpoint_id)
    same(loaded, saved, w.state)
    assert loaded.state is not w.state


async def test_load_of_unknown_id_is_checkpoint_error(store: Store) -> None:
    """load() of an id never saved raises CheckpointError naming it."""
    with pytest.raises(CheckpointError, match=r"^no such checkpoint \(checkpoint 'nope'\)$"):
        await store.load("nope")


async def test_unknown_run_has_no_latest_and_empty_history(store: Store) -> None:
    """latest() of an unknown run is None, list() is []."""
    assert await store.latest("nobody") is None
    assert await store.list("nobody") == []
    assert await store.runs() == []


async def test_history_is_oldest_first_with_full_states(store: Store) -> None:
    """list() gives every checkpoint oldest first, each with the state as it stood then."""
    w = Writer(state={"n": 0, "log": []})
    expected = []
    for i in range(45):  # past the tracker's threshold: full snapshots and deltas
        w.apply({"n": 1, "log": i, "last": i})
        saved = await w.save(store, next_node=f"node{i}")
        expected.append((saved, json_copy(w.state)))
    history = await store.list(w.trace_id)
    assert [c.checkpoint_id for c in history] == [s.checkpoint_id for s, _ in expected]
    for loaded, (saved, state) in zip(history, expected, strict=True):
        same(loaded, saved, state)
        same(await store.load(saved.checkpoint_id), saved, state)
    latest = await store.latest(w.trace_id)
    assert latest is not None
    same(latest, expected[-1][0], expected[-1][1])


async def test_every_builtin_reducer_replays(store: Store) -> None:
    """Deltas merged by each built-in reducer replay to the live state."""
    w = Writer()
    updates = [
        {"log": "a", "items": [1, 2], "n": 1, "meta": {"a": 1}, "tags": ["x"], "hi": 3, "lo": 3},
        {"log": "b", "items": [3], "n": 2.5, "meta": {"b": 2}, "tags": ["y", "x"], "hi": 1},
        {"lo": 1, "meta": {"a": 3}, "n": -1, "plain": {"k": "v"}},
    ]
    saved = []
    for u in updates:
        w.apply(u)
        saved.append((await w.save(store), json_copy(w.state)))
    for checkpoint, state in saved:
        assert (await store.load(checkpoint.checkpoint_id)).state == state
    assert w.state["tags"] == ["x", "y"]


async def test_saved_state_is_a_copy(store: Store) -> None:
    """The store keeps no reference to the live state: later changes do not leak in."""
    w = Writer(state={"items": [1], "meta": {"a": 1}})
    saved = await w.save(store)
    w.state["items"].append(2)
    w.state["meta"]["b"] = 2
    w.state["new"] = True
    loaded = await store.load(saved.checkpoint_id)
    assert loaded.state == {"items": [1], "meta": {"a": 1}}
    loaded.state["items"].append(99)
    assert (await store.load(saved.checkpoint_id)).state == {"items": [1], "meta": {"a": 1}}


async def test_duplicate_checkpoint_id_is_refused(store: Store) -> None:
    """Saving a second checkpoint under an existing id raises CheckpointError."""
    w = Writer(state={"a": 1})
    await w.save(store, checkpoint_id="same")
    w.apply({"a": 2})
    with pytest.raises(CheckpointError, match=r"already exists.*\(checkpoint 'same'\)$"):
        await w.save(store, checkpoint_id="same")
    assert (await store.load("same")).state == {"a": 1}


async def test_concurrent_saves_keep_their_order(store: Store) -> None:
    """Saves from sibling tasks (like finished branches) are stored in the order taken."""
    w = Writer(state={"n": 0}, reducers={"n": reducers.add})
    await w.save(store)
    w.apply({"n": 5})  # carried by whichever sibling takes its checkpoint first
    taken: list[str] = []

    async def branch(i: int) -> None:
        await trio.lowlevel.checkpoint()
        checkpoint = w.checkpoint(branches=[BranchResult(f"b{i}", {"v": i})])
        taken.append(checkpoint.checkpoint_id)
        await store.save(checkpoint)

    async with trio.open_nursery() as nursery:
        for i in range(8):
            nursery.start_soon(branch, i)
    history = await store.list(w.trace_id)
    assert [c.checkpoint_id for c in history[1:]] == taken
    assert [c.state for c in history] == [{"n": 0}] + [{"n": 5}] * 8


# -- refused values: nothing half-written -------------------------------------------------
BAD_VALUES = [
    pytest.param({1, 2}, id="set"),
    pytest.param(object(), id="object"),
    pytest.param(math.nan, id="nan"),
    pytest.param(b"bytes", id="bytes"),
    pytest.param({"inner": {1: "int key"}}, id="int-key"),
    pytest.param([1, [2, {"x": math.inf}]], id="nested-inf"),
]


@pytest.mark.parametrize("bad", BAD_VALUES)
async def test_non_json_value_in_first_snapshot_is_refused(store: Store, bad: Any) -> None:
    """A non-JSON state value is refused at save time, naming the key; nothing is written."""
    w = Writer(state={"good": 1, "bad": bad})
    with pytest.raises(CheckpointError, match=r"JSON.* \(key 'bad'\)$"):
        await w.save(store)
    assert await store.latest(w.trace_id) is None
    assert await store.runs() == []


@pytest.mark.parametrize("bad", BAD_VALUES)
async def test_non_json_delta_is_refused(store: Store, bad: Any) -> None:
    """A non-JSON update is refused naming its key; the run's last good checkpoint stays."""
    w = Writer(state={"good": 1})
    first = await w.save(store)
    w.apply({"fine": 2, "bad": bad})
    with pytest.raises(CheckpointError, match=r"JSON.* \(key 'bad'\)$"):
        await w.save(store)
    assert [c.checkpoint_id for c in await store.list(w.trace_id)] == [first.checkpoint_id]
    [run] = await store.runs()
    assert run.checkpoint_id == first.checkpoint_id


async def test_non_json_decision_or_branch_value_is_refused(store: Store) -> None:
    """Decision values and finished-branch updates must be JSON too, named by key."""
    w = Writer(state={"a": 1})
    modify = r"^a decision's Modify holds a value .* \(key 'k'\)$"
    with pytest.raises(CheckpointError, match=modify):
        await w.save(store, decisions=[DecisionEntry("r", 1, Modify("k", {1, 2}))])
    with pytest.raises(CheckpointError, match=r"^branch 'b1' holds a value .* \(key 'v'\)$"):
        await w.save(store, branches=[BranchResult("b1", {"v": object()})])
    with pytest.raises(CheckpointError, match=r"^subgraph 'sub' holds a value .* \(key 's'\)$"):
        await w.save(store, frames=[Frame("sub", "inner", 1, {"s": {1}})])
    assert await store.latest(w.trace_id) is None


async def test_after_a_refused_save_the_next_one_is_complete(store: Store) -> None:
    """After a failed save (its deltas put back), the next checkpoint restores fully."""
    w = Writer(state={"n": 0, "log": []})
    await w.save(store)
    w.apply({"n": 1, "log": "a"})
    await w.save(store)
    w.apply({"n": 1, "log": "b", "oops": {3}})
    with pytest.raises(CheckpointError):
        await w.save(store)
    w.apply({"oops": "fixed", "n": 1, "log": "c"})
    last = await w.save(store)
    assert (await store.load(last.checkpoint_id)).state == {
        "n": 3,
        "log": ["a", "b", "c"],
        "oops": "fixed",
    }


# -- delete and runs ----------------------------------------------------------------------
async def test_delete_removes_checkpoints_and_run_row(store: Store) -> None:
    """delete(trace) removes that run's checkpoints and runs() row, and nothing else."""
    keep, drop = Writer(state={"k": 1}), Writer(state={"d": 1})
    kept = await keep.save(store)
    dropped = [await drop.save(store)]
    drop.apply({"d": 2})
    dropped.append(await drop.save(store))
    await store.delete(drop.trace_id)
    assert await store.list(drop.trace_id) == []
    assert await store.latest(drop.trace_id) is None
    for c in dropped:
        with pytest.raises(CheckpointError, match=r"^no such checkpoint"):
            await store.load(c.checkpoint_id)
    assert [r.trace_id for r in await store.runs()] == [keep.trace_id]
    assert (await store.load(kept.checkpoint_id)).state == {"k": 1}
    await store.delete("never-existed")
    # The trace id can be used again; its first checkpoint is complete on its own.
    again = Writer(trace_id=drop.trace_id, state={"fresh": True})
    saved = await again.save(store)
    assert (await store.load(saved.checkpoint_id)).state == {"fresh": True}


async def test_runs_row_follows_the_latest_save(store: Store) -> None:
    """runs() has one row per run with its graph, status, time, last checkpoint, lineage."""
    a = Writer(graph_name="alpha")
    b = Writer(graph_name="beta")
    await a.save(store, created_at=100.0)
    await b.save(store, created_at=101.0, resumed_from="older-run")
    last_a = await a.save(store, status=RunStatus.WAITING, created_at=102.0)
    rows = sorted(await store.runs(), key=lambda r: r.graph_name)
    assert rows == [
        RunInfo(a.trace_id, "alpha", RunStatus.WAITING, 102.0, last_a.checkpoint_id, None),
        RunInfo(b.trace_id, "beta", RunStatus.RUNNING, 101.0, rows[1].checkpoint_id, "older-run"),
    ]
    done = await b.save(store, status=RunStatus.COMPLETED, next_node=None, created_at=103.0)
    row_b = next(r for r in await store.runs() if r.trace_id == b.trace_id)
    assert (row_b.status, row_b.checkpoint_id) == (RunStatus.COMPLETED, done.checkpoint_id)
    assert isinstance(row_b.status, RunStatus)


async def test_store_is_a_store(store: Store) -> None:
    """Every store implements the runtime-checkable Store protocol."""
    assert isinstance(store, Store)


# -- SQLite specifics -----------------------------------------------------------------------
def raw(path: Path) -> sqlite3.Connection:
    return sqlite3.connect(path, isolation_level=None)


async def test_sqlite_file_survives_reopening(tmp_path: Path) -> None:
    """A second store on the same file sees every checkpoint and run (WAL, schema v2)."""
    path = tmp_path / "c.db"
    w = Writer(state={"n": 0, "log": []})
    async with SQLiteStore(path) as first:
        for i in range(30):
            w.apply({"n": 1, "log": i})
            await w.save(first)
    async with SQLiteStore(path) as second:
        latest = await second.latest(w.trace_id)
        assert latest is not None
        assert latest.state == {"n": 30, "log": list(range(30))}
        w.apply({"n": 1, "log": 30})  # a store that did not write the chain starts a new base
        saved = await w.save(second)
        assert (await second.load(saved.checkpoint_id)).state["log"] == list(range(31))
    db = raw(path)
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone() == (
        str(SCHEMA_VERSION),
    )
    assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    db.close()


async def test_sqlite_newer_schema_is_refused(tmp_path: Path) -> None:
    """A database written by a newer schema version raises CheckpointError naming it."""
    path = tmp_path / "c.db"
    async with SQLiteStore(path):
        pass
    db = raw(path)
    db.execute("UPDATE meta SET value = '99' WHERE key = 'schema_version'")
    db.close()
    store = SQLiteStore(path)
    with pytest.raises(
        CheckpointError,
        match=rf"^'.*c\.db' has checkpoint schema version 99, newer than the version "
        rf"{SCHEMA_VERSION} this trio_graph knows; upgrade trio_graph$",
    ):
        await store.latest("x")
    await store.aclose()


async def test_sqlite_not_a_database(tmp_path: Path) -> None:
    """A file that is not SQLite raises CheckpointError naming the path."""
    path = tmp_path / "junk.db"
    path.write_bytes(b"this is not a database at all" * 100)
    with pytest.raises(CheckpointError, match=r"junk\.db' is not a trio_graph database \(not a"):
        async with SQLiteStore(path):
            pass


async def test_sqlite_closed_store_raises(tmp_path: Path) -> None:
    """After aclose() every call raises CheckpointError; a path is required."""
    store = SQLiteStore(tmp_path / "c.db")
    await store.save(Writer(state={}).checkpoint())
    await store.aclose()
    with pytest.raises(CheckpointError, match=r"^SQLiteStore\('.*c\.db'\) is closed$"):
        await store.latest("x")
    with pytest.raises(CheckpointError, match=r"is closed$"):
        await store.save(Writer(state={}).checkpoint())
    with pytest.raises(ValueError, match=r"^SQLiteStore needs a file path, got ':memory:'"):
        SQLiteStore(":memory:")


async def test_sqlite_bytes_per_step_grow_with_the_update(tmp_path: Path) -> None:
    """With a 1 MB state, each small update writes a small row: O(update), not O(state)."""
    path = tmp_path / "c.db"
    w = Writer(state={"blob": "x" * 1_000_000, "n": 0}, reducers={"n": reducers.add})
    async with SQLiteStore(path) as store:
        await w.save(store)
        for _ in range(60):
            w.apply({"n": 1, "note": "y" * 100})
            await w.save(store)
        latest = await store.latest(w.trace_id)
    assert latest is not None and latest.state["n"] == 60
    db = raw(path)
    sizes = [n for (n,) in db.execute("SELECT length(body) FROM checkpoints ORDER BY seq")]
    db.close()
    assert sizes[0] > 1_000_000
    assert max(sizes[1:]) < 300


async def test_sqlite_reads_and_loop_do_not_wait_for_a_locked_file(tmp_path: Path) -> None:
    """While another connection holds the write lock, loads work and a save waits in a thread."""
    path = tmp_path / "c.db"
    w = Writer(state={"n": 0}, reducers={"n": reducers.add})
    async with SQLiteStore(path) as store:
        first = await w.save(store)
        w.apply({"n": 1})
        await w.save(store)
        other = raw(path)
        other.execute("BEGIN IMMEDIATE")
        w.apply({"n": 1})
        done = trio.Event()
        ticks = 0

        async def save() -> None:
            await w.save(store)
            done.set()

        async with trio.open_nursery() as nursery:
            nursery.start_soon(save)
            assert (await store.load(first.checkpoint_id)).state == {"n": 0}
            while ticks < 20:  # the run loop keeps going while the save waits
                await trio.sleep(0.001)
                ticks += 1
            assert not done.is_set()
            other.execute("COMMIT")
            other.close()
        latest = await store.latest(w.trace_id)
        assert latest is not None and latest.state == {"n": 2}


def corrupt(path: Path, sql: str, *args: Any) -> None:
    db = raw(path)
    db.execute(sql, args)
    db.close()


async def _chain(path: Path) -> tuple[Writer, list[Checkpoint]]:
    w = Writer(state={"n": 0, "log": []})
    saved = []
    async with SQLiteStore(path) as store:
        for i in range(4):
            w.apply({"n": 1, "log": i})
            saved.append(await w.save(store))
    return w, saved


CORRUPTIONS = [
    pytest.param(
        "UPDATE checkpoints SET header = substr(header, 1, 40) WHERE seq = ?",
        4,
        id="truncated-header",
    ),
    pytest.param(
        "UPDATE checkpoints SET body = substr(body, 1, 5) WHERE seq = ?", 4, id="truncated-deltas"
    ),
    pytest.param(
        "UPDATE checkpoints SET body = substr(body, 1, 5) WHERE seq = ?", 1, id="truncated-base"
    ),
    pytest.param("UPDATE checkpoints SET body = '[1, 2]' WHERE seq = ?", 1, id="base-not-object"),
    pytest.param(
        'UPDATE checkpoints SET body = \'[["n", 1, "os.system"]]\' WHERE seq = ?',
        4,
        id="unknown-reducer",
    ),
    pytest.param(
        'UPDATE checkpoints SET body = \'[["log", 1, "add"]]\' WHERE seq = ?',
        4,
        id="reducer-type-clash",
    ),
    pytest.param("UPDATE checkpoints SET body = x'80049500' WHERE seq = ?", 4, id="blob-body"),
    pytest.param("DELETE FROM checkpoints WHERE seq = ?", 1, id="missing-base"),
    pytest.param("DELETE FROM checkpoints WHERE seq = ?", 2, id="missing-link"),
    pytest.param(
        "UPDATE checkpoints SET header = replace(header, checkpoint_id, 'other') WHERE seq = ?",
        4,
        id="header-names-another",
    ),
    pytest.param(
        "UPDATE checkpoints SET header = '{\"checkpoint_id\": 1}' WHERE seq = ?",
        4,
        id="header-wrong-shape",
    ),
]


@pytest.mark.parametrize(("sql", "seq"), CORRUPTIONS)
async def test_sqlite_corrupted_rows_raise_naming_the_checkpoint(
    tmp_path: Path, sql: str, seq: int
) -> None:
    """A damaged or truncated row gives CheckpointError naming the checkpoint being loaded."""
    path = tmp_path / "c.db"
    w, saved = await _chain(path)
    last = saved[-1].checkpoint_id
    db = raw(path)
    kinds = [b is None for (b,) in db.execute("SELECT base_id FROM checkpoints ORDER BY seq")]
    db.close()
    assert kinds == [True, False, False, False]  # one base, three delta rows
    corrupt(path, sql, seq)
    async with SQLiteStore(path) as store:
        with pytest.raises(CheckpointError, match=rf"\(checkpoint '{last}'\)$"):
            await store.load(last)
        with pytest.raises(CheckpointError, match=r"^corrupted checkpoint"):
            await store.latest(w.trace_id)
        with pytest.raises(CheckpointError, match=r"^corrupted checkpoint"):
            await store.list(w.trace_id)


async def test_sqlite_corrupted_runs_row(tmp_path: Path) -> None:
    """A runs row with an unknown status raises CheckpointError naming the run."""
    path = tmp_path / "c.db"
    w, _ = await _chain(path)
    corrupt(path, "UPDATE runs SET status = 'exploded'")
    async with SQLiteStore(path) as store:
        with pytest.raises(CheckpointError, match=rf"^corrupted runs row for '{w.trace_id}'"):
            await store.runs()


async def test_memory_store_corrupted_row(tmp_path: Path) -> None:
    """MemoryStore checks its rows the same way (shared codec, checksums)."""
    store = MemoryStore()
    w = Writer(state={"a": 1})
    saved = await w.save(store)
    rows = store._rows[w.trace_id]
    rows[0] = attrs.evolve(rows[0], body='{"a": ')
    with pytest.raises(
        CheckpointError,
        match=rf"^corrupted checkpoint: .*checksum \(checkpoint '{saved.checkpoint_id}'\)$",
    ):
        await store.load(saved.checkpoint_id)


async def test_header_codec_matches_the_converter() -> None:
    """The fast header encoder writes what serde.to_json would (minus the state)."""
    w = Writer(state={"a": 1})
    w.apply({"a": 2})
    checkpoint = w.checkpoint(
        pending_barrier=BarrierId("r", 1),
        decisions=[DecisionEntry("r", 0, Modify("k", [1]))],
        branches=[BranchResult("b", {"x": 1})],
        status=RunStatus.FAILED,
        error="e",
        frames=[Frame("sub", "inner", 3, {"k": [1]}, [("k", [1])])],
    )
    head = attrs.evolve(checkpoint, state={})
    assert json.loads(codec.encode_header(checkpoint)) == json.loads(serde.to_json(head))
    await trio.lowlevel.checkpoint()
