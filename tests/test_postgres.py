"""PostgresStore specifics against a real server: JSONB fidelity, incremental rows,
schema versions, bound SQL. The shared store protocol is tested in
test_store_conformance.py, the run queue in test_queue.py and test_worker.py.

Needs ``TRIO_GRAPH_PG_DSN`` (``eval "$(scripts/postgres.sh)"``); skipped without it,
failed without it under CI.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import psycopg
import pytest
import trio
from _pg import SKIP_WITHOUT_SERVER, connect, drop_schema, dsn, new_schema
from hypothesis import given
from hypothesis import strategies as st

from trio_graph import (
    CheckpointPolicy,
    Executor,
    GraphBuilder,
    reducers,
)
from trio_graph._model.checkpoint import Checkpoint
from trio_graph.errors import CheckpointError
from trio_graph.stores.postgres import SCHEMA_VERSION, PostgresStore, dumps, loads

pytestmark = SKIP_WITHOUT_SERVER


@pytest.fixture
def schema() -> Iterator[str]:
    name = new_schema()
    yield name
    drop_schema(dsn(), name)


@pytest.fixture
async def store(schema: str) -> AsyncIterator[PostgresStore]:
    async with PostgresStore(dsn(), schema=schema, max_size=4) as opened:
        yield opened


@pytest.fixture(scope="module")
def raw() -> Iterator[psycopg.Connection[Any]]:
    with psycopg.connect(dsn(), autocommit=True) as conn:
        yield conn


def checkpoint(trace: str, cid: str, **fields: Any) -> Checkpoint:
    fields.setdefault("state", {"n": 0})
    return Checkpoint(cid, trace, fields.pop("graph_name", "g"), "hash", "next", 0, **fields)


# -- JSONB fidelity ---------------------------------------------------------------------------
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4)
    ),
    max_leaves=12,
)


def same_types(a: Any, b: Any) -> bool:
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(same_types(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(same_types(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)


@given(json_values)
def test_jsonb_gives_back_every_json_value(raw: psycopg.Connection[Any], value: Any) -> None:
    """Any JSON value survives a JSONB column unchanged, types included (floats stay floats)."""
    row = raw.execute("SELECT %s::jsonb::text", (dumps(value),)).fetchone()
    assert row is not None
    assert same_types(loads(row[0]), value)


@pytest.mark.parametrize(
    "value",
    [1e300, -1.5e-7, 5e-324, 1e16, 2**80, "nul\x00byte", "\ufdd0mark", "\\u0000", {"k\x00": 1}],
    ids=repr,
)
def test_jsonb_edge_values(raw: psycopg.Connection[Any], value: Any) -> None:
    """Exponent floats, huge ints, NUL characters and the escape mark round-trip exactly."""
    row = raw.execute("SELECT %s::jsonb::text", (dumps(value),)).fetchone()
    assert row is not None
    assert same_types(loads(row[0]), value)


def test_floats_are_stored_as_numbers(raw: psycopg.Connection[Any]) -> None:
    """The encoding stays queryable JSON: 1e300 is a JSONB number equal to 10**300."""
    row = raw.execute("SELECT (%s::jsonb -> 0)::numeric = 1e300", (dumps([1e300]),)).fetchone()
    assert row == (True,)


# -- incremental rows ---------------------------------------------------------------------------
async def test_each_step_writes_a_small_delta_row(store: PostgresStore, schema: str) -> None:
    """A run with a 100 kB state checkpointed every step writes one base row, then rows
    the size of the update; every checkpoint loads with the state of its step."""

    async def step(state: Any) -> dict[str, Any]:
        return {"n": 1, "log": state["n"]}

    graph = (
        GraphBuilder("inc")
        .task("step", step)
        .task("end", lambda s: None)
        .edge_if("step", "step", lambda s: s["n"] < 30)
        .edge("step", "end")
        .reducer("n", reducers.add)
        .reducer("log", reducers.append)
        .start("step")
        .end("end")
        .build()
    )
    executor = Executor(store=store, policy=CheckpointPolicy(every_step=True))
    result = await executor.run(graph, {"blob": "x" * 100_000, "n": 0, "log": []})
    assert result.state["n"] == 30
    history = await store.list(result.trace_id)
    assert [c.state["n"] for c in history] == [*range(1, 31), 30]
    assert [c.state["log"] for c in history][-1] == list(range(30))
    with connect(dsn(), schema) as conn:
        sizes = conn.execute(
            """SELECT base_id IS NULL, pg_column_size(body) FROM trio_graph_checkpoints
            ORDER BY seq"""
        ).fetchall()
    assert sizes[0][0] and sizes[0][1] > 1_000  # the base snapshot (compressed by TOAST)
    assert all(not full and size < 200 for full, size in sizes[1:])


async def test_a_refused_value_in_a_run_writes_nothing(store: PostgresStore) -> None:
    """A node returning a non-JSON value fails the run with CheckpointError naming the key;
    no row holds it."""
    graph = (
        GraphBuilder("bad")
        .task("ok", lambda s: {"fine": 1})
        .task("bad", lambda s: {"oops": {1, 2}})
        .edge("ok", "bad")
        .start("ok")
        .end("bad")
        .build()
    )
    executor = Executor(store=store, policy=CheckpointPolicy(every_step=True))
    with pytest.raises(CheckpointError, match=r"key 'oops'\)$"):
        await executor.run(graph, {})
    [run] = await store.runs()
    assert all("oops" not in c.state for c in await store.list(run.trace_id))


# -- schema ----------------------------------------------------------------------------------
async def test_schema_is_created_once_and_versioned(schema: str) -> None:
    """Opening creates the tables at SCHEMA_VERSION; many stores opening at once agree."""
    stores = [PostgresStore(dsn(), schema=schema, max_size=1) for _ in range(4)]
    async with trio.open_nursery() as nursery:
        for s in stores:
            nursery.start_soon(s.open)
    for s in stores:
        await s.aclose()
    with connect(dsn(), schema) as conn:
        assert conn.execute("SELECT version FROM trio_graph_schema").fetchall() == [
            (SCHEMA_VERSION,)
        ]


async def test_newer_schema_is_refused(schema: str) -> None:
    """A database written by a newer trio_graph raises CheckpointError saying so."""
    async with PostgresStore(dsn(), schema=schema):
        pass
    with connect(dsn(), schema) as conn:
        conn.execute("UPDATE trio_graph_schema SET version = 99")
    store = PostgresStore(dsn(), schema=schema)
    with pytest.raises(
        CheckpointError,
        match=rf"^database schema version 99 is newer than this trio_graph understands "
        rf"\({SCHEMA_VERSION}\); upgrade trio_graph$",
    ):
        await store.latest("x")
    await store.aclose()


def test_schema_name_must_be_an_identifier() -> None:
    """A schema name that is not a plain identifier is refused before any SQL."""
    with pytest.raises(ValueError, match=r"^schema must be a plain SQL identifier, got 'a; b'$"):
        PostgresStore("postgresql://", schema="a; b")


async def test_values_are_bound_not_spliced(store: PostgresStore) -> None:
    """Ids full of SQL are stored and found as plain text (every value is bound)."""
    evil = "x'); DROP TABLE trio_graph_runs; --"
    await store.save(checkpoint(evil, evil + "c", graph_name=evil))
    assert (await store.load(evil + "c")).trace_id == evil
    assert [r.graph_name for r in await store.runs()] == [evil]
    job = await store.submit(evil, {"k": evil}, trace_id=evil + "job")
    assert (await store.job(job)) is not None


async def test_closed_store_raises(schema: str) -> None:
    """After aclose() calls raise CheckpointError."""
    store = PostgresStore(dsn(), schema=schema)
    await store.open()
    await store.aclose()
    with pytest.raises(CheckpointError, match=r"^the store is closed$"):
        await store.latest("x")


async def test_a_fenced_save_is_one_statement_on_the_wire(
    store: PostgresStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A worker's fenced save sends the server one statement: no check query when the
    pool hands out its connection, no BEGIN/COMMIT around it (one round trip)."""
    job = await store.submit("g", {"n": 0})
    [claim] = await store.claim("w", ["g"], 1, 30.0)
    sent: list[Any] = []
    real_execute, real_command = psycopg.Cursor.execute, psycopg.Connection._exec_command

    def execute(self: Any, query: Any, *args: Any, **kwargs: Any) -> Any:
        sent.append(query)
        return real_execute(self, query, *args, **kwargs)

    def command(self: Any, query: Any, *args: Any, **kwargs: Any) -> Any:
        sent.append(query)
        return real_command(self, query, *args, **kwargs)

    monkeypatch.setattr(psycopg.Cursor, "execute", execute)
    monkeypatch.setattr(psycopg.Connection, "_exec_command", command)
    await store.save_fenced(checkpoint(job, "c1"), job, claim.epoch)
    assert len(sent) == 1 and str(sent[0]).lstrip().startswith("WITH fence AS"), sent
    assert (await store.load("c1")).trace_id == job


def test_a_listen_wait_on_its_way_when_the_store_closes_opens_no_connection() -> None:
    """A LISTEN wait that passed the store's open check just before the store closed (an
    abandoned thread) opens no connection that nobody would close: waits return False,
    and ``listen`` does nothing, once the listener is closed."""
    from trio_graph.stores.queue.postgres import _Listener, _WorkListener

    for kind in (_Listener, _WorkListener):
        listener = kind(dsn(), "trio_graph_closed_test", lambda: None)
        listener.close()
        assert listener.wait(0.01) is False
        listener.listen()
        assert not listener.listening, kind
