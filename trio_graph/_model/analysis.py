"""Cycle analysis: every elementary cycle, its ``max_visits`` hints and whether it can exit.

Model layer: no trio import. Cycles are legal; this tells the user which ones only
``max_steps`` would stop (no edge leaves the cycle) and which carry no hint.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import attrs

if TYPE_CHECKING:
    from .graph import Graph


@attrs.frozen
class CycleInfo:
    """One elementary cycle, as its nodes in path order starting from the smallest index."""

    nodes: tuple[str, ...]
    has_max_visits: bool
    """Some edge on the cycle carries a ``max_visits`` hint."""
    has_exit: bool
    """Some edge leaves the cycle; if False only ``max_steps`` stops a run inside it."""


def analyze_cycles(graph: Graph) -> list[CycleInfo]:
    """Every elementary cycle of ``graph`` (a plain DFS enumeration; graphs are small)."""
    order = {name: i for i, name in enumerate(graph.nodes)}
    adj: dict[str, list[str]] = {n: [] for n in graph.nodes}
    for e in graph.edges:
        if e.to not in adj[e.frm]:
            adj[e.frm].append(e.to)
    cycles: list[tuple[str, ...]] = []
    for root in graph.nodes:
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
        on_cycle = [e for e in graph.edges if (e.frm, e.to) in pairs]
        hint = any(e.max_visits is not None for e in on_cycle)
        exits = any(e.frm in members and e.to not in members for e in graph.edges)
        result.append(CycleInfo(cyc, hint, exits or graph.end in members))
    return result
