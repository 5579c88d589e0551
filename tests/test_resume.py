"""Resume, fork and checkpoint policies at run time (DESIGN §8, issue 6).

Every graph here counts its own node (and branch) executions, so "resumed at the
next node" and "ran only the unfinished branches" are asserted on what actually ran.
A process crash is simulated by :class:`Crash`, a ``BaseException`` that nothing in
trio_graph handles: whatever the store holds when it is raised is what a new process
would find (the SIGKILL tests in ``test_crash.py`` do it for real).
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pytest
import trio
from test_store_conformance import STORE_FACTORIES

from trio_graph import (
    AdaptivePolicy,
    Approve,
    BarrierId,
    CheckpointError,
    CheckpointPolicy,
    Executor,
    GraphBuilder,
    GraphChanged,
    Reject,
    RunStatus,
    StepsExceeded,
    reducers,
)
from trio_graph import events as ev
from trio_graph._model.checkpoint import Checkpoint
from trio_graph._model.graph import Graph
from trio_graph.errors import Cancelled
from trio_graph.stores import MemoryStore, RunInfo, SQLiteStore, Store

EVERY_STEP = CheckpointPolicy(every_step=True)


class Crash(BaseException):
    """Stands for the process dying inside a node: no handler in trio_graph catches it."""


class CrashingStore:
    """Delegates to ``inner`` until the ``crash_at``-th save: from then on it keeps nothing.

    That is what a new process finds after the old one died just before writing that
    checkpoint. The old run goes on in memory; what it does afterwards never happened
    as far as the store (and the resumed run) can tell.
    """

    def __init__(self, inner: Store, crash_at: int) -> None:
        self.inner = inner
        self.crash_at = crash_at
        self.saves = 0

    async def save(self, checkpoint: Checkpoint, *, changes: Any = None) -> None:
        self.saves += 1
        if self.saves >= self.crash_at:
            await trio.lowlevel.checkpoint()
            return
        await self.inner.save(checkpoint, changes=changes)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


class FailingStore(CrashingStore):
    """Refuses the ``crash_at``-th save with a CheckpointError (nothing written)."""

    async def save(self, checkpoint: Checkpoint, *, changes: Any = None) -> None:
        self.saves += 1
        if self.saves == self.crash_at:
            raise CheckpointError("disk full", checkpoint_id=checkpoint.checkpoint_id)
        await self.inner.save(checkpoint, changes=changes)


def counted(calls: Counter[str], name: str, fn: Callable[[Mapping[str, Any]], Any]) -> Any:
    async def node(state: Mapping[str, Any]) -> Any:
        calls[name] += 1
        return fn(state)

    return node


def chain_graph(calls: Counter[str], flaky: dict[str, bool], name: str = "chain") -> Graph:
    """a -> b -> c -> d; b raises while ``flaky["b"]``."""

    def b(state: Mapping[str, Any]) -> Any:
        if flaky.get("b"):
            raise RuntimeError("b is flaky")
        return {"log": "b"}

    builder = GraphBuilder(name)
    for node, fn in [
        ("a", lambda s: {"log": "a"}),
        ("b", b),
        ("c", lambda s: {"log": "c"}),
        ("d", lambda s: {"log": "d"}),
    ]:
        builder.task(node, counted(calls, node, fn))
    return (
        builder.edge("a", "b")
        .edge("b", "c")
        .edge("c", "d")
        .reducer("log", reducers.append)
        .start("a")
        .end("d")
        .build()
    )


async def collect(run: Any) -> list[ev.Event]:
    return [e async for e in run]


def started(events: list[ev.Event]) -> list[tuple[str, int]]:
    return [(e.node, e.step) for e in events if isinstance(e, ev.NodeStart)]


# -- resume -------------------------------------------------------------------------------
async def test_resume_continues_at_next_node_with_state_and_steps() -> None:
    """Resume runs from the checkpoint's next node, keeps state and step count, new trace."""
    calls: Counter[str] = Counter()
    flaky = {"b": True}
    graph = chain_graph(calls, flaky)
    store = MemoryStore()
    executor = Executor(store=store)
    with pytest.raises(Exception, match=r"b is flaky"):
        await executor.run(graph, {"log": []})
    [first] = await store.runs()
    latest = await store.latest(first.trace_id)
    assert latest is not None
    assert (latest.next_node, latest.step, latest.status) == ("b", 1, RunStatus.FAILED)
    assert latest.state == {"log": ["a"]}

    flaky["b"] = False
    async with executor.resume(graph, first.trace_id) as run:
        events = await collect(run)
        new_trace = run.trace_id
    assert run.result is not None
    assert run.result.state == {"log": ["a", "b", "c", "d"]}
    assert events[0] == ev.GraphStart(
        new_trace, "chain", "b", 1, first.trace_id, run_id=first.trace_id
    )
    assert started(events) == [("b", 2), ("c", 3), ("d", 4)]
    assert calls == Counter(a=1, b=2, c=1, d=1)
    assert new_trace != first.trace_id
    resumed = await store.latest(new_trace)
    assert resumed is not None
    assert (resumed.resumed_from, resumed.resume_count) == (first.trace_id, 1)
    # One row for the run (issue 15; it was one per trace): its current segment's.
    [row] = await store.runs()
    assert (row.run_id, row.trace_id) == (first.trace_id, new_trace)
    assert row.status == RunStatus.COMPLETED
    assert row.resumed_from == first.trace_id


