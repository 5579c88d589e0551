"""The process that gets killed, and the checks made after each kill (test_crash, benchmarks).

As a script (``python _crash_child.py DB LEDGER TRACE``) it runs a 50-step graph on a
:class:`~trio_graph.stores.SQLiteStore` at ``DB`` with a checkpoint after every step,
under the trace id ``TRACE``. Each ``work`` step first appends its number to the
side-effect ledger file ``LEDGER`` (one line per execution), then returns its
updates; tiny real sleeps around the write make a kill land anywhere: in the node,
between steps, inside a commit.

With ``--zygote`` it imports everything once and forks such a child per request
(:class:`Zygote`), so a trial does not pay for a new interpreter. As a module it gives
:func:`trial`: start a child, wait until the ledger shows it has reached a given step,
SIGKILL it, then check the file and resume the run in this process (no sleeps).
"""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import attrs
import trio

from trio_graph import CheckpointPolicy, Executor, GraphBuilder, RunStatus, reducers
from trio_graph._model.graph import Graph
from trio_graph.stores import SQLiteStore

STEPS = 50
POLICY = CheckpointPolicy(every_step=True)
SLEEP = False
"""True in the child: each step sleeps 0-1 ms (real time) before and after its side effect."""


async def _pause() -> None:
    if SLEEP and random.random() < 0.7:
        await trio.sleep(random.random() * 0.001)


