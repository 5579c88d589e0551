"""The commands of DESIGN §12 beyond demo/runs/history/decide/resume: ``run``, ``show``,
``diff``, ``jobs``, ``prune``, ``copy``, and naming a run by a prefix of its id; run as a
user would (``python -m trio_graph`` in a subprocess on a temp SQLite file)."""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from trio_graph._cli.traces import pick_run
from trio_graph._cli.usage import UsageError
from trio_graph._model.checkpoint import RunStatus
from trio_graph.stores.protocol import RunInfo

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX shells")

HERE = str(Path(__file__).resolve().parents[1])
RUN = re.compile(r"run ([0-9a-f]{32})")

FLOWS = """
from trio_graph import GraphBuilder

graph = (
    GraphBuilder("flows")
    .task("a", lambda s: {"n": s.get("n", 0) + 1, "seen": ["a"]})
    .barrier("gate")
    .task("b", lambda s: {"n": s["n"] * 10, "done": True})
    .edge("a", "gate").edge("gate", "b")
    .start("a").end("b").build()
)

plain = (
    GraphBuilder("plain")
    .task("a", lambda s: {"n": s.get("n", 0) + 1})
    .task("b", lambda s: {"m": s["n"] * 2})
    .edge("a", "b")
    .start("a").end("b").build()
)
"""


def cli(*args: str, cwd: Path, db: Path | None = None) -> subprocess.CompletedProcess[str]:
    """``python -m trio_graph ARGS [--db DB]`` with no terminal on stdin."""
    argv = [sys.executable, "-m", "trio_graph", *args]
    if db is not None:
        argv += ["--db", str(db)]
    return shell(argv, cwd=cwd)


def shell(argv: list[str], *, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        argv,
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": os.pathsep.join([HERE, str(cwd)])},
    )


def usage_error(proc: subprocess.CompletedProcess[str]) -> str:
    """The one line a usage mistake prints (exit 2), without its ``trio-graph: error:``."""
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    lines = proc.stderr.splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("trio-graph: error: ")
    return lines[0].removeprefix("trio-graph: error: ")


@pytest.fixture
def flows(tmp_path: Path) -> Path:
    """A user's graph module in the current folder."""
    (tmp_path / "flows.py").write_text(FLOWS)
    return tmp_path / "u.db"


@pytest.fixture(scope="module")
def waiting(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, str]:
    """One run left waiting, shared by the tests that only read it (one process, not
    one per test): (folder, database, run id)."""
    folder = tmp_path_factory.mktemp("waiting")
    (folder / "flows.py").write_text(FLOWS)
    run, _ = left_waiting(folder, folder / "u.db")
    return folder, folder / "u.db", run


def left_waiting(tmp_path: Path, db: Path) -> tuple[str, str]:
    """``run flows:graph`` with no terminal: (run id, the decide command it printed)."""
    proc = cli("run", "flows:graph", "--state", '{"n": 4}', cwd=tmp_path, db=db)
    assert proc.returncode == 0, proc.stderr
    match = RUN.search(proc.stdout)
    assert match, proc.stdout
    decide = [line.strip() for line in proc.stdout.splitlines() if " decide " in line]
    assert len(decide) == 1, proc.stdout
    return match.group(1), decide[0]


