"""Mermaid flowchart export, so a user can look at a graph.

Model layer: no trio import.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .graph import Graph

_SHAPES = {
    "task": ("[", "]"),
    "condition": ("{", "}"),
    "barrier": ("{{", "}}"),
    "parallel": ("[[", "]]"),
}


def _ident(name: str) -> str:
    return "n_" + re.sub(r"[^0-9A-Za-z_]", "_", name)


def _label(text: str) -> str:
    return '"' + text.replace('"', "#quot;") + '"'


def to_mermaid(graph: Graph) -> str:
    """``flowchart TD`` text: task [], condition {}, barrier {{}}, parallel [[ ]].

    Normal edges are solid, conditional edges labelled ``if``, fallback edges dotted.
    """
    lines = ["flowchart TD"]
    for node in graph.nodes.values():
        left, right = _SHAPES[node.kind]
        text = node.name
        if node.kind == "parallel":
            text += " ∥ " + ", ".join(b.name for b in node.branches)  # type: ignore[union-attr]
        lines.append(f"    {_ident(node.name)}{left}{_label(text)}{right}")
    lines.append(f"    start((start)) --> {_ident(graph.start)}")
    lines.append(f"    {_ident(graph.end)} --> stop((end))")
    for e in graph.edges:
        a, b = _ident(e.frm), _ident(e.to)
        hint = f" ≤{e.max_visits}" if e.max_visits else ""
        if e.kind == "conditional":
            lines.append(f"    {a} -->|{_label('if' + hint)}| {b}")
        elif e.kind == "fallback":
            lines.append(f"    {a} -.->|{_label('fallback' + hint)}| {b}")
        else:
            lines.append(f"    {a} --> {b}" if not hint else f"    {a} -->|{_label(hint)}| {b}")
    return "\n".join(lines) + "\n"
