"""Each hot-path workload beside the floor of its own design, in one run (issue 20).

A *floor* is the same work with no engine: what DESIGN §13 says one step must do, and
nothing else. The ratio engine/floor says how much of the design's own speed the
engine keeps (1.0: the engine costs nothing above the design).

- **loop**: ``benchmarks/loop.py``'s 2-node loop with every event consumed, against a
  loop that awaits the node, applies its dict delta, sends three events
  (``NodeStart``, ``StateChanged``, ``NodeEnd``) with ``send_nowait`` into a memory
  channel of the executor's size (``await send`` only when full), drained by a
  consumer that batches like ``Run``; a ``checkpoint_if_cancelled`` per step and a
  yield every 16 steps.
- **sqlite**: ``benchmarks/checkpoint.py``'s loop with a SQLite checkpoint every step,
  against the loop floor plus, per step, one transaction on the Trio thread inserting a
  row of the same size as the store's delta rows (same schema, measured from the
  store's own file) and upserting the ``runs`` row (WAL, ``synchronous=NORMAL``), and
  its ``CheckpointSaved`` event.
- **fan-out**: ``benchmarks/fanout.py``'s round (``fan`` -> 16-way parallel ->
  ``join``), against the same three steps with the parallel step as a nursery of 16
  tasks, each awaiting its branch and sending ``BranchCompleted``, the results merged
  in declaration order, ``ParallelStarted``/``ParallelCompleted`` and the step events.
- **map**: ``benchmarks/map.py``'s 100-item ``.map`` round, against the fan-out floor
  with 100 tasks over the run-time list.

Workloads and floors run interleaved (engine, floor, engine, floor, ...) after one
warm-up round; medians. Run: ``python benchmarks/limits.py [reps]`` (default 7).
Prints a Markdown table: workload, engine rate, floor rate, ratio, goal.
"""

from __future__ import annotations

import sqlite3
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import trio

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _harness import Workload, interleave, median
from checkpoint import trio_graph_checkpoint
from fanout import WIDTH, trio_graph_fanout
from loop import trio_graph_loop
from map import ITEMS, trio_graph_map

from trio_graph import events as ev
from trio_graph.stores.sqlite_schema import MIGRATIONS

LOOP_STEPS = 20_000
SQLITE_STEPS = 2_000
FANOUTS = 200
MAPS = 20
BUFFER = 256  # Executor(buffer=...)'s default
YIELD_EVERY = 16


# -- the floor's skeleton: a channel, a draining consumer, back-pressured sends -----------
async def _consume(receive: trio.MemoryReceiveChannel[ev.Event]) -> None:
    """Drain like ``Run.__anext__``: wait for one event, take the rest without waiting."""
    async with receive:
        while True:
            try:
                await receive.receive()
            except trio.EndOfChannel:
                return
            try:
                while True:
                    receive.receive_nowait()
            except (trio.WouldBlock, trio.EndOfChannel):
                pass


class _Steps:
    """One floor run: its channel's send side and its step loop (node, delta, three
    events, cancel check, a yield every few steps)."""

    def __init__(self, send: trio.MemorySendChannel[ev.Event]) -> None:
        self.send = send
        self.trace = uuid.uuid4().hex
        self.number = 0

    async def emit(self, event: ev.Event) -> None:
        """``send_nowait``, or ``await send`` when the channel is full (back-pressure)."""
        try:
            self.send.send_nowait(event)
        except trio.WouldBlock:
            await self.send.send(event)

    async def step(self, name: str, fn: Callable[[Any], Awaitable[Any]], state: dict) -> None:
        await trio.lowlevel.checkpoint_if_cancelled()
        self.number += 1
        number, trace, send = self.number, self.trace, self.send
        if number % YIELD_EVERY == 0:
            await trio.lowlevel.checkpoint()
        now = trio.current_time()
        try:
            send.send_nowait(ev.NodeStart(trace, name, number, number))
        except trio.WouldBlock:
            await send.send(ev.NodeStart(trace, name, number, number))
        delta = await fn(state)
        for key, value in delta.items():
            try:
                send.send_nowait(ev.StateChanged(trace, name, number, key, value))
            except trio.WouldBlock:
                await send.send(ev.StateChanged(trace, name, number, key, value))
        state.update(delta)
        end = ev.NodeEnd(trace, name, number, True, trio.current_time() - now)
        try:
            send.send_nowait(end)
        except trio.WouldBlock:
            await send.send(end)


