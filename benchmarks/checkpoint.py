"""Checkpointing cost: steps/s with a SQLite checkpoint every step, and bytes per step.

1. **Steps/s.** The 2-node loop of ``peers.langgraph_checkpoint`` (A -> B -> A ..., each
   node adds 1 to ``count``; ``steps`` node executions, all events consumed) with
   ``SQLiteStore`` and ``CheckpointPolicy(every_step=True)``: one committed SQLite
   transaction per node step, on a file, like LangGraph's ``AsyncSqliteSaver`` with
   ``durability="sync"``. trio_graph runs one more node (the end node, uncounted) and a
   completion checkpoint. Two trio_graph variants: the default store (small delta rows
   committed on the Trio thread, see ``trio_graph.stores.sqlite``) and
   ``inline_max=0`` (every write handed to a worker thread). Interleaved repetitions,
   medians and ratios via ``_harness``.
2. **Bytes written per step** for a state of 1 KB, 1 MB and 10 MB with a 100-byte
   update per step: the checkpoint rows' bytes (header + body, from the file) and the
   bytes the process wrote (``wchar`` of ``/proc/self/io``: WAL frames, WAL
   checkpoints, everything), measured over the steps after the first full snapshot.
   Both must stay flat: they grow with the update, not with the state.

Run: ``python benchmarks/checkpoint.py [reps] [steps]``.
"""

from __future__ import annotations

import sqlite3
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import trio

from trio_graph import CheckpointPolicy, Executor, GraphBuilder
from trio_graph import events as ev
from trio_graph._model.graph import Graph
from trio_graph.stores import SQLiteStore

EVERY_STEP = CheckpointPolicy(every_step=True)


# -- 1. steps/s ---------------------------------------------------------------------------
def loop_graph(steps: int) -> Graph:
    """a -> b -> a ...: each adds 1 to ``count``; after ``steps`` of them, ``end``."""

    async def node(state: Any) -> dict[str, int]:
        return {"count": state["count"] + 1}

    async def end(state: Any) -> None:
        return None

    return (
        GraphBuilder("loop")
        .task("a", node)
        .task("b", node)
        .task("end", end)
        .edge_if("a", "end", lambda s: s["count"] >= steps)
        .edge("a", "b")
        .edge_if("b", "end", lambda s: s["count"] >= steps)
        .edge("b", "a")
        .start("a")
        .end("end")
        .build()
    )


def trio_graph_checkpoint(steps: int, path: Path, inline_max: int | None = None) -> float:
    """Node-steps/s of the loop with a SQLite checkpoint after every step."""
    graph = loop_graph(steps)

    async def main() -> float:
        kwargs = {} if inline_max is None else {"inline_max": inline_max}
        async with SQLiteStore(path, **kwargs) as store:
            executor = Executor(store=store, policy=EVERY_STEP, max_steps=steps + 10)
            saved = 0
            start = time.perf_counter()
            async with executor.stream(graph, {"count": 0}) as run:
                async for event in run:
                    if type(event) is ev.CheckpointSaved:
                        saved += 1
            elapsed = time.perf_counter() - start
            if run.result is None or run.result.state != {"count": steps}:
                raise AssertionError(f"run failed: {run.error}")
            history = await store.list(run.trace_id)
            if saved != steps + 1 or len(history) != steps + 1:  # + the completion checkpoint
                raise AssertionError(f"{saved} CheckpointSaved, {len(history)} stored")
            if history[-1].state != {"count": steps}:
                raise AssertionError(f"stored {history[-1].state}")
        return steps / elapsed

    return trio.run(main)


def steps_per_second(reps: int, steps: int, tmp: Path) -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from _harness import interleave, peers_available, print_table

    workloads = {
        "trio_graph": lambda: trio_graph_checkpoint(steps, tmp / "trio_graph.db"),
        "trio_graph (writes in thread)": lambda: trio_graph_checkpoint(
            steps, tmp / "trio_graph_threaded.db", inline_max=0
        ),
    }
    skipped: list[str] = []
    have = peers_available()
    try:
        from peers import langgraph_checkpoint
    except ImportError:
        have["langgraph"] = False
    if have.get("langgraph"):
        workloads["langgraph AsyncSqliteSaver"] = lambda: langgraph_checkpoint(
            steps, str(tmp / "langgraph.db")
        )
    else:
        skipped.append("langgraph AsyncSqliteSaver")
    results = interleave(workloads, reps)
    print_table(
        f"SQLite checkpoint every step, 2-node loop, {steps} node-steps per run",
        "node-steps/s",
        results,
        skipped=skipped,
    )


