"""Stateful test (issue 15) of decide / cancel / resume / claim from several processes,
against a model: each barrier is decided exactly once, no run is lost, nothing is
decided twice.

Three ``SQLiteStore`` objects on one file stand in for three processes. A job runs the
graph ``n0 -> b1 -> n1 -> b2 -> n2 -> b3 -> n3``: each barrier ``bK`` is answered with
``Modify("tag", t)`` (a tag unique per decide call) and the task after it appends the
tag to ``log``. Rules, each through a store drawn at random: ``submit``; ``decide`` the
barrier a job stands at (the latest decision before the run takes it wins); ``cancel``;
``work`` (a worker drains the queue: runs every runnable job to its next barrier, where
it parks, or to its end); ``resume`` a job whose barrier is decided in this "process"
(``Executor.resume``, stopped at the next barrier). After every rule each job's status
and ``log`` (its latest checkpoint's) must be the model's: the applied tags in barrier
order, one per barrier, each the last one sent before it was taken.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import attrs
import pytest
import trio
from _campaign import sizes
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from trio_graph import BarrierId, Executor, GraphBuilder, Modify
from trio_graph import events as ev
from trio_graph._model.checkpoint import RunStatus
from trio_graph._model.graph import Graph
from trio_graph.errors import BarrierError, CheckpointError
from trio_graph.stores.queue import JobStatus
from trio_graph.stores.sqlite import SQLiteStore
from trio_graph.worker import Worker

BARRIERS = 3


def _note(state: Any) -> dict[str, Any]:
    return {"log": [*state.get("log", []), state["tag"]]}


def chain() -> Graph:
    builder = GraphBuilder("chain").task("n0", lambda s: {"log": []})
    for k in range(1, BARRIERS + 1):
        builder = builder.barrier(f"b{k}").task(f"n{k}", _note)
        builder = builder.edge(f"n{k - 1}", f"b{k}").edge(f"b{k}", f"n{k}")
    return builder.start("n0").end(f"n{BARRIERS}").build()


GRAPH = chain()


@attrs.define
class Model:
    """What one job should be: the barrier it stands at (1..3; 4: done), the tag kept
    for that barrier, the tags applied, and whether it was cancelled."""

    stage: int = 1
    kept: str | None = None
    log: list[str] = attrs.Factory(list)
    started: bool = False
    """A worker ran it (it has checkpoints)."""
    cancelled: bool = False

    @property
    def done(self) -> bool:
        return self.stage > BARRIERS

    def take(self) -> None:
        """The run takes its kept decision (if any) and goes on to the next barrier."""
        self.started = True
        if self.kept is not None:
            self.log.append(self.kept)
            self.kept = None
            self.stage += 1


class QueueMachine(RuleBasedStateMachine):
    def __init__(self, tmp: Path) -> None:
        super().__init__()
        path = Path(tempfile.mkdtemp(dir=tmp)) / "queue.db"
        self.stores = [SQLiteStore(path) for _ in range(3)]
        self.jobs: dict[str, Model] = {}
        self.tags = 0

    def run(self, fn: Any, *args: Any) -> Any:
        return trio.run(fn, *args)

    def pick(self, data: st.DataObject, ok: Any = lambda m: True) -> tuple[str, Model]:
        ids = sorted(j for j, m in self.jobs.items() if ok(m))
        job = data.draw(st.sampled_from(ids))
        return job, self.jobs[job]

    @rule(who=st.integers(0, 2))
    def submit(self, who: int) -> None:
        job = self.run(self.stores[who].submit, "chain", {})
        self.jobs[job] = Model()

    @precondition(lambda self: self.jobs)
    @rule(who=st.integers(0, 2), data=st.data())
    def decide(self, who: int, data: st.DataObject) -> None:
        job, model = self.pick(data)
        self.tags += 1
        tag = f"t{self.tags}"
        bid = BarrierId(f"b{min(model.stage, BARRIERS)}", 1)
        decide = self.stores[who].decide
        if model.cancelled or model.done:
            with pytest.raises(BarrierError, match="has finished"):
                self.run(decide, job, bid, Modify("tag", tag))
            return
        self.run(decide, job, bid, Modify("tag", tag))
        model.kept = tag  # a later decision for the same barrier replaces it

    @precondition(lambda self: self.jobs)
    @rule(who=st.integers(0, 2), data=st.data())
    def cancel(self, who: int, data: st.DataObject) -> None:
        job, model = self.pick(data)
        if model.done:
            with pytest.raises(CheckpointError, match="has already completed"):
                self.run(self.stores[who].cancel, job)
            return
        self.run(self.stores[who].cancel, job)
        model.cancelled = True

    @rule(who=st.integers(0, 2))
    def work(self, who: int) -> None:
        """A worker drains the queue: every job not cancelled and not waiting for a
        decision runs to its next barrier (taking the kept one) or its end."""
        worker = Worker(self.stores[who], [GRAPH], poll_interval=0.05)
        self.run(lambda: worker.serve(until_idle=True))
        for model in self.jobs.values():
            if not model.cancelled and not model.done:
                if not model.started or model.kept is not None:
                    model.take()

    @precondition(
        lambda self: any(m.started and m.kept and not m.cancelled for m in self.jobs.values())
    )
    @rule(who=st.integers(0, 2), data=st.data())
    def resume(self, who: int, data: st.DataObject) -> None:
        """This "process" resumes a job whose barrier is decided; the run takes the
        decision from the store and is stopped at its next barrier (left resumable)."""
        job, model = self.pick(data, lambda m: m.started and m.kept and not m.cancelled)

        async def resume() -> None:
            async with Executor(store=self.stores[who]).resume(GRAPH, job) as run:
                async for event in run:
                    if isinstance(event, ev.BarrierWaiting) and not event.answered:
                        run.cancel()

        self.run(resume)
        model.take()

    @invariant()
    def agrees_with_the_model(self) -> None:
        store = self.stores[0]
        for job, model in self.jobs.items():
            row = self.run(store.job, job)
            assert row is not None, f"job {job} lost"
            if model.cancelled:
                assert row.status is JobStatus.CANCELLED
            elif model.done:
                assert row.status is JobStatus.COMPLETED
            else:
                assert row.status in (JobStatus.QUEUED, JobStatus.WAITING)
            latest = self.run(store.latest, job)
            if not model.started:
                assert latest is None
                continue
            assert latest.state["log"] == model.log, job  # each barrier once, in order
            if model.done and not model.cancelled:
                assert latest.status is RunStatus.COMPLETED
        assert not any(r.status is RunStatus.INTERRUPTED for r in self.run(store.runs))

    def teardown(self) -> None:
        for store in self.stores:
            self.run(store.aclose)


@pytest.mark.parametrize("examples", sizes(15, quick=5))
def test_decide_cancel_resume_claim_agree_with_the_model(tmp_path: Path, examples: int) -> None:
    """Random submit/decide/cancel/work/resume sequences through three store objects on
    one SQLite file keep every job's status and decision log as the model says."""
    run_state_machine_as_test(
        lambda: QueueMachine(tmp_path),
        settings=settings(max_examples=examples, stateful_step_count=15, deadline=None),
    )
