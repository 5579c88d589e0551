"""The inspector page's app (trio_graph.ui), at the ASGI level: every route and bad input.

httpx drives the Starlette app in-process on Trio (``ASGITransport``); the store is a
``MemoryStore``, whose ``decide``/``cancel`` reach a run executing in this process, so a
decision posted to the page is taken by the live run. Time is virtual
(``autojump_clock``) wherever the page waits.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import _pg
import httpx
import pytest
import trio

from trio_graph import Approve, BarrierId, Checkpoint, Executor, GraphBuilder
from trio_graph import events as ev
from trio_graph._model.checkpoint import RunStatus, new_id
from trio_graph._model.graph import Graph
from trio_graph.errors import Cancelled
from trio_graph.stores.memory import MemoryStore
from trio_graph.stores.postgres import PostgresStore
from trio_graph.stores.sqlite import SQLiteStore
from trio_graph.ui.app import create_app

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def review() -> Graph:
    """draft -> ok (a barrier showing the text; a rejection loops back) -> publish."""
    return (
        GraphBuilder("review")
        .task("draft", lambda s: {"text": "hello <world>"})
        .barrier("ok", show=lambda s: {"text": s["text"], "note": "check & approve"})
        .task("publish", lambda s: {"published": s.get("ok.approved")})
        .edge("draft", "ok")
        .edge_if("ok", "draft", lambda s: s.get("ok.approved") is False)
        .edge("ok", "publish")
        .start("draft")
        .end("publish")
        .build()
    )


GRAPH = review()


@asynccontextmanager
async def client(store: Any, **options: Any) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(store, graphs=[GRAPH], **options)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        yield c


class LiveRun:
    """A run of :data:`GRAPH` executing in a task, its events kept, its end recorded."""

    def __init__(self) -> None:
        self.run: Any = None
        self.events: list[ev.Event] = []
        self.error: BaseException | None = None
        self.done = trio.Event()

    async def main(self, store: MemoryStore, *, task_status: Any) -> None:
        try:
            async with Executor(store=store).stream(GRAPH, {}) as run:
                self.run = run
                async for event in run:
                    self.events.append(event)
                    if isinstance(event, ev.BarrierWaiting) and task_status is not None:
                        task_status.started(self)
                        task_status = None
        except Cancelled as exc:
            self.error = exc
        finally:
            self.done.set()


async def start_live(nursery: trio.Nursery, store: MemoryStore) -> LiveRun:
    live = LiveRun()
    await nursery.start(live.main, store)
    return live


def stored(trace_id: str, status: RunStatus = RunStatus.COMPLETED, **kw: Any) -> Checkpoint:
    name, node = kw.pop("graph_name", "g"), kw.pop("next_node", None)
    return Checkpoint(new_id(), trace_id, name, "h", node, 1, {}, status, **kw)


async def test_the_runs_page_lists_runs_newest_first_and_filters(autojump_clock: Any) -> None:
    """`/` lists every run newest first with its status; ?status= and ?graph= filter the
    list (the counts stay over all runs); an unknown status is refused with 400."""
    store = MemoryStore()
    await store.save(stored("aaaa0001", created_at=100.0, graph_name="one"))
    await store.save(stored("bbbb0002", RunStatus.FAILED, created_at=300.0, graph_name="two"))
    await store.save(stored("cccc0003", created_at=200.0, graph_name="two"))
    async with client(store) as c:
        page = (await c.get("/")).text
        assert re.findall(r'data-run="(\w+)"', page) == ["bbbb0002", "cccc0003", "aaaa0001"]
        assert 'data-count="completed">2<' in page and 'data-count="failed">1<' in page
        only = (await c.get("/", params={"status": "completed", "graph": "two"})).text
        assert re.findall(r'data-run="(\w+)"', only) == ["cccc0003"]
        assert 'data-count="completed">2<' in only
        bad = await c.get("/", params={"status": "nope"})
        assert bad.status_code == 400
        assert "unknown status &#x27;nope&#x27;" in bad.text
        part = await c.get("/part", params={"graph": "one"})
        assert re.findall(r'data-run="(\w+)"', part.text) == ["aaaa0001"]
        assert "<html" not in part.text


async def test_an_empty_store_says_how_to_make_a_run(autojump_clock: Any) -> None:
    """With no runs the page says so and names the demo command."""
    async with client(MemoryStore()) as c:
        page = (await c.get("/")).text
    assert "No runs in this store yet" in page and "trio-graph demo --leave-waiting" in page


async def test_a_waiting_run_shows_its_payload_graph_and_controls(autojump_clock: Any) -> None:
    """`/runs/{prefix}` shows the waiting barrier's payload (escaped), the forms for it
    (reroute targets from the barrier's edges), the graph with the barrier marked
    waiting, the timeline and each checkpoint's state."""
    store = MemoryStore()
    async with trio.open_nursery() as nursery, client(store) as c:
        live = await start_live(nursery, store)
        page = (await c.get(f"/runs/{live.run.run_id[:6]}")).text
        live.run.cancel()
    assert "hello &lt;world&gt;" in page and "check &amp; approve" in page
    assert 'name="barrier" value="ok#1"' in page
    assert re.findall(r'<option value="(\w+)">', page) == ["draft", "publish"]
    assert 'class="node kind-barrier mark-waiting" data-node="ok"' in page
    assert "<svg" in page and "The graph review." in page
    assert '<table class="timeline">' in page and "+ text = " in page
    assert 'data-events="/runs/' in page and "Cancel run" in page


async def test_unknown_short_and_ambiguous_run_ids_are_refused(autojump_clock: Any) -> None:
    """An unknown run is 404; a prefix under 4 characters, or one matching two runs, is
    400, each saying why; an unknown route is 404."""
    store = MemoryStore()
    await store.save(stored("abcd1111"))
    await store.save(stored("abcd2222"))
    async with client(store) as c:
        unknown = await c.get("/runs/ffff0000")
        short = await c.get("/runs/abc")
        both = await c.get("/runs/abcd")
        events = await c.get("/runs/ffff0000/events")
        post = await c.post("/runs/ffff0000/decide", data={"action": "approve"})
        nothing = await c.get("/nowhere")
    assert unknown.status_code == 404 and "no run &#x27;ffff0000&#x27;" in unknown.text
    assert short.status_code == 400 and "too short" in short.text
    assert both.status_code == 400 and "matches 2 runs" in both.text
    assert events.status_code == 404 and post.status_code == 404
    assert nothing.status_code == 404


async def test_approve_posted_to_the_page_reaches_the_live_run(autojump_clock: Any) -> None:
    """POST decide approve goes through store.decide: the live run takes it and completes;
    the page redirects (303) to the run, which then shows completed."""
    store = MemoryStore()
    async with trio.open_nursery() as nursery, client(store) as c:
        live = await start_live(nursery, store)
        url = f"/runs/{live.run.run_id}"
        answer = await c.post(f"{url}/decide", data={"barrier": "ok#1", "action": "approve"})
        assert answer.status_code == 303
        assert answer.headers["location"] == f"{url}?done=decided"
        with trio.fail_after(10):
            await live.done.wait()
        after = (await c.get(answer.headers["location"])).text
    assert live.run.result.state["published"] is True
    assert "Decision recorded" in after and "status-completed" in after
    assert "Cancel run" not in after and 'name="barrier"' not in after


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"action": "approve"}, "field &#x27;barrier&#x27; is missing"),
        ({"barrier": "ok#x", "action": "approve"}, "field &#x27;barrier&#x27;: "),
        ({"barrier": "ok#1", "action": "explode"}, "field &#x27;action&#x27; must be one of"),
        ({"barrier": "ok#1", "action": "modify", "value": "1"}, "modify needs a state key"),
        (
            {"barrier": "ok#1", "action": "modify", "key": "text", "value": "{oops"},
            "the value for &#x27;text&#x27; is not JSON (Expecting property name",
        ),
        ({"barrier": "ok#1", "action": "reroute", "target": ""}, "reroute needs a target"),
    ],
)
async def test_malformed_forms_are_refused_and_nothing_is_recorded(
    autojump_clock: Any, fields: dict[str, str], message: str
) -> None:
    """A form that cannot be read is 400 with the field named, shown on the run page in
    an alert; the run keeps waiting and receives nothing."""
    store = MemoryStore()
    async with trio.open_nursery() as nursery, client(store) as c:
        live = await start_live(nursery, store)
        answer = await c.post(f"/runs/{live.run.run_id}/decide", data=fields)
        steering = await store.steering(live.run.run_id)
        live.run.cancel()
    assert answer.status_code == 400
    assert 'role="alert"' in answer.text and message in answer.text
    assert "status-waiting" in answer.text
    assert steering.decisions == []


