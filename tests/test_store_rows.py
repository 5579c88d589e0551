"""The stores' row format (trio_graph/stores/rows/), against every store: a saved
checkpoint is stored as exactly its ``state`` whatever the hint says (issue 13 item 1),
damaged rows are a ``CheckpointError`` never a wrong state (item 20), a fan-out's
records cost O(branches) (item 17), ids no database can hold are refused (item 21),
and values like ``-0.0`` come back exactly.
"""

from __future__ import annotations

import math
import os
import random
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import attrs
import pytest
import trio
from _pg import SKIP_WITHOUT_SERVER, connect, dsn, throwaway_store
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_store_conformance import STORE_FACTORIES, Writer, json_copy, same
from test_store_stateful import UPDATES

from trio_graph import CheckpointPolicy, Executor, GraphBuilder
from trio_graph import events as ev
from trio_graph._model.checkpoint import BranchResult, Changes, Checkpoint, StoredDelta, new_id
from trio_graph.errors import CheckpointError
from trio_graph.stores import MemoryStore, Store
from trio_graph.stores.rows import Row
from trio_graph.stores.sqlite import SQLiteStore

StoreFactory = Callable[[Path], Store]


@pytest.fixture(params=STORE_FACTORIES)
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> Any:
    async with request.param(tmp_path) as opened:
        yield opened


def hand_built(trace: str, state: dict[str, Any], cid: str | None = None, **kw: Any) -> Checkpoint:
    return Checkpoint(cid or new_id(), trace, "g", "h", "n", 1, state, **kw)


# -- item 1: a checkpoint is stored as exactly its state ------------------------------------
async def test_hand_built_checkpoints_of_one_trace_load_as_saved(store: Store) -> None:
    """Two hand-built checkpoints of one trace, no hint: the second loads with its own
    state (it was loaded as the first's)."""
    await store.save(hand_built("t", {"a": "v1"}, "c1"))
    await store.save(hand_built("t", {"a": "v2"}, "c2"))
    assert (await store.load("c2")).state == {"a": "v2"}
    assert [c.state for c in await store.list("t")] == [{"a": "v1"}, {"a": "v2"}]


async def test_copying_a_finished_run_between_stores_keeps_every_state(
    store: Store,
) -> None:
    """``for cp in await src.list(t): await dst.save(cp)`` copies states 1, 2, 3 as 1, 2, 3."""
    executor = Executor(store=MemoryStore(), policy=CheckpointPolicy(every_step=True))
    graph = (
        GraphBuilder("count")
        .task("step", lambda s: {"n": s["n"] + 1})
        .task("end", lambda s: None)
        .edge_if("step", "step", lambda s: s["n"] < 3)
        .edge("step", "end")
        .start("step")
        .end("end")
        .build()
    )
    src = executor.store
    assert src is not None
    result = await executor.run(graph, {"n": 0})
    source = await src.list(result.trace_id)
    for checkpoint in source:
        await store.save(checkpoint)
    assert [c.state["n"] for c in await store.list(result.trace_id)] == [1, 2, 3, 3]
    assert await store.list(result.trace_id) == source


async def test_a_stale_hint_writes_the_full_state(store: Store) -> None:
    """A hint naming a checkpoint that is not the store's last row of the trace is not
    used: the checkpoint is stored as its state, not as those deltas."""
    w = Writer(state={"a": 0})
    first = await w.save(store)
    await store.save(hand_built(w.trace_id, {"a": 50}))  # another writer's row
    w.apply({"a": 1})
    second = await w.save(store)  # hint: deltas since `first`
    assert (await store.load(second.checkpoint_id)).state == {"a": 1}
    lying = Changes(second.checkpoint_id, (StoredDelta("a", 99),))
    third = hand_built(w.trace_id, {"a": 2})
    await store.save(third, changes=lying)  # the hint's deltas are not the truth either
    assert (await store.load(third.checkpoint_id)).state in ({"a": 2}, {"a": 99})
    assert (await store.load(first.checkpoint_id)).state == {"a": 0}


OPS = st.lists(
    st.one_of(
        st.tuples(st.just("run"), st.sampled_from("xyz"), UPDATES),
        st.tuples(st.just("hand"), st.sampled_from("xyz"), UPDATES),
        st.tuples(st.just("copy"), st.sampled_from("xyz"), UPDATES),
        st.tuples(st.just("branch"), st.sampled_from("xyz"), UPDATES),
    ),
    min_size=1,
    max_size=25,
)


