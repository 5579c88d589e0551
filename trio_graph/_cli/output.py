"""What the command line writes, apart from the commands themselves (DESIGN §12).

- :class:`StdoutGuard`: stdout that may be closed early by its reader
  (``trio-graph history RUN | head -3``). A closed stdout is not an error of the
  command and must not stop a run in progress: once a write meets ``EPIPE`` the guard
  points the file descriptor at ``/dev/null`` (the Python docs' "Note on SIGPIPE") and
  drops later output, so the command carries on quietly; :func:`stdout_gone` says so.
- :func:`command_prefix` / :func:`command`: hints print a command the user can run as
  printed: ``trio-graph`` when the script on PATH runs this Python, else ``python -m
  trio_graph`` spelled with this interpreter.
- :func:`standing`: how a stored run stands, from its latest checkpoint (and its queue
  job): "left waiting at review#1", "parked at review#1", "interrupted ...".
"""

from __future__ import annotations

import io
import os
import shlex
import shutil
import sys
from collections.abc import Sequence
from typing import TextIO

from .._model.checkpoint import Checkpoint, RunStatus
from ..stores.queue import Job, JobStatus
from .usage import PROG


class StdoutGuard(io.TextIOBase):
    """Wraps stdout; a write or flush that meets a closed pipe makes the rest vanish."""

    def __init__(self, stream: TextIO) -> None:
        super().__init__()
        self.stream = stream
        self.gone = False
        """True once the reader closed the pipe (nothing written since)."""

    def write(self, text: str) -> int:
        if not self.gone:
            try:
                self.stream.write(text)
            except BrokenPipeError:
                self._went()
        return len(text)

    def flush(self) -> None:
        if not self.gone:
            try:
                self.stream.flush()
            except BrokenPipeError:
                self._went()

    def isatty(self) -> bool:
        return not self.gone and self.stream.isatty()

    def fileno(self) -> int:
        return self.stream.fileno()

    def _went(self) -> None:
        self.gone = True
        try:
            fd = self.stream.fileno()
        except (OSError, ValueError, AttributeError):  # not a real file (a test's capture)
            return
        # What the stream still buffers goes to /dev/null at exit, not to a broken pipe.
        devnull = os.open(os.devnull, os.O_WRONLY)
        try:
            os.dup2(devnull, fd)
        finally:
            os.close(devnull)


def stdout_gone() -> bool:
    """True when stdout's reader has closed it (see :class:`StdoutGuard`)."""
    out = sys.stdout
    return isinstance(out, StdoutGuard) and out.gone


def command_prefix() -> str:
    """How to start this CLI from a shell here: ``trio-graph`` or ``PYTHON -m trio_graph``.

    ``trio-graph`` only when the script PATH finds starts this very interpreter (its
    ``#!`` line), so a hint never runs another installation. Otherwise this interpreter:
    by its PATH name when that is the same file in the same folder, else by its path
    (relative when it is under the current folder, e.g. ``.venv/bin/python``).
    """
    exe = os.path.abspath(sys.executable)
    script = shutil.which(PROG)
    if script is not None and _same_python(_shebang(script), exe):
        return PROG
    for name in ("python3", "python"):
        found = shutil.which(name)
        if found is not None and _same_python(found, exe):
            return f"{name} -m trio_graph"
    shown = os.path.relpath(exe)
    if shown.startswith(os.pardir):
        shown = exe
    elif os.sep not in shown:
        shown = os.path.join(os.curdir, shown)
    return f"{shlex.quote(shown)} -m trio_graph"


def _shebang(script: str) -> str:
    try:
        with open(script, "rb") as file:
            first = file.readline(4096)
    except OSError:
        return ""
    if not first.startswith(b"#!"):
        return ""
    words = first[2:].decode(errors="replace").split()
    return words[0] if words else ""


def _same_python(path: str, exe: str) -> bool:
    """The same interpreter: one folder (a venv's bin) and one file."""
    if not path:
        return False
    path = os.path.abspath(path)
    if os.path.dirname(path) != os.path.dirname(exe):
        return False
    try:
        return os.path.samefile(path, exe)
    except OSError:
        return False


def command(words: Sequence[str]) -> str:
    """A runnable command line: the prefix, then ``words`` quoted for a POSIX shell."""
    return f"{command_prefix()} {shlex.join(words)}"


def standing(last: Checkpoint | None, job: Job | None = None) -> str | None:
    """One line on how a stored run stands, from its latest checkpoint; None if nothing to say.

    A run is only ever *cancelled* on request; a checkpoint saved while the process
    left it reads as what it is: parked (a queued job at a barrier, for a worker to
    resume once decided), left waiting at a barrier, or interrupted between or during
    nodes (resumable).
    """
    if job is not None and job.status == JobStatus.WAITING and job.pending_barrier is not None:
        return f"parked at {job.pending_barrier}: a worker resumes it once it is decided"
    if last is None:
        return None
    if last.status == RunStatus.FAILED:
        return f"error: {last.error}" if last.error else None
    if last.status == RunStatus.WAITING and last.pending_barrier is not None:
        return f"left waiting at {last.pending_barrier}"
    if last.status == RunStatus.RUNNING and last.error:
        where = f" at node {last.next_node!r}" if last.next_node else ""
        return f"interrupted after step {last.step}; a resume continues{where}"
    return None
