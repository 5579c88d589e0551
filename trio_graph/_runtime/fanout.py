"""Parallel nodes at run time: branches as child tasks under one cancel scope.

Runtime layer (DESIGN §4, §7). The loop calls :func:`run_parallel` between the
node's ``NodeStart`` and ``NodeEnd`` with a small :class:`Fork` context (not the loop);
it returns the merged updates, which the loop commits and announces (``StateChanged``
each) like any node's.

**The copy rule: one read-only shallow copy per fork, never one per branch.** The
pre-fork state is copied once (``dict(state)``) and every branch gets the same
read-only ``MappingProxyType`` view of that copy. A branch cannot write to the
state (it returns updates), so there is nothing to copy per branch; the copy only
keeps the view stable for the whole fork. It is shallow: nested values are shared
with the live state and with sibling branches, so a branch must not mutate them in
place. To change a nested value, build a new one and return it as an update (the
built-in reducers never mutate either).

**Strategies.** ``fail_fast`` (default): the first failing branch cancels the
fork's scope before doing anything else, so its siblings, running or still waiting
for a slot, are cancelled at once, even when the event channel is full; the error
is ``NodeExecutionFailed`` naming the branch (``err.branch``; for failures at the
same instant, the first declared). ``collect_all``: every branch runs to its end
and every failure is reported together: ``err.failures`` in declaration order, and
an ``ExceptionGroup`` as ``__cause__`` whose members carry a note naming their
branch. Nothing is merged when any branch failed.

**Limit.** ``limit=N`` is a ``trio.CapacityLimiter``; ``limiter="name"`` names one of
the executor's, shared by all its runs (taken after the node's own). A branch's
duration and its timeout count from when it gets its slots, not while it waits.

**Events.** ``ParallelStarted``; one ``BranchCompleted`` per branch run by this
fork, in completion order (``success=False`` for a failure and for a branch
cancelled by a failing sibling; a branch cancelled while still queued reports a
duration of 0); ``ParallelCompleted``. Then the loop sends the merged
``StateChanged`` and the ``NodeEnd``. When the whole run is cancelled, none of these
is sent: the node's ``NodeEnd(success=False)`` closes the fork.

**Merge.** After every branch has finished, in declaration order whatever the
completion order (:func:`trio_graph._model.state.merge_branches`): two branches writing a
key without a reducer is ``StateError("parallel merge conflict", key, branches)``.

**Records.** With a store (``CheckpointPolicy.branch_writes``), each finished branch
is checkpointed as it completes: a checkpoint pointing at this node that carries
every branch finished so far, in declaration order. These saves are serialised, so a
later checkpoint never carries fewer branches; each one's list is the one before
with the very same records and one more, so a store writes only the new branch
(O(branches) bytes for the whole fork, see ``stores/rows/``). A record that cannot be saved (a
branch returned a non-JSON value) cancels the fork and is the node's error, a
``CheckpointError`` naming branch and key. A run resumed or forked from one runs
only the unfinished branches.
"""

from __future__ import annotations

import bisect
import types
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import attrs
import trio

from .. import events as ev
from .._model.checkpoint import BranchResult
from .._model.graph import Branch, ParallelNode, TaskNode
from .._model.jsonvalue import check_update
from .._model.mapping import fanout_records, items_key
from .._model.results import Outcome
from .._model.schema import StateView
from .._model.state import merged_items
from .._model.strategies import Tally, needed
from ..errors import BranchFailure, GraphError, NodeExecutionFailed, StateError
from .calls import call, call_task, failure, raised
from .context import NodeContext
from .outbox import UNSENT, not_sent


@attrs.frozen
class Fork:
    """What a fan-out needs of its run: where it is, the state to copy, the finished
    branches so far, how to send an event and (with a store) how to save a branch record."""

    trace_id: str
    path: str
    """The parallel node's name as events carry it (``"sub/node"`` inside a subgraph)."""
    span: int
    state: Mapping[str, Any]
    done: dict[str, Mapping[str, Any]]
    """Finished branches (of a resumed run at first), filled in as branches succeed."""
    reducers: Mapping[str, Any]
    emit: Callable[[ev.Event], Awaitable[None]]
    record: Callable[[str, list[BranchResult]], Awaitable[None]] | None
    """Save a checkpoint carrying these records (``None``: records are not kept)."""
    durable: bool
    """A store keeps the run: branch values are checked when they return."""
    context: Callable[[str], NodeContext] | None = None
    """The ``NodeContext`` of a branch (by name) that takes one."""
    typed: bool = False
    """The level's state is typed: branches read a ``StateView`` (DESIGN §16)."""
    limiter: trio.CapacityLimiter | None = None
    """The executor's shared limiter the node names: each branch holds a slot of it."""
    now: Callable[[], float] = trio.current_time
    """The run's clock (the step loop's: its ``current_time``, not looked up per call)."""
    nowait: Callable[[ev.Event], None] = not_sent
    """``send_nowait`` of the run's channel: sends at once or raises one of ``UNSENT``
    (then ``emit`` waits for room, drops or raises; by default always ``emit``)."""


