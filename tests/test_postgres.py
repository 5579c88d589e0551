"""PostgresStore specifics against a real server (the shared protocol is in
test_store_conformance.py): JSONB fidelity, incremental rows, schema versions, bound SQL,
and the run queue's primitives (submit, claim, leases, epochs, fencing, decisions).

Needs ``TRIO_GRAPH_PG_DSN`` (``eval "$(scripts/postgres.sh)"``); skipped without it,
failed without it under CI. Lease expiry is driven by the database clock, so these tests
use ``lease=0`` (expired at once) rather than waiting.
"""

from __future__ import annotations

import math
from collections.abc import AsyncIterator, Iterator
from typing import Any

import attrs
import psycopg
import pytest
import trio
from _pg import SKIP_WITHOUT_SERVER, connect, drop_schema, dsn, new_schema
from hypothesis import given
from hypothesis import strategies as st

from trio_graph import (
    Approve,
    BarrierId,
    CheckpointPolicy,
    Executor,
    GraphBuilder,
    Modify,
    Reject,
    Reroute,
    reducers,
)
from trio_graph.checkpoint import Checkpoint, DecisionEntry, RunStatus
from trio_graph.errors import BarrierError, CheckpointError, LeaseLost, StateError
from trio_graph.stores.postgres import SCHEMA_VERSION, PostgresStore, dumps, loads
from trio_graph.stores.queue import FencedStore, JobStatus, QueueStore

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


# -- the queue ---------------------------------------------------------------------------------
async def test_store_is_a_queue_store(store: PostgresStore) -> None:
    """PostgresStore implements the QueueStore protocol workers use."""
    assert isinstance(store, QueueStore)


async def test_submit_validates_the_state(store: PostgresStore) -> None:
    """submit() refuses non-mappings, non-str keys and non-JSON values, naming the key."""
    with pytest.raises(StateError, match=r"^initial state must be a mapping, got list$"):
        await store.submit("g", [1])  # type: ignore[arg-type]
    with pytest.raises(StateError, match=r"state keys must be str, got int"):
        await store.submit("g", {1: "x"})  # type: ignore[dict-item]
    with pytest.raises(CheckpointError, match=r"not JSON-compatible \(key 'bad'\)$"):
        await store.submit("g", {"bad": {1}})
    job = await store.submit("g", {"a": 1}, trace_id="same")
    with pytest.raises(CheckpointError, match=r"^a run with id 'same' was already submitted$"):
        await store.submit("g", {"a": 1}, trace_id="same")
    assert job == "same"
    assert [j.job_id for j in await store.jobs()] == ["same"]


async def test_claims_are_exclusive_and_count_epochs(store: PostgresStore) -> None:
    """A job is claimed once (epoch 1); an expired lease lets another claim it (epoch 2),
    and the first claim can then neither renew, save, release nor finish."""
    job = await store.submit("g", {"n": 1})
    [first] = await store.claim("w1", ["g"], 5, 0.0)  # lease 0: expired at once
    assert (first.job_id, first.epoch, first.state, first.checkpoint_id) == (job, 1, {"n": 1}, None)
    [second] = await store.claim("w2", ["g"], 5, 30.0)
    assert second.epoch == 2
    assert await store.claim("w3", ["g"], 5, 30.0) == []
    assert not await store.renew(job, 1, 30.0)
    assert await store.renew(job, 2, 30.0)
    stale = FencedStore(store, job, 1)
    with pytest.raises(LeaseLost, match=rf"^lease on run '{job}' lost \(epoch 1 is stale\)"):
        await stale.save(checkpoint(job, "c-stale"))
    assert stale.refused == 1
    assert await store.latest(job) is None  # nothing written
    await FencedStore(store, job, 2).save(checkpoint(job, "c-ok"))
    assert not await store.release(job, 1)
    assert not await store.finish(job, 1, JobStatus.COMPLETED)
    info = await store.job(job)
    assert info is not None
    assert (info.status, info.owner, info.epoch, info.checkpoint_id) == (
        JobStatus.RUNNING,
        "w2",
        2,
        "c-ok",
    )


async def test_release_requeues_and_claim_filters_graphs(store: PostgresStore) -> None:
    """A released job is runnable again at once; claims only take the graphs asked for."""
    a = await store.submit("a", {})
    b = await store.submit("b", {})
    [claim] = await store.claim("w", ["a"], 5, 30.0)
    assert claim.job_id == a
    assert await store.release(a, 1)
    claims = await store.claim("w", ["a", "b"], 5, 30.0)
    assert sorted((c.job_id, c.epoch) for c in claims) == sorted([(a, 2), (b, 1)])


async def test_terminal_checkpoint_settles_the_job(store: PostgresStore) -> None:
    """A completed checkpoint saved through the fence completes the job in the same write."""
    job = await store.submit("g", {})
    [claim] = await store.claim("w", ["g"], 1, 30.0)
    done = attrs.evolve(checkpoint(job, "c1", status=RunStatus.COMPLETED), next_node=None)
    await FencedStore(store, job, claim.epoch).save(done)
    info = await store.job(job)
    assert info is not None
    assert (info.status, info.owner, info.checkpoint_id) == (JobStatus.COMPLETED, None, "c1")
    assert await store.claim("w", ["g"], 1, 30.0) == []


