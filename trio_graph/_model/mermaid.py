"""Mermaid flowchart export, so a user can look at a graph.

Model layer: no trio import. Subgraph nodes are drawn as Mermaid ``subgraph``
blocks holding the child graph, whose node ids carry the subgraph's path.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .graph import Graph

_SHAPES = {
    "task": ("[", "]"),
    "condition": ("{", "}"),
    "barrier": ("{{", "}}"),
    "parallel": ("[[", "]]"),
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


def to_mermaid(graph: Graph) -> str:
    """``flowchart TD`` text: task [], condition {}, barrier {{}}, parallel [[ ]], subgraphs
    as blocks. Normal edges are solid, conditional edges labelled ``if``, fallback dotted."""
    lines = ["flowchart TD"]
    _body(graph, "", lines, "    ")
    lines.append(f"    start((start)) --> {_ident(graph.start)}")
    lines.append(f"    {_ident(graph.end)} --> stop((end))")
    return "\n".join(lines) + "\n"


def _body(graph: Graph, prefix: str, lines: list[str], indent: str) -> None:
    from .graph import ParallelNode, SubgraphNode

    for node in graph.nodes.values():
        path = prefix + node.name
        if isinstance(node, SubgraphNode):
            lines.append(f"{indent}subgraph {_ident(path)} [{_label(node.name)}]")
            _body(node.graph, path + "/", lines, indent + "    ")
            lines.append(f"{indent}end")
            continue
        left, right = _SHAPES[node.kind]
        text = node.name
        if isinstance(node, ParallelNode):
            text += " ∥ " + ", ".join(b.name for b in node.branches)
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
