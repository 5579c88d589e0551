"""The inspector page (DESIGN §17): an ASGI app over a store, served by ``trio-graph ui``.

Layout: :mod:`.app` (the routes, as a table), :mod:`.views` (the handlers: read the
store, write only through ``store.decide`` / ``store.cancel``), :mod:`.runs_page` and
:mod:`.run_page` (HTML, built with ``html.escape``; :mod:`.layout` the shell and
helpers, :mod:`.controls` the forms and reading them back), :mod:`.drawing` (the graph
as SVG, drawn on the server), :mod:`.timeline` (what the checkpoints say happened),
:mod:`.live` (server-sent events driven by the store's change wake-ups) and
:mod:`.server` (Hypercorn's Trio worker). Needs the ``ui`` extra (Starlette, Hypercorn).
"""

from __future__ import annotations