async def test_a_body_that_is_not_text_is_refused(autojump_clock: Any) -> None:
    """A decide body that is not UTF-8 is 400, not a server error."""
    store = MemoryStore()
    async with trio.open_nursery() as nursery, client(store) as c:
        live = await start_live(nursery, store)
        headers = {"content-type": "application/x-www-form-urlencoded"}
        answer = await c.post(
            f"/runs/{live.run.run_id}/decide", content=b"\xff\xfe", headers=headers
        )
        live.run.cancel()
    assert answer.status_code == 400 and "not urlencoded UTF-8" in answer.text


async def test_decisions_the_run_could_never_take_show_the_reason(autojump_clock: Any) -> None:
    """A reroute to a node no edge from the barrier leads to is refused by the graph
    (422, the MissingEdge reason shown); a decision for another barrier occurrence is
    409; the run receives neither."""
    store = MemoryStore()
    async with trio.open_nursery() as nursery, client(store) as c:
        live = await start_live(nursery, store)
        url = f"/runs/{live.run.run_id}/decide"
        reroute = await c.post(url, data={"barrier": "ok#1", "action": "reroute", "target": "x"})
        other = await c.post(url, data={"barrier": "ok#2", "action": "approve"})
        steering = await store.steering(live.run.run_id)
        live.run.cancel()
    assert reroute.status_code == 422 and 'role="alert"' in reroute.text
    assert "&#x27;x&#x27;" in reroute.text
    assert other.status_code == 409 and "waits at ok#1, not at ok#2" in other.text
    assert steering.decisions == []