@pytest.mark.parametrize(
    "factory", [pytest.param(p.values[0], id=p.id, marks=p.marks) for p in STORE_FACTORIES]
)
@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ops=OPS)
def test_any_sequence_of_saves_loads_back_equal(
    factory: StoreFactory, tmp_path_factory: pytest.TempPathFactory, ops: list[Any]
) -> None:
    """Interleaved runs with hints, hand-built checkpoints, copies from another store and
    fan-out records, all in the same traces: every checkpoint loads back as saved."""
    tmp = tmp_path_factory.mktemp("seq")  # a fresh directory (and schema) per example

    async def main() -> None:
        writers = {t: Writer(trace_id=t) for t in "xyz"}
        source = MemoryStore()
        saved: list[tuple[Checkpoint, Any]] = []
        records: dict[str, list[BranchResult]] = {t: [] for t in "xyz"}
        async with factory(tmp) as dst:
            for kind, trace, updates in ops:
                w = writers[trace]
                if kind == "run":
                    w.apply(updates)
                    saved.append((await _record(w, dst, records[trace]), json_copy(w.state)))
                elif kind == "branch":  # a fan-out record: one more branch, anywhere
                    at = len(updates) % (len(records[trace]) + 1)
                    records[trace].insert(at, BranchResult(new_id(), dict(updates)))
                    cp = await _record(w, dst, records[trace], (at,))
                    saved.append((cp, json_copy(w.state)))
                else:
                    cp = hand_built(trace, json_copy(updates), branches=list(records[trace]))
                    if kind == "copy":
                        await source.save(cp)
                        cp = await source.load(cp.checkpoint_id)
                    await dst.save(cp)
                    saved.append((cp, json_copy(cp.state)))
            for checkpoint, state in saved:
                same(await dst.load(checkpoint.checkpoint_id), checkpoint, state)
            for t in "xyz":
                mine = [(c, s) for c, s in saved if c.trace_id == t]
                history = await dst.list(t)
                assert len(history) == len(mine)
                for loaded, (checkpoint, state) in zip(history, mine, strict=True):
                    same(loaded, checkpoint, state)
            await trio.lowlevel.checkpoint()

    trio.run(main)


async def _record(
    w: Writer, store: Store, branches: list[BranchResult], new: tuple[int, ...] = ()
) -> Checkpoint:
    """Save like a fan-out's record: the hint says where the new branches are."""
    checkpoint = w.checkpoint(branches=list(branches))
    await store.save(checkpoint, changes=w.log.take(w.parent, new_branches=new))
    w.parent = checkpoint.checkpoint_id
    return checkpoint


# -- item 21: values and ids ------------------------------------------------------------------
async def test_negative_zero_and_exact_floats_round_trip(store: Store) -> None:
    """-0.0, 1e300, 5e-324 and NUL in a value come back exactly (PostgreSQL gave 0.0);
    a lone surrogate is refused at save instead (test_jsonvalue.py), since a JSON round
    trip merges a pair of them into one character."""
    w = Writer(state={"z": -0.0, "big": 1e300, "tiny": 5e-324, "nul": "a\x00b"})
    saved = await w.save(store)
    w.apply({"a": -0.0})
    delta = await w.save(store)
    for cid in (saved.checkpoint_id, delta.checkpoint_id):
        state = (await store.load(cid)).state
        assert math.copysign(1.0, state["z"]) == -1.0
        assert (state["big"], state["tiny"], state["nul"]) == (1e300, 5e-324, "a\x00b")
    assert math.copysign(1.0, (await store.load(delta.checkpoint_id)).state["a"]) == -1.0


@pytest.mark.parametrize("field", ["trace_id", "graph_name", "checkpoint_id", "resumed_from"])
async def test_a_lone_surrogate_in_an_id_is_refused_naming_the_field(
    store: Store, field: str
) -> None:
    """An id or name with a lone surrogate is a CheckpointError naming the field (no
    UnicodeEncodeError); nothing is written, and reads of such ids find nothing."""
    checkpoint = attrs.evolve(hand_built("t", {"a": 1}), **{field: "bad\ud800id"})
    with pytest.raises(
        CheckpointError, match=rf"^cannot save: {field} 'bad\\ud800id' is not valid Unicode"
    ):
        await store.save(checkpoint)
    assert await store.runs() == []
    with pytest.raises(CheckpointError, match=r"^no such checkpoint"):
        await store.load("bad\ud800id")
    assert await store.latest("bad\ud800id") is None
    assert await store.list("bad\ud800id") == []
    await store.delete("bad\ud800id")


async def test_a_refused_value_names_no_checkpoint(store: Store) -> None:
    """The error for a non-JSON value names the key, not the id of a checkpoint that was
    never stored."""
    w = Writer(state={"ok": 1, "bad": {1, 2}})
    with pytest.raises(CheckpointError) as info:
        await w.save(store)
    assert (info.value.key, info.value.checkpoint_id) == ("bad", "")


