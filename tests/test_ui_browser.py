"""The inspector page in a real headless browser (Debian's chromium, driven by Playwright).

Real processes: ``trio-graph ui`` serves a SQLite file on a free loopback port; a run
is left waiting by ``trio-graph demo --leave-waiting``, or executed live by a runner
process waiting at its barrier. The page shows the payload; approve and cancel clicked
in the browser reach the runner's process through the store (``store.decide`` /
``store.cancel``), which finishes the run, and the page shows the new status without a
reload. Skipped (one reason) when /usr/bin/chromium is absent, unless ``CI`` is set:
under CI they must run. ``TRIO_GRAPH_SCREENSHOT=1`` saves ``docs/inspector.png``.
"""

from __future__ import annotations

import json
import os
import re
import select
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = "/usr/bin/chromium"
SCREENSHOT = Path(__file__).resolve().parent.parent / "docs" / "inspector.png"
WAIT_MS = 20_000
"""How long the browser waits for what the page must show (a hang guard)."""

if not os.path.exists(CHROMIUM) and not os.environ.get("CI"):
    pytest.skip(
        f"no {CHROMIUM} (apt-get install chromium; CI installs it)", allow_module_level=True
    )

from playwright.sync_api import Browser, Page, expect, sync_playwright  # noqa: E402

pytestmark = [pytest.mark.browser, pytest.mark.slow]

RUNNER = """
import json, sys, trio
from trio_graph import Executor, GraphBuilder
from trio_graph import events as ev
from trio_graph.errors import GraphError
from trio_graph.stores import SQLiteStore

graph = (
    GraphBuilder("review")
    .task("draft", lambda s: {"text": "hello from the runner"})
    .barrier("ok", show=lambda s: {"draft": s["text"]})
    .task("publish", lambda s: {"published": s["ok.approved"]})
    .edge("draft", "ok")
    .edge("ok", "publish")
    .start("draft")
    .end("publish")
    .build()
)

async def main():
    async with SQLiteStore(sys.argv[1]) as store:
        try:
            async with Executor(store=store).stream(graph, {}) as run:
                async for event in run:
                    if isinstance(event, ev.BarrierWaiting):
                        print("waiting", run.run_id, flush=True)
                    elif isinstance(event, ev.GraphError):
                        print(json.dumps({"end": "error", "error": str(event.error)}), flush=True)
            if run.result is not None:
                print(json.dumps({"end": "completed", "state": run.result.state}), flush=True)
        except GraphError as exc:
            print(json.dumps({"end": "raised", "error": str(exc)}), flush=True)

if __name__ == "__main__":
    trio.run(main)
"""


def _line(proc: subprocess.Popen[str], seconds: float) -> str:
    """The process's next line of output, or fail after ``seconds`` (a hang guard)."""
    assert proc.stdout is not None
    ready, _, _ = select.select([proc.stdout], [], [], seconds)
    if not ready:
        proc.kill()
        err = proc.stderr.read() if proc.stderr else ""
        raise AssertionError(f"no output within {seconds}s: {err}")
    return proc.stdout.readline()


def _spawn(*argv: str, cwd: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, *argv],
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=dict(os.environ),
    )


def _stop(proc: subprocess.Popen[str]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    for pipe in (proc.stdout, proc.stderr):
        if pipe is not None:
            pipe.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    tab = context.new_page()
    tab.set_default_timeout(WAIT_MS)
    yield tab
    context.close()


def serve(db: Path, *options: str) -> tuple[subprocess.Popen[str], str]:
    """``trio-graph ui --db DB --port 0``: the process and the URL it says it serves."""
    argv = ["-m", "trio_graph", "ui", "--db", str(db), "--port", "0", *options]
    proc = _spawn(*argv, cwd=db.parent)
    line = _line(proc, 30)
    found = re.search(r"http://127\.0\.0\.1:\d+", line)
    assert found is not None and "loopback only" in line, line
    return proc, found.group(0)


@pytest.fixture
def runner(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[str], str, str]]:
    """A runner process waiting at its barrier, and the inspector over its store, given
    the runner's graph (``--graph runner:graph``): (the runner, its run id, the URL)."""
    db = tmp_path / "live.db"
    (tmp_path / "runner.py").write_text(RUNNER)
    proc = _spawn("runner.py", str(db), cwd=tmp_path)
    server = None
    try:
        word, run_id = _line(proc, 60).split()
        assert word == "waiting"
        server, url = serve(db, "--graph", "runner:graph")
        yield proc, run_id, url
    finally:
        _stop(proc)
        if server is not None:
            _stop(server)