@attrs.define
class _Branches:
    """The fork's bookkeeping while its branches run."""

    node: ParallelNode
    fork: Fork
    view: Mapping[str, Any]
    scope: trio.CancelScope | None = None
    failures: dict[str, Exception] = attrs.field(factory=dict)
    running: dict[str, float] = attrs.field(factory=dict)  # branch -> when it got its slot
    """Kept once the branch ends (only a branch that did not end reads it, in ``_report``)."""
    unsent: list[ev.Event] = attrs.field(
        factory=list
    )  # events branches cancelled mid-send hand back
    records: list[BranchResult] = attrs.field(factory=list)  # saved so far
    unsaved: list[GraphError] = attrs.field(factory=list)  # a record that could not be saved
    lock: trio.Lock | None = None  # serialises the records' saves (made with the first)
    order: dict[str, int] | None = None  # branch -> its place in the declaration (the same)
    tally: Tally = attrs.field(init=False)  # what the strategy still waits for
    discarded: set[str] = attrs.field(factory=set)  # succeeded once the fork had its winners

    def __attrs_post_init__(self) -> None:
        node, done = self.node, self.fork.done
        need = needed(node.strategy, node.quorum, len(node.branches))
        resumed = len(done) > (items_key(node.name) in done)  # more than a map's items
        won = sum(1 for b in node.branches if b.name in done) if resumed else 0
        self.tally = Tally(node.strategy, need, len(node.branches) - won, won)

    async def send(self, event: ev.Event) -> None:
        try:
            await self.fork.emit(event)
        except trio.Cancelled:
            self.unsent.append(event)
            raise

    async def limited(self, branch: Branch, limiter: trio.CapacityLimiter) -> None:
        async with limiter:  # held until its event is sent and its record saved
            await (self.shared(branch) if self.fork.limiter is not None else self.run(branch))

    async def shared(self, branch: Branch) -> None:
        """The branch, holding a slot of the executor's shared limiter too (taken after
        the node's own ``limit``, so a queued branch holds no shared slot)."""
        assert self.fork.limiter is not None
        async with self.fork.limiter:
            await self.run(branch)

    async def run(self, branch: Branch) -> None:
        fork, bname, name = self.fork, branch.name, self.node.name
        t0 = self.running[bname] = fork.now()
        try:
            ctx = fork.context(bname) if branch.takes_context and fork.context else None
            if branch.retry is None and ctx is None and branch.timeout is None:
                try:  # calls.call's plain path without its frame: the same funnel
                    fn = branch.fn
                    result = (await fn(self.view)) if branch.is_async else fn(self.view)
                except Exception as exc:
                    raise failure(name, exc, branch=bname) from exc
            elif branch.retry is None:  # one attempt
                fn, limit, view = branch.fn, branch.timeout, self.view
                result = await call(name, fn, branch.is_async, view, limit, branch=bname, ctx=ctx)
            else:
                result = await self._attempts(branch, ctx)
            updates = _updates(name, bname, result)
            if fork.durable:  # refused before it is recorded (docs/state.md)
                where = f"branch {bname!r} of node {fork.path!r} wrote"
                check_update(updates.items(), None, fork.reducers, where)
        except Exception as exc:
            self.failures[bname] = exc
            if self.tally.failed():
                self._cancel()  # before anything that could wait
            ok = kept = False
        else:
            ok = True
            kept = self.tally.keep()
            if kept:
                fork.done[bname] = updates
                if self.tally.settled:
                    self._cancel()  # the winners are in: the rest stop at once
            else:
                self.discarded.add(bname)
        took = fork.now() - t0
        outcome: ev.BranchOutcome = "succeeded" if kept else "discarded" if ok else "failed"
        event = ev.BranchCompleted(fork.trace_id, fork.path, bname, ok, took, outcome=outcome)
        try:
            fork.nowait(event)  # no coroutine while the channel has room (as the loop's)
        except UNSENT:
            try:
                await fork.emit(event)
            except trio.Cancelled:
                self.unsent.append(event)
                raise
        if kept and fork.record is not None:
            await self._record(bname, updates)

    async def _attempts(self, branch: Branch, ctx: NodeContext | None) -> Any:
        """A branch's result under its retry policy (each retry announced as an
        ``ObservedError`` naming the branch)."""
        name, bname = self.node.name, branch.name
        task = TaskNode(
            name, branch.fn, is_async=branch.is_async, timeout=branch.timeout, retry=branch.retry
        )
        fork = self.fork

        async def on_retry(observed: ev.Observed) -> None:
            observed = attrs.evolve(observed, message=f"branch {bname!r}: {observed.message}")
            await self.send(ev.ObservedError(fork.trace_id, fork.path, observed))

        try:
            return await call_task(task, self.view, on_retry, ctx)
        except NodeExecutionFailed as err:
            err.branch = bname  # one attempt's failure names it (calls.call)
            raise

    async def _record(self, bname: str, updates: Mapping[str, Any]) -> None:
        assert self.fork.record is not None
        if self.lock is None or self.order is None:  # the fork's first record
            self.lock = trio.Lock()
            self.order = {b.name: i for i, b in enumerate(self.node.branches)}
        order = self.order
        async with self.lock:
            entry = BranchResult(bname, dict(updates))
            bisect.insort(self.records, entry, key=lambda r: order.get(r.branch, -1))
            try:
                await self.fork.record(f"branch {bname!r} record", list(self.records))
            except GraphError as exc:
                self.records.remove(entry)
                self.unsaved.append(exc)
                self._cancel()

    def _cancel(self) -> None:
        assert self.scope is not None
        self.scope.cancel()


