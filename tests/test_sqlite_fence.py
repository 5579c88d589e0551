"""The fence of a SQLite store's saves, written as one conditional UPDATE with the full
read only for a row it does not change, and the store's memory of linked traces: a save
is still refused (``LeaseLost``, nothing written) whenever the transition table says
so, and a trace is linked to its job again after the job's row went and came back.
"""

from __future__ import annotations

from pathlib import Path

import attrs
import pytest

from trio_graph._model.checkpoint import Checkpoint, RunStatus
from trio_graph.errors import LeaseLost
from trio_graph.stores import SQLiteStore
from trio_graph.stores.queue import JobStatus

pytestmark = pytest.mark.trio


def cp(run: str, cid: str, trace: str | None = None, *, end: bool = False) -> Checkpoint:
    done = {"next_node": None, "status": RunStatus.COMPLETED} if end else {}
    checkpoint = Checkpoint(cid, trace or run, "g", "h", "next", 1, state={"n": 1})
    return attrs.evolve(checkpoint, run_id=run, **done)


async def stored_ids(store: SQLiteStore, run: str) -> list[str]:
    return [c.checkpoint_id for c in await store.list(run)]


async def test_a_save_after_another_claim_is_refused_and_writes_nothing(tmp_path: Path) -> None:
    """Saves under a worker's claim go through (the second with its trace already
    linked); once the lease lapsed and another worker claimed the job, the first
    worker's save is refused and writes nothing, the second's goes through."""
    async with SQLiteStore(tmp_path / "s.db") as store:
        job = await store.submit("g", {})
        [first] = await store.claim("w1", ["g"], 1, 0.0)  # its lease lapses at once
        await store.save_fenced(cp(job, "c1"), job, first.epoch)
        await store.save_fenced(cp(job, "c2"), job, first.epoch)  # lapsed: still its claim
        [second] = await store.claim("w2", ["g"], 1, 30.0)
        with pytest.raises(LeaseLost):
            await store.save_fenced(cp(job, "c3"), job, first.epoch)
        await store.save_fenced(cp(job, "c4"), job, second.epoch)
        assert await stored_ids(store, job) == ["c1", "c2", "c4"]
        found = await store.job(job)
        assert found is not None and found.checkpoint_id == "c4"


async def test_a_save_after_another_hold_is_refused(tmp_path: Path) -> None:
    """A process whose hold lapsed and was taken over by another hold cannot save."""
    async with SQLiteStore(tmp_path / "s.db") as store:
        await store.save(cp("r", "c0"))
        held = await store.hold("r", "hold:one:1", 0.0)
        assert held is not None
        await store.save_fenced(cp("r", "c1"), held.job_id, held.epoch)
        other = await store.hold("r", "hold:two:2", 30.0)
        assert other is not None and other.epoch == held.epoch + 1
        with pytest.raises(LeaseLost):
            await store.save_fenced(cp("r", "c2"), held.job_id, held.epoch)
        assert await stored_ids(store, "r") == ["c0", "c1"]


async def test_a_cancel_marked_run_saves_while_its_lease_is_live(tmp_path: Path) -> None:
    """A held run marked cancelled keeps saving while its lease is live (its follower
    ends it); once its lease lapsed, the marked job counts as cancelled and refuses the
    save; a terminal save while live settles the job cancelled."""
    async with SQLiteStore(tmp_path / "s.db") as store:
        held = await store.hold_new("r", "g", "hold:test:1", 30.0)
        await store.save_fenced(cp("r", "c1"), "r", held.epoch)
        await store.cancel("r")  # held: a mark, the status stays running
        await store.save_fenced(cp("r", "c2"), "r", held.epoch)
        found = await store.job("r")
        assert found is not None and found.checkpoint_id == "c2"
        assert found.status is JobStatus.RUNNING
        assert await store.renew("r", held.epoch, -1.0)  # the lease lapses
        with pytest.raises(LeaseLost):
            await store.save_fenced(cp("r", "c3"), "r", held.epoch)
        assert await stored_ids(store, "r") == ["c1", "c2"]


async def test_a_settling_save_ends_the_job_and_refuses_later_saves(tmp_path: Path) -> None:
    """The terminal save settles the job; a save under the same claim after it is
    refused."""
    async with SQLiteStore(tmp_path / "s.db") as store:
        job = await store.submit("g", {})
        [claim] = await store.claim("w1", ["g"], 1, 30.0)
        await store.save_fenced(cp(job, "c1"), job, claim.epoch)
        await store.save_fenced(cp(job, "c2", end=True), job, claim.epoch)
        found = await store.job(job)
        assert found is not None and found.status is JobStatus.COMPLETED
        with pytest.raises(LeaseLost):
            await store.save_fenced(cp(job, "c3"), job, claim.epoch)


async def test_a_trace_is_linked_again_after_its_job_row_went(tmp_path: Path) -> None:
    """A stored run held outside the queue saves a second trace (linked to the job); the
    hold ends (the job row and its links go); held again with the same epoch, a save of
    that trace links it again: the job is found by the trace id."""
    async with SQLiteStore(tmp_path / "s.db") as store:
        await store.save(cp("r", "c0"))
        held = await store.hold("r", "hold:test:1", 30.0)
        assert held is not None and held.created
        await store.save_fenced(cp("r", "c1", "t2"), "r", held.epoch)
        assert await store.job("t2") is not None
        await store.unhold(held)
        assert await store.job("t2") is None and await store.job("r") is None
        again = await store.hold("r", "hold:test:1", 30.0)
        assert again is not None and again.epoch == held.epoch
        await store.save_fenced(cp("r", "c2", "t2"), "r", again.epoch)
        found = await store.job("t2")
        assert found is not None and found.job_id == "r" and found.checkpoint_id == "c2"


async def test_a_save_naming_another_run_for_a_trace_moves_its_runs_row(tmp_path: Path) -> None:
    """The ``runs`` row of a trace follows its latest save, the run it names included
    (the usual save leaves the run out of its update; this one cannot)."""
    async with SQLiteStore(tmp_path / "s.db") as store:
        await store.save(cp("r1", "c1", "t"))
        await store.save(cp("r1", "c2", "t"))
        await store.save(cp("r2", "c3", "t"))
        [row] = [r for r in await store.runs() if r.trace_id == "t"]
        assert (row.run_id, row.checkpoint_id) == ("r2", "c3")
