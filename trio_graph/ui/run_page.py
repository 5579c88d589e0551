"""The page of one run (``/runs/{run_id}``): where it stands, its graph, its timeline,
its checkpoints (state and diff), the waiting barrier's payload and the controls.

Pure rendering of a :class:`RunView` (what the route read from the store). The graph is
drawn whole when the run's graph is known to the app (``trio-graph ui --graph
MODULE:ATTR``, or the bundled demo), matched by graph hash; otherwise from what the
checkpoints show (the nodes the run was at, in order), and the page says so.
"""

from __future__ import annotations

import time

import attrs

from .._cli.showing import StateDiff
from .._model.checkpoint import Checkpoint, RunStatus
from .._model.decisions import brief_value
from .._model.graph import Graph
from ..stores.protocol import RunInfo
from . import drawing, timeline
from .controls import cancel_form, decision_forms
from .layout import badge, esc, json_block, seconds, when

ENDED = frozenset({RunStatus.COMPLETED, RunStatus.FAILED, RunStatus.CANCELLED})
"""Statuses after which there is nothing to decide or cancel."""


@attrs.frozen
class RunView:
    """What the run page shows, as read from the store."""

    info: RunInfo
    checkpoints: list[Checkpoint]
    graph: Graph | None = None
    """The run's graph, when the app knows it (by hash, else by name: ``graph_note``)."""
    graph_note: str = ""
    can_cancel: bool = True
    """Whether the store has ``cancel``."""

    @property
    def latest(self) -> Checkpoint | None:
        return self.checkpoints[-1] if self.checkpoints else None

    @property
    def status(self) -> str:
        latest = self.latest
        return str(latest.status if latest is not None else self.info.status)

    def version(self) -> str:
        """Changes whenever the run saves a checkpoint or its status changes."""
        latest = self.latest
        return f"{latest.checkpoint_id if latest else '-'}:{self.status}"


def run_body(view: RunView, message: str = "") -> str:
    """The run page's ``<main>`` content; ``message`` is a notice or an error (HTML)."""
    return (
        f"<h1>Run <code>{esc(view.info.run_id)}</code></h1>\n{message}\n"
        f'<div id="live">{live_part(view)}</div>'
    )


def live_part(view: RunView) -> str:
    """Everything that live updates replace."""
    return "\n".join(
        [
            '<div class="columns">',
            f'<div class="col">{_summary(view)}{_barrier(view)}{_controls(view)}</div>',
            f'<div class="col">{_graph(view)}</div>',
            "</div>",
            _timeline(view),
            _checkpoints(view),
        ]
    )


def _summary(view: RunView) -> str:
    info, latest = view.info, view.latest
    rows = [
        ("Status", f'<span data-field="status">{badge(view.status)}</span>'),
        ("Graph", esc(info.graph_name)),
        ("Step", str(latest.step if latest else info.step)),
        ("Next node", esc(latest.next_node or "-") if latest else "-"),
        ("Updated", esc(when(latest.created_at if latest else info.updated_at))),
    ]
    if info.trace_id != info.run_id:
        rows.append(("Segment", f"<code>{esc(info.trace_id)}</code>"))
    if latest is not None and latest.error and latest.status in ENDED:
        rows.append(("Error", f'<span class="error-text">{esc(latest.error)}</span>'))
    cells = "".join(f"<dt>{k}</dt><dd>{v}</dd>" for k, v in rows)
    head = '<section aria-labelledby="s-sum"><h2 id="s-sum">Where it stands</h2>'
    return f"{head}<dl>{cells}</dl></section>"


def _barrier(view: RunView) -> str:
    latest = view.latest
    if latest is None or latest.status != RunStatus.WAITING or latest.pending_barrier is None:
        return ""
    bid = latest.pending_barrier
    parts = [
        f'<section class="barrier" aria-labelledby="s-bar"><h2 id="s-bar">Waiting at '
        f"<code>{esc(bid)}</code></h2>"
    ]
    if latest.deadline is not None:
        passed = (
            " (passed: the run takes the default when it next runs)"
            if latest.deadline < time.time()
            else ""
        )
        parts.append(f"<p>Its default applies at {esc(when(latest.deadline))}{passed}.</p>")
    if latest.pending_payload is not None:
        parts += ["<h3>It shows</h3>", json_block(latest.pending_payload, label="payload")]
    else:
        parts.append("<p>The barrier shows nothing (no <code>show</code>).</p>")
    parts.append(
        '<div class="forms">'
        + decision_forms(view.info.run_id, bid, _targets(view, bid.node))
        + "</div>"
    )
    return "".join(parts) + "</section>"


