"""The routes' handlers: read the store, render a page, write only through the store.

:class:`Inspector` holds the store and the graphs the app knows. Reads use the store
protocol (``runs``, ``list``, ``latest``); the two writes go through
``store.decide(run_id, barrier_id, decision)`` and ``store.cancel(run_id)``, so the
run's own process applies them (DESIGN §8). Before a decision is recorded it is checked
as the run would check it: the run must be waiting at that barrier, and, when the
graph is known, the graph must be able to take it (``check_steering``: a reroute with
no edge, a value a store cannot keep); a refusal is shown with its reason.
"""

from __future__ import annotations

import time
import urllib.parse
from collections.abc import Iterable, Mapping

import attrs
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response, StreamingResponse

from .._model.graph import Graph
from .._model.steering import check_steering
from ..errors import GraphError
from ..stores.protocol import RunInfo, Store
from . import live, runs_page
from .controls import FormError, barrier_from, decision_from, form_fields
from .layout import STATUSES, alert, page
from .run_page import ENDED, RunView, live_part, run_body

MIN_PREFIX = 4
"""The shortest prefix of a run id that names a run."""

NOTICES = {
    "decided": "Decision recorded in the store; the run's process takes it from there.",
    "parked": "Decision recorded in the store. No process executes this run now: it "
    "takes the decision when it is resumed (a worker, or trio-graph decide … --resume).",
    "cancelled": "Cancel recorded in the store; the run's process stops the run.",
}


