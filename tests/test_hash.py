"""graph.hash(): a stable structural fingerprint, equal across processes, that changes
whenever the structure does (DESIGN §2)."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from trio_graph import GraphBuilder, reducers
from trio_graph._model.graph import Graph

TESTS = Path(__file__).parent


def f(state: Any) -> None:
    return None


def g(state: Any) -> dict[str, int]:
    return {"other": 1}


def seeded_graph(seed: int) -> Graph:
    """A random valid graph (task and condition nodes, all three edge classes, cycles),
    determined by ``seed`` alone, so another process can build the very same one."""
    rnd = random.Random(seed)
    n = rnd.randint(2, 7)
    names = [f"node-{seed}-{i}" for i in range(n)]
    b = GraphBuilder(f"seeded-{seed}")
    for i, name in enumerate(names):
        if 0 < i < n - 1 and rnd.random() < 0.25:
            b.condition(name, [])
        else:
            b.task(name, f)
    edges = [(names[i], names[i + 1]) for i in range(n - 1)]
    edges += [(rnd.choice(names), rnd.choice(names)) for _ in range(rnd.randint(0, 2 * n))]
    rnd.shuffle(edges)
    for frm, to in edges:
        kind = rnd.choice(["normal", "conditional", "fallback"])
        if kind == "normal":
            b.edge(frm, to)
        elif kind == "conditional":
            b.edge_if(frm, to, lambda s: True)
        else:
            b.edge_fallback(frm, to)
    if rnd.random() < 0.5:
        b.reducer("k", reducers.add)
    return b.start(names[0]).end(names[-1]).build()


SEEDS = list(range(25))

CHILD = r"""
import json, sys
sys.path.insert(0, sys.argv[1])
from test_hash import seeded_graph
print(json.dumps([seeded_graph(s).hash() for s in json.loads(sys.argv[2])]))
"""


def hashes_in_subprocess(hashseed: str) -> list[str]:
    env = {**os.environ, "PYTHONHASHSEED": hashseed}
    out = subprocess.run(
        [sys.executable, "-c", CHILD, str(TESTS), json.dumps(SEEDS)],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
        env=env,
    )
    return json.loads(out.stdout)  # type: ignore[no-any-return]


def test_hash_is_equal_across_processes() -> None:
    """The same 25 random graphs hash the same here and in two fresh interpreters with
    different string-hash seeds (no hash() of str, no id())."""
    here = [seeded_graph(s).hash() for s in SEEDS]
    assert hashes_in_subprocess("1") == here
    assert hashes_in_subprocess("987654") == here
    assert len(set(here)) == len(SEEDS)  # different graphs, different hashes


def test_hash_is_sha256_hex_and_repeatable() -> None:
    """The hash is 64 hex digits and the same for two builds of one declaration."""
    h = seeded_graph(3).hash()
    assert len(h) == 64 and int(h, 16) >= 0
    assert seeded_graph(3).hash() == h


def base(**over: Any) -> GraphBuilder:
    """a -> b (normal), a -> c (if), b -> c (fallback), c -> a; start a, end c."""
    o: dict[str, Any] = {"fn": f, "cond": lambda s: True}
    o.update(over)
    return (
        GraphBuilder("h")
        .task("a", o["fn"])
        .task("b", f)
        .task("c", f)
        .edge("a", "b")
        .edge_if("a", "c", o["cond"])
        .edge_fallback("b", "c")
        .edge("c", "a")
    )


def build(b: GraphBuilder, start: str = "a", end: str = "c") -> str:
    return b.start(start).end(end).build().hash()


REFERENCE = build(base())


def test_functions_are_not_structure() -> None:
    """Swapping a node's function or a condition for another leaves the hash unchanged."""
    assert build(base(fn=g, cond=lambda s: False)) == REFERENCE


CHANGES: dict[str, Callable[[], str]] = {
    "extra edge": lambda: build(base().edge("b", "a")),
    "extra node": lambda: build(base().task("d", f).edge("a", "d").edge("d", "c")),
    "edge class normal -> fallback": lambda: build(
        GraphBuilder("h")
        .task("a", f)
        .task("b", f)
        .task("c", f)
        .edge_fallback("a", "b")
        .edge_if("a", "c", bool)
        .edge_fallback("b", "c")
        .edge("c", "a")
    ),
    "edge order": lambda: build(
        GraphBuilder("h")
        .task("a", f)
        .task("b", f)
        .task("c", f)
        .edge_if("a", "c", bool)
        .edge("a", "b")
        .edge_fallback("b", "c")
        .edge("c", "a")
    ),
    "start": lambda: build(base(), start="b"),
    "end": lambda: build(base(), end="b"),
    "node kind task -> condition": lambda: build(
        GraphBuilder("h")
        .condition("a", [])
        .task("b", f)
        .task("c", f)
        .edge("a", "b")
        .edge_if("a", "c", bool)
        .edge_fallback("b", "c")
        .edge("c", "a")
    ),
    "node renamed": lambda: build(
        GraphBuilder("h")
        .task("a", f)
        .task("B", f)
        .task("c", f)
        .edge("a", "B")
        .edge_if("a", "c", bool)
        .edge_fallback("B", "c")
        .edge("c", "a")
    ),
    "edge target": lambda: build(
        GraphBuilder("h")
        .task("a", f)
        .task("b", f)
        .task("c", f)
        .edge("a", "b")
        .edge_if("a", "c", bool)
        .edge_fallback("b", "c")
        .edge("c", "b")
    ),
}


@pytest.mark.parametrize("change", sorted(CHANGES))
def test_structural_change_changes_the_hash(change: str) -> None:
    """Each structural change (node, kind, edge, class, order, start, end) changes the hash."""
    assert CHANGES[change]() != REFERENCE


def test_all_changes_are_distinct() -> None:
    """The changed graphs also differ from each other: no two collapse to one fingerprint."""
    hashes = [make() for make in CHANGES.values()]
    assert len(set(hashes)) == len(hashes)