async def test_decisions_wake_parked_jobs(store: PostgresStore) -> None:
    """A job parked at a barrier stays put until a decision for that occurrence (or a
    wildcard for the node) arrives; then it is runnable. Decisions are kept in order."""
    job = await store.submit("g", {})
    [claim] = await store.claim("w", ["g"], 1, 30.0)
    assert await store.park(job, claim.epoch, BarrierId("review", 2))
    info = await store.job(job)
    assert info is not None
    assert (info.status, info.pending_barrier) == (JobStatus.WAITING, BarrierId("review", 2))
    await store.decide(job, BarrierId("review", 3), Reject("later"))  # kept for later
    await store.decide(job, "other#2", Approve())
    assert await store.claim("w", ["g"], 1, 30.0) == []
    await store.decide_all(job, "review", Modify("k", [1, 2.5]))
    [again] = await store.claim("w", ["g"], 1, 30.0)
    assert again.epoch == 2
    assert await store.decisions(job) == [
        DecisionEntry("review", 3, Reject("later")),
        DecisionEntry("other", 2, Approve()),
        DecisionEntry("review", 0, Modify("k", [1, 2.5])),
    ]


async def test_park_after_the_decision_came_requeues(store: PostgresStore) -> None:
    """Parking a job whose decision already arrived leaves it runnable (no lost wake-up)."""
    job = await store.submit("g", {})
    [claim] = await store.claim("w", ["g"], 1, 30.0)
    await store.decide(job, BarrierId("review", 1), Approve())
    assert await store.park(job, claim.epoch, BarrierId("review", 1))
    info = await store.job(job)
    assert info is not None and info.status == JobStatus.QUEUED


async def test_decide_refusals(store: PostgresStore) -> None:
    """Decisions for unknown or finished runs, malformed decisions and non-JSON values
    are refused with a clear error."""
    with pytest.raises(BarrierError, match=r"^no run 'nope' in the store \(node 'r'\)$"):
        await store.decide("nope", BarrierId("r", 1), Approve())
    job = await store.submit("g", {})
    with pytest.raises(BarrierError, match=r"^malformed decision: expected .* got str$"):
        await store.decide(job, BarrierId("r", 1), "yes")  # type: ignore[arg-type]
    with pytest.raises(CheckpointError, match=r"not JSON-compatible \(key 'k'\)$"):
        await store.decide(job, BarrierId("r", 1), Modify("k", math.inf))
    [claim] = await store.claim("w", ["g"], 1, 30.0)
    assert await store.finish(job, claim.epoch, JobStatus.COMPLETED)
    with pytest.raises(BarrierError, match=r"^the run has finished; decision not applied"):
        await store.decide(job, BarrierId("r", 1), Reroute("x"))


async def test_decide_by_a_later_trace_id(store: PostgresStore) -> None:
    """A job's later traces (after a resume) lead decide() and job() to the job."""
    job = await store.submit("g", {})
    [claim] = await store.claim("w", ["g"], 1, 30.0)
    await FencedStore(store, job, claim.epoch).save(checkpoint("trace-2", "c1", resumed_from=job))
    await store.park(job, claim.epoch, BarrierId("r", 1))
    info = await store.job("trace-2")
    assert info is not None and (info.job_id, info.trace_id) == (job, "trace-2")
    await store.decide("trace-2", BarrierId("r", 1), Approve())
    assert (await store.decisions(job)) == [DecisionEntry("r", 1, Approve())]
    assert [c.job_id for c in await store.claim("w", ["g"], 1, 30.0)] == [job]


async def test_a_stored_waiting_run_is_adopted_by_decide(store: PostgresStore) -> None:
    """A run started by an Executor on the store and left at a barrier joins the queue
    when a decision is sent for it, so a worker can finish it."""
    graph = (
        GraphBuilder("hitl")
        .task("a", lambda s: {"a": 1})
        .barrier("review")
        .task("b", lambda s: {"b": 2})
        .edge("a", "review")
        .edge("review", "b")
        .start("a")
        .end("b")
        .build()
    )
    executor = Executor(store=store)
    async with executor.stream(graph, {}) as run:
        async for event in run:
            if type(event).__name__ == "BarrierWaiting":
                break
    trace = run.trace_id
    assert await store.job(trace) is None
    await store.decide(trace, BarrierId("review", 1), Approve())
    info = await store.job(trace)
    assert info is not None and info.status == JobStatus.QUEUED and info.graph_name == "hitl"
    from trio_graph.worker import Worker

    worker = Worker(store, {"hitl": graph}, poll_interval=0.05)
    with trio.fail_after(20):
        await worker.serve(until_idle=True)
    info = await store.job(trace)
    assert info is not None and info.status == JobStatus.COMPLETED
    latest = await store.latest(info.trace_id)
    assert latest is not None
    assert latest.state == {"a": 1, "review.approved": True, "b": 2}