class Refusal(Exception):
    """A request the page refuses: the HTTP status and the reason shown."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def find_run(rows: Iterable[RunInfo], text: str) -> RunInfo:
    """The run ``text`` names: its run id or trace id, or a unique prefix (4+ characters)."""
    rows = list(rows)
    for row in rows:
        if text in (row.run_id, row.trace_id):
            return row
    if len(text) < MIN_PREFIX:
        raise Refusal(400, f"run id {text!r} is too short: give at least {MIN_PREFIX} characters")
    found = [r for r in rows if r.run_id.startswith(text) or r.trace_id.startswith(text)]
    if not found:
        raise Refusal(404, f"no run {text!r} in this store")
    if len(found) > 1:
        ids = ", ".join(r.run_id for r in found[:3])
        raise Refusal(400, f"{text!r} matches {len(found)} runs ({ids}): give more of the id")
    return found[0]


@attrs.define
class Inspector:
    """The app's handlers over one store."""

    store: Store
    graphs: Mapping[str, Graph] = attrs.field(factory=dict)
    """The graphs the app can draw and check against, by graph hash."""
    stream_for: float = 300.0
    """Seconds an event stream lasts before the browser reconnects."""

    # -- pages ----------------------------------------------------------------------------
    async def runs(self, request: Request) -> Response:
        status, graph = self._filters(request)
        rows = await self.store.runs()
        body = runs_page.runs_body(rows, status, graph, time.time())
        query = request.url.query
        return HTMLResponse(
            page(
                "Runs",
                body,
                events="/events" + (f"?{query}" if query else ""),
                part="/part" + (f"?{query}" if query else ""),
                version=runs_page.version(rows),
            )
        )

    async def runs_part(self, request: Request) -> Response:
        status, graph = self._filters(request)
        rows = await self.store.runs()
        return HTMLResponse(runs_page.live_part(rows, status, graph, time.time()))

    async def runs_events(self, request: Request) -> Response:
        self._filters(request)

        async def read() -> tuple[str, dict[str, object]]:
            rows = await self.store.runs()
            return runs_page.version(rows), {"counts": runs_page.counts(rows)}

        return self._stream(read, request)

    async def run(self, request: Request) -> Response:
        view = await self._view(request.path_params["run_id"])
        said = NOTICES.get(request.query_params.get("done", ""))
        return self._run_page(view, alert(said, kind="ok") if said else "")

    async def run_part(self, request: Request) -> Response:
        view = await self._view(request.path_params["run_id"])
        return HTMLResponse(live_part(view))

    async def run_events(self, request: Request) -> Response:
        info = await self._info(request.path_params["run_id"])

        async def read() -> tuple[str, dict[str, object]]:
            latest = await self.store.latest(info.run_id)
            if latest is None:
                return f"-:{info.status}", {"status": str(info.status)}
            data = {"status": str(latest.status), "step": latest.step}
            return f"{latest.checkpoint_id}:{latest.status}", data

        return self._stream(read, request)

    # -- writes: only through the store ------------------------------------------------------
    async def decide(self, request: Request) -> Response:
        view = await self._view(request.path_params["run_id"])
        record = getattr(self.store, "decide", None)
        try:
            self._same_origin(request)
            if record is None:
                raise Refusal(501, "this store keeps no decisions (it has no store.decide)")
            fields = form_fields(await request.body())
            bid, decision = barrier_from(fields), decision_from(fields)
            latest = view.latest
            if latest is None or view.status in ENDED or latest.pending_barrier is None:
                raise Refusal(409, f"run {view.info.run_id} is {view.status}: no barrier waits")
            if bid != latest.pending_barrier:
                raise Refusal(409, f"the run waits at {latest.pending_barrier}, not at {bid}")
            if view.graph is not None:
                check_steering(view.graph, bid.node, decision, durable=True)
            await record(view.info.run_id, bid, decision)
        except FormError as exc:
            return self._run_page(view, alert(str(exc)), status=400)
        except Refusal as exc:
            return self._run_page(view, alert(exc.message), status=exc.status)
        except GraphError as exc:
            return self._run_page(view, alert(str(exc)), status=422)
        done = "decided" if await self._live(view.info.run_id) else "parked"
        return RedirectResponse(f"/runs/{urllib.parse.quote(view.info.run_id)}?done={done}", 303)

    async def cancel(self, request: Request) -> Response:
        view = await self._view(request.path_params["run_id"])
        cancel = getattr(self.store, "cancel", None)
        try:
            self._same_origin(request)
            if cancel is None:
                raise Refusal(501, "this store cannot cancel runs (it has no store.cancel)")
            if view.status in ENDED:
                raise Refusal(409, f"run {view.info.run_id} is {view.status}: nothing to cancel")
            await cancel(view.info.run_id)
        except Refusal as exc:
            return self._run_page(view, alert(exc.message), status=exc.status)
        except GraphError as exc:
            return self._run_page(view, alert(str(exc)), status=422)
        return RedirectResponse(f"/runs/{urllib.parse.quote(view.info.run_id)}?done=cancelled", 303)

    # -- helpers ------------------------------------------------------------------------------
    def _filters(self, request: Request) -> tuple[str, str]:
        status = request.query_params.get("status", "")
        if status and status not in STATUSES:
            raise Refusal(400, f"unknown status {status!r:.40}: one of {', '.join(STATUSES)}")
        return status, request.query_params.get("graph", "")

    async def _info(self, text: str) -> RunInfo:
        return find_run(await self.store.runs(), text)

    async def _view(self, text: str) -> RunView:
        info = await self._info(text)
        checkpoints = await self.store.list(info.run_id)
        latest = checkpoints[-1] if checkpoints else None
        graph = self.graphs.get(latest.graph_hash) if latest is not None else None
        note = ""
        if graph is None and any(g.name == info.graph_name for g in self.graphs.values()):
            note = f"a graph named {info.graph_name!r} is loaded, but not the version of this run"
        cancels = hasattr(self.store, "cancel")
        return RunView(info, checkpoints, graph, note, cancels)

    async def _live(self, run_id: str) -> bool:
        """Whether a process executes the run now (True when the store cannot say)."""
        owner = getattr(self.store, "live_owner", None)
        return True if owner is None else await owner(run_id) is not None

    def _run_page(self, view: RunView, message: str, *, status: int = 200) -> Response:
        url = f"/runs/{urllib.parse.quote(view.info.run_id)}"
        html = page(
            f"Run {view.info.run_id[:12]}",
            run_body(view, message),
            events=url + "/events",
            part=url + "/part",
            version=view.version(),
        )
        return HTMLResponse(html, status_code=status)

    def _stream(self, read: live.Read, request: Request) -> Response:
        since = request.query_params.get("since", "")
        stream = live.changes(read, self.store, seconds=self.stream_for, since=since)
        headers = {"Cache-Control": "no-store", "X-Accel-Buffering": "no"}
        return StreamingResponse(stream, media_type="text/event-stream", headers=headers)

    @staticmethod
    def _same_origin(request: Request) -> None:
        """Refuse a form posted from another site (a page elsewhere posting to loopback)."""
        origin = request.headers.get("origin")
        if origin and urllib.parse.urlsplit(origin).netloc != request.headers.get("host"):
            raise Refusal(403, f"a form from {origin!r:.80} may not change runs here")