async def test_a_decision_or_cancel_for_a_finished_run_is_refused(autojump_clock: Any) -> None:
    """A completed run has nothing to decide or cancel: 409 with its status; its page
    offers no controls."""
    store = MemoryStore()
    result = await Executor(store=store).run(
        GraphBuilder("done").task("a", lambda s: {"x": 1}).start("a").end("a").build(), {}
    )
    async with client(store) as c:
        url = f"/runs/{result.run_id}"
        decide = await c.post(f"{url}/decide", data={"barrier": "ok#1", "action": "approve"})
        cancel = await c.post(f"{url}/cancel")
        page = (await c.get(url)).text
    assert decide.status_code == 409 and "is completed: no barrier waits" in decide.text
    assert cancel.status_code == 409 and "is completed: nothing to cancel" in cancel.text
    assert "Cancel run" not in page and "Drawn from the checkpoints only" in page


async def test_cancel_posted_to_the_page_stops_the_live_run(autojump_clock: Any) -> None:
    """POST cancel goes through store.cancel: the live run stops and its last checkpoint
    says cancelled."""
    store = MemoryStore()
    async with trio.open_nursery() as nursery, client(store) as c:
        live = await start_live(nursery, store)
        url = f"/runs/{live.run.run_id}"
        answer = await c.post(f"{url}/cancel")
        with trio.fail_after(10):
            await live.done.wait()
        page = (await c.get(f"{url}?done=cancelled")).text
    assert answer.status_code == 303 and answer.headers["location"] == f"{url}?done=cancelled"
    latest = await store.latest(live.run.run_id)
    assert latest is not None and latest.status == RunStatus.CANCELLED
    assert "status-cancelled" in page and "Cancel recorded" in page


class NoCancel:
    """A store without ``cancel``, ``decide`` or steering (a plain checkpoint store)."""

    def __init__(self, inner: MemoryStore) -> None:
        self._inner = inner

    def __getattr__(self, name: str) -> Any:
        if name in ("cancel", "decide", "wait_for_steering"):
            raise AttributeError(name)
        return getattr(self._inner, name)


async def test_a_store_without_cancel_offers_none(autojump_clock: Any) -> None:
    """With a store that has no cancel the page shows no cancel control and a posted
    cancel is 501 saying why; likewise a decision for a store that keeps none."""
    store = MemoryStore()
    await store.save(
        stored("abcd1111", RunStatus.WAITING, next_node="ok", pending_barrier=BarrierId("ok", 1))
    )
    async with client(NoCancel(store)) as c:
        page = (await c.get("/runs/abcd1111")).text
        answer = await c.post("/runs/abcd1111/cancel")
        decide = await c.post(
            "/runs/abcd1111/decide", data={"barrier": "ok#1", "action": "approve"}
        )
    assert "Cancel run" not in page
    assert answer.status_code == 501 and "cannot cancel" in answer.text
    assert decide.status_code == 501 and "keeps no decisions" in decide.text