async def run_parallel(node: ParallelNode, fork: Fork) -> Outcome:
    """Run the branches of ``node``; return their merged updates in declaration order."""
    t_fork = fork.now()
    started = ev.ParallelStarted(fork.trace_id, fork.path, fork.span, len(node.branches))
    try:
        fork.nowait(started)  # no coroutine while the channel has room
    except UNSENT:
        await fork.emit(started)
    done = fork.done
    copy = dict(fork.state)  # the one copy
    view = StateView(copy) if fork.typed else types.MappingProxyType(copy)
    branches = _Branches(node, fork, view)
    if fork.record is not None:  # kept: a resumed fork's records (a map's item list first)
        branches.records = fanout_records(node, done)
        if items_key(node.name) in done:  # saved as the fork starts
            await fork.record("map items", list(branches.records))
    limiter = trio.CapacityLimiter(node.limit) if node.limit else None
    async with trio.open_nursery() as nursery:
        branches.scope = nursery.cancel_scope
        for branch in node.branches:
            if branch.name not in done and not branches.tally.settled:
                if limiter is None and fork.limiter is None:
                    nursery.start_soon(branches.run, branch)
                elif limiter is None:
                    nursery.start_soon(branches.shared, branch)
                else:
                    nursery.start_soon(branches.limited, branch, limiter)
    await _report(node, fork, branches, t_fork)
    if branches.unsaved:
        recorded = {r.branch for r in branches.records}
        for bname in [b for b in done if b not in recorded]:
            del done[bname]  # not recorded: a checkpoint of the failure must not carry it
        raise branches.unsaved[0]
    if branches.tally.fails():
        raise _failure(node, branches.failures)
    return Outcome(merged_items(node.name, fork.reducers, _ordered(node, done)))


async def _report(node: ParallelNode, fork: Fork, branches: _Branches, t_fork: float) -> None:
    """The events owed once the branches are over: those handed back, a failed
    ``BranchCompleted`` for each branch a failing sibling cancelled, ``ParallelCompleted``."""
    now = fork.now()
    for event in branches.unsent:
        await fork.emit(event)
    if branches.tally.left:  # some branches did not end: cancelled by a failing sibling
        ended = branches.failures.keys() | branches.discarded  # or the winners
        for branch in node.branches:
            bname = branch.name
            if bname not in fork.done and bname not in ended:
                took = now - branches.running.get(bname, now)
                cancelled = ev.BranchCompleted(
                    fork.trace_id, fork.path, bname, False, took, outcome="cancelled"
                )
                await fork.emit(cancelled)
    completed = ev.ParallelCompleted(fork.trace_id, fork.path, now - t_fork)
    try:
        fork.nowait(completed)  # no coroutine while the channel has room
    except UNSENT:
        await fork.emit(completed)


def _updates(node: str, branch: str, result: object) -> Mapping[str, Any]:
    """A branch's result as updates: a mapping with str keys, or None for none (else the
    branch's failure, wrapped like any it raises)."""
    if result is None:
        return {}
    if type(result) is dict or isinstance(result, Mapping):
        for key in result:
            if not isinstance(key, str):
                problem = StateError(
                    f"branch {branch!r}: state keys must be str, got {key!r}", node=node
                )
                raise failure(node, problem, branch=branch)
        return result
    problem = StateError(
        f"branch {branch!r} must return a mapping of updates or None, got {type(result).__name__}",
        node=node,
    )
    raise failure(node, problem, branch=branch)


def _ordered(
    node: ParallelNode, done: Mapping[str, Mapping[str, Any]]
) -> list[tuple[str, Mapping[str, Any]]]:
    """The finished branches' updates, in declaration order."""
    return [(b.name, done[b.name]) for b in node.branches if b.name in done]


def _failure(node: ParallelNode, failures: dict[str, Exception]) -> GraphError | Exception:
    """The error of a fork with failed branches: the first declared one's for fail_fast
    (already naming node and branch), all of them for the other strategies."""
    order = [b.name for b in node.branches if b.name in failures]
    if node.strategy == "fail_fast":
        return failures[order[0]]
    causes = {b: raised(failures[b]) for b in order}
    items = [BranchFailure(b, type(causes[b]).__name__, str(causes[b])) for b in order]
    err = NodeExecutionFailed(
        node.name, "ExceptionGroup", f"{len(items)} branch(es) failed", failures=items
    )
    for b in order:
        causes[b].add_note(f"in branch {b!r}")
    err.__cause__ = ExceptionGroup(
        f"parallel node {node.name!r}: {len(items)} branch(es) failed",
        [causes[b] for b in order],
    )
    return err
