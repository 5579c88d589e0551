"""The reference interpreter's fan-outs: parallel and map nodes, every strategy (DESIGN
§7, §15), as a sequential program.

Part of :mod:`~trio_graph.testing.reference`, split out to keep each module short; it
shares no logic with the executor. Every branch starts (and is called) at the fork; a
branch finishes ``delay`` seconds later; they finish in order of time, and all those
finishing at one instant finish. What each strategy waits for:

- ``fail_fast``: every branch; the first failure cancels the branches still running.
- ``collect_all``: every branch; all run, every failure is reported.
- ``first_completed``: one success; ``quorum=k``: ``k`` successes. Once the fork has
  them, or can no longer get them, the branches still running are cancelled. The
  successes merge in declaration order; a fork that did not get them fails listing
  every failure.

A cancelled branch gets ``BranchCompleted(success=False, outcome="cancelled")`` after
the finished ones, in declaration order. Left to the scheduler, so ``Unsupported``: a
``fail_fast`` failure among branches finishing together after waiting, and a race
decided among branches finishing together. A map node's ``over(state)`` must return a
list (else ``NodeExecutionFailed``, ``TypeError``), as long as the successes it needs
(else ``ValueError``); its branch ``i`` is ``"name[i]"`` and calls ``fn(items[i],
state)`` through the function's ``reference(item, state)``.
"""

from __future__ import annotations

import copy
import functools
import itertools
import types
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from .._model.graph import MapNode, ParallelNode
from .reference_rules import (
    NodeFailed,
    Outcome,
    Unsupported,
    call_function,
    read_branch_result,
    state_error,
)
from .traces import error_info

Emit = Callable[..., None]
Call = Callable[[Mapping[str, Any]], Any]


def _needed(strategy: str, quorum: int | None, n: int) -> int:
    if strategy == "first_completed":
        return 1
    if strategy == "quorum":
        return quorum or 0
    return n


def parallel(node: ParallelNode, state: Mapping[str, Any], reducers: Any, emit: Emit) -> Outcome:
    """A parallel node's outcome (its events sent through ``emit``)."""
    if node.limit is not None and node.limit < len(node.branches):
        raise Unsupported(f"parallel node {node.name!r}: limit")
    if any(b.timeout is not None or b.retry is not None for b in node.branches):
        raise Unsupported(f"parallel node {node.name!r}: branch timeouts and retries")
    branches = []
    for b in node.branches:
        delay = float(getattr(b.fn, "delay", 0.0))
        branches.append((b.name, functools.partial(call_function, b.fn, b.is_async), delay))
    need = _needed(node.strategy, node.quorum, len(branches))
    return _fork(node.name, node.strategy, need, branches, state, reducers, emit)


def mapped(node: MapNode, state: Mapping[str, Any], reducers: Any, emit: Emit) -> Outcome:
    """A map node's outcome: its items from ``over``, then a fork over them."""
    if node.timeout is not None or node.retry is not None:
        raise Unsupported(f"map node {node.name!r}: timeout and retry")
    stand_in = getattr(node.fn, "reference", None)
    delay_of = getattr(node.fn, "delay_of", None)
    if not callable(stand_in) or not callable(delay_of):
        raise Unsupported(f"map node {node.name!r}: fn needs reference() and delay_of()")
    try:
        items = node.over(types.MappingProxyType(state))
    except Exception as exc:
        raise NodeFailed(_failed(node.name, type(exc).__name__)) from None
    if type(items) is not list:
        raise NodeFailed(_failed(node.name, "TypeError"))
    need = _needed(node.strategy, node.quorum, len(items))
    if need > len(items):
        raise NodeFailed(_failed(node.name, "ValueError"))
    if node.limit is not None and node.limit < len(items):
        raise Unsupported(f"map node {node.name!r}: limit")
    branches = [
        (f"{node.name}[{i}]", functools.partial(stand_in, item), float(delay_of(item)))
        for i, item in enumerate(items)
    ]
    return _fork(node.name, node.strategy, need, branches, state, reducers, emit)


def _failed(node: str, error_type: str, **fields: Any) -> Any:
    return error_info("NodeExecutionFailed", node=node, error_type=error_type, **fields)


def _fork(
    name: str,
    strategy: str,
    need: int,
    branches: Sequence[tuple[str, Call, float]],
    state: Mapping[str, Any],
    reducers: Any,
    emit: Emit,
) -> Outcome:
    emit("ParallelStarted", name, len(branches))
    view = types.MappingProxyType(copy.copy(state))  # every branch: the pre-fork state
    results: dict[str, tuple[bool, Any]] = {}  # every branch starts: what it returns
    for bname, fn, _ in branches:
        try:
            results[bname] = (True, read_branch_result(name, fn(view)))
        except Unsupported:
            raise
        except NodeFailed:
            results[bname] = (False, "StateError")
        except Exception as exc:
            results[bname] = (False, type(exc).__name__)
    racing = strategy in ("first_completed", "quorum")
    done: dict[str, dict[str, Any]] = {}
    failed: dict[str, str] = {}
    left = len(branches)

    def finish(branch: tuple[str, Call, float]) -> float:
        return branch[2]

    for instant, same_time in itertools.groupby(sorted(branches, key=finish), key=finish):
        group = [b[0] for b in same_time]
        oks = sum(1 for b in group if results[b][0])
        if len(group) > 1 and instant > 0 and strategy == "fail_fast" and oks < len(group):
            raise Unsupported(f"{name!r}: fail_fast failure among simultaneous branches")
        decided = len(done) + oks >= need or len(done) + oks + left - len(group) < need
        if len(group) > 1 and racing and decided:
            raise Unsupported(f"{name!r}: a race decided among simultaneous branches")
        for bname in group:
            ok, value = results[bname]
            (done if ok else failed)[bname] = value
            emit("BranchCompleted", name, bname, ok, "succeeded" if ok else "failed")
        left -= len(group)
        if (failed and strategy == "fail_fast") or (racing and decided):
            break  # the branches still running are cancelled
    for bname, _, _ in branches:
        if bname not in done and bname not in failed:
            emit("BranchCompleted", name, bname, False, "cancelled")
    emit("ParallelCompleted", name)
    order = [b[0] for b in branches]
    if (len(done) < need) if racing else failed:
        names = [b for b in order if b in failed]
        if strategy == "fail_fast":
            raise NodeFailed(_failed(name, failed[names[0]], branch=names[0]))
        failures = tuple((b, failed[b]) for b in names)
        raise NodeFailed(_failed(name, "ExceptionGroup", failures=failures))
    # Merge in declaration order; a key written twice needs a reducer.
    writers: dict[str, list[str]] = {}
    items: list[tuple[str, Any]] = []
    for bname in order:
        for key, value in done.get(bname, {}).items():
            writers.setdefault(key, []).append(bname)
            items.append((key, value))
    for key, names in writers.items():
        if len(names) > 1 and key not in reducers:
            raise state_error(name, key, names)
    return Outcome(tuple(items))
