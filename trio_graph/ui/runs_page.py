"""The runs page (``/``): every run, newest first, filtered by status and graph.

Pure rendering of ``store.runs()`` rows. :func:`live_part` is the part that live updates
replace (the counts and the table); :func:`version` is what it shows, so the page
fetches it again only when that changed.
"""

from __future__ import annotations

import urllib.parse
from collections import Counter
from collections.abc import Sequence

from ..stores.protocol import RunInfo
from .layout import STATUSES, age, badge, esc, when


def newest_first(rows: Sequence[RunInfo], status: str = "", graph: str = "") -> list[RunInfo]:
    """The rows to list: those with ``status`` and ``graph`` (when given), newest first."""
    kept = [
        r
        for r in rows
        if (not status or r.status == status) and (not graph or r.graph_name == graph)
    ]
    return sorted(kept, key=lambda r: r.updated_at, reverse=True)


def version(rows: Sequence[RunInfo]) -> str:
    """A short text that changes whenever a run is added, removed or updated."""
    latest = max((r.updated_at for r in rows), default=0.0)
    counts = Counter(str(r.status) for r in rows)
    return f"{len(rows)}:{latest:.6f}:" + ",".join(f"{s}={counts[s]}" for s in STATUSES)


def counts(rows: Sequence[RunInfo]) -> dict[str, int]:
    """How many runs have each status (every status, zero included)."""
    seen = Counter(str(r.status) for r in rows)
    return {s: seen[s] for s in STATUSES}


def live_part(rows: Sequence[RunInfo], status: str, graph: str, now: float) -> str:
    """The counts and the table of runs."""
    shown = newest_first(rows, status, graph)
    items = []
    for s, n in counts(rows).items():
        query = urllib.parse.urlencode({"status": s, **({"graph": graph} if graph else {})})
        items.append(
            f'<li><a href="/?{esc(query)}"><span class="count" data-count="{s}">{n}</span> '
            f"{s}</a></li>"
        )
    parts = [
        f'<ul class="counts" aria-label="runs by status">{"".join(items)}</ul>',
        f'<p class="shown">{len(shown)} of {len(rows)} run(s) shown.</p>',
    ]
    if not shown:
        empty = "No runs match these filters." if rows else "No runs in this store yet."
        hint = "" if rows else " Try <code>trio-graph demo --leave-waiting</code>."
        parts.append(f'<p class="empty">{empty}{hint}</p>')
        return "\n".join(parts)
    parts.append(_table(shown, now))
    return "\n".join(parts)


def _table(rows: Sequence[RunInfo], now: float) -> str:
    head = (
        "<thead><tr><th scope=col>Run</th><th scope=col>Graph</th><th scope=col>Status</th>"
        "<th scope=col>Step</th><th scope=col>Waiting at</th><th scope=col>Updated</th>"
        "</tr></thead>"
    )
    body = []
    for r in rows:
        run = esc(r.run_id)
        waiting = esc(r.waiting) if r.waiting is not None else ""
        body.append(
            f'<tr data-run="{run}"><td><a class="run-link" href="/runs/{run}">'
            f"<code>{esc(r.run_id[:12])}</code></a></td><td>{esc(r.graph_name)}</td>"
            f"<td>{badge(r.status)}</td><td>{r.step}</td><td>{waiting}</td>"
            f'<td title="{esc(when(r.updated_at, now))}">{esc(age(r.updated_at, now))}</td></tr>'
        )
    table = f'<table class="runs">{head}<tbody>{"".join(body)}</tbody></table>'
    return f'<div class="scroll">{table}</div>'


def filters(rows: Sequence[RunInfo], status: str, graph: str) -> str:
    """The filter form (a GET form, so a filtered list is a link one can share)."""
    options = ['<option value="">any</option>']
    options += [
        f'<option value="{s}"{" selected" if s == status else ""}>{s}</option>' for s in STATUSES
    ]
    names = sorted({r.graph_name for r in rows} | ({graph} if graph else set()))
    graphs = ['<option value="">any</option>']
    graphs += [
        f'<option value="{esc(g)}"{" selected" if g == graph else ""}>{esc(g)}</option>'
        for g in names
    ]
    return (
        '<form class="filters" method="get" action="/">'
        f'<label>Status <select name="status">{"".join(options)}</select></label>'
        f'<label>Graph <select name="graph">{"".join(graphs)}</select></label>'
        '<button type="submit">Filter</button> <a href="/">clear</a></form>'
    )


def runs_body(rows: Sequence[RunInfo], status: str, graph: str, now: float) -> str:
    """The runs page's ``<main>`` content."""
    return (
        "<h1>Runs</h1>\n"
        + filters(rows, status, graph)
        + f'\n<section id="live" aria-live="polite">{live_part(rows, status, graph, now)}'
        + "</section>"
    )
