"""One run id for a run's life (DESIGN §8, issue 15): segments, runs(), history, forks,
copies between stores, migration of older databases, and the stored checkpoint policy."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import attrs
import pytest
from _pg import SKIP_WITHOUT_SERVER
from hypothesis import given
from hypothesis import strategies as st
from test_store_conformance import STORE_FACTORIES

from trio_graph import Approve, BarrierId, Executor, GraphBuilder
from trio_graph import events as ev
from trio_graph._model.checkpoint import Checkpoint, CheckpointPolicy, RunStatus
from trio_graph._model.graph import Graph
from trio_graph.stores import MemoryStore, SQLiteStore, Store
from trio_graph.stores import rows as codec

StoreFactory = Callable[[Path], Store]
EVERY_STEP = CheckpointPolicy(every_step=True)


@pytest.fixture(params=STORE_FACTORIES)
def store_factory(request: pytest.FixtureRequest) -> StoreFactory:
    factory: StoreFactory = request.param
    return factory


def looping_graph() -> Graph:
    """a -> review (barrier) -> b; b loops back to review until ``n`` reaches 3."""
    return (
        GraphBuilder("loop")
        .task("a", lambda s: {"n": 1})
        .barrier("review")
        .task("b", lambda s: {"n": s["n"] + 1})
        .task("done", lambda s: None)
        .edge("a", "review")
        .edge("review", "b")
        .edge_if("b", "done", lambda s: s["n"] >= 3)
        .edge("b", "review")
        .start("a")
        .end("done")
        .build()
    )


async def until_waiting(run: Any) -> list[ev.Event]:
    seen = []
    async for event in run:
        seen.append(event)
        if isinstance(event, ev.BarrierWaiting) and not event.answered:
            break
    return seen


async def three_segments(store: Store, executor: Executor) -> tuple[str, list[ev.Event]]:
    """Start the looping graph and resume it twice (by run id, then by a segment's trace
    id); returns the run id and every event seen."""
    graph = looping_graph()
    async with executor.stream(graph, {}) as run:
        events = await until_waiting(run)
    run_id = run.run_id
    async with executor.resume(graph, run_id, decisions={BarrierId("review", 1): Approve()}) as run:
        events += await until_waiting(run)
        second = run.trace_id
    async with executor.resume(graph, second, decisions={BarrierId("review", 2): Approve()}) as run:
        async for event in run:
            events.append(event)
    assert run.result is not None and run.result.state["n"] == 3
    assert run.result.run_id == run_id
    return run_id, events


async def test_resumed_twice_is_one_run(store_factory: StoreFactory, tmp_path: Path) -> None:
    """Resumed twice: one runs() row, history across the three segments, one run id on
    every GraphStart, latest/list by the run id or any segment's trace id."""
    async with store_factory(tmp_path) as store:
        run_id, events = await three_segments(store, Executor(store=store))
        starts = [e for e in events if isinstance(e, ev.GraphStart)]
        traces = [s.trace_id for s in starts]
        assert len(set(traces)) == 3 and traces[0] == run_id
        assert [s.run_id for s in starts] == [run_id] * 3
        assert [s.resumed_from for s in starts] == [None, traces[0], traces[1]]
        [row] = await store.runs()
        assert (row.run_id, row.trace_id, row.status) == (run_id, traces[2], RunStatus.COMPLETED)
        assert row.resumed_from == traces[1]
        history = await store.list(run_id)
        assert list(dict.fromkeys(c.trace_id for c in history)) == traces  # in order
        assert {c.run_id for c in history} == {run_id}
        assert [c.step for c in history] == sorted(c.step for c in history)
        for any_id in traces:
            assert await store.list(any_id) == history
            latest = await store.latest(any_id)
            assert latest is not None and latest.checkpoint_id == history[-1].checkpoint_id
        await store.delete(traces[1])
        assert await store.runs() == []
        assert await store.list(run_id) == []


async def test_runs_row_shows_step_and_waiting_barrier(
    store_factory: StoreFactory, tmp_path: Path
) -> None:
    """A run waiting at its second barrier shows that barrier and the step it is at."""
    graph = looping_graph()
    async with store_factory(tmp_path) as store:
        executor = Executor(store=store)
        async with executor.stream(graph, {}) as run:
            await until_waiting(run)
        decision = {BarrierId("review", 1): Approve()}
        async with executor.resume(graph, run.run_id, decisions=decision) as resumed:
            await until_waiting(resumed)
        [row] = await store.runs()
        assert (row.run_id, row.trace_id) == (run.run_id, resumed.trace_id)
        assert (row.status, row.waiting, row.step) == (
            RunStatus.WAITING,
            BarrierId("review", 2),
            3,
        )


