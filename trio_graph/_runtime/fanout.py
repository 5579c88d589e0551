"""Parallel nodes at run time: branches as child tasks under one cancel scope.

Runtime layer (DESIGN §4, §7). The loop calls :func:`run_parallel` between the
node's ``NodeStart`` and ``NodeEnd``; it returns the merged updates, which the loop
commits and announces (``StateChanged`` each) like any node's.

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

**Limit.** ``limit=N`` is a ``trio.CapacityLimiter``. A branch's duration and its
timeout count from when it gets its slot, not while it waits for one.

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
(O(branches) bytes for the whole fork, see ``stores/rows.py``). A record that cannot be saved (a
branch returned a non-JSON value) cancels the fork and is the node's error, a
``CheckpointError`` naming branch and key. A run resumed or forked from one runs
only the unfinished branches.
"""

from __future__ import annotations

import bisect
import types
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import trio

from .. import events as ev
from .._model.checkpoint import BranchResult
from .._model.graph import Branch, ParallelNode
from .._model.jsonvalue import check_update
from .._model.results import Outcome
from .._model.state import merge_branches
from ..errors import BranchFailure, CheckpointError, GraphError, NodeExecutionFailed, StateError
from .calls import call_node, failure

if TYPE_CHECKING:
    from .loop import Loop


async def run_parallel(loop: Loop, node: ParallelNode, span: int, step: int) -> Outcome:
    """Run the branches of ``node``; return their merged updates in declaration order."""
    trace, name = loop.trace_id, node.name
    t_fork = trio.current_time()
    await loop.emit(ev.ParallelStarted(trace, name, span, len(node.branches)))
    done: dict[str, Mapping[str, Any]] = dict(loop.resumed_branches)  # finished earlier
    loop.resumed_branches = {}
    loop.fanout = (node, done)  # a cancel/failure checkpoint records the finished branches
    failures: dict[str, Exception] = {}
    running: dict[str, float] = {}  # branch -> when it got its slot, until it ends
    unsent: list[ev.Event] = []  # events that branches cancelled mid-send hand back
    view = types.MappingProxyType(dict(loop.state))  # the fork's one copy
    limiter = trio.CapacityLimiter(node.limit) if node.limit else None
    fail_fast = node.strategy == "fail_fast"
    record = trio.Lock() if loop.store is not None and loop.policy.branch_writes else None
    records = [BranchResult(b, dict(u)) for b, u in _ordered(node, done)]  # saved so far
    order = {b.name: i for i, b in enumerate(node.branches)}
    unsaved: list[GraphError] = []  # a record that could not be saved

    async def send(event: ev.Event) -> None:
        try:
            await loop.emit(event)
        except trio.Cancelled:
            unsent.append(event)
            raise

    async def run_branch(branch: Branch, scope: trio.CancelScope) -> None:
        bname = branch.name
        t0 = running[bname] = trio.current_time()
        try:
            raw = await call_node(
                name, branch.fn, branch.is_async, view, branch.timeout, branch=bname
            )
            updates = _updates(name, bname, raw)
            if loop.store is not None:  # refused before it is recorded (docs/state.md)
                where = f"branch {bname!r} of node {loop.prefix + name!r} wrote"
                check_update(updates.items(), None, loop.graph.reducers, where)
        except Exception as exc:
            failures[bname] = exc
            if fail_fast:
                scope.cancel()  # before anything that could wait
            ok = False
        else:
            done[bname] = updates
            ok = True
        del running[bname]
        await send(ev.BranchCompleted(trace, name, bname, ok, trio.current_time() - t0))
        if ok and record is not None:
            async with record:
                entry = BranchResult(bname, dict(updates))
                bisect.insort(records, entry, key=lambda r: order[r.branch])
                try:
                    await loop.checkpoint(f"branch {bname!r} record", name, branches=list(records))
                except GraphError as exc:
                    records.remove(entry)
                    unsaved.append(exc)
                    scope.cancel()

    async def queue(branch: Branch, scope: trio.CancelScope) -> None:
        assert limiter is not None
        async with limiter:  # held until its event is sent and its record saved
            await run_branch(branch, scope)

    start = run_branch if limiter is None else queue
    async with trio.open_nursery() as nursery:
        for branch in node.branches:
            if branch.name not in done:
                nursery.start_soon(start, branch, nursery.cancel_scope)
    now = trio.current_time()
    for event in unsent:
        await loop.emit(event)
    for branch in node.branches:  # cancelled by a failing sibling, running or queued
        bname = branch.name
        if bname not in done and bname not in failures:
            took = now - running.get(bname, now)
            await loop.emit(ev.BranchCompleted(trace, name, bname, False, took))
    await loop.emit(ev.ParallelCompleted(trace, name, now - t_fork))
    if unsaved:
        for bname in [b for b in done if b not in {r.branch for r in records}]:
            del done[bname]  # not recorded: a checkpoint of the failure must not carry it
        raise unsaved[0]
    if failures:
        raise _failure(node, failures)
    loop.fanout = None
    deltas = merge_branches(name, loop.graph.reducers, _ordered(node, done))
    return Outcome([(d.key, d.value) for d in deltas])


def _updates(node: str, branch: str, result: object) -> Mapping[str, Any]:
    """A branch's result as updates: a mapping with str keys, or None for none."""
    if result is None:
        return {}
    if isinstance(result, Mapping):
        for key in result:
            if not isinstance(key, str):
                raise StateError(
                    f"branch {branch!r}: state keys must be str, got {key!r}", node=node
                )
        return result
    raise StateError(
        f"branch {branch!r} must return a mapping of updates or None, got {type(result).__name__}",
        node=node,
    )


def _ordered(
    node: ParallelNode, done: Mapping[str, Mapping[str, Any]]
) -> list[tuple[str, Mapping[str, Any]]]:
    """The finished branches' updates, in declaration order."""
    return [(b.name, done[b.name]) for b in node.branches if b.name in done]


def _failure(node: ParallelNode, failures: dict[str, Exception]) -> GraphError:
    """The error of a fork with failed branches (one for fail_fast, all for collect_all)."""
    order = [b.name for b in node.branches if b.name in failures]
    if node.strategy == "fail_fast":
        branch = order[0]
        exc = failures[branch]
        if isinstance(exc, NodeExecutionFailed) and (exc.node, exc.branch) == (node.name, branch):
            return exc  # a branch timeout: already names this node and branch
        if isinstance(exc, CheckpointError):
            return exc  # a value the store cannot give back: names branch, node and key
        return failure(node.name, exc, branch=branch)
    items = [BranchFailure(b, type(failures[b]).__name__, str(failures[b])) for b in order]
    err = NodeExecutionFailed(
        node.name, "ExceptionGroup", f"{len(items)} branch(es) failed", failures=items
    )
    for b in order:
        failures[b].add_note(f"in branch {b!r}")
    err.__cause__ = ExceptionGroup(
        f"parallel node {node.name!r}: {len(items)} branch(es) failed",
        [failures[b] for b in order],
    )
    return err
