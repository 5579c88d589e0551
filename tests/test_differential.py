"""The Trio executor against the reference interpreter (trio_graph.testing).

For random graphs, states, decision scripts and event buffer sizes, both must agree on
the events (without ids and durations), the nodes run, the final state or the error,
and what each decision call raised; the executor's events must also keep the
lifecycle contract. A few pinned examples check that the reference says what DESIGN
says, and the example of docs/semantics.md is run as written.
"""

from __future__ import annotations

import itertools
import pathlib
import re
import time
from typing import Any

import pytest
from _campaign import explore, sizes
from hypothesis import reject

from trio_graph import (
    Approve,
    BarrierError,
    BarrierId,
    Executor,
    Fallback,
    Goto,
    GraphBuilder,
    Reject,
)
from trio_graph import events as ev
from trio_graph.testing import (
    BarrierSpec,
    Behaviour,
    BranchSpec,
    Cond,
    DecisionScript,
    EdgeSpec,
    GraphSpec,
    MapSpec,
    ParallelSpec,
    Scenario,
    Send,
    TaskSpec,
    Trace,
    Unsupported,
    assert_same,
    build_graph,
    check_event_contract,
    error_info,
    interpret,
    run_graph,
    scenarios,
)

DOC = pathlib.Path(__file__).parent.parent / "docs" / "semantics.md"


def both(
    spec: GraphSpec,
    state: dict[str, Any] | None = None,
    script: DecisionScript | None = None,
    *,
    buffer: int = 256,
) -> Trace:
    """Run ``spec`` on the reference and on the executor; they must agree."""
    state = state or {}
    expected = interpret(build_graph(spec), state, script, max_steps=spec.max_steps)
    actual = run_graph(build_graph(spec), state, script, max_steps=spec.max_steps, buffer=buffer)
    check_event_contract(actual.raw)
    assert_same(expected, actual)
    return expected


def check(scenario: Scenario) -> None:
    both(scenario.spec, scenario.state, scenario.script, buffer=scenario.buffer)


# -- random graphs ---------------------------------------------------------------------
# Each property runs twice: a quick run in the fast loop and the full campaign under
# ``pytest -m slow`` (tests/_campaign.py).


def agree_allowing_ties(scenario: Scenario) -> None:
    """Branches finishing at the same instant: the same outcome (BranchCompleted in any
    order), except what only the scheduler decides (the reference says Unsupported)."""
    spec, state, script = scenario.spec, scenario.state, scenario.script
    try:
        expected = interpret(build_graph(spec), state, script, max_steps=spec.max_steps)
    except Unsupported:
        reject()
    actual = run_graph(
        build_graph(spec), state, script, max_steps=spec.max_steps, buffer=scenario.buffer
    )
    check_event_contract(actual.raw)
    assert_same(expected, actual, branch_order="any")


@pytest.mark.parametrize("examples", sizes(3000, quick=100))
def test_executor_agrees_with_reference(examples: int) -> None:
    """Random graphs of every node kind: executor and reference produce the same trace."""
    explore(scenarios(), examples, check)


@pytest.mark.parametrize("examples", sizes(600, quick=25))
def test_barrier_heavy_graphs_agree(examples: int) -> None:
    """Graphs with many barriers (decisions before, at, after them) agree."""
    explore(
        scenarios(node_kinds=("task", "barrier", "barrier"), max_steps=(12, 30)), examples, check
    )


@pytest.mark.parametrize("examples", sizes(600, quick=25))
def test_parallel_heavy_graphs_agree(examples: int) -> None:
    """Graphs with many parallel nodes (completion order shuffled by delays) agree."""
    strategy = scenarios(node_kinds=("task", "parallel", "parallel"), max_branches=4, failures=3)
    explore(strategy, examples, check)


@pytest.mark.parametrize("examples", sizes(400, quick=25))
def test_branches_finishing_together_agree(examples: int) -> None:
    """Branches finishing at the same instant: the same outcome (BranchCompleted in any
    order), except a fail_fast failure among them after a wait, left to the scheduler."""
    strategy = scenarios(node_kinds=("task", "parallel", "parallel"), max_branches=4, ties=True)
    explore(strategy, examples, agree_allowing_ties)