# -- run -----------------------------------------------------------------------------------
def test_run_leaves_a_barrier_waiting_and_its_hint_runs_as_printed(
    tmp_path: Path, flows: Path
) -> None:
    """`run module:attr` with no terminal stops at the barrier; the printed decide finishes it."""
    run, decide = left_waiting(tmp_path, flows)
    assert decide.endswith(
        f"decide {run} 'gate#1' approve --resume --db {flows} --graph flows:graph"
    )
    done = shell(shlex.split(decide), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "-> gate#1: approve" in done.stdout
    assert "        n = 50" in done.stdout.splitlines()


def test_run_shows_steps_and_checkpoints_only_when_asked(tmp_path: Path, flows: Path) -> None:
    """The live view numbers steps as `step N`; `--checkpoints` adds the checkpoint lines."""
    quiet = cli("run", "flows:plain", "--state", '{"n": 1}', cwd=tmp_path, db=flows)
    assert quiet.returncode == 0, quiet.stderr
    lines = quiet.stdout.splitlines()
    assert [line.split()[:3] for line in lines if line.startswith("step ")] == [
        ["step", "1", "a"],
        ["step", "2", "b"],
    ]
    assert "checkpoint" not in quiet.stdout
    assert "        m = 4" in lines
    loud = cli("run", "flows:plain", "--checkpoints", cwd=tmp_path, db=flows)
    assert re.search(r"^ {8}checkpoint [0-9a-f]{8} \(after step 2, final\)$", loud.stdout, re.M)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["run", "flows:graph", "--state", "[1]"], r"^--state must be a JSON object, got list$"),
        (["run", "flows:graph", "--state", "{n"], r"^--state must be a JSON object: Expecting"),
        (["run", "flows:nope"], r"^'flows' has no attribute 'nope'$"),
        (["run", "flows"], r"^expected MODULE:ATTR \(e\.g\. trio_graph\.demo:graph\), got"),
    ],
)
def test_run_mistakes_are_one_line(
    tmp_path: Path, flows: Path, args: list[str], message: str
) -> None:
    """A bad graph spec or initial state is one line on stderr, exit 2, before any step."""
    assert re.search(message, usage_error(cli(*args, cwd=tmp_path, db=flows)))
    assert not flows.exists()  # refused before the store was created


# -- show ----------------------------------------------------------------------------------
def test_show_a_waiting_run(waiting: tuple[Path, Path, str]) -> None:
    """`show RUN` (a prefix is enough): status, graph, step, the barrier, the state."""
    folder, db, run = waiting
    proc = cli("show", run[:6], cwd=folder, db=db)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0] == f"run {run} (graph 'flows'): waiting"
    assert "  step 1, next node gate" in lines
    assert "  left waiting at gate#1" in lines
    assert lines[-3:] == ["state (2 keys):", "  n = 5", '  seen = ["a"]']


def test_show_json_is_the_row_and_the_latest_checkpoint(waiting: tuple[Path, Path, str]) -> None:
    """`show --json` prints one document: the run's row and its latest checkpoint."""
    folder, db, run = waiting
    doc = json.loads(cli("show", run, "--json", cwd=folder, db=db).stdout)
    assert doc["run"]["status"] == "waiting" and doc["run"]["graph_name"] == "flows"
    assert doc["checkpoint"]["state"] == {"n": 5, "seen": ["a"]}
    assert doc["checkpoint"]["pending_barrier"] == {"node": "gate", "occurrence": 1}


def test_show_prints_what_the_barrier_shows_and_its_deadline() -> None:
    """A waiting checkpoint's payload and deadline (when the store has them) are shown."""
    from types import SimpleNamespace

    from trio_graph import BarrierId
    from trio_graph._cli.showing import _barrier_lines

    checkpoint = SimpleNamespace(
        pending_barrier=BarrierId("gate", 1), pending_payload={"draft": "v2"}, deadline=0.0
    )
    lines = _barrier_lines(checkpoint)  # type: ignore[arg-type]
    assert lines[0].startswith("  its default applies at ") and lines[0].endswith("(passed)")
    assert lines[1:] == ["  gate#1 shows:", "    {", '      "draft": "v2"', "    }"]
    assert _barrier_lines(SimpleNamespace(pending_barrier=None)) == []  # type: ignore[arg-type]