async def test_fork_is_a_new_run(store_factory: StoreFactory, tmp_path: Path) -> None:
    """A fork gets a run id of its own (its first trace id) and a runs() row of its own."""
    async with store_factory(tmp_path) as store:
        executor = Executor(store=store)
        run_id, _ = await three_segments(store, executor)
        first = (await store.list(run_id))[0]
        async with executor.fork(looping_graph(), first.checkpoint_id) as fork:
            await until_waiting(fork)
        assert fork.run_id == fork.trace_id != run_id
        rows = {r.run_id: r for r in await store.runs()}
        assert set(rows) == {run_id, fork.run_id}
        assert rows[fork.run_id].resumed_from == first.trace_id
        assert {c.run_id for c in await store.list(fork.run_id)} == {fork.run_id}


async def test_copy_between_stores_keeps_the_run_id(tmp_path: Path) -> None:
    """Copying a run's checkpoints into another store keeps its run id, one row, history."""
    source = MemoryStore()
    run_id, _ = await three_segments(source, Executor(store=source))
    async with SQLiteStore(tmp_path / "copy.db") as target:
        for checkpoint in await source.list(run_id):
            await target.save(checkpoint)
        assert await target.list(run_id) == await source.list(run_id)
        [row] = await target.runs()
        assert row == (await source.runs())[0]
        assert row.run_id == run_id


async def test_the_stored_policy_survives_a_resume(
    store_factory: StoreFactory, tmp_path: Path
) -> None:
    """A resume keeps the run's stored policy whatever the resuming executor's own (a
    worker's is every_step); ``resume(policy=...)`` replaces it."""
    graph = looping_graph()
    async with store_factory(tmp_path) as store:
        async with Executor(store=store, policy=EVERY_STEP).stream(graph, {}) as run:
            await until_waiting(run)
        bare = Executor(store=store)
        async with bare.resume(
            graph, run.run_id, decisions={BarrierId("review", 1): Approve()}
        ) as r:
            await until_waiting(r)
        kept = [c for c in await store.list(run.run_id) if c.trace_id == r.trace_id]
        # After b (step 3), a checkpoint only every_step takes; the policy is kept.
        assert (3, "review", RunStatus.RUNNING) in [(c.step, c.next_node, c.status) for c in kept]
        assert {c.policy for c in kept} == {EVERY_STEP}
        decision = {BarrierId("review", 2): Approve()}
        default = CheckpointPolicy()
        async with bare.resume(graph, r.trace_id, decisions=decision, policy=default) as last:
            await last.wait()
        mine = [c for c in await store.list(run.run_id) if c.trace_id == last.trace_id]
        assert "done" not in {c.next_node for c in mine}  # no save after b
        assert mine[-1].status == RunStatus.COMPLETED
        assert {c.policy for c in mine} == {default}


async def test_a_default_policy_run_keeps_it_under_an_every_step_executor(
    store_factory: StoreFactory, tmp_path: Path
) -> None:
    """A run started with the default policy, resumed by an executor whose own policy is
    every_step (as a worker's is), saves no checkpoint after a plain step."""
    graph = looping_graph()
    async with store_factory(tmp_path) as store:
        async with Executor(store=store).stream(graph, {}) as run:
            await until_waiting(run)
        worker_like = Executor(store=store, policy=EVERY_STEP)
        async with worker_like.resume(
            graph, run.run_id, decisions={BarrierId("review", 1): Approve()}
        ) as r:
            await until_waiting(r)
        kept = [c for c in await store.list(run.run_id) if c.trace_id == r.trace_id]
        assert (3, "review", RunStatus.RUNNING) not in [
            (c.step, c.next_node, c.status) for c in kept
        ]
        assert {c.policy for c in kept} == {CheckpointPolicy()}


# -- migration of a version-2 SQLite file ------------------------------------------------
def as_version_2(path: Path) -> None:
    """Turn a version-3 file back into what version 2 wrote: no run id columns, none in
    the headers (the checksums of the rows as version 2 computed them)."""
    db = sqlite3.connect(path, isolation_level=None)
    rows = db.execute(f"SELECT {codec.Row.COLUMNS} FROM checkpoints").fetchall()
    for cid, trace, base, prev, link, header, body, _ in rows:
        doc = json.loads(header)
        doc.pop("run_id", None)
        old = json.dumps(doc, separators=(",", ":"))
        digest = codec.row_checksum(cid, trace, base, prev, link, old, body)
        db.execute(
            "UPDATE checkpoints SET header = ?, checksum = ? WHERE checkpoint_id = ?",
            (old, digest, cid),
        )
    for statement in (
        "DROP INDEX checkpoints_by_run",
        "DROP INDEX runs_by_run",
        "ALTER TABLE checkpoints DROP COLUMN run_id",
        "ALTER TABLE runs DROP COLUMN run_id",
        "ALTER TABLE runs DROP COLUMN step",
        "ALTER TABLE runs DROP COLUMN waiting",
        "UPDATE meta SET value = '2' WHERE key = 'schema_version'",
    ):
        db.execute(statement)
    db.close()