def _targets(view: RunView, node: str) -> list[str]:
    """Where an edge from barrier ``node`` leads (what a reroute may pick), if known."""
    if view.graph is None or "/" in node:
        return []
    return list(dict.fromkeys(e.to for e in view.graph.edges if e.frm == node))


def _controls(view: RunView) -> str:
    if view.status in ENDED or not view.can_cancel:
        return ""
    return f'<section aria-label="cancel">{cancel_form(view.info.run_id)}</section>'


def _graph(view: RunView) -> str:
    marks = timeline.node_marks(view.checkpoints, view.graph)
    if view.graph is not None:
        sketch = drawing.sketch_of(view.graph)
        said = f"The graph {esc(view.graph.name)!s}." + (
            f" {esc(view.graph_note)}" if view.graph_note else ""
        )
    else:
        visits = timeline.visited(view.checkpoints)
        sketch = drawing.sketch_from_visits(visits, timeline.transitions(view.checkpoints))
        said = (
            "Drawn from the checkpoints only (the nodes the run was at, in order): start "
            "<code>trio-graph ui --graph MODULE:ATTR</code> to draw the whole graph."
        )
    svg = drawing.draw(sketch, marks, title=f"graph of run {view.info.run_id}")
    legend = "".join(
        f'<li><span class="swatch mark-{m}" aria-hidden="true"></span>{m}</li>'
        for m in drawing.MARKS
    )
    return (
        '<section aria-labelledby="s-graph"><h2 id="s-graph">Graph</h2><figure>'
        f'<div class="svg-wrap">{svg}</div><figcaption>{said}'
        f'<ul class="legend">{legend}</ul></figcaption></figure></section>'
    )


def _timeline(view: RunView) -> str:
    rows = []
    for e in timeline.entries(view.checkpoints, view.graph):
        keys = ", ".join(e.changed_keys) or "-"
        rows.append(
            f"<tr><td>{e.number}</td><td>{e.checkpoint.step}</td><td>{esc(e.from_node or '-')}</td>"
            f"<td>{e.steps}</td><td>{esc(e.checkpoint.next_node or '-')}</td>"
            f"<td>{badge(e.checkpoint.status)}</td><td>{seconds(e.duration)}</td>"
            f"<td>{esc(keys)}</td><td>{esc(e.branches or '-')}</td></tr>"
        )
    if not rows:
        return "<section><h2>Timeline</h2><p>No checkpoint yet.</p></section>"
    head = "".join(
        f"<th scope=col>{h}</th>"
        for h in (
            "#",
            "Step",
            "From node",
            "Steps",
            "Next node",
            "Status",
            "Took",
            "Keys changed",
            "Branches",
        )
    )
    return (
        '<section aria-labelledby="s-time"><h2 id="s-time">Timeline</h2>'
        "<p class=hint>One row per checkpoint (the run saves them as its checkpoint "
        "policy says).</p>"
        f'<div class="scroll"><table class="timeline"><thead><tr>{head}</tr></thead>'
        f"<tbody>{''.join(rows)}</tbody></table></div></section>"
    )


def _checkpoints(view: RunView) -> str:
    items = []
    before: dict[str, object] = {}
    for number, cp in enumerate(view.checkpoints, 1):
        diff = StateDiff.between(before, cp.state)
        last = number == len(view.checkpoints)
        items.append(
            f"<details{' open' if last else ''}><summary>#{number} · step {cp.step} · "
            f"{esc(cp.status)} · <code>{esc(cp.checkpoint_id[:12])}</code></summary>"
            f'<div class="cp"><div><h4>Changes</h4>{_diff(diff)}</div>'
            f"<div><h4>State</h4>{json_block(cp.state, label=f'state at #{number}')}</div>"
            "</div>"
            "</details>"
        )
        before = cp.state
    return (
        '<section aria-labelledby="s-cps"><h2 id="s-cps">Checkpoints</h2>'
        + ("".join(items) or "<p>None yet.</p>")
        + "</section>"
    )


def _diff(diff: StateDiff) -> str:
    lines = [
        f'<li class="added">+ {esc(k)} = {esc(brief_value(v, 120))}</li>'
        for k, v in diff.added.items()
    ]
    lines += [f'<li class="removed">- {esc(k)}</li>' for k in diff.removed]
    lines += [
        f'<li class="changed">~ {esc(k)}: {esc(brief_value(a, 60))} '
        f"→ {esc(brief_value(b, 60))}</li>"
        for k, (a, b) in diff.changed.items()
    ]
    return f'<ul class="diff">{"".join(lines)}</ul>' if lines else "<p>No state changes.</p>"