# -- 2. bytes per step ----------------------------------------------------------------------
def wchar() -> int | None:
    """Bytes this process has passed to write() so far (Linux), else None."""
    try:
        with open("/proc/self/io") as f:
            for line in f:
                if line.startswith("wchar:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


UPDATE = 100
"""Bytes of the update each step writes (the ``note`` value)."""


def bytes_per_step(size: int, steps: int, tmp: Path) -> dict[str, float]:
    """Run ``steps`` steps on a state holding ``size`` bytes; measure the steady state."""
    marks: dict[int, tuple[int | None, float]] = {}
    first, last = 10, steps - 1

    async def step(state: Any) -> dict[str, Any]:
        i = state["i"]
        if i in (first, last):  # the checkpoint of step i-1 is committed by now
            marks[i] = (wchar(), time.perf_counter())
        return {"i": i + 1, "note": f"{i:010d}".ljust(UPDATE, "y")}

    async def end(state: Any) -> None:
        return None

    graph = (
        GraphBuilder("bytes")
        .task("step", step)
        .task("end", end)
        .edge_if("step", "end", lambda s: s["i"] >= steps)
        .edge("step", "step")
        .start("step")
        .end("end")
        .build()
    )
    path = tmp / f"bytes-{size}.db"
    trace = uuid.uuid4().hex

    async def main() -> None:
        async with SQLiteStore(path) as store:
            executor = Executor(store=store, policy=EVERY_STEP, max_steps=steps + 10)
            state = {"blob": "x" * size, "i": 0}
            async with executor.stream(graph, state, trace_id=trace) as run:
                result = await run.wait()
            if result.state["i"] != steps:
                raise AssertionError(result.state["i"])
            latest = await store.latest(trace)
            if latest is None or latest.state != result.state:
                raise AssertionError("latest checkpoint is not the final state")

    trio.run(main)
    db = sqlite3.connect(path)
    rows = db.execute(
        "SELECT base_id IS NULL, length(header) + length(body) FROM checkpoints "
        "WHERE trace_id = ? ORDER BY seq",
        (trace,),
    ).fetchall()
    db.close()
    # Rows of the checkpoints taken after steps first..last-1 (the marks' window).
    window = rows[first:last]
    (w0, t0), (w1, t1) = marks[first], marks[last]
    n = last - first
    return {
        "first row": rows[0][1],
        "row bytes/step": sum(b for _, b in window) / n,
        "full snapshots in window": sum(1 for full, _ in window if full),
        "written bytes/step": (w1 - w0) / n if w0 is not None and w1 is not None else float("nan"),
        "steps/s": n / (t1 - t0),
    }


def bytes_table(steps: int, tmp: Path) -> None:
    print(f"\nBytes written per step: {UPDATE}-byte update per step, SQLite, every step")
    print(f"  (steady state over steps 10..{steps - 1}, after the first full snapshot)")
    header = ("state", "first row", "row bytes/step", "full snapshots", "written/step", "steps/s")
    print("  " + "  ".join(f"{h:>15}" for h in header))
    figures = {}
    for label, size in (("1 KB", 1_000), ("1 MB", 1_000_000), ("10 MB", 10_000_000)):
        f = figures[label] = bytes_per_step(size, steps, tmp)
        print(
            "  "
            + "  ".join(
                [
                    f"{label:>15}",
                    f"{f['first row']:>15,}",
                    f"{f['row bytes/step']:>15,.0f}",
                    f"{f['full snapshots in window']:>15}",
                    f"{f['written bytes/step']:>15,.0f}",
                    f"{f['steps/s']:>15,.0f}",
                ]
            )
        )
    ratio = figures["10 MB"]["written bytes/step"] / figures["1 KB"]["written bytes/step"]
    print(f"  written bytes/step, 10 MB state / 1 KB state: {ratio:.2f}x (flat: about 1)")


def main(argv: list[str]) -> None:
    reps = int(argv[0]) if argv else 5
    steps = int(argv[1]) if len(argv) > 1 else 500
    with tempfile.TemporaryDirectory(prefix="tg-bench-") as tmp:
        steps_per_second(reps, steps, Path(tmp))
        bytes_table(200, Path(tmp))


if __name__ == "__main__":
    main(sys.argv[1:])