@pytest.mark.parametrize("examples", sizes(600, quick=25))
def test_map_heavy_graphs_agree(examples: int) -> None:
    """Graphs with many map nodes (0 to 4 items, every strategy, now and then an ``over``
    giving a tuple or too few items for the quorum) agree."""
    strategy = scenarios(node_kinds=("task", "map", "map"), max_branches=4, failures=3)
    explore(strategy, examples, check)


@pytest.mark.parametrize("examples", sizes(600, quick=25))
def test_racing_fan_outs_agree(examples: int) -> None:
    """Parallel and map nodes, first_completed and quorum included: who wins, who is
    cancelled, what merges, agree."""
    strategy = scenarios(node_kinds=("task", "parallel", "map"), max_branches=4, failures=3)
    explore(strategy, examples, check)


@pytest.mark.parametrize("examples", sizes(300, quick=25))
def test_fan_outs_finishing_together_agree(examples: int) -> None:
    """Parallel and map branches finishing at the same instant, every strategy: the same
    outcome (BranchCompleted in any order), except what only the scheduler decides."""
    strategy = scenarios(node_kinds=("task", "parallel", "map"), max_branches=4, ties=True)
    explore(strategy, examples, agree_allowing_ties)


# -- pinned semantics: the reference says what DESIGN says ------------------------------


def task(name: str, *results: Any, raises: str | None = None) -> TaskSpec:
    behaviours = tuple(Behaviour(r) for r in results) or (Behaviour(raises=raises),)
    return TaskSpec(name, behaviours)


def branch(name: str, result: Any, delay: float, raises: str | None = None) -> BranchSpec:
    return BranchSpec(name, (Behaviour(result, raises=raises),), delay=delay)


def chain(*names: str) -> tuple[EdgeSpec, ...]:
    return tuple(EdgeSpec(a, b) for a, b in itertools.pairwise(names))


def spec_of(nodes: Any, edges: Any, **kw: Any) -> GraphSpec:
    return GraphSpec("g", tuple(nodes), tuple(edges), nodes[0].name, nodes[-1].name, **kw)


def records(trace: Trace, kind: str) -> list[tuple[Any, ...]]:
    return [e[1:] for e in trace.events if e[0] == kind]


def test_parallel_merge_follows_declaration_order() -> None:
    """Branches finishing last-declared-first still merge in declaration order."""
    p = ParallelSpec("p", (branch("x", {"log": "x"}, 2.0), branch("y", {"log": "y"}, 1.0)))
    trace = both(spec_of([p, task("end", None)], chain("p", "end"), reducers=(("log", "append"),)))
    assert records(trace, "BranchCompleted") == [
        ("p", "y", True, "succeeded"),
        ("p", "x", True, "succeeded"),
    ]
    assert trace.state == {"log": ["x", "y"]}


def test_parallel_conflict_without_reducer() -> None:
    """Two branches writing one key with no reducer: StateError naming key and branches."""
    p = ParallelSpec("p", (branch("x", {"k": 1}, 0.0), branch("y", {"k": 2}, 1.0)))
    trace = both(spec_of([p, task("end", None)], chain("p", "end")))
    assert trace.error == error_info("StateError", node="p", key="k", branches=("x", "y"))
    assert trace.events[-2] == ("NodeEnd", "p", False)


def test_fail_fast_cancels_the_branches_still_running() -> None:
    """fail_fast: a failure at t=1 cancels the branch due at t=2; the one at t=0 finished."""
    p = ParallelSpec(
        "p",
        (
            branch("slow", {"a": 1}, 2.0),
            branch("bad", None, 1.0, raises="boom"),
            branch("fast", {"b": 1}, 0.0),
        ),
    )
    trace = both(spec_of([p, task("end", None)], chain("p", "end")))
    assert records(trace, "BranchCompleted") == [
        ("p", "fast", True, "succeeded"),
        ("p", "bad", False, "failed"),
        ("p", "slow", False, "cancelled"),
    ]
    assert trace.error == error_info(
        "NodeExecutionFailed", node="p", error_type="BehaviourError", branch="bad"
    )