async def work(state: Mapping[str, Any]) -> dict[str, Any]:
    i = state["i"]
    await _pause()
    fd = os.open(state["ledger"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, f"{i}\n".encode())
    finally:
        os.close(fd)
    await _pause()
    return {"i": i + 1, "log": i, "total": i}


def graph() -> Graph:
    """work (x50, a self-loop) -> done."""
    return (
        GraphBuilder("crash")
        .task("work", work, side_effects=True)
        .task("done", lambda s: {"done": True})
        .edge_if("work", "work", lambda s: s["i"] < STEPS)
        .edge("work", "done")
        .reducer("log", reducers.append)
        .reducer("total", reducers.add)
        .start("work")
        .end("done")
        .build()
    )


def initial(ledger: Path | str) -> dict[str, Any]:
    return {"i": 0, "total": 0, "ledger": str(ledger)}


def executor(store: SQLiteStore) -> Executor:
    return Executor(store=store, policy=POLICY, max_steps=STEPS + 10)


def main(argv: list[str]) -> None:
    """Run the graph to the end (unless killed first)."""
    global SLEEP
    SLEEP = True
    random.seed()  # a forked child must not replay its parent's random sequence
    db, ledger, trace = argv

    async def run() -> None:
        async with SQLiteStore(db) as store:
            async with executor(store).stream(graph(), initial(ledger), trace_id=trace) as r:
                await r.wait()

    trio.run(run)


def zygote() -> None:
    """Fork a child per request: ``DB\tLEDGER\tTRACE`` lines in, ``pid N`` and ``exit C`` out.

    Everything is imported once, here; a forked child starts in milliseconds instead of
    a fresh interpreter's half second, and opens its own SQLite connection.
    """
    for line in sys.stdin:
        args = line.rstrip("\n").split("\t")
        pid = os.fork()
        if pid == 0:  # the child: run, never return into this loop
            code = 1
            try:
                devnull = os.open(os.devnull, os.O_WRONLY)
                os.dup2(devnull, 1)
                main(args)
                code = 0
            finally:
                os._exit(code)
        print(f"pid {pid}", flush=True)
        _, status = os.waitpid(pid, 0)
        print(f"exit {os.waitstatus_to_exitcode(status)}", flush=True)


class Zygote:
    """The parent's handle on a :func:`zygote` process."""

    def __init__(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, __file__, "--zygote"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            bufsize=1,
        )

    def spawn(self, db: Path, ledger: Path, trace: str) -> int:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(f"{db}\t{ledger}\t{trace}\n")
        self.proc.stdin.flush()
        kind, pid = self.proc.stdout.readline().split()
        assert kind == "pid", kind
        return int(pid)

    def wait(self) -> int:
        """The last child's exit code (negative: killed by that signal)."""
        assert self.proc.stdout is not None
        kind, code = self.proc.stdout.readline().split()
        assert kind == "exit", kind
        return int(code)

    def close(self) -> None:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.close()
        self.proc.wait(timeout=30)
        self.proc.stdout.close()

    def __enter__(self) -> Zygote:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# -- the parent's side -------------------------------------------------------------------
@attrs.frozen
class Trial:
    """What one kill left behind and what resuming it did."""

    target: int
    """The ledger line count the parent waited for before killing."""
    exited: bool
    """The child had finished before the kill (nothing to resume)."""
    committed: int
    """Steps whose checkpoint was committed when the child died (latest().step)."""
    repeated: list[int]
    """Ledger values written twice (at most the one step in flight)."""
    resume_seconds: float


def _finished(ledger: Path) -> bool:
    return len(_lines(ledger)) >= STEPS


def _lines(path: Path) -> list[int]:
    try:
        text = path.read_text()
    except FileNotFoundError:
        return []
    return [int(line) for line in text.splitlines() if line]


def reference_state(tmp: Path) -> dict[str, Any]:
    """The final state of an uninterrupted run (in this process, no sleeps)."""
    ledger = tmp / "reference.ledger"

    async def run() -> dict[str, Any]:
        async with SQLiteStore(tmp / "reference.db") as store:
            result = await executor(store).run(graph(), initial(ledger))
        return result.state

    state = trio.run(run)
    assert _lines(ledger) == list(range(STEPS))
    return state


def trial(tmp: Path, rng: random.Random, reference: Mapping[str, Any], zygote: Zygote) -> Trial:
    """Run a child, SIGKILL it after a random number of steps, check and resume."""
    tmp.mkdir(parents=True, exist_ok=True)
    db, ledger, trace = tmp / "runs.db", tmp / "side-effects.ledger", uuid.uuid4().hex
    target = rng.randint(1, STEPS)
    pid = zygote.spawn(db, ledger, trace)
    deadline = time.monotonic() + 30
    exited = False
    while len(_lines(ledger)) < target:
        if _finished(ledger):
            exited = True
            break
        if time.monotonic() > deadline:  # pragma: no cover - a stuck child
            os.kill(pid, signal.SIGKILL)
            raise AssertionError(f"child made no progress: {_lines(ledger)}")
        time.sleep(0.0002)  # polling the child's progress
    if not exited:
        os.kill(pid, signal.SIGKILL)
    code = zygote.wait()
    if code == 0:
        exited = True
    else:
        assert code == -signal.SIGKILL, f"child failed with exit code {code}"

    db_conn = sqlite3.connect(db)
    try:
        assert db_conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
    finally:
        db_conn.close()
    before = _lines(ledger)

    async def check_and_resume() -> tuple[int, dict[str, Any]]:
        async with SQLiteStore(db) as store:
            latest = await store.latest(trace)
            ex = executor(store)
            if latest is None:  # died before the first checkpoint
                assert len(before) <= 1, before
                return 0, (await ex.run(graph(), initial(ledger))).state
            state = latest.state
            i = state["i"]
            # A complete checkpoint: its step count, state and next node agree.
            assert latest.step == i + (1 if state.get("done") else 0)
            assert state["log"] == list(range(i)) and state["total"] == sum(range(i))
            if latest.status == RunStatus.COMPLETED:
                return latest.step, state
            assert latest.next_node == ("work" if i < STEPS else "done")
            async with ex.resume(graph(), trace) as run:
                result = await run.wait()
            return latest.step, result.state

    t0 = time.perf_counter()
    committed, final = trio.run(check_and_resume)
    took = time.perf_counter() - t0
    assert {**final, "ledger": ""} == {**reference, "ledger": ""}

    # The ledger: every step ran; none whose checkpoint was committed ran again.
    after = _lines(ledger)
    counts = Counter(after)
    assert set(counts) == set(range(STEPS)), sorted(counts)
    repeated = sorted(v for v, n in counts.items() if n > 1)
    committed_work = min(committed, STEPS)
    assert all(n <= 2 for n in counts.values()), counts
    assert repeated in ([], [committed_work]), (repeated, committed)
    return Trial(target, exited, committed, repeated, took)


if __name__ == "__main__":
    if sys.argv[1:] == ["--zygote"]:
        zygote()
    else:
        main(sys.argv[1:])
