"""Map nodes: a fan-out over a list known only at run time (DESIGN §15).

Model layer: no trio import. A :class:`~trio_graph._model.graph.MapNode` runs as a
parallel node whose branches are made when it starts: :func:`items_of` asks
``over(state)`` for the list (or takes the one its fork recorded, on a resume), and
:func:`expand` makes one :class:`~trio_graph._model.graph.Branch` per item, named
``"name[i]"``, calling ``fn(item, state)`` (or ``fn(item, state, ctx)``). The runtime's
fork (``_runtime/fanout.py``) then runs them as any parallel node's: limit, per-item
timeout and retry, strategy, records, merge in item order.

**The item list is part of the fork.** It is kept with the fork's finished branches
under the key ``"name[*]"`` (:func:`items_key`), so every checkpoint of the fork in
progress (each branch record, the cancel or failure checkpoint) carries it first, and a
resume or a fork from such a checkpoint runs the very same items, whatever ``over``
would give now; a fork's ``patch`` then changes the state but not the list. From a
checkpoint taken before the map node started, ``over`` reads the (patched) state.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any

from ..errors import CheckpointError, NodeExecutionFailed
from .checkpoint import BranchResult
from .graph import Branch, MapNode, ParallelNode
from .jsonvalue import json_problem
from .strategies import needed

Done = dict[str, Mapping[str, Any]]


def items_key(name: str) -> str:
    """Where a map node's fork keeps its item list among its branch records."""
    return f"{name}[*]"


def items_of(node: MapNode, state: Mapping[str, Any], done: Done, *, durable: bool) -> list[Any]:
    """The items of ``node``'s fork: those recorded in ``done`` (a resumed fork), else
    ``over(state)``'s, then recorded there. ``over`` raising or returning anything but a
    list is ``NodeExecutionFailed`` naming the node; with a store an item it would not
    give back is a ``CheckpointError``; a quorum larger than the list is an error too."""
    key = items_key(node.name)
    recorded = done.get(key)
    if recorded is not None:
        return list(recorded["items"])
    try:
        items = node.over(state)
    except Exception as exc:
        err = NodeExecutionFailed(node.name, type(exc).__name__, f"over(state) raised: {exc}")
        err.__cause__ = exc
        raise err from exc
    if not isinstance(items, list):
        got = type(items).__name__
        raise NodeExecutionFailed(
            node.name,
            "TypeError",
            f"map node {node.name!r}: over(state) must return a list, got {got}",
        )
    if durable:
        problem = json_problem(items, "items")
        if problem is not None:
            raise CheckpointError(
                f"map node {node.name!r}: over(state) returned an item the store cannot "
                f"give back: {problem}"
            )
    need = needed(node.strategy, node.quorum, len(items))
    if need > len(items):
        raise NodeExecutionFailed(
            node.name,
            "ValueError",
            f"map node {node.name!r}: {node.strategy} needs {need} success(es), "
            f"over(state) gave {len(items)} item(s)",
        )
    done[key] = {"items": items}
    return items


def expand(node: MapNode, items: list[Any]) -> ParallelNode:
    """The fork of ``node`` over ``items``: branch ``"name[i]"`` calls ``fn(items[i], state)``."""
    branches = tuple(
        Branch(
            f"{node.name}[{i}]",
            functools.partial(node.fn, item),
            is_async=node.is_async,
            timeout=node.timeout,
            takes_context=node.takes_context,
            retry=node.retry,
        )
        for i, item in enumerate(items)
    )
    return ParallelNode(
        node.name,
        branches,
        strategy=node.strategy,
        limit=node.limit,
        label=node.label,
        meta=node.meta,
        quorum=node.quorum,
        limiter=node.limiter,
    )


def fanout_records(node: ParallelNode, done: Mapping[str, Mapping[str, Any]]) -> list[BranchResult]:
    """The records of a fork in progress: a map's item list first, then the finished
    branches in declaration (item) order."""
    key = items_key(node.name)
    head = [BranchResult(key, dict(done[key]))] if key in done else []
    return head + [
        BranchResult(b.name, dict(done[b.name])) for b in node.branches if b.name in done
    ]


def forking(
    node: ParallelNode | MapNode, state: Mapping[str, Any], resumed: Done, *, durable: bool
) -> tuple[ParallelNode, Done]:
    """A fan-out starts: the fork to run (a map node's, over its items) and its finished
    branches so far (those of a resumed run, with a map's recorded item list)."""
    done = dict(resumed)
    if isinstance(node, MapNode):
        return expand(node, items_of(node, state, done, durable=durable)), done
    return node, done
