"""Every example under examples/ runs, says what it claims, and runs as a script."""

from __future__ import annotations

import importlib.util
import shlex
import subprocess
import sys
import tomllib
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
FILES = sorted(p for p in EXAMPLES.glob("*.py") if not p.name.startswith("_"))

# What each example must print: a line that only a correct run produces.
EXPECTED = {
    "barriers": "ahead of time -> write -> review -> write -> review -> archive -> publish",
    "checkpoints": "forked with amount=1000 -> paid 1200.0",
    "events_and_cancel": "terminal: run cancelled during node 'slow' | state: {'pages': 3}",
    "otel_spans": "    trio_graph.branch score.style  [span_id 4]  ",
    "parallel": "merged in order:   ['slow', 'medium', 'fast']",
    "quickstart": "published: draft 2",
    "retries_timeouts": "rate: Degraded - node 'rate' timed out after 0.05s",
    "research_agent": "summary: 3 findings on trio (fast provider)",
    "routing": "'!fire'         -> classify -> lookup -> urgent -> done",
    "state_reducers": "tags    = ['a', 'b', 'c']",
    "subgraphs": "nodes: write -> fr -> fr/draft -> fr/check -> publish",
    "typed_research": "refused: item 3 is not Source",
    "streaming": "2 runs done, 2 clients opened and 2 closed, at most 1 LLM call at once",
    "testing_with_mockclock": "a 24 h barrier wait and a 90 s node, in no real time",
    "workers": "amount  4500: completed, paid 0",
}
NEEDS = {"otel_spans": "opentelemetry.sdk", "workers": "psycopg"}


def load(path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"example_{path.stem}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_example_has_an_expectation() -> None:
    """A new example must say here what it proves (so it cannot pass by printing nothing)."""
    assert sorted(p.stem for p in FILES) == sorted(EXPECTED)


@pytest.mark.parametrize("path", FILES, ids=[p.stem for p in FILES])
def test_example_runs(
    path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The example's main() runs to the end and prints what it promises."""
    if path.stem in NEEDS:
        pytest.importorskip(NEEDS[path.stem])
    if path.stem == "workers":
        from _pg import dsn

        monkeypatch.setenv("TRIO_GRAPH_PG_DSN", dsn())  # skips without a server
    module = load(path)
    result: Any = module.main()
    out = capsys.readouterr().out
    assert EXPECTED[path.stem] in out, out
    assert result is not None


@pytest.mark.parametrize("path", FILES, ids=[p.stem for p in FILES])
def test_example_is_a_documented_script(path: Path) -> None:
    """Each example says how to run it and has a __main__ guard calling main()."""
    text = path.read_text()
    assert f"Run: python examples/{path.name}" in text
    assert 'if __name__ == "__main__":\n    main()\n' in text


def test_an_example_runs_as_a_script(tmp_path: Path) -> None:
    """`python examples/quickstart.py` works from a fresh process."""
    proc = subprocess.run(
        [sys.executable, str(EXAMPLES / "quickstart.py")],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[-1] == "published: draft 2"


README = EXAMPLES.parent / "README.md"


def test_readme_example_runs(tmp_path: Path) -> None:
    """The README's 30-line example runs as written and prints what it says."""
    text = README.read_text()
    section = text.split("## A 30-line example", 1)[1]
    code = section.split("```python\n", 1)[1].split("```", 1)[0]
    assert len(code.splitlines()) <= 36
    script = tmp_path / "readme_example.py"
    script.write_text(code)
    proc = subprocess.run(
        [sys.executable, str(script)], cwd=tmp_path, capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert [line.split()[0] for line in lines[:-1]] == [
        "write",
        "check",
        "write",
        "check",
        "review",
        "publish",
    ]
    assert lines[-1] == "draft 2"


TEST_COMMANDS = (
    ".venv/bin/python -m pytest -q",  # the fast loop (pyproject: -m 'not slow')
    ".venv/bin/python -m pytest -q -m slow",  # the slow tests it leaves out
)


def test_readme_commands_match_ci() -> None:
    """The README's fresh-clone commands are the ones CI runs: the install extra, and both
    test commands (the fast loop and the slow tests), so CI still runs every test."""
    text = README.read_text()
    install = (
        "python3 -m venv .venv && .venv/bin/pip install -e '.[test]' && "
        ".venv/bin/python -m trio_graph demo"
    )
    assert install in text
    for command in TEST_COMMANDS:
        assert f"\n{command}\n" in text, command
    ci = EXAMPLES.parent / ".ci" / "run"
    if ci.exists():
        lines = ci.read_text().splitlines()
        for command in TEST_COMMANDS:
            assert command in lines, command


def test_the_fast_loop_leaves_out_only_the_slow_marker() -> None:
    """The default selection is `not slow` and nothing else, so the README's two test
    commands (the second one's `-m slow` replaces it) together select every test."""
    config = tomllib.loads((EXAMPLES.parent / "pyproject.toml").read_text())
    addopts = shlex.split(config["tool"]["pytest"]["ini_options"]["addopts"])
    assert [a for a in addopts if a.startswith("-m")] == ["-m"]
    assert addopts[addopts.index("-m") + 1] == "not slow"
