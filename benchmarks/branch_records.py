"""Branch records of one wide fan-out with a SQLite store: time and bytes written.

One parallel node of ``n`` branches (default 1,000), each returning one small update,
run once with ``Executor(store=SQLiteStore(path))`` (every finished branch is
recorded as it completes, ``CheckpointPolicy.branch_writes``), then without a store.
Prints the wall time of each and, for the store, the file size and the bytes of the
checkpoint rows. Before issue 13 item 17 each record re-wrote every finished branch
(O(n²) bytes: 17-28 s and 43 MB for 1,000 branches); a record now writes only its own
branch (O(n) bytes in all).

Run: ``python benchmarks/branch_records.py [branches]``. Not a test: no timing is
asserted anywhere.
"""

from __future__ import annotations

import os
import sqlite3
import sys
import tempfile
import time
from typing import Any

import trio

from trio_graph import Executor, GraphBuilder
from trio_graph._model.graph import Graph
from trio_graph.stores.sqlite import SQLiteStore


def wide(n: int) -> Graph:
    """``par`` (``n`` branches, each writing its own key) -> ``end``."""

    def branch(i: int) -> Any:
        async def run(state: Any) -> dict[str, Any]:
            return {f"k{i}": i}

        return run

    return (
        GraphBuilder("wide")
        .parallel("par", {f"b{i}": branch(i) for i in range(n)})
        .task("end", lambda s: None)
        .edge("par", "end")
        .start("par")
        .end("end")
        .build()
    )


async def timed(executor: Executor, graph: Graph) -> float:
    t0 = time.perf_counter()
    await executor.run(graph, {})
    return time.perf_counter() - t0


def main(argv: list[str]) -> None:
    n = int(argv[1]) if len(argv) > 1 else 1000
    graph = wide(n)
    bare = trio.run(timed, Executor(), graph)
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "runs.db")

        async def with_store() -> float:
            async with SQLiteStore(path) as store:
                return await timed(Executor(store=store), graph)

        stored = trio.run(with_store)
        db = sqlite3.connect(path)
        rows, nbytes = db.execute(
            "SELECT count(*), sum(length(header) + length(body)) FROM checkpoints"
        ).fetchone()
        db.close()
        size = sum(os.path.getsize(os.path.join(folder, f)) for f in os.listdir(folder))
    print(f"{n} branches: {bare:.2f} s without a store, {stored:.2f} s with SQLite")
    print(f"  {rows} checkpoint rows, {nbytes / 1e6:.2f} MB of rows, files {size / 1e6:.2f} MB")


if __name__ == "__main__":
    main(sys.argv)
