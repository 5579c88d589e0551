"""What the command line prints besides the commands' output: a stdout closed early,
hints that run as printed, how a stored run stands, a store refused before any step."""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import trio

from trio_graph import Executor, GraphBuilder
from trio_graph import events as ev
from trio_graph._cli.output import standing
from trio_graph.stores import MemoryStore

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX pipes and shells")

TRACE = re.compile(r"run ([0-9a-f]{32})")
HERE = str(Path(__file__).resolve().parents[1])

LOOP = """
from trio_graph import GraphBuilder
graph = (
    GraphBuilder("loop")
    .task("a", lambda s: {"n": s.get("n", 0) + 1})
    .barrier("gate")
    .task("b", lambda s: {"done": True})
    .edge("a", "gate")
    .edge_if("gate", "a", lambda s: not s["gate.approved"])
    .edge("gate", "b")
    .start("a").end("b").build()
)
"""


def env(path: str | None = None) -> dict[str, str]:
    """The environment of a user's shell: this tree's code, PATH as given."""
    base = {**os.environ, "PYTHONPATH": f"{HERE}{os.pathsep}."}
    if path is not None:
        base["PATH"] = path
    return base


def cli(*args: str, cwd: Path, path: str | None = None) -> subprocess.CompletedProcess[str]:
    """``python -m trio_graph ARGS`` with no terminal."""
    return shell([sys.executable, "-m", "trio_graph", *args], cwd=cwd, path=path)


def shell(
    argv: list[str], *, cwd: Path, path: str | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        argv,
        cwd=cwd,
        env=env(path),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=120,
    )


def closed_reader(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """The CLI writing into a pipe whose reader has already gone (``| true``)."""
    read, write = os.pipe()
    os.close(read)  # no reader left: the first write meets EPIPE
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "trio_graph", *args],
            cwd=cwd,
            env=env(),
            stdin=subprocess.DEVNULL,
            stdout=write,
            stderr=subprocess.PIPE,
            text=True,
            timeout=120,
        )
    finally:
        os.close(write)
    return subprocess.CompletedProcess(proc.args, proc.returncode, "", proc.stderr)


def hints(text: str) -> list[str]:
    """The commands a CLI output suggests: in backticks, or on an indented line of their own."""
    found = re.findall(r"`([^`]+)`", text)
    found += [
        line.strip() for line in text.splitlines() if line.startswith("  ") and " -m " in line
    ]
    return found


def run_hint(hint: str, cwd: Path, path: str | None = None) -> subprocess.CompletedProcess[str]:
    return shell(shlex.split(hint), cwd=cwd, path=path)


def last_checkpoint(trace: str, db: Path, cwd: Path) -> dict[str, object]:
    rows = cli("history", trace, "--json", "--db", str(db), cwd=cwd).stdout.splitlines()
    doc: dict[str, object] = json.loads(rows[-1])
    return doc


# -- item 10: a closed stdout ----------------------------------------------------------------
def test_history_into_a_closed_pipe_is_quiet(tmp_path: Path) -> None:
    """`history --json RUN | head` exits 141 with nothing on stderr, not a database error."""
    left = cli("demo", "--leave-waiting", "--db", "h.db", cwd=tmp_path)
    trace = TRACE.findall(left.stdout)[0]
    for args in (["--json", "history", trace], ["history", trace], ["runs"]):
        proc = closed_reader(*args, "--db", "h.db", cwd=tmp_path)
        assert (proc.returncode, proc.stderr) == (141, ""), args