def test_collect_all_reports_every_failure_in_declaration_order() -> None:
    """collect_all: every branch runs; all failures reported, in declaration order."""
    p = ParallelSpec(
        "p",
        (branch("late", None, 2.0, raises="x"), branch("early", 5, 1.0)),
        strategy="collect_all",
    )
    trace = both(spec_of([p, task("end", None)], chain("p", "end")))
    assert trace.error == error_info(
        "NodeExecutionFailed",
        node="p",
        error_type="ExceptionGroup",
        failures=(("late", "BehaviourError"), ("early", "StateError")),
    )


def test_map_items_merge_in_item_order() -> None:
    """A map's items finishing last-first merge in item order, named ``m[i]``."""
    items = (branch("_", {"log": "i0"}, 2.0), branch("_", {"log": "i1"}, 1.0))
    m = MapSpec("m", items)
    trace = both(spec_of([m, task("end", None)], chain("m", "end"), reducers=(("log", "append"),)))
    assert records(trace, "BranchCompleted") == [
        ("m", "m[1]", True, "succeeded"),
        ("m", "m[0]", True, "succeeded"),
    ]
    assert trace.state == {"log": ["i0", "i1"]}


def test_first_completed_keeps_the_fastest_success() -> None:
    """first_completed: the earliest success wins (an earlier failure does not end the
    race); the branches still running are cancelled, their updates never merged."""
    p = ParallelSpec(
        "p",
        (
            branch("slow", {"a": 1}, 3.0),
            branch("bad", None, 1.0, raises="boom"),
            branch("fast", {"b": 1}, 2.0),
        ),
        strategy="first_completed",
    )
    trace = both(spec_of([p, task("end", None)], chain("p", "end")))
    assert records(trace, "BranchCompleted") == [
        ("p", "bad", False, "failed"),
        ("p", "fast", True, "succeeded"),
        ("p", "slow", False, "cancelled"),
    ]
    assert trace.state == {"b": 1}


def test_a_map_over_a_tuple_fails_naming_the_node() -> None:
    """``over`` returning a tuple: NodeExecutionFailed (TypeError) before the fork."""
    m = MapSpec("m", (branch("_", None, 0.0),), over_kind="tuple")
    trace = both(spec_of([m, task("end", None)], chain("m", "end")))
    assert trace.error == error_info("NodeExecutionFailed", node="m", error_type="TypeError")
    assert not records(trace, "ParallelStarted")


def test_exact_decision_beats_wildcard() -> None:
    """A wildcard answers every occurrence of its barrier, except one answered exactly."""
    nodes = [task("t", {"n": 1}), BarrierSpec("b"), task("end", None)]
    edges = (EdgeSpec("b", "t", "conditional", Cond("lt", "n", 3)), *chain("t", "b", "end"))
    script = DecisionScript(
        before=(
            Send("all", Approve(), node="b"),
            Send("exact", Reject("no"), node="b", occurrence=2),
        )
    )
    trace = both(spec_of(nodes, edges, reducers=(("n", "add"),)), {"n": 0}, script)
    assert [(r[1], r[2]) for r in records(trace, "BarrierResolved")] == [
        (BarrierId("b", 1), Approve()),
        (BarrierId("b", 2), Reject("no")),
        (BarrierId("b", 3), Approve()),
    ]


def test_cancel_at_an_undecided_barrier() -> None:
    """Cancelling while waiting at a barrier: its NodeEnd(False), then Cancelled naming it."""
    spec = spec_of(
        [task("t", {"a": 1}), BarrierSpec("b"), task("end", None)], chain("t", "b", "end")
    )
    trace = both(spec, script=DecisionScript(cancel_at=0))
    assert trace.events[-2:] == (
        ("NodeEnd", "b", False),
        ("GraphError", error_info("Cancelled", node="b", barrier="b#1"), {"a": 1}),
    )


