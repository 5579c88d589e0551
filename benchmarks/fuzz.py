"""A long differential fuzzing campaign: the Trio executor against the reference.

    python benchmarks/fuzz.py [N] [--seed S] [--kinds task,barrier,...] [--max-nodes K]

Draws N scenarios (graph, state, decision script, event buffer size) with
``trio_graph.testing.scenarios()``, runs each on the reference interpreter and on the
executor (``MockClock``), and checks that the traces agree and that the executor's
events keep the lifecycle contract. Prints examples/s, how the runs ended, and the
first counterexample Hypothesis finds (shrunk), then exits 1; exits 0 when none.
"""

from __future__ import annotations

import argparse
import collections
import sys
import time
from typing import Any

from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import seed as hypothesis_seed

from trio_graph.testing import (
    Scenario,
    assert_same,
    build_graph,
    check_event_contract,
    interpret,
    run_graph,
    scenarios,
)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("examples", nargs="?", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=None, help="Hypothesis seed (random)")
    parser.add_argument("--kinds", default="", help="node kinds, e.g. task,barrier,barrier")
    parser.add_argument("--max-nodes", type=int, default=6)
    args = parser.parse_args(argv)

    options: dict[str, Any] = {"max_nodes": args.max_nodes}
    if args.kinds:
        options["node_kinds"] = tuple(args.kinds.split(","))
    outcomes: collections.Counter[str] = collections.Counter()
    ran = [0]
    failed_at: list[int] = []

    @settings(
        max_examples=args.examples,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
        phases=[Phase.generate, Phase.shrink],
    )
    @given(scenarios(**options))
    def campaign(scenario: Scenario) -> None:
        ran[0] += 1
        spec, script = scenario.spec, scenario.script
        expected = interpret(build_graph(spec), scenario.state, script, max_steps=spec.max_steps)
        actual = run_graph(
            build_graph(spec),
            scenario.state,
            script,
            max_steps=spec.max_steps,
            buffer=scenario.buffer,
        )
        try:
            check_event_contract(actual.raw)
            assert_same(expected, actual)
        except AssertionError:
            if not failed_at:
                failed_at.append(ran[0])
            raise
        if not failed_at:
            outcomes[expected.error.type if expected.error else "completed"] += 1

    if args.seed is not None:
        campaign = hypothesis_seed(args.seed)(campaign)
    started = time.perf_counter()
    try:
        campaign()
    except Exception as exc:
        elapsed = time.perf_counter() - started
        first = failed_at[0] if failed_at else ran[0]
        print(f"COUNTEREXAMPLE after {first} examples ({elapsed:.1f} s, shrinking included):")
        print(exc)
        for note in getattr(exc, "__notes__", []):
            print(note)
        return 1
    elapsed = time.perf_counter() - started
    print(f"{ran[0]} examples in {elapsed:.1f} s: {ran[0] / elapsed:.0f} examples/s")
    print("runs ended:", ", ".join(f"{k} {v}" for k, v in outcomes.most_common()))
    print("no counterexample")
    return 0


if __name__ == "__main__":
    sys.exit(main())
