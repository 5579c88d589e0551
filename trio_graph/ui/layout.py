"""The page shell and the small HTML helpers every page uses.

Pages are plain HTML strings built with :func:`html.escape` (every value from a store or
a request goes through :func:`esc`); no template engine: the pages are few and small,
and a string per section keeps them typed and testable. The stylesheet and the script
are served by the app (``/static/…``), so the page works offline.
"""

from __future__ import annotations

import html
import json
import time
from typing import Any

STATUSES = ("running", "waiting", "completed", "failed", "cancelled")
"""Every run status, in the order the runs page counts them."""


def esc(value: object) -> str:
    """``value`` as text safe inside HTML (and attribute values)."""
    return html.escape(str(value), quote=True)


def json_block(value: Any, *, label: str = "") -> str:
    """A value as indented JSON in a ``<pre>`` (``label`` names it for screen readers)."""
    text = json.dumps(value, indent=2, ensure_ascii=False, default=repr)
    aria = f' aria-label="{esc(label)}"' if label else ""
    return f'<pre class="json"{aria}>{esc(text)}</pre>'


def when(epoch: float, now: float | None = None) -> str:
    """``2026-12-02 05:40:07 (3 min ago)`` in UTC."""
    stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(epoch))
    return f"{stamp} UTC ({age(epoch, now)})"


def age(epoch: float, now: float | None = None) -> str:
    """How long ago ``epoch`` was (``12 s ago``, ``3 min ago``, ``2 h ago``, ``4 d ago``),
    or how long until it is (``in 16 s``)."""
    ago = (time.time() if now is None else now) - epoch
    span = abs(ago)
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60), ("s", 1)):
        if span >= size or unit == "s":
            amount = f"{span // size:.0f} {unit}"
            return f"{amount} ago" if ago >= 0 else f"in {amount}"
    raise AssertionError("unreachable")


def seconds(value: float | None) -> str:
    """A duration for the timeline: ``-``, ``35 ms``, ``1.20 s``, ``3 min 4 s``."""
    if value is None:
        return "-"
    if value < 1:
        return f"{value * 1000:.0f} ms"
    if value < 60:
        return f"{value:.2f} s"
    return f"{value // 60:.0f} min {value % 60:.0f} s"


def badge(status: str) -> str:
    """A run's status as a badge (the word itself, coloured by class)."""
    return f'<span class="badge status-{esc(status)}">{esc(status)}</span>'


def alert(message: str, *, kind: str = "error") -> str:
    """A message the screen reader announces (``role=alert`` for errors)."""
    role = "alert" if kind == "error" else "status"
    head = "Refused: " if kind == "error" else ""
    return f'<div class="notice notice-{kind}" role="{role}"><p>{esc(head + message)}</p></div>'


def page(title: str, body: str, *, events: str = "", part: str = "", version: str = "") -> str:
    """A whole page: ``body`` in ``<main>``; ``events`` (an SSE URL) and ``part`` (the URL
    of ``#live``'s content) turn on live updates, ``version`` is what it shows now."""
    live = ""
    if events:
        live = f' data-events="{esc(events)}" data-part="{esc(part)}" data-version="{esc(version)}"'
    return f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{esc(title)} · trio_graph</title>
<link rel="stylesheet" href="/static/style.css">
<script src="/static/live.js" defer></script>
</head>
<body{live}>
<header class="top"><a class="brand" href="/">trio_graph inspector</a>
<span class="conn" id="conn" role="status" aria-live="polite"></span></header>
<main>
{body}
</main>
</body>
</html>
"""
