"""The command line, run as a user would: `python -m trio_graph` in a subprocess on a temp
SQLite file."""

from __future__ import annotations

import json
import os
import re
import select
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from trio_graph import events as ev
from trio_graph import serde

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX terminal behaviour")

TRACE = re.compile(r"run ([0-9a-f]{32})")


def cli(
    *args: str, cwd: Path, db: Path | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """Run the real entry point with no terminal on stdin."""
    argv = [sys.executable, "-m", "trio_graph", *args]
    if db is not None:
        argv += ["--db", str(db)]
    return subprocess.run(
        argv,
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={
            **os.environ,
            "PYTHONPATH": os.pathsep.join([str(cwd), os.environ.get("PYTHONPATH", "")]),
        },
    )


def first_trace(text: str) -> str:
    match = TRACE.search(text)
    assert match, text
    return match.group(1)


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str, str]:
    """One completed demo run in a fresh database: (db, trace id, stdout)."""
    folder = tmp_path_factory.mktemp("demo")
    db = folder / "runs.db"
    proc = cli("demo", cwd=folder, db=db)
    assert proc.returncode == 0, proc.stderr
    return db, first_trace(proc.stdout), proc.stdout


def test_demo_completes_without_a_terminal(demo: tuple[Path, str, str]) -> None:
    """With no terminal the demo takes the barrier's default and runs to completion."""
    _, _, out = demo
    lines = out.splitlines()
    assert "no terminal: taking review#1's default (approve)" in lines
    assert "        ! research degraded: search service offline (simulated)" in lines
    assert any(line.startswith("step 10 publish ") for line in lines)
    assert any(line.startswith("completed in ") and "10 steps" in line for line in lines)


def test_runs_lists_the_demo(demo: tuple[Path, str, str], tmp_path: Path) -> None:
    """`runs` shows the demo run (one row per run), its graph, status and step."""
    db, trace, _ = demo
    proc = cli("runs", cwd=tmp_path, db=db)
    assert proc.returncode == 0, proc.stderr
    header, *rows = proc.stdout.splitlines()
    assert header.split() == ["RUN", "ID", "GRAPH", "STATUS", "STEP", "WAITING", "AT", "UPDATED"]
    assert [row.split()[:3] for row in rows] == [[trace, "demo", "completed"]]


def test_history_shows_the_checkpoints(demo: tuple[Path, str, str], tmp_path: Path) -> None:
    """`history TRACE` (a prefix is enough) lists the run's checkpoints, oldest first."""
    db, trace, _ = demo
    proc = cli("history", trace[:8], cwd=tmp_path, db=db)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert re.match(
        rf"^run {trace} \(graph 'demo', completed\): \d+ checkpoint\(s\) in 1 segment\(s\)$",
        lines[0],
    )
    rows = [line.split() for line in lines[2:]]
    assert [r[0] for r in rows] == [str(i) for i in range(1, len(rows) + 1)]
    waiting = [r for r in rows if r[4] == "waiting"]
    assert waiting and waiting[0][3] == "review" and waiting[0][5] == "review#1"
    assert rows[-1][2:5] == ["10", "-", "completed"]


def test_history_json_round_trips(demo: tuple[Path, str, str], tmp_path: Path) -> None:
    """`history --json` prints one checkpoint document per line."""
    from trio_graph import Checkpoint

    db, trace, _ = demo
    proc = cli("history", trace, "--json", cwd=tmp_path, db=db)
    checkpoints = [serde.from_json(line, Checkpoint) for line in proc.stdout.splitlines()]
    assert {cp.trace_id for cp in checkpoints} == {trace}
    assert checkpoints[-1].state["published"].startswith("structured concurrency: draft v2")


def test_demo_json_prints_events(tmp_path: Path) -> None:
    """`--json` prints every event as a JSON line the serde converter reads back."""
    proc = cli("--json", "demo", cwd=tmp_path, db=tmp_path / "j.db")
    assert proc.returncode == 0, proc.stderr
    events = [serde.from_json(line, ev.Event) for line in proc.stdout.splitlines()]
    assert isinstance(events[0], ev.GraphStart) and isinstance(events[-1], ev.GraphComplete)
    assert sum(isinstance(e, ev.NodeStart) for e in events) == 10
    assert "no terminal: taking review#1's default (approve)" in proc.stderr


