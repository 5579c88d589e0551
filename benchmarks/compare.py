"""One command for the README's performance table: loop, fan-out, barrier and checkpoint
workloads on trio_graph, LangGraph and pydantic-graph, side by side in one process.

Each workload's engines run interleaved (A, B, C, A, B, C, ...) after one warm-up
round; the table shows medians and trio_graph/peer ratios. The workloads are the ones
of ``loop.py``, ``fanout.py``, ``barrier.py`` and ``checkpoint.py`` (see each for what
is measured); the peers need the ``bench`` extra (``pip install -e '.[bench]'``).

Run: ``python benchmarks/compare.py [reps]`` (default 5). Prints a Markdown table.
"""

from __future__ import annotations

import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _harness import Workload, interleave, median, peers_available
from barrier import trio_graph_barrier
from checkpoint import trio_graph_checkpoint
from fanout import trio_graph_fanout
from loop import trio_graph_loop

LOOP_STEPS, PEER_LOOP_STEPS = 20_000, 2_000
FANOUTS = 100
ROUNDS = 300
CHECKPOINT_STEPS, PEER_CHECKPOINT_STEPS = 1_000, 300


def workloads(tmp: Path) -> list[tuple[str, str, dict[str, Workload]]]:
    """(title, unit, {engine: workload}) for every row group of the table."""
    have = peers_available()
    peers: dict[str, Callable[..., float]] = {}
    if have["langgraph"] or have["pydantic_graph"]:
        import peers as p

        peers = {
            "lg_loop": p.langgraph_loop,
            "pg_loop": p.pydantic_graph_loop,
            "lg_fan": p.langgraph_fanout,
            "pg_fan": p.pydantic_graph_fanout,
            "lg_barrier": p.langgraph_barrier,
            "lg_ckpt": p.langgraph_checkpoint,
        }
    counter = iter(range(1_000_000))

    def fresh(name: str) -> str:
        return str(tmp / f"{name}-{next(counter)}.db")

    groups: list[tuple[str, str, dict[str, Workload]]] = [
        (
            f"2-node loop, events consumed ({LOOP_STEPS:,} steps; peers {PEER_LOOP_STEPS:,})",
            "node-steps/s",
            {"trio_graph": lambda: trio_graph_loop(LOOP_STEPS)},
        ),
        (
            f"16-way fan-out + join ({FANOUTS} fan-outs)",
            "fan-outs/s",
            {"trio_graph": lambda: trio_graph_fanout(FANOUTS)},
        ),
        (
            f"barrier pause + decide + continue ({ROUNDS} rounds, in memory)",
            "round trips/s",
            {"trio_graph": lambda: trio_graph_barrier(ROUNDS)},
        ),
        (
            "SQLite checkpoint every step "
            f"({CHECKPOINT_STEPS:,} steps; LangGraph AsyncSqliteSaver {PEER_CHECKPOINT_STEPS})",
            "node-steps/s",
            {"trio_graph": lambda: trio_graph_checkpoint(CHECKPOINT_STEPS, Path(fresh("tg")))},
        ),
    ]
    if have["langgraph"]:
        groups[0][2]["langgraph"] = lambda: peers["lg_loop"](PEER_LOOP_STEPS)
        groups[1][2]["langgraph"] = lambda: peers["lg_fan"](FANOUTS)
        groups[2][2]["langgraph"] = lambda: peers["lg_barrier"](ROUNDS)
        groups[3][2]["langgraph"] = lambda: peers["lg_ckpt"](PEER_CHECKPOINT_STEPS, fresh("lg"))
    if have["pydantic_graph"]:
        groups[0][2]["pydantic_graph"] = lambda: peers["pg_loop"](PEER_LOOP_STEPS)
        groups[1][2]["pydantic_graph"] = lambda: peers["pg_fan"](FANOUTS)
    return groups


def main(argv: list[str]) -> None:
    reps = int(argv[0]) if argv else 5
    engines = ("trio_graph", "langgraph", "pydantic_graph")
    print(f"| workload | unit | {' | '.join(engines)} | vs LangGraph | vs pydantic-graph |")
    print("|---|---|" + "---:|" * (len(engines) + 2))
    with tempfile.TemporaryDirectory() as tmp:
        for title, unit, group in workloads(Path(tmp)):
            results = interleave(group, reps)
            medians = {name: median(rates) for name, rates in results.items()}
            cells = [f"{medians[e]:,.0f}" if e in medians else "n/a" for e in engines]
            ours = medians["trio_graph"]
            ratios = [
                f"{ours / medians[e]:.1f}x" if e in medians else "n/a"
                for e in ("langgraph", "pydantic_graph")
            ]
            print(f"| {title} | {unit} | {' | '.join(cells)} | {' | '.join(ratios)} |", flush=True)
    version = sys.version.split()[0]
    print(f"\nmedians of {reps} interleaved repetitions after 1 warm-up; python {version}")


if __name__ == "__main__":
    main(sys.argv[1:])