async def test_resume_cannot_dodge_max_steps() -> None:
    """The step count is restored: a resumed run stops at the same max_steps."""
    calls: Counter[str] = Counter()
    fail_at = {"n": 6}

    def tick(state: Mapping[str, Any]) -> Any:
        if state["n"] == fail_at["n"]:
            raise RuntimeError("interrupted")
        return {"n": state["n"] + 1}

    graph = (
        GraphBuilder("ticker")
        .task("tick", counted(calls, "tick", tick))
        .task("end", lambda s: None)
        .edge_if("tick", "end", lambda s: s["n"] >= 1000)
        .edge("tick", "tick")
        .start("tick")
        .end("end")
        .build()
    )
    store = MemoryStore()
    executor = Executor(store=store, max_steps=10, policy=EVERY_STEP)
    with pytest.raises(Exception, match=r"interrupted"):
        await executor.run(graph, {"n": 0})
    [row] = await store.runs()
    fail_at["n"] = -1
    async with executor.resume(graph, row.trace_id) as run:
        events = await collect(run)
        with pytest.raises(
            StepsExceeded, match=r"^max_steps=10 exceeded before running node 'tick'$"
        ):
            await run.wait()
    assert [step for _, step in started(events)] == [7, 8, 9, 10]
    assert calls["tick"] == 7 + 4


