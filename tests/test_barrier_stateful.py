"""Stateful test of barrier decisions: random decisions at random moments vs a tiny model.

One real run per Hypothesis example, on a ``MockClock`` whose time moves only when a
rule says so. The run lives in its own thread (``trio.run``); each rule steers it
from the test thread with ``trio.from_thread`` and then waits, inside the run, until
every task is blocked (``trio.testing.wait_all_tasks_blocked``), so after each rule the
run is at rest and can be compared with the model.

The graph loops ``work -> b -> c -> work``: ``work`` waits at a gate that the
``release`` rule opens once (now, or for its next run), ``b`` has no timeout, ``c``
has a timeout and a default action drawn per example. Decisions are sent exact (for
the occurrence waiting, earlier ones or later ones: during, after or before arrival)
and as wildcards, and may be Reroutes with or without an edge. The model says, per
the rules of DESIGN §6, what each decision call raises, and what every occurrence is
resolved with and when.
"""

from __future__ import annotations

import threading
from typing import Any

import pytest
import trio
import trio.testing
from _campaign import sizes
from hypothesis import event as note_event
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    precondition,
    rule,
    run_state_machine_as_test,
)

from trio_graph import (
    Approve,
    BarrierError,
    BarrierId,
    Cancelled,
    Executor,
    GraphBuilder,
    MissingEdge,
    Modify,
    Reject,
    Reroute,
)
from trio_graph import events as ev
from trio_graph._model.decisions import Decision
from trio_graph._model.graph import Graph

EDGES = {"b": {"c", "work"}, "c": {"end", "work"}}
"""Where each barrier has an edge to (of any class): the valid Reroute targets."""

NEXT = {"b": "c", "c": "work"}
"""Where each barrier goes when the decision is not a Reroute (c's edge to end is never true)."""

decisions = st.one_of(
    st.just(Approve()),
    st.builds(Reject, st.sampled_from(["no", "redo", ""])),
    st.builds(Modify, st.just("note"), st.integers(0, 9)),
    st.builds(Reroute, st.sampled_from(["work", "c", "end", "b"])),  # some have no edge
)


class LiveRun:
    """A run of ``graph`` in a thread of its own, on a clock that moves only on ``advance``."""

    def __init__(self, graph_for: Any) -> None:
        self.clock = trio.testing.MockClock()  # rate 0, no autojump
        self.events: list[tuple[float, ev.Event]] = []
        self.graph_for = graph_for
        self.run: Any = None
        self.failure: BaseException | None = None
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._thread_main, daemon=True)
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("the run did not start")
        if self.failure is not None:
            raise self.failure

    def _thread_main(self) -> None:
        try:
            trio.run(self._main, clock=self.clock)
        except BaseException as exc:
            self.failure = exc
        finally:
            self._ready.set()

    async def _main(self) -> None:
        self.token = trio.lowlevel.current_trio_token()
        self.gate = trio.Semaphore(0)
        self.stop = trio.Event()
        async with Executor(max_steps=10_000).stream(self.graph_for(self), {}) as run:
            self.run = run
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._consume)
                await trio.testing.wait_all_tasks_blocked()
                self._ready.set()
                await self.stop.wait()
                run.cancel()

    async def _consume(self) -> None:
        async for event in self.run:
            self.events.append((trio.current_time(), event))

    async def _settle(self) -> None:
        await trio.testing.wait_all_tasks_blocked()

    def call(self, fn: Any, *args: Any) -> None:
        """Call ``fn(*args)`` in the run's thread (raising what it raises), then settle."""
        try:
            trio.from_thread.run_sync(fn, *args, trio_token=self.token)
        finally:
            trio.from_thread.run(self._settle, trio_token=self.token)

    def advance(self, seconds: int) -> None:
        """Move the clock on one second at a time, letting the run react after each."""
        for _ in range(seconds):
            self.call(self.clock.jump, 1)

    def release(self) -> None:
        """Open the gate once: the ``work`` node waiting there (or the next one) finishes."""
        self.call(self.gate.release)

    def close(self) -> None:
        if self._thread.is_alive():
            trio.from_thread.run_sync(self.stop.set, trio_token=self.token)
        self._thread.join(10)
        assert not self._thread.is_alive(), "the run did not stop"
        if self.failure is not None:
            raise self.failure


def build_graph(live: LiveRun, timeout: int, default: str) -> Graph:
    async def work(state: Any) -> None:
        await live.gate.acquire()

    return (
        GraphBuilder("stateful")
        .task("work", work)
        .barrier("b")
        .barrier("c", timeout=timeout, default=default)  # type: ignore[arg-type]
        .task("end", lambda s: None)
        .edge("work", "b")
        .edge("b", "c")
        .edge_fallback("b", "work")
        .edge_if("c", "end", lambda s: False)
        .edge("c", "work")
        .start("work")
        .end("end")
        .build()
    )