def test_decide_into_a_closed_pipe_runs_on(tmp_path: Path) -> None:
    """`decide ... | head`: the resumed run is not cancelled, it runs on to its next barrier."""
    left = cli("demo", "--leave-waiting", "--db", "d.db", cwd=tmp_path)
    trace = TRACE.findall(left.stdout)[0]
    proc = closed_reader(
        "decide", trace, "review", "reject", "more", "--resume", "--db", "d.db", cwd=tmp_path
    )
    assert proc.returncode == 141, proc.stderr
    assert "error" not in proc.stderr
    new = TRACE.findall(proc.stderr)[0]  # the note the person needs goes to stderr instead
    assert f"run {new} is left waiting at review#2" in proc.stderr
    last = last_checkpoint(new, tmp_path / "d.db", tmp_path)
    assert (last["status"], last["pending_barrier"], last["step"]) == (
        "waiting",
        {"node": "review", "occurrence": 2},
        12,
    )


def test_a_reader_leaving_mid_run_does_not_stop_it(tmp_path: Path) -> None:
    """Piped into `head -3`, the demo still runs to its end; the output just stops."""
    db = tmp_path / "m.db"
    command = f"{shlex.quote(sys.executable)} -m trio_graph demo --db m.db | head -3"
    proc = shell(["sh", "-c", command], cwd=tmp_path)
    assert len(proc.stdout.splitlines()) == 3
    assert "error" not in proc.stderr
    rows = cli("runs", "--json", "--db", str(db), cwd=tmp_path).stdout.splitlines()
    assert [json.loads(r)["status"] for r in rows] == ["completed"]


# -- item 11: hints run as printed -------------------------------------------------------------
@pytest.fixture
def no_script_path(tmp_path: Path) -> str:
    """A PATH on which no `trio-graph` script is found."""
    empty = tmp_path / "bin"
    empty.mkdir()
    return f"{empty}{os.pathsep}/usr/bin{os.pathsep}/bin"


@pytest.mark.slow
def test_hints_after_the_demo_run_as_printed(tmp_path: Path, no_script_path: str) -> None:
    """With no `trio-graph` on PATH the hints spell this Python, with --db and --max-steps."""
    left = cli("demo", "--leave-waiting", "--db", "x.db", "--max-steps", "60", cwd=tmp_path,
               path=no_script_path)  # fmt: skip
    (decide,) = hints(left.stdout)
    assert decide.startswith(f"{sys.executable} -m trio_graph decide ")
    assert decide.endswith(" --db x.db --max-steps 60")
    rejected = run_hint(decide.replace("approve", "reject"), tmp_path, no_script_path)
    assert rejected.returncode == 0, rejected.stderr
    (again,) = hints(rejected.stdout)
    assert "review#2" in again
    approved = run_hint(again, tmp_path, no_script_path)
    assert approved.returncode == 0, approved.stderr
    assert "completed in" in approved.stdout
    full = cli("demo", "--db", "x.db", cwd=tmp_path, path=no_script_path)
    for hint in hints(full.stdout):  # next: runs, history, mermaid
        proc = run_hint(hint, tmp_path, no_script_path)
        assert proc.returncode == 0, (hint, proc.stderr)


def test_hints_keep_the_graph_option(tmp_path: Path, no_script_path: str) -> None:
    """After `decide ... --graph m:g` the hint for the next barrier keeps `--graph m:g`."""
    (tmp_path / "loop.py").write_text(LOOP)
    script = """
import sys, trio
from trio_graph import Executor
from trio_graph.stores import SQLiteStore
from loop import graph
async def main():
    async with SQLiteStore("l.db") as store:
        async with Executor(store=store).stream(graph, {}) as run:
            async for event in run:
                if type(event).__name__ == "BarrierWaiting":
                    print(run.trace_id)
                    return
trio.run(main)
"""
    trace = shell([sys.executable, "-c", script], cwd=tmp_path).stdout.strip()
    proc = cli("decide", trace, "gate", "reject", "--graph", "loop:graph", "--resume",
               "--db", "l.db", cwd=tmp_path, path=no_script_path)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    (hint,) = hints(proc.stdout)
    assert hint.endswith(" --db l.db --graph loop:graph")
    done = run_hint(hint, tmp_path, no_script_path)
    assert done.returncode == 0, done.stderr
    assert "done = true" in done.stdout