async def test_a_version_2_file_gets_run_ids(tmp_path: Path) -> None:
    """A version-2 file's segments get the run id of their first segment (resumed_from
    followed back), one runs() row per run, history across segments, still loadable."""
    path = tmp_path / "old.db"
    async with SQLiteStore(path) as store:
        run_id, _ = await three_segments(store, Executor(store=store))
        other, _ = await three_segments(store, Executor(store=store))
        before = {r: await store.list(r) for r in (run_id, other)}
    as_version_2(path)
    async with SQLiteStore(path) as store:
        assert {r.run_id for r in await store.runs()} == {run_id, other}
        for run, history in before.items():
            assert await store.list(run) == history
            for checkpoint in history:
                assert await store.load(checkpoint.checkpoint_id) == checkpoint
    db = sqlite3.connect(path)
    assert db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone() == ("3",)
    db.close()


def pg_as_version_2(schema: str) -> None:
    """The PostgreSQL counterpart of :func:`as_version_2`."""
    from _pg import connect, dsn

    with connect(dsn(), schema) as conn:
        rows = conn.execute(f"SELECT {codec.Row.COLUMNS} FROM trio_graph_checkpoints").fetchall()
        for cid, trace, base, prev, link, header, body, _ in rows:
            doc = json.loads(header)
            doc.pop("run_id", None)
            old = json.dumps(doc, separators=(",", ":"))
            digest = codec.row_checksum(cid, trace, base, prev, link, old, body)
            conn.execute(
                "UPDATE trio_graph_checkpoints SET header = %s, checksum = %s "
                "WHERE checkpoint_id = %s",
                (old, digest, cid),
            )
        conn.execute("ALTER TABLE trio_graph_checkpoints DROP COLUMN run_id")
        conn.execute("ALTER TABLE trio_graph_runs DROP COLUMN run_id, DROP COLUMN step")
        conn.execute("ALTER TABLE trio_graph_runs DROP COLUMN waiting")
        conn.execute("UPDATE trio_graph_schema SET version = 2")


@SKIP_WITHOUT_SERVER
async def test_a_version_2_postgres_database_gets_run_ids() -> None:
    """A version-2 PostgreSQL schema is migrated like a SQLite file: run ids by
    resumed_from, one runs() row per run, every checkpoint still loadable."""
    from _pg import drop_schema, dsn, new_schema

    from trio_graph.stores import PostgresStore

    schema = new_schema()
    try:
        async with PostgresStore(dsn(), schema=schema) as store:
            run_id, _ = await three_segments(store, Executor(store=store))
            before = await store.list(run_id)
        pg_as_version_2(schema)
        async with PostgresStore(dsn(), schema=schema) as store:
            [row] = await store.runs()
            assert (row.run_id, row.trace_id) == (run_id, before[-1].trace_id)
            assert await store.list(run_id) == before
            for checkpoint in before:
                assert await store.load(checkpoint.checkpoint_id) == checkpoint
    finally:
        drop_schema(dsn(), schema)


def test_first_segment_follows_resumed_from_back() -> None:
    """A segment's run id is the trace reached by following resumed_from (a dangling or
    cyclic link stops where it is)."""
    links = {"c": "b", "b": "a", "a": None, "x": "gone", "p": "q", "q": "p"}
    assert [codec.first_segment(t, links) for t in "abc"] == ["a", "a", "a"]
    assert codec.first_segment("x", links) == "gone"
    assert codec.first_segment("p", links) == "q"


# -- the row codec -----------------------------------------------------------------------
IDS = st.text(st.characters(codec="utf-8"), min_size=1, max_size=20)


@given(trace=IDS, run=st.none() | IDS, step=st.integers(0, 10**6))
def test_run_ids_round_trip_through_the_row_codec(trace: str, run: str | None, step: int) -> None:
    """A checkpoint's run id (given, or its trace id by default) comes back from its row."""
    extra = {} if run is None else {"run_id": run}
    checkpoint = Checkpoint("c1", trace, "g", "h", "n", step, {"k": 1}, **extra)
    row = codec.make_row(checkpoint, codec.Plan(None, 0), None, None)
    [loaded] = codec.load_trace([codec.Row.of(row.values())])
    assert loaded == checkpoint
    assert loaded.run_id == (trace if run is None else run)
    assert attrs.evolve(loaded, run_id=loaded.run_id) == checkpoint