class BarrierMachine(RuleBasedStateMachine):
    """Steers one live run and keeps the model of what it must do."""

    live: LiveRun | None = None
    consistent = False

    @initialize(timeout=st.integers(1, 4), default=st.sampled_from(["reject", "approve", "skip"]))
    def start(self, timeout: int, default: str) -> None:
        self.timeout = timeout
        self.default = default
        # the model
        self.now = 0
        self.reached = {"b": 0, "c": 0}
        self.pending: dict[BarrierId, Decision] = {}
        self.wild: dict[str, Decision] = {}
        self.resolved: set[BarrierId] = set()
        self.pos: tuple[Any, ...] = ("gate",)
        self.credits = 0  # gate openings not used yet
        self.arrivals: list[tuple[str, float]] = []
        self.applied: list[tuple[str, Decision | None, bool, float]] = []
        self.live = LiveRun(lambda live: build_graph(live, timeout, default))
        self.check()

    # -- the model ---------------------------------------------------------------------
    def arrive(self, node: str) -> None:
        """The run reaches ``node`` now; follow it until it blocks."""
        while True:
            if node == "work":
                if not self.credits:
                    self.pos = ("gate",)
                    return
                self.credits -= 1
                node = "b"
                continue
            if node == "end":
                self.pos = ("done",)
                return
            k = self.reached[node] + 1
            self.reached[node] = k
            bid = BarrierId(node, k)
            self.arrivals.append((str(bid), self.now))
            decision = self.pending.pop(bid, None)
            if decision is None:
                decision = self.wild.get(node)
            if decision is None:
                self.pos = ("wait", bid, self.now)
                return
            node = self.resolve(bid, decision, False, self.now)

    def resolve(self, bid: BarrierId, decision: Decision | None, timed_out: bool, at: float) -> str:
        self.resolved.add(bid)
        self.applied.append((str(bid), decision, timed_out, at))
        if isinstance(decision, Reroute):
            return decision.target
        return NEXT[bid.node]

    def expected_error(
        self, node: str, decision: Decision, bid: BarrierId | None
    ) -> tuple[type, ...]:
        """The errors the call may raise (either, when two problems apply); () for none."""
        if self.pos == ("done",):
            return (BarrierError,)
        errors: tuple[type, ...] = ()
        if isinstance(decision, Reroute) and decision.target not in EDGES[node]:
            errors += (MissingEdge,)
        if bid is not None and bid in self.resolved:
            errors += (BarrierError,)
        return errors

    def waiting_at(self, node: str) -> BarrierId | None:
        if self.pos[0] == "wait" and self.pos[1].node == node:
            return self.pos[1]  # type: ignore[no-any-return]
        return None

    def send(self, call: Any, args: tuple[Any, ...], expected: tuple[type, ...]) -> None:
        assert self.live is not None
        try:
            self.live.call(call, *args)
        except (BarrierError, MissingEdge) as exc:
            assert type(exc) in expected, f"expected one of {expected}, got {exc!r}"
        else:
            assert not expected, f"expected one of {expected}, nothing raised"

    # -- rules -------------------------------------------------------------------------
    @rule(
        node=st.sampled_from(["b", "c"]), offset=st.sampled_from([0, 1, -1, 2]), decision=decisions
    )
    def decide_exact(self, node: str, offset: int, decision: Decision) -> None:
        """decide() for ``node``'s next unresolved occurrence (offset 0: the one waiting, if
        any), a later one (offset > 0) or one already resolved (offset -1)."""
        assert self.live is not None
        unresolved = self.reached[node] + (0 if self.waiting_at(node) else 1)
        bid = BarrierId(node, max(1, unresolved + offset))
        expected = self.expected_error(node, decision, bid)
        moment = "during" if self.waiting_at(node) == bid else "before"
        if bid.occurrence <= self.reached[node] and moment != "during":
            moment = "after"
        note_event(f"exact {moment} arrival: {'/'.join(e.__name__ for e in expected) or 'kept'}")
        self.send(self.live.run.decide, (bid, decision), expected)
        if not expected:
            self.pending[bid] = decision
            if self.waiting_at(node) == bid:
                del self.pending[bid]
                self.arrive(self.resolve(bid, decision, False, self.now))
        self.check()

    @precondition(lambda self: self.pos[0] == "wait")
    @rule(decision=decisions)
    def answer_waiting(self, decision: Decision) -> None:
        """decide() for the occurrence the run is waiting at, as a consumer normally does."""
        self.decide_exact(self.pos[1].node, 0, decision)

    @rule(node=st.sampled_from(["b", "c"]), decision=decisions)
    def decide_all(self, node: str, decision: Decision) -> None:
        """decide_all(): every occurrence of ``node`` not answered exactly, from now on."""
        assert self.live is not None
        expected = self.expected_error(node, decision, None)
        moment = "while waiting" if self.waiting_at(node) else "ahead"
        note_event(f"wildcard {moment}: {'/'.join(e.__name__ for e in expected) or 'kept'}")
        self.send(self.live.run.decide_all, (node, decision), expected)
        if not expected:
            self.wild[node] = decision
            bid = self.waiting_at(node)
            if bid is not None:
                self.arrive(self.resolve(bid, decision, False, self.now))
        self.check()

    @rule(node=st.sampled_from(["work", "end", "zz"]), exact=st.booleans())
    def decide_not_a_barrier(self, node: str, exact: bool) -> None:
        """A decision for a node that is not a barrier is refused, whatever the moment."""
        assert self.live is not None
        run = self.live.run
        if exact:
            self.send(run.decide, (BarrierId(node, 1), Approve()), (BarrierError,))
        else:
            self.send(run.decide_all, (node, Approve()), (BarrierError,))
        self.check()

    @rule()
    def release(self) -> None:
        """Open the gate once: ``work`` finishes now, or the next time it runs."""
        assert self.live is not None
        self.live.release()
        self.credits += 1
        if self.pos == ("gate",):
            self.arrive("work")
        self.check()

    @rule(seconds=st.integers(1, 4))
    def advance(self, seconds: int) -> None:
        """Time passes; a barrier waiting past its timeout takes its default action."""
        assert self.live is not None
        self.live.advance(seconds)
        for _ in range(seconds):
            self.now += 1
            if self.pos[0] == "wait" and self.pos[1].node == "c":
                _, bid, since = self.pos
                if since + self.timeout == self.now:
                    note_event("timeout")
                    self.arrive(self.resolve(bid, self.default_decision(), True, self.now))
        self.check()

    def default_decision(self) -> Decision | None:
        if self.default == "approve":
            return Approve()
        if self.default == "skip":
            return None
        return Reject(f"timed out after {self.timeout}s")

    # -- comparing the run with the model -----------------------------------------------
    def check(self) -> None:
        assert self.live is not None
        self.consistent = False
        events = self.live.events
        arrivals = [(str(e.barrier_id), t) for t, e in events if isinstance(e, ev.BarrierWaiting)]
        applied = [
            (str(e.barrier_id), e.decision, e.timed_out, t)
            for t, e in events
            if isinstance(e, ev.BarrierResolved)
        ]
        assert arrivals == self.arrivals
        assert applied == self.applied
        assert self.live.run.done == (self.pos == ("done",))
        self.consistent = True

    def teardown(self) -> None:
        live = self.live
        if live is None:
            return
        live.close()
        if not self.consistent:
            return  # a rule failed: that failure is the one to report
        note_event(f"ends {self.pos[0]}")
        check_effects([e for _, e in live.events])
        run = live.run
        if self.pos == ("done",):
            assert run.error is None and run.result is not None
            assert isinstance(live.events[-1][1], ev.GraphComplete)
        else:
            assert isinstance(run.error, Cancelled)
            assert isinstance(live.events[-1][1], ev.GraphError)
            if self.pos[0] == "wait":
                assert run.error.barrier == str(self.pos[1])
            else:
                assert (run.error.node, run.error.barrier) == ("work", "")


