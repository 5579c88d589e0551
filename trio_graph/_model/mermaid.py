"""Mermaid flowchart export, so a user can look at a graph.

Model layer: no trio import. Subgraph nodes are drawn as Mermaid ``subgraph``
blocks holding the child graph, whose node ids carry the subgraph's path.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol


class Shape(Protocol):
    """What the drawing reads of a graph (``Graph`` has it; this module does not import
    ``graph.py``, which calls it). A node has ``name`` and ``kind``; a parallel node
    ``branches``, a subgraph node ``graph``; an edge ``frm``, ``to``, ``kind``,
    ``max_visits``."""

    @property
    def nodes(self) -> Mapping[str, Any]: ...
    @property
    def edges(self) -> Sequence[Any]: ...
    @property
    def start(self) -> str: ...
    @property
    def end(self) -> str: ...


_SHAPES = {
    "task": ("[", "]"),
    "condition": ("{", "}"),
    "barrier": ("{{", "}}"),
    "parallel": ("[[", "]]"),
    "map": ("[[", "]]"),
}


def _ident(path: str) -> str:
    # Readable and collision-free: safe characters kept, every other one spelled out
    # by its code point ("a-b" -> n_a_2d_b, "a_b" -> n_a__b).
    out = []
    for ch in path:
        if ch.isascii() and ch.isalnum():
            out.append(ch)
        elif ch == "_":
            out.append("__")
        else:
            out.append(f"_{ord(ch):x}_")
    return "n_" + "".join(out)


def _label(text: str) -> str:
    return '"' + text.replace('"', "#quot;") + '"'


def to_mermaid(graph: Shape) -> str:
    """``flowchart TD`` text: task [], condition {}, barrier {{}}, parallel [[ ]], map
    ``[["name[*]"]]``, subgraphs as blocks. Normal edges are solid, conditional edges
    labelled ``if``, fallback dotted."""
    lines = ["flowchart TD"]
    _body(graph, "", lines, "    ")
    lines.append(f"    start((start)) --> {_ident(graph.start)}")
    lines.append(f"    {_ident(graph.end)} --> stop((end))")
    return "\n".join(lines) + "\n"


def _body(graph: Shape, prefix: str, lines: list[str], indent: str) -> None:
    for node in graph.nodes.values():
        path = prefix + node.name
        if node.kind == "subgraph":
            lines.append(f"{indent}subgraph {_ident(path)} [{_label(node.name)}]")
            _body(node.graph, path + "/", lines, indent + "    ")
            lines.append(f"{indent}end")
            continue
        left, right = _SHAPES[node.kind]
        text = node.name
        if node.kind == "parallel":
            text += " ∥ " + ", ".join(b.name for b in node.branches)
        elif node.kind == "map":
            text += "[*]"  # one branch per item, known at run time
        lines.append(f"{indent}{_ident(path)}{left}{_label(text)}{right}")
    for e in graph.edges:
        a, b = _ident(prefix + e.frm), _ident(prefix + e.to)
        hint = f" ≤{e.max_visits}" if e.max_visits else ""
        if e.kind == "conditional":
            lines.append(f"{indent}{a} -->|{_label('if' + hint)}| {b}")
        elif e.kind == "fallback":
            lines.append(f"{indent}{a} -.->|{_label('fallback' + hint)}| {b}")
        elif hint:
            lines.append(f"{indent}{a} -->|{_label(hint.strip())}| {b}")
        else:
            lines.append(f"{indent}{a} --> {b}")