def test_waiting_run_is_decided_and_resumed_to_completion(tmp_path: Path) -> None:
    """A run left waiting is answered from the CLI: reject loops back, approve completes."""
    db = tmp_path / "w.db"
    left = cli("demo", "--leave-waiting", cwd=tmp_path, db=db)
    assert left.returncode == 0, left.stderr
    trace = first_trace(left.stdout)
    assert f"run {trace} is left waiting at review#1" in left.stdout
    runs = cli("runs", cwd=tmp_path, db=db).stdout
    assert f"{trace}  demo   waiting" in runs

    rejected = cli(
        "decide", trace, "review", "reject", "needs", "examples", "--resume", cwd=tmp_path, db=db
    )
    assert rejected.returncode == 0, rejected.stderr
    assert f"resumes run {trace} at review, after step 8" in rejected.stdout
    assert "-> review#1: reject (needs examples)" in rejected.stdout
    second = first_trace(rejected.stdout)
    assert second != trace  # a new segment of the same run, which keeps its id:
    assert f"run {trace} is left waiting at review#2" in rejected.stdout  # looped back

    approved = cli("decide", second[:10], "review#2", "approve", "--resume", cwd=tmp_path, db=db)
    assert approved.returncode == 0, approved.stderr
    assert "-> review#2: approve" in approved.stdout
    assert '(revised: needs examples)"' in approved.stdout
    assert re.search(
        r"^completed in .*: 2 steps here, 14 in all; final state:$", approved.stdout, re.M
    )

    rows = [line.split() for line in cli("runs", cwd=tmp_path, db=db).stdout.splitlines()[1:]]
    assert [(row[0], row[2]) for row in rows] == [(trace, "completed")]  # one row per run


def test_resume_continues_at_the_saved_node(tmp_path: Path) -> None:
    """`resume` restarts at the checkpoint's node with the step count kept."""
    db = tmp_path / "r.db"
    trace = first_trace(cli("demo", "--leave-waiting", cwd=tmp_path, db=db).stdout)
    proc = cli("resume", trace, "--graph", "trio_graph.demo:graph", cwd=tmp_path, db=db)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0].endswith(f"resumes run {trace} at review, after step 8")
    assert "left waiting at review#1" in proc.stdout  # no terminal: nobody to ask
    assert not any(line.startswith("step ") for line in lines)  # nothing ran again


FLOWS = """
import sys
import trio
from trio_graph import Executor, GraphBuilder
from trio_graph import events as ev
from trio_graph.stores import SQLiteStore

graph = (
    GraphBuilder("flows")
    .task("a", lambda s: {"n": 1})
    .barrier("gate")
    .task("b", lambda s: {"n": s["n"] + 1})
    .edge("a", "gate").edge("gate", "b")
    .start("a").end("b").build()
)

async def start(path):
    async with SQLiteStore(path) as store:
        async with Executor(store=store).stream(graph, {}) as run:
            async for event in run:
                if isinstance(event, ev.BarrierWaiting):
                    print(run.trace_id)
                    return

if __name__ == "__main__":
    trio.run(start, sys.argv[1])
"""


@pytest.fixture
def flows(tmp_path: Path) -> tuple[Path, str]:
    """A user's graph module in the current folder and a run of it waiting at its barrier."""
    (tmp_path / "flows.py").write_text(FLOWS)
    db = tmp_path / "u.db"
    started = subprocess.run(
        [sys.executable, "flows.py", str(db)], cwd=tmp_path, capture_output=True, text=True
    )
    assert started.returncode == 0, started.stderr
    return db, started.stdout.strip()


