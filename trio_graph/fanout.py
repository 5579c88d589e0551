"""Parallel nodes at run time: branches as child tasks under one cancel scope.

Runtime layer. Every branch sees the same read-only view of **one** shallow copy
of the pre-fork state (one copy per fork, never per branch: a branch cannot
write to the state, it returns updates; the copy only keeps the view stable).
``fail_fast`` cancels the siblings at once on the first failure; ``collect_all``
lets every branch finish and reports every failure together. The merge happens
after all branches finished, in declaration order, whatever the completion order
(:func:`trio_graph.state.merge_branches`).

With a store, each finished branch is recorded as it completes (a checkpoint
pointing at this node, carrying the finished branches), so a resume after a
crash or cancel runs only the unfinished branches.
"""

from __future__ import annotations

import types
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import trio

from . import events as ev
from .checkpoint import BranchResult
from .errors import BranchFailure, NodeExecutionFailed, StateError
from .graph import Branch, ParallelNode
from .results import Outcome

if TYPE_CHECKING:
    from .loop import Loop


def _branch_updates(node: str, branch: str, result: object) -> Mapping[str, Any]:
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


async def run_parallel(loop: Loop, node: ParallelNode, span: int, step: int) -> Outcome:
    """Run the branches of ``node``; return the merged updates in declaration order."""
    from .loop import call_node

    trace = loop.trace_id
    t_fork = trio.current_time()
    await loop.emit(ev.ParallelStarted(trace, node.name, span, len(node.branches)))
    done: dict[str, Mapping[str, Any]] = {}
    if loop.resumed_branches:
        done.update(loop.resumed_branches)  # finished before the crash: not run again
        loop.resumed_branches = {}
    failures: dict[str, BaseException] = {}
    view = types.MappingProxyType(dict(loop.state))
    limiter = trio.CapacityLimiter(node.limit) if node.limit else None
    fail_fast = node.strategy == "fail_fast"
    record = loop.store is not None and loop.policy.branch_writes
    started: dict[str, float] = {}
    deferred: list[ev.Event] = []

    async def emit(event: ev.Event) -> None:
        # A branch cancelled (by a failing sibling) while the channel is full hands
        # its event to the parent, which sends it after the nursery: none is lost.
        try:
            await loop.emit(event)
        except trio.Cancelled:
            deferred.append(event)
            raise

    async def run_branch(branch: Branch, scope: trio.CancelScope) -> None:
        started[branch.name] = t0 = trio.current_time()
        try:
            if limiter is not None:
                async with limiter:
                    raw = await call_node(
                        node.name,
                        branch.fn,
                        branch.is_async,
                        view,
                        branch.timeout,
                        branch=branch.name,
                    )
            else:
                raw = await call_node(
                    node.name,
                    branch.fn,
                    branch.is_async,
                    view,
                    branch.timeout,
                    branch=branch.name,
                )
            updates = _branch_updates(node.name, branch.name, raw)
        except Exception as exc:
            failures[branch.name] = exc
            await emit(
                ev.BranchCompleted(trace, node.name, branch.name, False, trio.current_time() - t0)
            )
            if fail_fast:
                scope.cancel()
            return
        done[branch.name] = updates
        await emit(
            ev.BranchCompleted(trace, node.name, branch.name, True, trio.current_time() - t0)
        )
        if record:
            await loop.save(
                node.name,
                branches=[BranchResult(b, dict(u)) for b, u in _ordered(node, done)],
            )

    async with trio.open_nursery() as nursery:
        for branch in node.branches:
            if branch.name not in done:
                nursery.start_soon(run_branch, branch, nursery.cancel_scope)
    for event in deferred:
        await loop.emit(event)
    # Branches cancelled by fail_fast did not complete: say so, once each.
    now = trio.current_time()
    for branch in node.branches:
        name = branch.name
        if name not in done and name not in failures and name in started:
            await loop.emit(ev.BranchCompleted(trace, node.name, name, False, now - started[name]))
    await loop.emit(ev.ParallelCompleted(trace, node.name, trio.current_time() - t_fork))
    if failures:
        raise _failure(node, failures)
    from .state import merge_branches

    deltas = merge_branches(node.name, loop.graph.reducers, _ordered(node, done))
    return Outcome([(d.key, d.value) for d in deltas])


def _ordered(
    node: ParallelNode, done: Mapping[str, Mapping[str, Any]]
) -> list[tuple[str, Mapping[str, Any]]]:
    return [(b.name, done[b.name]) for b in node.branches if b.name in done]


def _failure(node: ParallelNode, failures: dict[str, BaseException]) -> NodeExecutionFailed:
    order = [b.name for b in node.branches if b.name in failures]
    if node.strategy == "fail_fast":
        first = order[0]
        exc = failures[first]
        if isinstance(exc, NodeExecutionFailed):
            return exc
        err = NodeExecutionFailed(node.name, type(exc).__name__, str(exc), branch=first)
        err.__cause__ = exc
        return err
    items = [
        BranchFailure(name, type(failures[name]).__name__, str(failures[name])) for name in order
    ]
    err = NodeExecutionFailed(
        node.name, "ExceptionGroup", f"{len(items)} branch(es) failed", failures=items
    )
    group = ExceptionGroup(
        f"parallel node {node.name!r}: {len(items)} branch(es) failed",
        [_named(failures[name], name) for name in order],
    )
    err.__cause__ = group
    return err


def _named(exc: BaseException, branch: str) -> Exception:
    if isinstance(exc, Exception):
        exc.add_note(f"in branch {branch!r}")
        return exc
    return RuntimeError(f"branch {branch!r}: {exc!r}")
