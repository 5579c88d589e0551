"""Cycle analysis: every elementary cycle, its ``max_visits`` hints and whether it can exit.

Model layer: no trio import. Cycles are legal; this tells the user which ones only
``max_steps`` would stop (no edge leaves the cycle) and which carry no hint.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Mapping, Sequence

import attrs


@attrs.frozen
class CycleInfo:
    """One elementary cycle, as its nodes in path order starting from the smallest index."""

    nodes: tuple[str, ...]
    has_max_visits: bool
    """Some edge on the cycle carries a ``max_visits`` hint."""
    has_exit: bool
    """Some edge leaves the cycle; if False only ``max_steps`` stops a run inside it."""


Edge = tuple[str, str, bool]
"""An edge as the analysis sees it: from, to, and whether it carries a ``max_visits`` hint."""


def analyze_cycles(names: Sequence[str], edges: Sequence[Edge], end: str) -> list[CycleInfo]:
    """Every elementary cycle of a graph (a plain DFS enumeration; graphs are small).

    ``Graph.analyze_cycles()`` calls it with its node names in declaration order, its
    edges and its end node (this module does not import ``graph.py``).
    """
    order = {name: i for i, name in enumerate(names)}
    adj: dict[str, list[str]] = {n: [] for n in names}
    for frm, to, _ in edges:
        if to not in adj[frm]:
            adj[frm].append(to)
    cycles: list[tuple[str, ...]] = []
    for root in names:
        lo = order[root]
        stack: list[tuple[str, list[str]]] = [(root, [root])]
        while stack:
            node, path = stack.pop()
            for nxt in adj[node]:
                if nxt == root:
                    cycles.append(tuple(path))
                elif order[nxt] > lo and nxt not in path:
                    stack.append((nxt, [*path, nxt]))
    result = []
    for cyc in sorted(cycles, key=lambda c: [order[n] for n in c]):
        members = set(cyc)
        pairs = {(cyc[i], cyc[(i + 1) % len(cyc)]) for i in range(len(cyc))}
        hint = any(hinted for frm, to, hinted in edges if (frm, to) in pairs)
        exits = any(frm in members and to not in members for frm, to, _ in edges)
        result.append(CycleInfo(cyc, hint, exits or end in members))
    return result


def reachable(start: str, adj: Mapping[str, Iterable[str]]) -> set[str]:
    """The nodes reachable from ``start`` along ``adj`` (``start`` included)."""
    seen = {start}
    todo = deque([start])
    while todo:
        for nxt in adj.get(todo.popleft(), ()):
            if nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    return seen