async def test_a_form_from_another_site_is_refused(autojump_clock: Any) -> None:
    """A POST whose Origin is another site is 403 (a page elsewhere cannot steer runs)."""
    store = MemoryStore()
    async with trio.open_nursery() as nursery, client(store) as c:
        live = await start_live(nursery, store)
        url = f"/runs/{live.run.run_id}"
        evil = {"origin": "http://evil.example"}
        decide = await c.post(
            f"{url}/decide", data={"barrier": "ok#1", "action": "approve"}, headers=evil
        )
        cancel = await c.post(f"{url}/cancel", headers=evil)
        same = await c.post(f"{url}/cancel", headers={"origin": "http://testserver"})
        await live.done.wait()
    assert decide.status_code == 403 and cancel.status_code == 403
    assert same.status_code == 303


async def test_the_event_streams_say_what_changed(autojump_clock: Any) -> None:
    """`/runs/{id}/events` and `/events` are text/event-stream; each sends one `change`
    with what the page shows (status, step; counts), then nothing while nothing changes,
    and ends after the app's stream time."""
    store = MemoryStore()
    await store.save(stored("abcd1111", RunStatus.WAITING, next_node="ok"))
    async with client(store, stream_for=5.0) as c:
        run = await c.get("/runs/abcd/events")
        runs = await c.get("/events", params={"status": "waiting"})
        since = await c.get("/runs/abcd/events", params={"since": _version(run.text)})
    assert run.headers["content-type"].startswith("text/event-stream")
    assert run.text.count("event: change") == 1
    assert '"status":"waiting","step":1' in run.text
    assert runs.text.count("event: change") == 1 and '"waiting":1' in runs.text
    assert "event: change" not in since.text


def _version(stream: str) -> str:
    found = re.search(r'"version":"([^"]+)"', stream)
    assert found is not None
    return found.group(1)


async def test_the_run_part_and_the_static_files(autojump_clock: Any) -> None:
    """`/runs/{id}/part` is the live part alone; the stylesheet and script are served by
    the app (no CDN); an unknown static file is 404."""
    store = MemoryStore()
    await store.save(stored("abcd1111"))
    async with client(store) as c:
        part = await c.get("/runs/abcd1111/part")
        css = await c.get("/static/style.css")
        js = await c.get("/static/live.js")
        missing = await c.get("/static/jquery.js")
    assert part.status_code == 200 and "<html" not in part.text and "Timeline" in part.text
    assert css.headers["content-type"].startswith("text/css") and "svg.graph" in css.text
    assert js.headers["content-type"].startswith("text/javascript") and "EventSource" in js.text
    assert missing.status_code == 404


@asynccontextmanager
async def sql_store(kind: str, tmp_path: Any) -> AsyncIterator[Any]:
    """A SQLite file or a throw-away PostgreSQL schema."""
    if kind == "sqlite":
        async with SQLiteStore(str(tmp_path / "ui.db")) as store:
            yield store
        return
    dsn, schema = _pg.dsn(), _pg.new_schema()
    try:
        async with PostgresStore(dsn, schema=schema) as store:
            yield store
    finally:
        _pg.drop_schema(dsn, schema)


@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
async def test_a_parked_run_on_a_sql_store_takes_the_decision_on_resume(
    kind: str, tmp_path: Any
) -> None:
    """On SQLite and PostgreSQL: a run left waiting is listed and shown with its payload;
    its event stream works on the store's wake-ups; an approve posted for it is recorded
    in the store (its steering has it) and the page says no process executes the run
    now, so it takes the decision when resumed."""
    async with sql_store(kind, tmp_path) as store:
        async with Executor(store=store).stream(GRAPH, {}) as run:
            async for event in run:
                if isinstance(event, ev.BarrierWaiting):
                    break  # leaving the stream leaves the run waiting in the store
        run_id = run.run_id
        async with client(store, stream_for=1.5) as c:
            listed = (await c.get("/", params={"status": "waiting"})).text
            events = (await c.get(f"/runs/{run_id[:8]}/events")).text
            page = (await c.get(f"/runs/{run_id}")).text
            url = f"/runs/{run_id}/decide"
            answer = await c.post(url, data={"barrier": "ok#1", "action": "approve"})
            after = (await c.get(answer.headers["location"])).text
        steering = await store.steering(run_id)
    assert f'data-run="{run_id}"' in listed
    assert events.count("event: change") == 1 and '"status":"waiting"' in events
    assert "hello &lt;world&gt;" in page
    assert answer.status_code == 303 and answer.headers["location"].endswith("?done=parked")
    assert "No process executes this run now" in after
    assert [d.decision for d in steering.decisions] == [Approve()]
