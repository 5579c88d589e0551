"""Routing: which node runs next. A pure function of (edges, state).

Model layer: no trio import. The order (DESIGN §3): conditional edges in
registration order, the first whose condition is true wins; else the first
normal edge; else the first fallback edge; else :class:`Unrouted` listing every
condition tried. A named target (``Goto``/``Reroute``) needs an edge of any class.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..errors import ConditionResult, MissingEdge, NodeExecutionFailed, Unrouted
from .graph import OutEdges


def route(node: str, out: OutEdges, state: Mapping[str, Any]) -> str:
    """The next node after ``node`` finished with "go to next"."""
    for edge in out.conditional:
        assert edge.condition is not None
        try:
            ok = bool(edge.condition(state))
        except Exception as exc:
            raise NodeExecutionFailed(
                node,
                type(exc).__name__,
                f"condition of edge {edge.frm!r} -> {edge.to!r} raised: {exc}",
            ) from exc
        if ok:
            return edge.to
    if out.normal:
        return out.normal[0].to
    if out.fallback:
        return out.fallback[0].to
    # Every condition was tried and was false (listed only now: not built per step).
    raise Unrouted(node, [ConditionResult(edge.to, False) for edge in out.conditional])


def route_fallback(node: str, out: OutEdges) -> str | None:
    """The node's first fallback edge target, or None when it has none."""
    return out.fallback[0].to if out.fallback else None


def check_target(node: str, out: OutEdges, target: str) -> str:
    """``target`` if an edge of any class leads there from ``node``, else ``MissingEdge``."""
    if target not in out.targets:
        raise MissingEdge(node, target)
    return target
