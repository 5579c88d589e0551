"""The inspector's ASGI app (Starlette): its routes, as a table, over one store.

=====================================  ==========================================
``GET  /``                             the runs, newest first (``?status=&graph=``)
``GET  /part``                         the runs page's live part (counts, table)
``GET  /events``                       its server-sent events (``change``)
``GET  /runs/{run_id}``                one run (id or unique prefix of 4+)
``GET  /runs/{run_id}/part``           the run page's live part
``GET  /runs/{run_id}/events``         its server-sent events
``POST /runs/{run_id}/decide``         a decision, through ``store.decide``
``POST /runs/{run_id}/cancel``         a cancel, through ``store.cancel``
``GET  /static/{name}``                the stylesheet and the script (no CDN)
=====================================  ==========================================

The app runs on Trio (Starlette through AnyIO); :mod:`.server` serves it with
Hypercorn's Trio worker.
"""

from __future__ import annotations

import importlib.resources
from collections.abc import Iterable

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

from .. import demo
from .._model.graph import Graph
from ..stores.protocol import Store
from .layout import alert, page
from .views import Inspector, Refusal

STATIC = {"style.css": "text/css", "live.js": "text/javascript"}
"""The files served under ``/static/`` and their media types."""


def _static_files() -> dict[str, bytes]:
    folder = importlib.resources.files(__package__ or "trio_graph.ui") / "static"
    return {name: (folder / name).read_bytes() for name in STATIC}


def create_app(
    store: Store, *, graphs: Iterable[Graph] = (), stream_for: float = 300.0
) -> Starlette:
    """The inspector over ``store``; ``graphs`` (and the bundled demo) are drawn whole and
    check decisions for their runs (matched by graph hash)."""
    known = {g.hash(): g for g in [demo.graph, *graphs]}
    inspector = Inspector(store, known, stream_for)
    files = _static_files()

    async def static(request: Request) -> Response:
        name = request.path_params["name"]
        if name not in files:
            raise Refusal(404, f"no file {name!r:.60}")
        headers = {"Cache-Control": "no-cache"}
        return Response(files[name], media_type=STATIC[name], headers=headers)

    async def refused(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, Refusal)
        body = f"<h1>{exc.status}</h1>{alert(exc.message)}<p><a href='/'>All runs</a></p>"
        return HTMLResponse(page("Refused", body), status_code=exc.status)

    i = inspector
    routes = [
        Route("/", i.runs),
        Route("/part", i.runs_part),
        Route("/events", i.runs_events),
        Route("/runs/{run_id}", i.run),
        Route("/runs/{run_id}/part", i.run_part),
        Route("/runs/{run_id}/events", i.run_events),
        Route("/runs/{run_id}/decide", i.decide, methods=["POST"]),
        Route("/runs/{run_id}/cancel", i.cancel, methods=["POST"]),
        Route("/static/{name}", static),
    ]
    return Starlette(routes=routes, exception_handlers={Refusal: refused})