def _end(proc: subprocess.Popen[str]) -> dict[str, Any]:
    end: dict[str, Any] = json.loads(_line(proc, 30))
    return end


def test_a_run_left_waiting_is_listed_and_shows_its_payload(page: Page, tmp_path: Path) -> None:
    """The runs page lists the run `demo --leave-waiting` left; its page shows what the
    barrier shows and the graph; a modify with a value that is not JSON shows the error
    and records nothing."""
    db = tmp_path / "demo.db"
    demo = subprocess.run(
        [sys.executable, "-m", "trio_graph", "demo", "--leave-waiting", "--db", str(db)],
        cwd=tmp_path,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert demo.returncode == 0, demo.stderr
    run_id = re.search(r"run (\w+) is left waiting", demo.stdout).group(1)  # type: ignore[union-attr]
    server, url = serve(db)
    try:
        page.goto(url + "/")
        row = page.locator(f'tr[data-run="{run_id}"]')
        expect(row).to_contain_text("waiting")
        expect(row).to_contain_text("review#1")
        row.locator("a.run-link").click()
        expect(page.locator("section.barrier")).to_contain_text("draft v2 from 2 sources")
        expect(page.locator('g[data-node="review"]')).to_have_class(re.compile("mark-waiting"))
        if os.environ.get("TRIO_GRAPH_SCREENSHOT") == "1":
            page.screenshot(path=str(SCREENSHOT), full_page=False)
        modify = page.locator("form.decide-modify")
        modify.locator('input[name="key"]').fill("text")
        modify.locator('textarea[name="value"]').fill("{oops")
        modify.locator("button").click()
        alert = page.get_by_role("alert")
        expect(alert).to_contain_text("the value for 'text' is not JSON")
        expect(page.locator("[data-field=status] .badge")).to_have_text("waiting")
    finally:
        _stop(server)


def test_approve_in_the_browser_completes_the_live_run(
    page: Page, runner: tuple[subprocess.Popen[str], str, str]
) -> None:
    """Clicking approve records the decision; the runner's process takes it and
    completes the run; the page turns to completed by itself (no reload)."""
    proc, run_id, url = runner
    page.goto(url + "/")
    page.locator(f'tr[data-run="{run_id}"] a.run-link').click()
    expect(page.locator("section.barrier")).to_contain_text("hello from the runner")
    expect(page.locator("figcaption")).to_contain_text("The graph review.")
    page.locator("form.decide-approve button").click()
    page.wait_for_url(re.compile(r"done=decided"))
    page.evaluate("window.__same_page = true")
    expect(page.locator("[data-field=status] .badge")).to_have_text("completed")
    expect(page.locator('g[data-node="publish"]')).to_have_class(re.compile("mark-visited"))
    assert page.evaluate("window.__same_page") is True  # updated live, not reloaded
    end = _end(proc)
    assert end["end"] == "completed" and end["state"]["published"] is True


def test_cancel_in_the_browser_stops_the_live_run(
    page: Page, runner: tuple[subprocess.Popen[str], str, str]
) -> None:
    """Clicking cancel records it; the runner's process stops the run; the page turns to
    cancelled by itself (no reload)."""
    proc, run_id, url = runner
    page.goto(f"{url}/runs/{run_id[:8]}")
    page.locator("form.cancel button").click(timeout=5000)
    page.wait_for_url(re.compile(r"done=cancelled"))
    page.evaluate("window.__same_page = true")
    expect(page.locator("[data-field=status] .badge")).to_have_text("cancelled")
    assert page.evaluate("window.__same_page") is True
    end = _end(proc)
    assert end["end"] in ("error", "raised") and "cancelled" in end["error"]