# -- items 16, 17: fan-out records ------------------------------------------------------------
def _fanout(n: int, bad: int | None = None) -> Any:
    def branch(i: int) -> Callable[[Any], Any]:
        return lambda s: {f"k{i}": {1, 2} if i == bad else i}

    return (
        GraphBuilder("fan")
        .parallel("par", {f"b{i}": branch(i) for i in range(n)})
        .task("end", lambda s: None)
        .edge("par", "end")
        .start("par")
        .end("end")
        .build()
    )


async def test_fanout_records_cost_o_of_branches_bytes(tmp_path: Path) -> None:
    """300 branches recorded one by one write O(branches) bytes in all (each record
    wrote every finished branch again: O(branches²)); each record loads complete."""
    path = tmp_path / "c.db"
    async with SQLiteStore(path) as store:
        result = await Executor(store=store).run(_fanout(300), {})
        history = await store.list(result.trace_id)
    assert len(history) == 301
    assert [len(c.branches) for c in history[:-1]] == list(range(1, 301))
    assert [b.branch for b in history[-2].branches] == [f"b{i}" for i in range(300)]
    assert all(
        b.updates == {b.branch.replace("b", "k"): int(b.branch[1:])} for b in history[-2].branches
    )
    db = sqlite3.connect(path)
    (total,) = db.execute("SELECT sum(length(header) + length(body)) FROM checkpoints").fetchone()
    db.close()
    assert total < 300 * 2_000  # O(n²) wrote ~300 * 150 * 40 bytes more than this


async def test_a_branch_with_a_non_json_value_fails_the_run_with_checkpoint_error(
    store: Store,
) -> None:
    """A branch returning a set: the run's one terminal error is a CheckpointError naming
    branch and key (was an ExceptionGroup holding an AssertionError)."""
    events: list[ev.Event] = []
    async with Executor(store=store).stream(_fanout(4, bad=2), {}) as run:
        async for event in run:
            events.append(event)
    terminal = [e for e in events if isinstance(e, ev.GraphError | ev.GraphComplete)]
    assert len(terminal) == 1 and isinstance(terminal[0], ev.GraphError)
    error = terminal[0].error
    assert isinstance(error, CheckpointError)
    assert error.key == "k2" and "branch 'b2'" in error.message
    wrote = r"^branch 'b2' of node 'par' wrote a value .* \(key 'k2'\)$"
    with pytest.raises(CheckpointError, match=wrote):
        await Executor(store=store).run(_fanout(4, bad=2), {})


# -- item 20: damaged rows --------------------------------------------------------------------
async def _fill(store: Store) -> dict[str, Any]:
    """A trace of base and delta rows (and fan-out records); the states saved, by id."""
    w = Writer(state={"n": 0, "log": [], "text": "x" * 40})
    saved = {}
    branches: list[BranchResult] = []
    for i in range(8):
        w.apply({"n": 1, "log": i, f"k{i % 3}": [i, -0.0, "é"]})
        if i % 2:
            branches.append(BranchResult(f"b{i}", {"v": i}))
        cp = await w.save(store, branches=list(branches))
        saved[cp.checkpoint_id] = (cp, json_copy(w.state))
    return saved


async def _each_load_is_exact_or_refused(store: Store, saved: dict[str, Any]) -> int:
    refused = 0
    for cid, (cp, state) in saved.items():
        try:
            loaded = await store.load(cid)
        except CheckpointError as exc:
            assert exc.checkpoint_id == cid
            refused += 1
        else:
            same(loaded, cp, state)
    trace = next(iter(saved.values()))[0].trace_id
    try:
        history = await store.list(trace)
    except CheckpointError as exc:
        assert exc.message.startswith("corrupted checkpoint")
    else:
        expected = {cid: v for cid, v in saved.items()}
        for loaded in history:
            same(loaded, *expected[loaded.checkpoint_id])
    return refused