async def test_resume_refuses_a_changed_graph_unless_forced(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A graph-hash mismatch raises GraphChanged; force=True resumes with a warning."""
    calls: Counter[str] = Counter()
    flaky = {"b": True}
    store = MemoryStore()
    executor = Executor(store=store)
    with pytest.raises(Exception, match=r"b is flaky"):
        await executor.run(chain_graph(calls, flaky), {"log": []})
    [row] = await store.runs()
    flaky["b"] = False
    changed = (
        GraphBuilder("chain")
        .task("a", lambda s: {"log": "a"})
        .task("b", lambda s: {"log": "B"})
        .task("d", lambda s: {"log": "D"})
        .edge("a", "b")
        .edge("b", "d")
        .reducer("log", reducers.append)
        .start("a")
        .end("d")
        .build()
    )
    with pytest.raises(GraphChanged, match=r"^graph 'chain' changed since the checkpoint"):
        async with executor.resume(changed, row.trace_id):
            pytest.fail("must not start")  # pragma: no cover
    with caplog.at_level(logging.WARNING, logger="trio_graph"):
        async with executor.resume(changed, row.trace_id, force=True) as run:
            result = await run.wait()
    assert result.state == {"log": ["a", "B", "D"]}
    assert any("resuming despite graph change" in r.getMessage() for r in caplog.records)


async def test_resume_errors() -> None:
    """Resuming an unknown or finished run, or without a store, is a CheckpointError."""
    calls: Counter[str] = Counter()
    graph = chain_graph(calls, {})
    store = MemoryStore()
    executor = Executor(store=store)
    with pytest.raises(CheckpointError, match=r"^no checkpoint for run 'nope'$"):
        async with executor.resume(graph, "nope"):
            pytest.fail("must not start")  # pragma: no cover
    result = await executor.run(graph, {"log": []})
    with pytest.raises(CheckpointError, match=r"nothing left to run \(status completed\)"):
        async with executor.resume(graph, result.trace_id):
            pytest.fail("must not start")  # pragma: no cover
    with pytest.raises(CheckpointError, match=r"^resume\(\) needs an Executor with a store$"):
        async with Executor().resume(graph, result.trace_id):
            pytest.fail("must not start")  # pragma: no cover


# -- barriers across processes ---------------------------------------------------------------
def review_graph(calls: Counter[str]) -> Graph:
    """work -> review (barrier) -> publish; a rejection loops back to work."""
    return (
        GraphBuilder("review")
        .task("work", counted(calls, "work", lambda s: {"round": 1}))
        .barrier("review")
        .task("publish", counted(calls, "publish", lambda s: {"published": True}))
        .edge("work", "review")
        .edge_if("review", "work", lambda s: not s["review.approved"])
        .edge("review", "publish")
        .reducer("round", reducers.add)
        .start("work")
        .end("publish")
        .build()
    )


async def _leave_at_barrier(
    executor: Executor, graph: Graph, answers: int
) -> tuple[str, BarrierId]:
    """Start a run, reject the first ``answers`` barrier occurrences, leave at the next."""
    async with executor.stream(graph, {"round": 0}) as run:
        async for event in run:
            if isinstance(event, ev.BarrierWaiting):
                if event.barrier_id.occurrence > answers:
                    return run.trace_id, event.barrier_id
                run.decide(event.barrier_id, Reject("again"))
    raise AssertionError("never reached the barrier")  # pragma: no cover


async def test_barrier_wait_survives_the_process(tmp_path: Path) -> None:
    """A run left waiting at a barrier resumes, in a new store on the file, with the decision."""
    calls: Counter[str] = Counter()
    graph = review_graph(calls)
    path = tmp_path / "runs.db"
    async with SQLiteStore(path) as store:
        trace, barrier = await _leave_at_barrier(Executor(store=store), graph, answers=0)
    assert barrier == BarrierId("review", 1)

    async with SQLiteStore(path) as store:  # "another process"
        latest = await store.latest(trace)
        assert latest is not None
        assert (latest.status, latest.next_node, latest.pending_barrier) == (
            RunStatus.WAITING,
            "review",
            barrier,
        )
        [row] = await store.runs()
        assert row.status == RunStatus.WAITING
        executor = Executor(store=store)
        async with executor.resume(graph, trace, decisions={barrier: Approve()}) as run:
            events = await collect(run)
    resolved = [e for e in events if isinstance(e, ev.BarrierResolved)]
    assert [(e.barrier_id, e.decision) for e in resolved] == [(barrier, Approve())]
    assert run.result is not None and run.result.state["review.approved"] is True
    assert calls == Counter(work=1, publish=1)  # the work before the barrier is not redone


async def test_resumed_barrier_waits_at_the_same_occurrence(tmp_path: Path) -> None:
    """Left at review#2, the resumed run waits at review#2 and applies a decision for it."""
    calls: Counter[str] = Counter()
    graph = review_graph(calls)
    async with SQLiteStore(tmp_path / "runs.db") as store:
        executor = Executor(store=store)
        trace, barrier = await _leave_at_barrier(executor, graph, answers=1)
        assert barrier == BarrierId("review", 2)
        assert calls == Counter(work=2)
        waited: list[BarrierId] = []
        async with executor.resume(graph, trace) as run:
            async for event in run:
                if isinstance(event, ev.BarrierWaiting):
                    waited.append(event.barrier_id)
                    run.decide(event.barrier_id, Approve())
        assert waited == [BarrierId("review", 2)]
        assert run.result is not None
        assert run.result.state["round"] == 2
        assert calls == Counter(work=2, publish=1)


# -- cancellation ---------------------------------------------------------------------------
def slow_graph(calls: Counter[str], gate: dict[str, bool]) -> Graph:
    """a -> slow -> c; ``slow`` sleeps forever while ``gate["closed"]``."""

    async def slow(state: Mapping[str, Any]) -> Any:
        calls["slow"] += 1
        if gate["closed"]:
            await trio.sleep_forever()
        return {"log": "slow"}

    return (
        GraphBuilder("slow")
        .task("a", counted(calls, "a", lambda s: {"log": "a"}))
        .task("slow", slow)
        .task("c", counted(calls, "c", lambda s: {"log": "c"}))
        .edge("a", "slow")
        .edge("slow", "c")
        .reducer("log", reducers.append)
        .start("a")
        .end("c")
        .build()
    )


@pytest.mark.parametrize("how", ["handle", "scope"])
async def test_cancel_writes_a_consistent_checkpoint_first(
    how: str, autojump_clock: trio.testing.MockClock
) -> None:
    """Cancelling mid-node checkpoints the last completed step before the terminal event."""
    calls: Counter[str] = Counter()
    gate = {"closed": True}
    graph = slow_graph(calls, gate)
    store = MemoryStore()
    executor = Executor(store=store)
    events: list[ev.Event] = []
    with trio.move_on_after(10 if how == "scope" else 1e9):
        async with executor.stream(graph, {"log": []}) as run:
            async for event in run:
                events.append(event)
                if isinstance(event, ev.NodeStart) and event.node == "slow" and how == "handle":
                    run.cancel()
    [row] = await store.runs()
    latest = await store.latest(row.trace_id)
    assert latest is not None
    assert (latest.next_node, latest.step, latest.status) == ("slow", 1, RunStatus.RUNNING)
    assert latest.state == {"log": ["a"]}
    if how == "handle":
        kinds = [type(e).__name__ for e in events[-3:]]
        assert kinds == ["NodeEnd", "CheckpointSaved", "GraphError"]
        assert events[-2] == ev.CheckpointSaved(row.trace_id, latest.checkpoint_id, "slow", 1)
        assert isinstance(run.error, Cancelled)

    gate["closed"] = False
    async with executor.resume(graph, row.trace_id) as resumed:
        result = await resumed.wait()
    assert result.state == {"log": ["a", "slow", "c"]}
    assert calls == Counter(a=1, slow=2, c=1)


def fan_graph(calls: Counter[str], gates: dict[str, trio.Event] | None = None) -> Graph:
    """fan (parallel b1..b4) -> done. With ``gates``, branch bN waits for ``gates[bN]``."""

    def branch(name: str) -> Any:
        async def run(state: Mapping[str, Any]) -> Any:
            calls[name] += 1
            if gates is not None:
                await gates[name].wait()
            return {name: True, "total": 1}

        return run

    return (
        GraphBuilder("fan")
        .parallel("fan", {f"b{i}": branch(f"b{i}") for i in range(1, 5)})
        .task("done", counted(calls, "done", lambda s: {"finished": True}))
        .edge("fan", "done")
        .reducer("total", reducers.add)
        .start("fan")
        .end("done")
        .build()
    )


FAN_RESULT = {"total": 4, "b1": True, "b2": True, "b3": True, "b4": True, "finished": True}


async def _one_branch_at_a_time(run: Any, gates: dict[str, trio.Event], stop_after: int) -> None:
    """Let b1 finish, then after each branch record the next; cancel after ``stop_after``."""
    order = iter(["b1", "b2", "b3", "b4"])
    recorded = 0
    async for event in run:
        if isinstance(event, ev.ParallelStarted):
            gates[next(order)].set()
        elif isinstance(event, ev.CheckpointSaved) and event.node == "fan":
            recorded += 1
            if recorded == stop_after:
                run.cancel()
            else:
                gates[next(order, "b4")].set()


async def test_cancel_mid_fan_out_resumes_only_unfinished_branches() -> None:
    """Branches recorded as finished are not run again after a cancel."""
    calls: Counter[str] = Counter()
    gates = {f"b{i}": trio.Event() for i in range(1, 5)}
    graph = fan_graph(calls, gates)
    store = MemoryStore()
    executor = Executor(store=store)
    async with executor.stream(graph, {"total": 0}) as run:
        await _one_branch_at_a_time(run, gates, stop_after=2)
    assert calls == Counter(b1=1, b2=1, b3=1, b4=1)  # b3 and b4 were running
    latest = await store.latest(run.trace_id)
    assert latest is not None
    assert sorted(b.branch for b in latest.branches) == ["b1", "b2"]

    async with executor.resume(graph, run.trace_id) as resumed:
        for gate in gates.values():
            gate.set()
        result = await resumed.wait()
    assert result.state == FAN_RESULT
    assert calls == Counter(b1=1, b2=1, b3=2, b4=2, done=1)


@pytest.mark.parametrize("store_factory", STORE_FACTORIES)
async def test_crash_mid_fan_out_resumes_only_unfinished_branches(
    store_factory: Callable[[Path], Store], tmp_path: Path
) -> None:
    """After a crash just before the 3rd branch's record, only the other two branches rerun."""
    calls: Counter[str] = Counter()
    gates = {f"b{i}": trio.Event() for i in range(1, 5)}
    graph = fan_graph(calls, gates)
    async with store_factory(tmp_path) as inner:
        crashing = CrashingStore(inner, crash_at=3)
        executor = Executor(store=crashing)  # type: ignore[arg-type]
        async with executor.stream(graph, {"total": 0}) as run:
            await _one_branch_at_a_time(run, gates, stop_after=0)
        assert run.result is not None  # the old process ran on; none of it was stored
        latest = await inner.latest(run.trace_id)
        assert latest is not None
        assert (latest.next_node, latest.status) == ("fan", RunStatus.RUNNING)
        assert [b.branch for b in latest.branches] == ["b1", "b2"]
        before = calls.copy()
        async with Executor(store=inner).resume(graph, run.trace_id) as resumed:
            result = await resumed.wait()
    assert result.state == FAN_RESULT
    assert calls - before == Counter(b3=1, b4=1, done=1)


# -- fork ---------------------------------------------------------------------------------------
async def test_fork_starts_a_new_run_from_any_checkpoint_with_a_patch() -> None:
    """fork() runs from an old checkpoint with patched keys; the original history is kept."""
    graph = (
        GraphBuilder("math")
        .task("inc", lambda s: {"n": s["n"] + 1})
        .task("times", lambda s: {"n": s["n"] * 10})
        .task("show", lambda s: {"shown": f"n={s['n']}"})
        .edge("inc", "times")
        .edge("times", "show")
        .start("inc")
        .end("show")
        .build()
    )
    store = MemoryStore()
    executor = Executor(store=store, policy=EVERY_STEP)
    result = await executor.run(graph, {"n": 0})
    assert result.state == {"n": 10, "shown": "n=10"}
    history = await store.list(result.trace_id)
    assert [(c.next_node, c.step, c.state["n"]) for c in history] == [
        ("times", 1, 1),
        ("show", 2, 10),
        (None, 3, 10),
    ]
    async with executor.fork(graph, history[0].checkpoint_id, patch={"n": 5}) as run:
        events = await collect(run)
        forked = await run.wait()
    assert forked.state == {"n": 50, "shown": "n=50"}
    assert forked.trace_id != result.trace_id
    assert started(events) == [("times", 2), ("show", 3)]
    assert events[0] == ev.GraphStart(forked.trace_id, "math", "times", 1, result.trace_id)
    assert len(await store.list(result.trace_id)) == 3  # the original history is untouched
    with pytest.raises(CheckpointError, match=r"nothing left to run"):
        async with executor.fork(graph, history[-1].checkpoint_id):
            pytest.fail("must not start")  # pragma: no cover
    with pytest.raises(CheckpointError, match=r"^no such checkpoint \(checkpoint 'nope'\)$"):
        async with executor.fork(graph, "nope"):
            pytest.fail("must not start")  # pragma: no cover


# -- policies --------------------------------------------------------------------------------
async def test_adaptive_policy_saves_after_the_node_pointing_at_the_next() -> None:
    """An expensive node is checkpointed after its deltas, so a crash later never re-runs it."""
    calls: Counter[str] = Counter()
    graph = (
        GraphBuilder("adaptive")
        .task("cheap", counted(calls, "cheap", lambda s: {"cheap": True}), token_cost=10)
        .task("llm", counted(calls, "llm", lambda s: {"llm": "answer"}), token_cost=2000)
        .task("email", counted(calls, "email", lambda s: {"sent": 1}), side_effects=True)
        .task("after", counted(calls, "after", lambda s: {"after": True}))
        .edge("cheap", "llm")
        .edge("llm", "email")
        .edge("email", "after")
        .start("cheap")
        .end("after")
        .build()
    )
    store = MemoryStore()
    policy = CheckpointPolicy(adaptive=AdaptivePolicy())
    crashing = CrashingStore(store, crash_at=3)  # dies in "after", before completing
    async with Executor(store=crashing, policy=policy).stream(graph, {}) as run:  # type: ignore[arg-type]
        events = await collect(run)
    saves = [(e.node, e.step) for e in events if isinstance(e, ev.CheckpointSaved)]
    # after llm (token cost) and email (side effects), each pointing at the next node
    assert saves[:2] == [("email", 2), ("after", 3)]
    latest = await store.latest(run.trace_id)
    assert latest is not None
    assert (latest.next_node, latest.step) == ("after", 3)
    assert latest.state == {"cheap": True, "llm": "answer", "sent": 1}
    before = calls.copy()
    async with Executor(store=store, policy=policy).resume(graph, run.trace_id) as resumed:
        result = await resumed.wait()
    assert result.state["after"] is True
    assert calls - before == Counter(after=1)


async def test_request_checkpoint_saves_before_the_next_step(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """run.request_checkpoint() writes a checkpoint pointing at the node about to run."""
    gate = trio.Event()

    async def b(state: Mapping[str, Any]) -> Any:
        await gate.wait()
        return {"log": "b"}

    graph = (
        GraphBuilder("gated")
        .task("a", lambda s: {"log": "a"})
        .task("b", b)
        .task("c", lambda s: {"log": "c"})
        .edge("a", "b")
        .edge("b", "c")
        .reducer("log", reducers.append)
        .start("a")
        .end("c")
        .build()
    )
    store = MemoryStore()
    events: list[ev.Event] = []
    async with Executor(store=store).stream(graph, {"log": []}) as run:
        async for event in run:
            events.append(event)
            if isinstance(event, ev.NodeStart) and event.node == "b":
                run.request_checkpoint()
                gate.set()
    kinds = [(type(e).__name__, getattr(e, "node", None)) for e in events]
    at = kinds.index(("CheckpointSaved", "c"))
    assert kinds[at - 1] == ("NodeEnd", "b") and kinds[at + 1] == ("NodeStart", "c")
    saved = events[at]
    assert isinstance(saved, ev.CheckpointSaved) and saved.step == 2
    checkpoint = await store.load(saved.checkpoint_id)
    assert (checkpoint.state, checkpoint.next_node) == ({"log": ["a", "b"]}, "c")
    with pytest.raises(CheckpointError, match=r"needs an Executor with a store"):
        async with Executor().stream(graph, {"log": []}) as plain:
            plain.request_checkpoint()


# -- failed saves ------------------------------------------------------------------------------
@pytest.mark.parametrize("store_factory", STORE_FACTORIES)
async def test_a_failed_save_leaves_the_next_checkpoint_complete(
    store_factory: Callable[[Path], Store], tmp_path: Path
) -> None:
    """After a refused save the run ends; its final checkpoint still restores the live state."""
    calls: Counter[str] = Counter()
    async with store_factory(tmp_path) as inner:
        store = FailingStore(inner, crash_at=3)
        executor = Executor(store=store, policy=EVERY_STEP)  # type: ignore[arg-type]
        async with executor.stream(chain_graph(calls, {}), {"log": []}) as run:
            events = await collect(run)
        assert isinstance(run.error, CheckpointError)
        assert str(run.error).startswith("disk full")
        terminal = events[-1]
        assert isinstance(terminal, ev.GraphError)
        latest = await inner.latest(run.trace_id)
        assert latest is not None
        assert latest.status == RunStatus.FAILED
        assert latest.state == terminal.state == {"log": ["a", "b", "c"]}
        history = await inner.list(run.trace_id)
        assert [c.state["log"] for c in history] == [["a"], ["a", "b"], ["a", "b", "c"]]


@pytest.mark.parametrize("store_factory", STORE_FACTORIES)
async def test_non_json_state_ends_the_run_naming_the_key(
    store_factory: Callable[[Path], Store], tmp_path: Path
) -> None:
    """A node writing a non-JSON value ends the run with CheckpointError naming node and key."""
    graph = (
        GraphBuilder("bad")
        .task("ok", lambda s: {"fine": 1})
        .task("bad", lambda s: {"oops": {1, 2}})
        .task("end", lambda s: None)
        .edge("ok", "bad")
        .edge("bad", "end")
        .start("ok")
        .end("end")
        .build()
    )
    async with store_factory(tmp_path) as store:
        executor = Executor(store=store, policy=EVERY_STEP)
        with pytest.raises(
            CheckpointError,
            match=r"^node 'bad' wrote a value the store cannot give back: 'oops' got set .*"
            r" \(key 'oops'\)$",
        ):
            await executor.run(graph, {})
        [row] = await store.runs()
        # Refused at commit (issue 13 #5/#13), so the failure itself is checkpointed:
        # the state before the node, pointing at it, never the refused value.
        assert row == RunInfo(
            row.trace_id, "bad", RunStatus.FAILED, row.updated_at, row.checkpoint_id
        )
        ok, failed = await store.list(row.trace_id)
        assert (ok.state, ok.next_node, ok.step) == ({"fine": 1}, "bad", 1)
        assert (failed.state, failed.next_node, failed.step) == ({"fine": 1}, "bad", 1)