def check_effects(events: list[ev.Event]) -> None:
    """After each BarrierResolved: the state writes its decision makes, then where it goes."""
    for i, event in enumerate(events):
        if not isinstance(event, ev.BarrierResolved):
            continue
        node, decision = event.node, event.decision
        rest = events[i + 1 :]
        end = next(j for j, e in enumerate(rest) if isinstance(e, ev.NodeEnd))
        writes = [(e.key, e.value) for e in rest[:end] if isinstance(e, ev.StateChanged)]
        assert rest[end].success is True  # type: ignore[attr-defined]
        if isinstance(decision, Approve):
            assert writes == [(f"{node}.approved", True)]
        elif isinstance(decision, Reject):
            assert writes == [
                (f"{node}.approved", False),
                (f"{node}.reject_reason", decision.reason),
            ]
        elif isinstance(decision, Modify):
            assert writes == [(decision.key, decision.value)]
        else:
            assert writes == []
        target = decision.target if isinstance(decision, Reroute) else NEXT[node]
        following = [e for e in rest[end:] if isinstance(e, ev.NodeStart)]
        if following:
            assert following[0].node == target


@pytest.mark.parametrize("examples", sizes(200))
def test_barrier_decisions_agree_with_the_model(examples: int) -> None:
    """Random decisions at random moments against the model (ten sequences in the fast
    loop, 200 in the campaign)."""
    run_state_machine_as_test(
        BarrierMachine,
        settings=settings(max_examples=examples, stateful_step_count=30, deadline=None),
    )