def test_hints_say_trio_graph_when_it_is_this_installation(tmp_path: Path) -> None:
    """With this installation's `trio-graph` on PATH the hints use it, and it runs."""
    script = Path(sys.executable).with_name("trio-graph")
    if not script.exists():
        pytest.skip("no trio-graph console script beside this Python")
    path = f"{script.parent}{os.pathsep}{os.environ.get('PATH', '')}"
    proc = cli("history", "feedbeef", "--db", "none.db", cwd=tmp_path, path=path)
    (demo,) = hints(proc.stderr)
    assert demo == "trio-graph demo --db none.db"
    assert run_hint(demo, tmp_path, path).returncode == 0


# -- item 12: how a stored run stands ------------------------------------------------------------
def test_history_says_left_waiting_not_cancelled(tmp_path: Path) -> None:
    """A run left at a barrier reads "left waiting at review#1" in `history`, not "cancelled"."""
    left = cli("demo", "--leave-waiting", "--db", "s.db", cwd=tmp_path)
    trace = TRACE.findall(left.stdout)[0]
    last = cli("history", trace, "--db", "s.db", cwd=tmp_path).stdout.splitlines()[-1]
    assert last.startswith("left waiting at review#1; answer it with `")
    assert "cancelled" not in last


def test_history_says_parked_for_a_queued_job(tmp_path: Path) -> None:
    """A queued job a worker parked at its barrier reads "parked at gate#1"."""
    (tmp_path / "loop.py").write_text(LOOP)
    assert cli("demo", "--db", "q.db", cwd=tmp_path).returncode == 0
    job = cli("submit", "loop", "--db", "q.db", cwd=tmp_path).stdout.strip()
    served = cli("worker", "--graph", "loop:graph", "--until-idle", "--db", "q.db", cwd=tmp_path)
    assert "1 parked" in served.stderr
    last = cli("history", job, "--db", "q.db", cwd=tmp_path).stdout.splitlines()[-1]
    assert last.startswith("parked at gate#1: a worker resumes it once it is decided; answer it")
    (hint,) = hints(last)
    assert run_hint(hint, tmp_path).returncode == 0


async def test_an_interrupted_run_reads_interrupted() -> None:
    """A run cancelled during a node stands "interrupted" at that node (resumable), not failed."""
    store = MemoryStore()
    started = trio.Event()

    async def slow(state: object) -> dict[str, int]:
        started.set()
        await trio.sleep_forever()
        return {}

    graph = (
        GraphBuilder("slow").task("a", lambda s: {"n": 1}).task("b", slow).edge("a", "b")
        .start("a").end("b").build()
    )  # fmt: skip
    async with Executor(store=store).stream(graph, {}) as run:
        async for event in run:
            if isinstance(event, ev.NodeStart) and event.node == "b":
                await started.wait()
                run.cancel()
    last = await store.latest(run.trace_id)
    assert standing(last) == "interrupted after step 1; a resume continues at node 'b'"


# -- item 13 (CLI side): the store is opened and checked first -----------------------------------
@pytest.fixture
def read_only_folder(tmp_path: Path) -> Iterator[Path]:
    """A folder nobody may write into (as root: an immutable one)."""
    folder = tmp_path / "ro"
    folder.mkdir()
    if os.geteuid() == 0:
        if subprocess.run(["chattr", "+i", str(folder)], capture_output=True).returncode:
            pytest.skip("root, and chattr +i is not available")
        undo = ["chattr", "-i", str(folder)]
    else:
        folder.chmod(0o555)
        undo = ["chmod", "755", str(folder)]
    try:
        yield folder
    finally:
        subprocess.run(undo, check=True)


def refused(proc: subprocess.CompletedProcess[str], where: str) -> str:
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    assert proc.stdout == ""  # not a step ran, nor the demo's banner
    (line,) = proc.stderr.splitlines()
    assert line.startswith("trio-graph: error: ") and where in line
    return line