# -- diff ----------------------------------------------------------------------------------
@pytest.mark.slow
def test_diff_compares_two_checkpoints(tmp_path: Path, flows: Path) -> None:
    """`diff RUN` compares the last two checkpoints; `diff RUN A B` any two, by # or id."""
    _, decide = left_waiting(tmp_path, flows)
    assert shell(shlex.split(decide), cwd=tmp_path).returncode == 0
    rows = [json.loads(r) for r in cli("runs", "--json", cwd=tmp_path, db=flows).stdout.split()]
    run = next(row["run_id"] for row in rows if row["status"] == "completed")
    history = cli("history", run, "--json", cwd=tmp_path, db=flows).stdout.splitlines()
    ids = [json.loads(line)["checkpoint_id"] for line in history]
    last_two = cli("diff", run, cwd=tmp_path, db=flows)
    assert last_two.returncode == 0, last_two.stderr
    lines = last_two.stdout.splitlines()
    assert lines[0].startswith(f"run {run}: #{len(ids) - 1} (") and "-> #" in lines[0]
    assert "+ done = true" in lines and "~ n: 5 -> 50" in lines
    by_id = cli("diff", run, ids[0], "-1", "--json", cwd=tmp_path, db=flows)
    doc = json.loads(by_id.stdout)
    assert (doc["from"], doc["to"]) == (ids[0], ids[-1])
    assert doc["changed"]["n"] == {"from": 5, "to": 50}
    assert doc["added"]["done"] is True and doc["removed"] == {}
    same = cli("diff", run, "1", "1", cwd=tmp_path, db=flows)
    assert same.stdout.splitlines()[-1] == "no state changes"


@pytest.mark.parametrize(
    ("picks", "message"),
    [
        (["1"], r"^diff takes two checkpoints \(A B\) or none \(the last two\)$"),
        (["1", "9"], r"^run \w+ has checkpoints #1 to #\d+, not #9$"),
        (["0", "1"], r"^run \w+ has checkpoints #1 to #\d+, not #0$"),
        (["1", "ab"], r"^checkpoint 'ab' is too short: give its # in history \(1 the oldest"),
        (["1", "ffffffff"], r"^run \w+ has no checkpoint 'ffffffff' \(list them with `.* history"),
    ],
)
def test_diff_mistakes_are_one_line(
    waiting: tuple[Path, Path, str], picks: list[str], message: str
) -> None:
    """A checkpoint that does not exist or a missing B is one clear line, exit 2."""
    folder, db, run = waiting
    assert re.search(message, usage_error(cli("diff", run, *picks, cwd=folder, db=db)))


@pytest.mark.parametrize(
    ("text", "position", "message"),
    [
        ("1", 1, None),
        ("-1", 3, None),
        ("-3", 1, None),
        ("12345678", 2, None),  # digits, but no checkpoint's number: an id prefix
        ("1234", 2, None),
        ("aaaa", 1, None),
        ("4", None, r"^run r has checkpoints #1 to #3, not #4$"),
        ("-4", None, r"^run r has checkpoints #1 to #3, not #-4$"),
        ("99999", None, r"^run r has checkpoints #1 to #3, not #99999$"),
        ("bbbb", None, r"^'bbbb' matches 2 checkpoints \(bbbb1, bbbb2\): give more of the id$"),
        ("cccc", None, r"^run r has no checkpoint 'cccc' \(list them with `.* history r"),
    ],
)
def test_checkpoints_are_named_by_number_or_id_prefix(
    text: str, position: int | None, message: str | None
) -> None:
    """A checkpoint is its # in history (negative from the latest) or an id prefix."""
    from types import SimpleNamespace

    from trio_graph._cli.showing import pick_checkpoint

    cps = [SimpleNamespace(checkpoint_id=i) for i in ("aaaa0", "1234567890", "bbbb1", "bbbb2")]
    cps = cps[:3] if text not in ("bbbb",) else [cps[0], cps[2], cps[3]]
    if message is None:
        assert pick_checkpoint(cps, text, "r", ARGS) == position  # type: ignore[arg-type]
    else:
        with pytest.raises(UsageError, match=message):
            pick_checkpoint(cps, text, "r", ARGS)  # type: ignore[arg-type]


def test_state_diff() -> None:
    """Keys added, removed and changed, each once; unchanged keys are not mentioned."""
    from trio_graph._cli.showing import StateDiff

    diff = StateDiff.between({"a": 1, "b": [1], "c": "x"}, {"a": 1, "b": [1, 2], "d": None})
    assert diff == StateDiff({"d": None}, {"c": "x"}, {"b": ([1], [1, 2])})
    assert diff.lines() == ["+ d = null", '- c = "x"', "~ b: [1] -> [1, 2]"]
    long = StateDiff.between({"t": "x" * 80}, {"t": "y" * 80}).lines()
    assert (
        long[0] == "~ t:" and long[1].startswith('    was "xxx') and long[2].startswith("    now")
    )