def _mutations(rows: list[tuple[Any, ...]], rng: random.Random) -> list[dict[int, tuple[Any, ...]]]:
    """Single-character flips in any text column, swapped bodies, bad link columns."""
    out: list[dict[int, tuple[Any, ...]]] = []
    for _ in range(120):
        i = rng.randrange(len(rows))
        col = rng.choice([0, 1, 2, 3, 5, 6, 7])
        row = list(rows[i])
        text = row[col]
        if not text:
            continue
        at = rng.randrange(len(text))
        row[col] = (
            text[:at] + chr((ord(text[at]) + rng.randrange(1, 60)) % 0x7F or 65) + text[at + 1 :]
        )
        out.append({i: tuple(row)})
    for i in range(1, len(rows) - 1):  # swap the bodies of neighbouring rows
        a, b = list(rows[i]), list(rows[i + 1])
        a[6], b[6] = b[6], a[6]
        out.append({i: tuple(a), i + 1: tuple(b)})
    for i in range(len(rows)):
        for link in (-1, rows[i][4] + 1, 0, 10**6):
            out.append({i: (*rows[i][:4], link, *rows[i][5:])})
    return out


async def test_sqlite_damaged_rows_load_exactly_or_raise(tmp_path: Path) -> None:
    """Hundreds of single-character flips, swapped delta bodies and wrong links in a
    SQLite file: every load gives the exact saved state or a CheckpointError naming the
    checkpoint (49-64 of 300 flips used to load a different state)."""
    path = tmp_path / "c.db"
    cols = Row.COLUMNS
    async with SQLiteStore(path) as store:
        saved = await _fill(store)
        db = sqlite3.connect(path, isolation_level=None)
        rows = db.execute(f"SELECT seq, {cols} FROM checkpoints ORDER BY seq").fetchall()
        seqs, values = [r[0] for r in rows], [r[1:] for r in rows]
        refused = 0
        for mutation in _mutations(values, random.Random(20)):
            for i, row in mutation.items():
                _put(db, seqs[i], row)
            refused += await _each_load_is_exact_or_refused(store, saved)
            for i in mutation:
                _put(db, seqs[i], values[i])
        db.execute("UPDATE checkpoints SET link = 'x' WHERE seq = ?", (seqs[2],))
        with pytest.raises(CheckpointError, match=r"^corrupted checkpoint: a column"):
            await store.load(values[2][0])
        db.close()
    assert refused > 100


def _put(db: Any, seq: int, row: tuple[Any, ...]) -> None:
    db.execute(
        "UPDATE checkpoints SET checkpoint_id = ?, trace_id = ?, base_id = ?, prev_id = ?, "
        "link = ?, header = ?, body = ?, checksum = ? WHERE seq = ?",
        (*row, seq),
    )


@pytest.mark.parametrize("version", ["-1", "abc"])
async def test_sqlite_bad_schema_version_is_checkpoint_error(tmp_path: Path, version: str) -> None:
    """A schema version of -1 (or not a number) is a CheckpointError, not a KeyError."""
    path = tmp_path / "c.db"
    async with SQLiteStore(path):
        pass
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", (version,))
    db.close()
    with pytest.raises(CheckpointError, match=r"unreadable schema version"):
        async with SQLiteStore(path):
            pass


async def test_sqlite_version_1_file_is_migrated(tmp_path: Path) -> None:
    """A file of schema version 1 (rows without prev_id and checksum) is migrated on open
    and its checkpoints load as they were."""
    from trio_graph.stores.sqlite import MIGRATIONS

    path = tmp_path / "v1.db"
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
    db.execute("INSERT INTO meta VALUES ('schema_version', '1')")
    for statement in MIGRATIONS[1]:
        db.execute(statement)
    head = (
        '{"checkpoint_id":"%s","trace_id":"t","graph_name":"g","graph_hash":"h",'
        '"next_node":"n","step":1,"state":{},"parent_id":%s,"base_id":null,"deltas":[]}'
    )
    db.execute(
        "INSERT INTO checkpoints (checkpoint_id, trace_id, base_id, link, header, body) "
        "VALUES ('c1', 't', NULL, 0, ?, '{\"n\":1}'), "
        "('c2', 't', 'c1', 1, ?, '[[\"n\",2,\"add\"]]')",
        (head % ("c1", "null"), head % ("c2", '"c1"')),
    )
    db.close()
    async with SQLiteStore(path) as store:
        assert [c.state for c in await store.list("t")] == [{"n": 1}, {"n": 3}]
        assert (await store.load("c2")).state == {"n": 3}


# -- item 22 and the store side of 13: opening what is not ours ---------------------------
async def test_a_foreign_sqlite_file_is_refused_and_left_unchanged(tmp_path: Path) -> None:
    """Another program's SQLite file: 'is not a trio_graph database', and the file is
    byte-for-byte the same, still in its own journal mode (it was switched to WAL)."""
    path = tmp_path / "app.db"
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT)")
    db.execute("INSERT INTO users (name) VALUES ('ana')")
    db.close()
    before = path.read_bytes()
    with pytest.raises(
        CheckpointError, match=r"app\.db' is not a trio_graph database \(it holds other tables"
    ):
        async with SQLiteStore(path):
            pass
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["app.db"]
    db = sqlite3.connect(path)
    assert db.execute("PRAGMA journal_mode").fetchone() == ("delete",)
    db.close()


