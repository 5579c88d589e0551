"""The graph of a run as SVG, drawn on the server (no script, no CDN, works offline).

Pure (no I/O). A :class:`Sketch` is what is drawn: nodes with their kind, edges with
theirs, the start and end; :func:`sketch_of` makes one from a :class:`Graph`, and
:func:`sketch_from_visits` one from a run's checkpoints alone (the nodes they show, in
order) when the graph cannot be imported. :func:`draw` lays it out in layers (a node's
layer is its distance from the start along the edges), top to bottom; an edge that goes
down is a straight arrow, one that goes back up or sideways a curve on the right. Each
node says its mark (visited, current, waiting, failed) in words as well as in colour.
"""

from __future__ import annotations

import html
from collections import deque
from collections.abc import Mapping, Sequence

import attrs

from .._model.graph import Graph, ParallelNode

BOX_W, BOX_H = 150, 40
GAP_X, GAP_Y = 30, 46
MARGIN = 24
MARKS = ("visited", "current", "waiting", "failed")
"""The marks a node may carry (CSS classes ``mark-<mark>``)."""


@attrs.frozen
class Sketch:
    """What :func:`draw` draws: nodes ``(name, kind)``, edges ``(frm, to, kind)``."""

    nodes: tuple[tuple[str, str], ...]
    edges: tuple[tuple[str, str, str], ...]
    start: str | None = None
    end: str | None = None


def sketch_of(graph: Graph) -> Sketch:
    """The whole graph; a parallel node's label lists its branches."""
    nodes = []
    for node in graph.nodes.values():
        kind = node.kind
        if isinstance(node, ParallelNode):
            kind = "parallel: " + ", ".join(b.name for b in node.branches)
        nodes.append((node.name, kind))
    edges = tuple((e.frm, e.to, e.kind) for e in graph.edges)
    return Sketch(tuple(nodes), edges, graph.start, graph.end)


def sketch_from_visits(visited: Sequence[str], moves: Sequence[tuple[str, str]]) -> Sketch:
    """The nodes a run's checkpoints show, joined in the order the run moved."""
    return Sketch(
        tuple((name, "node") for name in visited),
        tuple((a, b, "seen") for a, b in moves),
        visited[0] if visited else None,
    )


def layers(sketch: Sketch) -> dict[str, int]:
    """Each node's layer: its distance from the start (unreachable nodes below the rest)."""
    out: dict[str, int] = {}
    names = [name for name, _ in sketch.nodes]
    follow: dict[str, list[str]] = {name: [] for name in names}
    for frm, to, _ in sketch.edges:
        if frm in follow and to in follow:
            follow[frm].append(to)
    queue = deque([sketch.start] if sketch.start in follow else names[:1])
    for first in queue:
        out[first] = 0
    while queue:
        name = queue.popleft()
        for nxt in follow[name]:
            if nxt not in out:
                out[nxt] = out[name] + 1
                queue.append(nxt)
    below = max(out.values(), default=-1) + 1
    for name in names:
        out.setdefault(name, below)
    return out


def _positions(sketch: Sketch) -> tuple[dict[str, tuple[float, float]], float, float]:
    """Each node's top-left corner, and the drawing's width and height."""
    rows: dict[int, list[str]] = {}
    for name, layer in layers(sketch).items():
        rows.setdefault(layer, []).append(name)
    widest = max((len(r) for r in rows.values()), default=1)
    width = 2 * MARGIN + widest * BOX_W + (widest - 1) * GAP_X
    where: dict[str, tuple[float, float]] = {}
    for layer, row in sorted(rows.items()):
        span = len(row) * BOX_W + (len(row) - 1) * GAP_X
        left = MARGIN + (width - 2 * MARGIN - span) / 2
        for i, name in enumerate(row):
            where[name] = (left + i * (BOX_W + GAP_X), MARGIN + layer * (BOX_H + GAP_Y))
    height = 2 * MARGIN + len(rows) * BOX_H + max(0, len(rows) - 1) * GAP_Y
    return where, width, height