# -- naming a run ----------------------------------------------------------------------------
ROWS = [
    RunInfo("abcd1111" + "0" * 24, "g", RunStatus.COMPLETED, 1.0),
    RunInfo("abcd2222" + "0" * 24, "g", RunStatus.WAITING, 2.0),
    RunInfo("abcd2223" + "0" * 24, "g", RunStatus.WAITING, 3.0),
    RunInfo("ffff0000" + "0" * 24, "g", RunStatus.FAILED, 4.0),
]
ARGS = __import__("argparse").Namespace(db="x.db", dsn=None, schema=None)


@pytest.mark.parametrize(
    ("text", "found", "message"),
    [
        ("abcd1", ROWS[0], None),
        ("ffff", ROWS[3], None),
        (ROWS[1].trace_id, ROWS[1], None),
        (
            "abc",
            None,
            r"^run id prefix 'abc' is too short: give at least 4 characters "
            r"\(it matches 3 runs \(abcd1111\w+, abcd2222\w+, abcd2223\w+\)\)$",
        ),
        ("ff", None, r"^run id prefix 'ff' is too short: .* \(it matches 1 run \(ffff0000\w+\)\)$"),
        ("zz", None, r"^run id prefix 'zz' is too short: give at least 4 characters$"),
        ("abcd", None, r"^'abcd' matches 3 runs \(abcd1111\w+, abcd2222\w+, abcd2223\w+\): give"),
        ("abcd222", None, r"^'abcd222' matches 2 runs \(abcd2222\w+, abcd2223\w+\): give more"),
        ("0000abcd", None, r"^no run '0000abcd' in x\.db \(list them with `.* runs --db x\.db`\)$"),
    ],
)
def test_a_run_is_named_by_a_unique_prefix_of_four_or_more(
    text: str, found: RunInfo | None, message: str | None
) -> None:
    """A run id or a unique prefix of 4+ characters names a run; else one line saying why."""
    if message is None:
        assert pick_run(ROWS, text, ARGS) is found
    else:
        with pytest.raises(UsageError, match=message):
            pick_run(ROWS, text, ARGS)


@pytest.mark.slow
def test_a_short_prefix_is_refused_on_the_command_line(tmp_path: Path, flows: Path) -> None:
    """Every command taking a run refuses a prefix under 4 characters, naming the match."""
    run, _ = left_waiting(tmp_path, flows)
    for command in (["show"], ["history"], ["diff"], ["resume"], ["decide"]):
        extra = ["gate", "approve"] if command == ["decide"] else []
        message = usage_error(cli(*command, run[:3], *extra, cwd=tmp_path, db=flows))
        assert message == (
            f"run id prefix {run[:3]!r} is too short: give at least 4 characters "
            f"(it matches 1 run ({run}))"
        )


# -- jobs ----------------------------------------------------------------------------------
def test_jobs_lists_the_queue(tmp_path: Path, flows: Path) -> None:
    """`jobs` lists submitted jobs (a SQLite store keeps a queue too), `--status` filters."""
    empty = cli("run", "flows:plain", cwd=tmp_path, db=flows)  # creates the database
    assert empty.returncode == 0, empty.stderr
    assert cli("jobs", cwd=tmp_path, db=flows).stdout == f"no jobs in {flows}\n"
    job = cli("submit", "flows", "--state", '{"n": 1}', cwd=tmp_path, db=flows).stdout.strip()
    header, *rows = cli("jobs", cwd=tmp_path, db=flows).stdout.splitlines()
    assert header.split() == "JOB ID GRAPH STATUS BARRIER ATTEMPTS OWNER UPDATED ERROR".split()
    assert [row.split()[:5] for row in rows] == [[job, "flows", "queued", "-", "0"]]
    docs = cli("jobs", "--json", cwd=tmp_path, db=flows).stdout.splitlines()
    assert [(json.loads(d)["job_id"], json.loads(d)["status"]) for d in docs] == [(job, "queued")]
    waiting = cli("jobs", "--status", "waiting", cwd=tmp_path, db=flows)
    assert waiting.stdout == f"no waiting jobs in {flows}\n"