def test_skip_timeout_writes_no_approval_keys() -> None:
    """A barrier timing out with default "skip" continues without writing any key."""
    spec = spec_of(
        [BarrierSpec("b", timeout=1.0, default="skip"), task("end", None)], chain("b", "end")
    )
    trace = both(spec)
    assert records(trace, "BarrierResolved") == [("b", BarrierId("b", 1), None, True)]
    assert trace.state == {}


def test_fallback_from_the_end_node_is_taken() -> None:
    """The end node asking for a fallback goes down its fallback edge (as rs:970-1017)."""
    end = task("end", Fallback("flaky"), None)
    spec = spec_of([task("t", None), end], (*chain("t", "end"), EdgeSpec("end", "t", "fallback")))
    trace = both(spec)
    assert trace.nodes == ("t", "end", "t", "end") and trace.error is None
    assert ("ObservedError", "end", "Degraded", "flaky") in trace.events


def test_goto_from_the_end_node_is_obeyed() -> None:
    """A Goto from the end node goes where it says (an edge needed), like a Fallback."""
    end = task("end", Goto("t"), Goto("nowhere"))
    spec = spec_of([task("t", None), end], (*chain("t", "end"), EdgeSpec("end", "t", "fallback")))
    trace = both(spec)
    assert trace.nodes == ("t", "end", "t", "end")
    assert trace.error == error_info("MissingEdge", frm="end", to="nowhere")


def test_routing_failure_follows_a_successful_node_end() -> None:
    """Unrouted comes after the node's NodeEnd(success=True), its updates committed."""
    edges = (EdgeSpec("t", "end", "conditional", Cond("false")),)
    trace = both(spec_of([task("t", {"a": 1}), task("end", None)], edges))
    assert trace.events[-2:] == (
        ("NodeEnd", "t", True),
        ("GraphError", error_info("Unrouted", node="t", attempted=(("end", False),)), {"a": 1}),
    )


# -- a known executor bug ---------------------------------------------------------------


async def test_decision_after_the_terminal_event_is_refused() -> None:
    """A decision sent once the terminal event was read is refused with BarrierError.

    With a full event buffer (here 1) the loop waits in ``send(terminal)``, the reader
    gets the event before ``finished`` is set, and the decision is silently accepted.
    """
    graph = (
        GraphBuilder("g")
        .task("a", lambda s: {})
        .task("c", lambda s: {})
        .barrier("b")
        .edge("a", "c")
        .edge("c", "b")
        .start("a")
        .end("b")
        .build()
    )
    async with Executor(buffer=1, max_steps=2).stream(graph, {}) as run:
        async for event in run:
            if isinstance(event, ev.GraphError):
                with pytest.raises(BarrierError):
                    run.decide(BarrierId("b", 1), Approve())


# -- the example of docs/semantics.md ----------------------------------------------------


def doc_example() -> str:
    text = DOC.read_text()
    found = re.search(r"<!-- example: own-graph -->\n```python\n(.*?)```", text, re.S)
    assert found, "docs/semantics.md lost its example"
    return found.group(1)


def test_docs_example_runs() -> None:
    """The fuzzing example of docs/semantics.md runs as written, and passes."""
    namespace: dict[str, Any] = {"__name__": "docs_example"}
    exec(compile(doc_example(), str(DOC), "exec"), namespace)
    namespace["test_review_graph_matches_reference"]()


def test_the_mock_clock_keeps_barrier_timeouts_instant() -> None:
    """run_graph waits out a 60 s barrier timeout without real time passing."""
    graph = GraphBuilder("g").barrier("b", timeout=60).start("b").end("b").build()
    started = time.perf_counter()
    trace = run_graph(graph, {}, DecisionScript())
    assert time.perf_counter() - started < 5
    assert records(trace, "BarrierResolved") == [
        ("b", BarrierId("b", 1), Reject("timed out after 60s"), True)
    ]