def draw(sketch: Sketch, marks: Mapping[str, str], *, title: str) -> str:
    """The sketch as an ``<svg>`` element; ``marks`` maps a node to one of :data:`MARKS`."""
    where, width, height = _positions(sketch)
    right = max((x for x, _ in where.values()), default=0.0) + BOX_W
    lanes: dict[tuple[str, str], float] = {}  # a back edge's own lane, right of every node
    for frm, to, _ in sketch.edges:
        if frm in where and to in where and where[to][1] < where[frm][1]:
            lanes[(frm, to)] = right + 24 + 16 * len(lanes)
    width = max(width, max(lanes.values(), default=0.0) + MARGIN)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="graph" role="img" '
        f'viewBox="0 0 {width:.0f} {height:.0f}" width="{width:.0f}" aria-labelledby="gt">',
        f'<title id="gt">{html.escape(title)}</title>',
        '<defs><marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" '
        'markerHeight="7" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z"/></marker>'
        "</defs>",
    ]
    parts += [_edge(where, frm, to, kind, lanes.get((frm, to))) for frm, to, kind in sketch.edges]
    for name, kind in sketch.nodes:
        parts.append(_node(name, kind, where[name], marks.get(name), sketch))
    parts.append("</svg>")
    return "\n".join(p for p in parts if p)


def _edge(
    where: Mapping[str, tuple[float, float]], frm: str, to: str, kind: str, lane: float | None
) -> str:
    if frm not in where or to not in where:
        return ""
    (ax, ay), (bx, by) = where[frm], where[to]
    cls = f"edge edge-{html.escape(kind)}"
    if by > ay:  # down: bottom centre to top centre
        x1, y1, x2, y2 = ax + BOX_W / 2, ay + BOX_H, bx + BOX_W / 2, by
        path = f"M{x1:.0f},{y1:.0f} L{x2:.0f},{y2:.0f}"
        mid = ((x1 + x2) / 2, (y1 + y2) / 2)
    elif by == ay:  # sideways in one layer: side to facing side
        x1, x2 = (ax + BOX_W, bx) if bx > ax else (ax, bx + BOX_W)
        y1 = y2 = ay + BOX_H / 2
        path = f"M{x1:.0f},{y1:.0f} L{x2:.0f},{y2:.0f}"
        mid = ((x1 + x2) / 2, y1 - 6)
    else:  # back up: out of the right side, up its own lane, into the target from above
        bend = lane if lane is not None else ax + BOX_W + 24
        x1, y1, x2, y2 = ax + BOX_W, ay + BOX_H / 2, bx + BOX_W * 0.8, by
        above = y2 - GAP_Y * 0.7
        path = (
            f"M{x1:.0f},{y1:.0f} C{bend:.0f},{y1:.0f} {bend:.0f},{y1:.0f} {bend:.0f},"
            f"{(y1 + above) / 2:.0f} S{bend:.0f},{above:.0f} {x2:.0f},{y2:.0f}"
        )
        mid = (bend - 14, (y1 + above) / 2)
    label = {"conditional": "if", "fallback": "fallback"}.get(kind, "")
    text = (
        f'<text class="edge-label" x="{mid[0] + 4:.0f}" y="{mid[1]:.0f}">{label}</text>'
        if label
        else ""
    )
    return (
        f'<path class="{cls}" d="{path}" marker-end="url(#arrow)">'
        f"<title>{html.escape(frm)} → {html.escape(to)} ({html.escape(kind)})</title></path>" + text
    )


def _node(name: str, kind: str, at: tuple[float, float], mark: str | None, sk: Sketch) -> str:
    x, y = at
    classes = ["node", f"kind-{kind.split(':')[0]}"]
    if mark in MARKS:
        classes.append(f"mark-{mark}")
    if name in (sk.start, sk.end):
        classes.append("terminal")
    said = f"{name} ({kind}{', ' + mark if mark else ''})"
    round_ = {"condition": 18, "barrier": 4}.get(kind, 8)
    sub = mark or ("start" if name == sk.start else "end" if name == sk.end else kind)
    return (
        f'<g class="{" ".join(classes)}" data-node="{html.escape(name)}">'
        f"<title>{html.escape(said)}</title>"
        f'<rect x="{x:.0f}" y="{y:.0f}" width="{BOX_W}" height="{BOX_H}" rx="{round_}"/>'
        f'<text x="{x + BOX_W / 2:.0f}" y="{y + 17:.0f}">{html.escape(_short(name, 20))}</text>'
        f'<text class="sub" x="{x + BOX_W / 2:.0f}" y="{y + 32:.0f}">'
        f"{html.escape(_short(sub, 24))}</text></g>"
    )


def _short(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"