# -- prune ---------------------------------------------------------------------------------
@pytest.mark.slow
def test_prune_deletes_only_old_ended_runs(tmp_path: Path, flows: Path) -> None:
    """`prune --older-than DAYS` deletes ended runs older than that, says how many."""
    waiting, _ = left_waiting(tmp_path, flows)
    assert cli("run", "flows:plain", cwd=tmp_path, db=flows).returncode == 0
    kept = cli("prune", "--older-than", "1", cwd=tmp_path, db=flows)
    assert kept.stdout == f"deleted 0 ended runs not updated for 1 day from {flows}\n"
    dry = cli("prune", "--older-than", "0", "--dry-run", cwd=tmp_path, db=flows)
    assert dry.stdout == f"would delete 1 ended run not updated for 0 days from {flows}\n"
    gone = cli("prune", "--older-than", "0", cwd=tmp_path, db=flows)
    assert gone.stdout == f"deleted 1 ended run not updated for 0 days from {flows}\n"
    rows = cli("runs", "--json", cwd=tmp_path, db=flows).stdout.splitlines()
    assert [json.loads(r)["trace_id"] for r in rows] == [waiting]  # the waiting run stays


def test_prune_refuses_a_negative_age(tmp_path: Path, flows: Path) -> None:
    """A negative number of days is one line, exit 2."""
    assert cli("run", "flows:plain", cwd=tmp_path, db=flows).returncode == 0
    message = usage_error(cli("prune", "--older-than", "-1", cwd=tmp_path, db=flows))
    assert message == "--older-than must be a number of days >= 0, got -1.0"


# -- copy ----------------------------------------------------------------------------------
def checkpoints(db: Path, cwd: Path) -> list[dict[str, object]]:
    """Every checkpoint of every run in ``db``, as ``history --json`` prints them."""
    out = []
    for row in cli("runs", "--json", cwd=cwd, db=db).stdout.splitlines():
        run = json.loads(row)["trace_id"]
        history = cli("history", run, "--json", cwd=cwd, db=db).stdout.splitlines()
        out += [json.loads(line) for line in history]
    return out


@pytest.mark.slow
def test_copy_saves_every_checkpoint_into_another_store(tmp_path: Path, flows: Path) -> None:
    """`copy --to PATH` copies every run's checkpoints, in order, exactly."""
    left_waiting(tmp_path, flows)
    assert cli("run", "flows:plain", cwd=tmp_path, db=flows).returncode == 0
    target = tmp_path / "copy.db"
    proc = cli("copy", "--to", str(target), cwd=tmp_path, db=flows)
    assert proc.returncode == 0, proc.stderr
    source = checkpoints(flows, tmp_path)
    assert proc.stdout == f"copied {len(source)} checkpoints of 2 runs from {flows} to {target}\n"
    assert checkpoints(target, tmp_path) == source
    again = usage_error(cli("copy", "--to", str(flows), cwd=tmp_path, db=flows))
    assert again == f"copy --to {flows} is the store being copied"


def test_copy_to_postgres(tmp_path: Path, flows: Path) -> None:
    """`copy --to DSN --to-schema S` copies into PostgreSQL; the password is never printed."""
    pytest.importorskip("psycopg")
    from _pg import drop_schema, dsn, new_schema

    server, schema = dsn(), new_schema()
    left_waiting(tmp_path, flows)
    try:
        proc = cli("copy", "--to", server, "--to-schema", schema, cwd=tmp_path, db=flows)
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout.startswith("copied ") and " of 1 run from " in proc.stdout
        rows = cli("runs", "--json", "--dsn", server, "--schema", schema, cwd=tmp_path)
        assert [json.loads(r)["status"] for r in rows.stdout.splitlines()] == ["waiting"]
    finally:
        drop_schema(server, schema)