def test_decide_with_a_user_graph_module(tmp_path: Path, flows: tuple[Path, str]) -> None:
    """`--graph module:attr` loads a graph from the current folder to resume a user's run."""
    db, trace = flows
    proc = cli(
        "decide", trace, "gate", "modify", "n", "41", "--graph", "flows:graph", "--resume",
        cwd=tmp_path, db=db,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "-> gate#1: modify n = 41" in proc.stdout
    assert "        n = 42" in proc.stdout.splitlines()


def test_a_user_graph_needs_graph_option(tmp_path: Path, flows: tuple[Path, str]) -> None:
    """Without --graph, `resume` (and `decide`, on a store that keeps no decisions) say so."""
    from trio_graph.stores import SQLiteStore

    db, trace = flows
    proc = cli("resume", trace, cwd=tmp_path, db=db)
    assert proc.returncode == 2
    assert proc.stderr == (
        "trio-graph: error: resume needs --graph MODULE:ATTR: the graph 'flows' "
        "that run was started with\n"
    )
    if hasattr(SQLiteStore, "decide"):
        return  # this SQLiteStore records decisions for workers instead
    proc = cli("decide", trace, "gate", "approve", cwd=tmp_path, db=db)
    assert proc.returncode == 2
    assert proc.stderr.startswith("trio-graph: error: decide needs --graph MODULE:ATTR for graph")


def test_mermaid_prints_the_demo_graph(tmp_path: Path) -> None:
    """`mermaid module:attr` prints a flowchart of the graph."""
    proc = cli("mermaid", "trio_graph.demo:graph", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("flowchart TD\n")
    assert 'n_review{{"review"}}' in proc.stdout


def test_console_script_is_installed(tmp_path: Path) -> None:
    """The `trio-graph` console script runs the same CLI."""
    script = shutil.which("trio-graph") or str(Path(sys.executable).with_name("trio-graph"))
    if not Path(script).exists():
        pytest.skip("trio-graph console script not installed in this environment")
    proc = subprocess.run([script, "--help"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0
    assert "demo" in proc.stdout and "worker" in proc.stdout


WRONG_GRAPH = """
from trio_graph import GraphBuilder
graph = GraphBuilder("demo").task("x", lambda s: None).start("x").end("x").build()
"""
BROKEN_GRAPH = """
from trio_graph import GraphBuilder
graph = GraphBuilder("demo").task("x", lambda s: None).build()
"""


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["history", "0123456789abcdef"], r"no run '0123456789abcdef' in .*runs\.db \(list them"),
        (["decide", "feedbeef", "review", "approve"], r"no run 'feedbeef' in "),
        (["resume", "feedbeef"], r"no run 'feedbeef' in "),
        (
            ["decide", "{done}", "review", "approve"],
            r"run \w+ is not waiting at a barrier \(status completed\)",
        ),
        (["resume", "{done}"], r"run '\w+' has nothing left to run \(status completed\)"),
        (
            ["resume", "{done}", "--graph", "wrong:graph"],
            r"graph 'demo' changed since the checkpoint",
        ),
        (
            ["resume", "{done}", "--graph", "broken:graph"],
            r"importing 'broken' failed: InvalidGraph: graph 'demo' is invalid",
        ),
        (["decide", "{done}", "review", "modify", "k"], r"modify needs KEY VALUE"),
        (
            ["mermaid", "trio_graph.demo"],
            r"expected MODULE:ATTR \(e\.g\. trio_graph\.demo:graph\), got 'trio_graph\.demo'",
        ),
        (
            ["mermaid", "no_such_module:graph"],
            r"cannot import 'no_such_module': No module named 'no_such_module'",
        ),
        (["mermaid", "trio_graph.demo:nope"], r"'trio_graph\.demo' has no attribute 'nope'"),
        (
            ["mermaid", "trio_graph.demo:PASS_MARK"],
            r"trio_graph\.demo:PASS_MARK is a float, not a trio_graph Graph",
        ),
        (["frobnicate"], r"argument COMMAND: invalid choice: 'frobnicate'"),
        (["decide", "x", "review", "maybe"], r"argument ACTION: invalid choice: 'maybe'"),
    ],
)
def test_user_mistakes_are_one_line_and_exit_2(
    demo: tuple[Path, str, str], tmp_path: Path, args: list[str], message: str
) -> None:
    """Each user mistake is one clear line on stderr and exit code 2, never a traceback."""
    db, trace, _ = demo
    (tmp_path / "wrong.py").write_text(WRONG_GRAPH)
    (tmp_path / "broken.py").write_text(BROKEN_GRAPH)
    proc = cli(*[a.replace("{done}", trace) for a in args], cwd=tmp_path, db=db)
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    lines = proc.stderr.splitlines()
    assert len(lines) == 1, proc.stderr
    assert re.match(r"^trio-graph: error: " + message, lines[0]), lines[0]


@pytest.mark.parametrize(
    ("setup", "args", "message"),
    [
        (
            "none",
            ["runs"],
            r"no database at .*missing\.db \(run `(trio-graph|\S*python\S* -m trio_graph) demo"
            r" --db \S*missing\.db` to create one",
        ),
        ("dir", ["runs"], r"cannot open '.*': unable to open database file"),
        (
            "text",
            ["runs"],
            r"'.*' is not a trio_graph database \(not a usable SQLite file: file is not a datab",
        ),
        ("none", ["demo"], r"cannot create database .*: folder .* does not exist"),
        (
            "dsn",
            ["runs"],
            r"cannot connect to PostgreSQL \(postgresql://u:\*\*\*@127\.0\.0\.1:1/x\)",
        ),
        ("both", ["runs"], r"give --db or --dsn, not both$"),
    ],
)
def test_unreachable_database_is_one_line_and_exit_2(
    tmp_path: Path, setup: str, args: list[str], message: str
) -> None:
    """A database that is missing, not a database, or unreachable is one line, exit 2."""
    extra: list[str] = []
    if setup == "none":
        target = tmp_path / ("missing.db" if args == ["runs"] else "no/such/folder/x.db")
        extra = ["--db", str(target)]
    elif setup == "dir":
        extra = ["--db", str(tmp_path)]
    elif setup == "text":
        (tmp_path / "notes.db").write_text("not a database\n" * 200)
        extra = ["--db", str(tmp_path / "notes.db")]
    elif setup == "dsn":
        pytest.importorskip("psycopg")
        extra = ["--dsn", "postgresql://u:secret@127.0.0.1:1/x"]
    else:
        extra = ["--db", "a.db", "--dsn", "postgresql://127.0.0.1:1/x"]
    proc = cli(*args, *extra, cwd=tmp_path)
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    lines = proc.stderr.splitlines()
    assert len(lines) == 1, proc.stderr
    assert re.match(r"^trio-graph: error: " + message, lines[0]), lines[0]
    assert "secret" not in proc.stderr


@pytest.mark.skipif(not hasattr(os, "openpty"), reason="needs a pseudo-terminal")
def test_demo_asks_the_person_at_the_terminal(tmp_path: Path) -> None:
    """On a terminal the demo prompts at the barrier; a rejection loops back, then approve."""
    import pty

    pid, fd = pty.fork()
    if pid == 0:  # the child: the CLI with the pty as its terminal
        os.chdir(tmp_path)
        os.execv(sys.executable, [sys.executable, "-m", "trio_graph", "demo", "--db", "t.db"])
    answers = [b"r needs examples\n", b"a\n"]
    output = b""
    deadline = time.monotonic() + 60
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([fd], [], [], deadline - time.monotonic())
            if not ready:
                break
            try:
                data = os.read(fd, 4096)
            except OSError:  # the child closed the terminal
                break
            if not data:
                break
            output += data
            shown = re.sub(rb"\x1b7.*?\x1b8", b"", output, flags=re.S)  # countdown redraws
            if answers and shown.rstrip().endswith(b"Enter = approve:"):
                os.write(fd, answers.pop(0))
    finally:
        _, status = os.waitpid(pid, 0)
        os.close(fd)
    text = output.decode()
    assert os.waitstatus_to_exitcode(status) == 0, text
    assert text.count("[g]oto NODE? Enter = approve") == 2
    assert "review#1 waits: approve by default in 30 s" in text
    assert "-> review#1: reject (needs examples)" in text
    assert "-> review#2: approve" in text
    assert "running..." in text  # the live status line is on, on a terminal
    assert not answers


def test_exit_code_1_when_the_run_fails(tmp_path: Path) -> None:
    """A run that ends with an error exits 1 (not a usage mistake) after showing it."""
    db = tmp_path / "f.db"
    trace = first_trace(cli("demo", "--leave-waiting", cwd=tmp_path, db=db).stdout)
    proc = cli("resume", trace, "--max-steps", "8", cwd=tmp_path, db=db)
    assert proc.returncode == 1, (proc.stdout, proc.stderr)
    assert proc.stdout.splitlines()[-1] == (
        "failed: max_steps=8 exceeded before running node 'review'"
    )


def test_json_runs(demo: tuple[Path, str, str], tmp_path: Path) -> None:
    """`runs --json` prints one JSON object per run."""
    db, trace, _ = demo
    rows = [
        json.loads(line) for line in cli("runs", "--json", cwd=tmp_path, db=db).stdout.splitlines()
    ]
    assert [(r["trace_id"], r["graph_name"], r["status"]) for r in rows] == [
        (trace, "demo", "completed")
    ]


def test_worker_flow_on_postgres(tmp_path: Path) -> None:
    """submit -> worker parks the run at its barrier -> decide (store) -> worker completes it."""
    pytest.importorskip("psycopg")
    from _pg import drop_schema, dsn, new_schema

    server, schema = dsn(), new_schema()
    (tmp_path / "flows.py").write_text(FLOWS)
    pg = ["--dsn", server, "--schema", schema]
    try:
        submitted = cli("submit", "flows", "--state", '{"n": 0}', *pg, cwd=tmp_path)
        assert submitted.returncode == 0, submitted.stderr
        job = submitted.stdout.strip()
        serve = ["worker", "--graph", "flows:graph", "--until-idle", *pg]
        first = cli(*serve, cwd=tmp_path)
        assert first.returncode == 0, first.stderr
        assert "1 claimed, 0 completed, 1 parked at barriers" in first.stderr
        decided = cli("decide", job[:8], "gate", "approve", *pg, cwd=tmp_path)
        assert decided.returncode == 0, decided.stderr
        assert decided.stdout.startswith(f"decision for gate#1 of run {job} recorded (approve)")
        second = cli(*serve, cwd=tmp_path)
        assert "1 claimed, 1 completed, 0 parked" in second.stderr
        rows = cli("runs", "--json", *pg, cwd=tmp_path).stdout.splitlines()
        assert [json.loads(r)["status"] for r in rows] == ["completed"]  # one row per run
        assert "secret" not in first.stderr
    finally:
        drop_schema(server, schema)


def test_worker_needs_a_graph_it_can_import(tmp_path: Path) -> None:
    """`worker` with a bad --graph is a one-line error, exit 2."""
    db = tmp_path / "x.db"
    proc = cli("worker", "--graph", "no_such_module:graph", cwd=tmp_path, db=db)
    assert proc.returncode == 2
    assert proc.stderr.startswith("trio-graph: error: ")
    assert len(proc.stderr.strip().splitlines()) == 1


def test_warnings_show_their_structured_fields() -> None:
    """Library warnings print as one line with their `extra` fields."""
    import logging

    from trio_graph._cli.logs import FieldsFormatter as _FieldsFormatter

    record = logging.LogRecord("trio_graph.x", logging.WARNING, "f", 1, "lease lost", None, None)
    record.trace_id = "abc"
    record.node = "pay"
    assert _FieldsFormatter().format(record) == (
        "trio-graph: warning: lease lost (trace_id=abc node=pay)"
    )


@pytest.mark.parametrize(
    ("action", "params", "decision"),
    [
        ("approve", [], "Approve()"),
        ("reject", [], "Reject(reason='rejected from the command line')"),
        ("reject", ["too", "long"], "Reject(reason='too long')"),
        ("modify", ["n", "41"], "Modify(key='n', value=41)"),
        ("modify", ["tone", "friendly"], "Modify(key='tone', value='friendly')"),
        ("reroute", ["archive"], "Reroute(target='archive')"),
    ],
)
def test_decision_arguments(action: str, params: list[str], decision: str) -> None:
    """`decide` actions and their arguments map to decisions (values as JSON, else text)."""
    from trio_graph._cli.running import decision_from

    assert repr(decision_from(action, params)) == decision


def test_passwords_never_appear_in_messages() -> None:
    """A DSN is shown without its password."""
    from trio_graph._cli.hints import safe_dsn as _safe_dsn

    assert _safe_dsn("postgresql://u:pw@h:5/db") == "postgresql://u:***@h:5/db"
    assert _safe_dsn("host=h password=pw dbname=x") == "host=h password=*** dbname=x"