async def _with_consumer(body: Callable[[_Steps], Awaitable[None]]) -> float:
    """Seconds ``body`` takes sending its events to a drained consumer."""
    send, receive = trio.open_memory_channel[ev.Event](BUFFER)
    start = time.perf_counter()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(_consume, receive)
        async with send:
            await body(_Steps(send))
    return time.perf_counter() - start


async def _bump(state: Any) -> dict[str, int]:
    return {"n": state["n"] + 1}


# -- loop ---------------------------------------------------------------------------------
def floor_loop(steps: int) -> float:
    """Node-steps/s of the loop floor."""

    async def body(run: _Steps) -> None:
        state = {"n": 0}
        for i in range(steps + 1):
            await run.step("ab"[i % 2], _bump, state)

    return (steps + 1) / trio.run(_with_consumer, body)


# -- sqlite -------------------------------------------------------------------------------
_INSERT = (
    "INSERT INTO checkpoints (checkpoint_id, trace_id, base_id, prev_id, link, header, body, "
    "checksum, run_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
_UPSERT = (
    "INSERT INTO runs (run_id, trace_id, graph_name, status, updated_at, checkpoint_id, "
    "resumed_from, step, waiting) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (trace_id) "
    "DO UPDATE SET status = excluded.status, updated_at = excluded.updated_at, "
    "checkpoint_id = excluded.checkpoint_id, step = excluded.step"
)


def row_size(path: Path) -> tuple[int, int]:
    """Mean (header, body) lengths of the delta rows in a store's file."""
    with sqlite3.connect(path) as db:
        header, body = db.execute(
            "SELECT avg(length(header)), avg(length(body)) FROM checkpoints "
            "WHERE base_id IS NOT NULL"
        ).fetchone()
    return round(header), round(body)


def floor_sqlite(steps: int, path: Path, size: tuple[int, int]) -> float:
    """Node-steps/s of the loop floor with one raw SQLite transaction per step."""
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode = WAL")
    db.execute("PRAGMA synchronous = NORMAL")
    for version in sorted(MIGRATIONS):
        for statement in MIGRATIONS[version]:
            db.execute(statement)
    header, body = "h" * size[0], "b" * size[1]

    async def body_(run: _Steps) -> None:
        state = {"n": 0}
        trace, base = run.trace, uuid.uuid4().hex
        prev = base
        for i in range(steps):
            await run.step("ab"[i % 2], _bump, state)
            cid = uuid.uuid4().hex
            db.execute("BEGIN IMMEDIATE")
            db.execute(_INSERT, (cid, trace, base, prev, i, header, body, "c" * 32, trace))
            db.execute(_UPSERT, (trace, trace, "loop", "running", time.time(), cid, None, i, None))
            db.execute("COMMIT")
            prev = cid
            await run.emit(ev.CheckpointSaved(trace, cid, "ab"[i % 2], run.number))

    try:
        return steps / trio.run(_with_consumer, body_)
    finally:
        db.close()


# -- fan-out and map ----------------------------------------------------------------------
def _branch(i: int) -> Callable[[Any], Awaitable[dict[str, Any]]]:
    async def run(state: Any) -> dict[str, Any]:
        return {"results": [i]}

    return run


async def _fork(run: _Steps, name: str, width: int, state: dict) -> None:
    """One parallel step: NodeStart, a nursery of ``width`` branch tasks, the ordered
    merge, its StateChanged, NodeEnd."""
    await trio.lowlevel.checkpoint_if_cancelled()
    run.number += 1
    trace, number, emit = run.trace, run.number, run.emit
    t0 = trio.current_time()
    await emit(ev.NodeStart(trace, name, number, number))
    await emit(ev.ParallelStarted(trace, name, number, width))
    view = dict(state)
    done: list[Any] = [None] * width

    async def branch(i: int, fn: Callable[[Any], Awaitable[dict[str, Any]]]) -> None:
        started = trio.current_time()
        done[i] = await fn(view)
        took = trio.current_time() - started
        await emit(ev.BranchCompleted(trace, name, f"b{i}", True, took, outcome="succeeded"))

    async with trio.open_nursery() as nursery:
        for i in range(width):
            nursery.start_soon(branch, i, _branch(i))
    await emit(ev.ParallelCompleted(trace, name, trio.current_time() - t0))
    merged = list(state["results"])
    for update in done:
        merged.extend(update["results"])
    state["results"] = merged
    await emit(ev.StateChanged(trace, name, number, "results", merged))
    await emit(ev.NodeEnd(trace, name, number, True, trio.current_time() - t0))


def floor_fanout(rounds: int, width: int = WIDTH) -> float:
    """Rounds/s of ``fan`` -> ``width``-way fork -> ``join``, with no engine."""

    async def fan(state: Any) -> dict[str, Any]:
        return {"rounds": state["rounds"] + 1}

    async def join(state: Any) -> dict[str, Any]:
        return {}

    async def body(run: _Steps) -> None:
        state = {"rounds": 0, "results": []}
        for _ in range(rounds):
            await run.step("fan", fan, state)
            await _fork(run, "par", width, state)
            await run.step("join", join, state)
        assert state["results"][-width:] == list(range(width))

    return rounds / trio.run(_with_consumer, body)


# -- the table ----------------------------------------------------------------------------
GOALS = {"loop": 0.6, "sqlite": 0.6, "fan-out": 0.7}


def workloads(tmp: Path) -> list[tuple[str, str, str, dict[str, Workload]]]:
    """(key, title, unit, {"engine": ..., "floor": ...}) per row of the table."""
    counter = iter(range(1_000_000))

    def fresh(name: str) -> Path:
        return tmp / f"{name}-{next(counter)}.db"

    probe = fresh("probe")
    trio_graph_checkpoint(200, probe)
    size = row_size(probe)
    return [
        (
            "loop",
            f"2-node loop, events consumed ({LOOP_STEPS:,} steps)",
            "node-steps/s",
            {
                "engine": lambda: trio_graph_loop(LOOP_STEPS),
                "floor": lambda: floor_loop(LOOP_STEPS),
            },
        ),
        (
            "sqlite",
            f"SQLite checkpoint every step ({SQLITE_STEPS:,} steps; rows {size[0]}+{size[1]} B)",
            "node-steps/s",
            {
                "engine": lambda: trio_graph_checkpoint(SQLITE_STEPS, fresh("tg")),
                "floor": lambda: floor_sqlite(SQLITE_STEPS, fresh("floor"), size),
            },
        ),
        (
            "fan-out",
            f"{WIDTH}-way fan-out + join ({FANOUTS} rounds)",
            "fan-outs/s",
            {"engine": lambda: trio_graph_fanout(FANOUTS), "floor": lambda: floor_fanout(FANOUTS)},
        ),
        (
            "map",
            f"{ITEMS}-item .map + join ({MAPS} rounds)",
            "maps/s",
            {
                "engine": lambda: trio_graph_map(MAPS),
                "floor": lambda: floor_fanout(MAPS, ITEMS),
            },
        ),
    ]


def main(argv: list[str]) -> None:
    reps = int(argv[0]) if argv else 7
    print("| workload | unit | engine | floor | engine/floor | goal |")
    print("|---|---|---:|---:|---:|---:|")
    with tempfile.TemporaryDirectory() as tmp:
        for key, title, unit, group in workloads(Path(tmp)):
            results = interleave(group, reps)
            engine, floor = median(results["engine"]), median(results["floor"])
            goal = f">= {GOALS[key]:.1f}x" if key in GOALS else "-"
            row = f"| {title} | {unit} | {engine:,.0f} | {floor:,.0f} | {engine / floor:.2f}x |"
            print(f"{row} {goal} |", flush=True)
    version = sys.version.split()[0]
    print(f"\nmedians of {reps} interleaved repetitions after 1 warm-up; python {version}")


if __name__ == "__main__":
    main(sys.argv[1:])