def test_a_file_that_is_not_sqlite_is_refused_before_any_step(tmp_path: Path) -> None:
    """`demo` (and every command) on a file that is not SQLite: one line, exit 2, nothing run."""
    (tmp_path / "notes.txt").write_text("my notes\n" * 100)
    for args in (["demo"], ["runs"], ["history", "feedbeef"]):
        refused(cli(*args, "--db", "notes.txt", cwd=tmp_path), "notes.txt")
    assert (tmp_path / "notes.txt").read_text() == "my notes\n" * 100


def test_a_read_only_folder_is_refused_before_any_step(read_only_folder: Path) -> None:
    """`demo` in a read-only folder: one line, exit 2, not a step run."""
    refused(cli("demo", "--db", "ro/new.db", cwd=read_only_folder.parent), "ro/new.db")


def test_store_refusals_name_the_problem(tmp_path: Path, read_only_folder: Path) -> None:
    """The one line says "is not a trio_graph database" / "is read-only"."""
    (tmp_path / "notes.txt").write_text("my notes\n")
    line = refused(cli("demo", "--db", "notes.txt", cwd=tmp_path), "notes.txt")
    assert "is not a trio_graph database" in line
    line = refused(cli("demo", "--db", "ro/new.db", cwd=tmp_path), "ro/new.db")
    assert "is read-only" in line


def test_hints_repeat_the_postgres_options() -> None:
    """A hint repeats `--dsn` (its password masked, never printed) and `--schema`."""
    from trio_graph._cli.hints import hint as _hint
    from trio_graph._cli.parser import build_parser

    args = build_parser().parse_args(
        ["history", "abcd", "--dsn", "postgresql://u@h/db", "--schema", "s1"]
    )
    assert _hint(args, "runs", quote="").endswith(" runs --dsn postgresql://u@h/db --schema s1")
    args = build_parser().parse_args(["runs", "--dsn", "host=h password=pw dbname=x"])
    assert _hint(args, "runs", quote="").endswith(" runs --dsn 'host=h password=*** dbname=x'")


TALK = """
from trio_graph import GraphBuilder

async def talk(state, ctx):
    await ctx.emit("hello\\nworld")
    await ctx.emit({"tokens": list(range(300))})
    return {"done": True}

graph = GraphBuilder("talk").task("talk", talk).start("talk").end("talk").build()
"""


def test_the_worker_prints_what_its_runs_stream(tmp_path: Path) -> None:
    """`worker` prints one shortened line per ``ctx.emit`` of a run it serves (job, node,
    data); with `--json`, the ``NodeOutput`` event's JSON line."""
    (tmp_path / "talk.py").write_text(TALK)
    assert cli("demo", "--db", "q.db", cwd=tmp_path).returncode == 0
    jobs = [cli("submit", "talk", "--db", "q.db", cwd=tmp_path).stdout.strip() for _ in range(2)]
    serve = ["worker", "--graph", "talk:graph", "--until-idle", "--db", "q.db"]
    served = cli(*serve, cwd=tmp_path)
    assert served.returncode == 0, served.stderr
    assert "2 completed" in served.stderr and "0 cancelled" in served.stderr
    lines = served.stdout.splitlines()
    assert [line.split(" > ")[0] for line in lines] == [
        f"{job[:12]} talk" for job in jobs for _ in range(2)
    ]  # one worker slot: the jobs one after the other, each node's outputs in order
    assert lines[0].endswith("talk > hello world")
    assert lines[1].split(" > ", 1)[1].startswith('{"tokens": [0, 1, 2')
    assert lines[1].endswith("...") and len(lines[1].split(" > ", 1)[1]) == 120
    again = cli("submit", "talk", "--db", "q.db", cwd=tmp_path).stdout.strip()
    as_json = cli(*serve, "--json", cwd=tmp_path)
    events = [json.loads(line) for line in as_json.stdout.splitlines()]
    assert [(e["trace_id"], e["node"], e["data"]) for e in events] == [
        (again, "talk", "hello\nworld"),
        (again, "talk", {"tokens": list(range(300))}),
    ]