async def test_a_file_that_is_not_sqlite_is_refused_at_open_unchanged(tmp_path: Path) -> None:
    """A text file: refused when the store is entered, with nothing written."""
    path = tmp_path / "notes.txt"
    path.write_text("hello\n" * 200)
    store = SQLiteStore(path)
    with pytest.raises(CheckpointError, match=r"notes\.txt' is not a trio_graph database"):
        await store.__aenter__()
    await store.aclose()
    assert path.read_text() == "hello\n" * 200


async def test_a_read_only_place_is_refused_at_open(tmp_path: Path) -> None:
    """A store in a directory that cannot be written says 'is read-only' at open."""
    if os.geteuid() != 0:
        folder = tmp_path / "ro"
        folder.mkdir()
        folder.chmod(0o555)
    else:  # root writes anywhere chmod allows: use a read-only mount, if there is one
        folder = next((Path(p) for p in ("/proc/sys", "/sys") if not os.access(p, os.W_OK)), None)
        if folder is None:
            pytest.skip("running as root and no read-only directory to try")
    path = folder / "runs.db"
    with pytest.raises(CheckpointError, match=r"runs\.db' is read-only"):
        async with SQLiteStore(path):
            pass


@SKIP_WITHOUT_SERVER
async def test_postgres_damaged_rows_load_exactly_or_raise(tmp_path: Path) -> None:
    """The same damage in PostgreSQL rows (text columns, so the checksum sees the exact
    stored text): every load is the exact state or a CheckpointError naming it."""
    store = throwaway_store(tmp_path)
    async with store:
        saved = await _fill(store)
        conn = connect(dsn(), store.schema)
        rows = conn.execute(
            f"SELECT seq, {Row.COLUMNS} FROM trio_graph_checkpoints ORDER BY seq"
        ).fetchall()
        seqs, values = [r[0] for r in rows], [r[1:] for r in rows]
        refused = 0
        for mutation in _mutations(values, random.Random(21))[::3]:
            for i, row in mutation.items():
                _put_pg(conn, seqs[i], row)
            refused += await _each_load_is_exact_or_refused(store, saved)
            for i in mutation:
                _put_pg(conn, seqs[i], values[i])
        conn.execute("UPDATE trio_graph_schema SET version = -1")
        conn.close()
    assert refused > 30
    with pytest.raises(CheckpointError, match=r"^unreadable database schema version -1$"):
        async with throwaway_store(tmp_path):
            pass


def _put_pg(conn: Any, seq: int, row: tuple[Any, ...]) -> None:
    conn.execute(
        "UPDATE trio_graph_checkpoints SET checkpoint_id = %s, trace_id = %s, base_id = %s, "
        "prev_id = %s, link = %s, header = %s, body = %s, checksum = %s WHERE seq = %s",
        (*row, seq),
    )


@SKIP_WITHOUT_SERVER
async def test_postgres_version_1_schema_is_migrated(tmp_path: Path) -> None:
    """A version-1 schema (JSONB rows, no checksum) is migrated on open: rows become text
    with checksums and load as they were (JSONB had already turned -0.0 into 0)."""
    from trio_graph.stores.postgres_schema import MIGRATIONS as _MIGRATIONS

    store = throwaway_store(tmp_path)
    conn = connect(dsn(), store.schema)
    conn.execute(f"CREATE SCHEMA {store.schema}")
    conn.execute(_MIGRATIONS[0])
    conn.execute("CREATE TABLE trio_graph_schema (version integer NOT NULL)")
    conn.execute("INSERT INTO trio_graph_schema VALUES (1)")
    head = (
        '{"checkpoint_id": "%s", "trace_id": "t", "graph_name": "g", "graph_hash": "h", '
        '"next_node": "n", "step": 1, "state": {}, "branches": [], "parent_id": null}'
    )
    conn.execute(
        "INSERT INTO trio_graph_checkpoints (checkpoint_id, trace_id, base_id, link, header, "
        "body) VALUES ('c1', 't', NULL, 0, %s::jsonb, '{\"n\": 1e300}'::jsonb), "
        "('c2', 't', 'c1', 1, %s::jsonb, '[[\"n\", \"x\", null]]'::jsonb)",
        (head % "c1", head % "c2"),
    )
    conn.close()
    async with store:
        assert [c.state for c in await store.list("t")] == [{"n": 10**300}, {"n": "x"}]
        assert (await store.load("c2")).state == {"n": "x"}
