"""``trio-graph ui``: what it says when it starts, and its mistakes (one line, exit 2)."""

from __future__ import annotations

import os
import select
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import trio

from trio_graph._cli.main import main
from trio_graph.stores.sqlite import SQLiteStore
from trio_graph.ui.server import is_loopback


def _db(tmp_path: Path) -> str:
    path = str(tmp_path / "runs.db")

    async def create() -> None:
        async with SQLiteStore(path):
            pass

    trio.run(create)
    return path


def test_without_the_extra_it_names_the_pip_command(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """With Starlette missing, `ui` prints one line with the pip command and exits 2."""
    monkeypatch.setitem(sys.modules, "starlette", None)
    code = main(["ui", "--db", _db(tmp_path)])
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("trio-graph: error: the inspector needs the ui extra: ")
    assert "pip install 'trio_graph[ui]'" in err and err.count("\n") == 1


def test_a_port_in_use_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A port another socket holds is refused in one line naming the address (exit 2)."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        code = main(["ui", "--db", _db(tmp_path), "--port", str(port)])
    err = capsys.readouterr().err
    assert code == 2 and f"cannot listen on 127.0.0.1:{port}: " in err
    assert err.count("\n") == 1


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--port", "70000"], "--port must be 0..65535, got 70000"),
        (["--graph", "nomodule_here:g"], "cannot import 'nomodule_here'"),
    ],
)
def test_bad_options_are_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    """A port out of range or a graph that cannot be imported: one line, exit 2."""
    code = main(["ui", "--db", _db(tmp_path), *argv])
    err = capsys.readouterr().err
    assert code == 2 and message in err and err.count("\n") == 1


def test_a_missing_database_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`ui` does not create a store: a missing file is one line naming it."""
    code = main(["ui", "--db", str(tmp_path / "none.db")])
    assert code == 2 and "no database at" in capsys.readouterr().err


def test_any_address_but_loopback_is_warned_about(tmp_path: Path) -> None:
    """On 0.0.0.0 the server starts, says where, and warns on stderr that the page has no
    authentication; it stops on SIGTERM with exit 0."""
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "trio_graph",
            "ui",
            "--db",
            _db(tmp_path),
            "--host",
            "0.0.0.0",
            "--port",
            "0",
        ],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=dict(os.environ),
    )
    try:
        assert proc.stdout is not None and proc.stderr is not None
        ready, _, _ = select.select([proc.stderr], [], [], 30)
        assert ready, "no warning within 30 s"
        warning = proc.stderr.readline()
        said = proc.stdout.readline()
        assert said.startswith("inspector on http://0.0.0.0:") and "loopback" not in said
        assert warning.startswith("warning: listening on 0.0.0.0, not loopback")
        assert "no authentication" in warning
        proc.terminate()
        assert proc.wait(10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        for pipe in (proc.stdout, proc.stderr):
            if pipe is not None:
                pipe.close()


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("::1", True),
        ("localhost", True),
        ("0.0.0.0", False),
        ("192.168.1.5", False),
        ("example.org", False),
    ],
)
def test_loopback_addresses(host: str, loopback: bool) -> None:
    """Only loopback addresses (and `localhost`) count as this machine only."""
    assert is_loopback(host) is loopback
