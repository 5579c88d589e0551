"""Running a graph on the Trio executor as the reference does, and comparing traces.

:func:`drive` runs a graph under ``executor.stream()``, with a
:class:`~trio_graph.testing.script.Human` playing the decision script from the events
it reads, and returns the :class:`~trio_graph.testing.traces.Trace`. :func:`run_graph`
does it in a fresh ``trio.run`` on a ``MockClock`` that jumps whenever every task
waits, so sleeps and barrier timeouts take no real time.
"""

from __future__ import annotations

import difflib
import pprint
from collections.abc import Mapping
from typing import Any, Literal

import trio
import trio.testing

from .. import events as ev
from .._model.graph import BarrierNode, Graph
from .._runtime.executor import Executor
from ..errors import GraphError
from .script import Call, DecisionScript, Human
from .traces import Record, Trace, describe_error, record


async def drive(
    graph: Graph,
    state: Mapping[str, Any],
    script: DecisionScript | None = None,
    *,
    max_steps: int = 50,
    buffer: int = 256,
) -> Trace:
    """Run ``graph`` on the executor, playing ``script``; the trace of what it did."""
    executor = Executor(max_steps=max_steps, buffer=buffer)
    timeouts = {n.name: n.timeout for n in graph.nodes.values() if isinstance(n, BarrierNode)}
    events: list[ev.Event] = []
    async with executor.stream(graph, state) as run:

        def perform(call: Call) -> str | None:
            try:
                if call.barrier_id is not None:
                    run.decide(call.barrier_id, call.decision)
                else:
                    run.decide_all(call.node, call.decision)
            except GraphError as exc:
                return type(exc).__name__
            return None

        human = Human(script or DecisionScript(), timeouts, perform, run.cancel)
        human.start()
        async for event in run:
            events.append(event)
            if isinstance(event, ev.BarrierWaiting):
                human.waiting(event.barrier_id)
            elif isinstance(event, ev.TERMINAL):
                human.finished()
    last = events[-1] if events else None
    if isinstance(last, ev.GraphComplete):
        final, error = last.result.state, None
    elif isinstance(last, ev.GraphError):
        final, error = last.state, describe_error(last.error)
    else:
        raise AssertionError(f"the run ended without a terminal event (last: {last!r})")
    return Trace(
        events=tuple(record(e) for e in events),
        nodes=tuple(e.node for e in events if isinstance(e, ev.NodeStart)),
        state=dict(final),
        error=error,
        decisions=tuple(human.results),
        raw=tuple(events),
    )


def run_graph(
    graph: Graph,
    state: Mapping[str, Any],
    script: DecisionScript | None = None,
    *,
    max_steps: int = 50,
    buffer: int = 256,
) -> Trace:
    """:func:`drive` in a new ``trio.run`` with ``MockClock(autojump_threshold=0)``."""
    clock = trio.testing.MockClock(autojump_threshold=0)

    async def main() -> Trace:
        return await drive(graph, state, script, max_steps=max_steps, buffer=buffer)

    return trio.run(main, clock=clock)


# -- comparing ----------------------------------------------------------------------------


def canonical(value: Any) -> Any:
    """``value`` with its types made explicit (``1``, ``1.0`` and ``True`` differ) and
    dicts sorted, so that ``==`` compares what a program could observe."""
    if isinstance(value, dict):
        items = [(canonical(k), canonical(v)) for k, v in value.items()]
        return ("dict", tuple(sorted(items, key=repr)))
    if isinstance(value, list | tuple):
        return (type(value).__name__, tuple(canonical(v) for v in value))
    if isinstance(value, set | frozenset):
        return ("set", tuple(sorted((canonical(v) for v in value), key=repr)))
    if value is None or isinstance(value, bool | int | float | str):
        return (type(value).__name__, value)
    return (type(value).__name__, repr(value))


BranchOrder = Literal["exact", "any"]


def _branch_runs_sorted(events: tuple[Record, ...]) -> tuple[Record, ...]:
    out: list[Record] = []
    run: list[Record] = []
    for e in (*events, ("end",)):
        if e[0] == "BranchCompleted":
            run.append(e)
            continue
        out += sorted(run, key=repr)
        run = []
        if e[0] != "end":
            out.append(e)
    return tuple(out)


def differences(expected: Trace, actual: Trace, *, branch_order: BranchOrder = "exact") -> str:
    """A readable account of how ``actual`` differs from ``expected`` ("" when alike).

    With ``branch_order="any"`` consecutive ``BranchCompleted`` events may come in any
    order (for branches finishing at the same instant).
    """
    e_events, a_events = expected.events, actual.events
    if branch_order == "any":
        e_events, a_events = _branch_runs_sorted(e_events), _branch_runs_sorted(a_events)
    parts = []
    if canonical(e_events) != canonical(a_events):
        diff = difflib.unified_diff(
            [pprint.pformat(e, width=200) for e in e_events],
            [pprint.pformat(e, width=200) for e in a_events],
            "reference",
            "executor",
            lineterm="",
        )
        parts.append("events differ:\n" + "\n".join(diff))
    for name in ("nodes", "state", "error", "decisions"):
        want, got = getattr(expected, name), getattr(actual, name)
        if canonical(want) != canonical(got):
            parts.append(f"{name} differ:\n  reference: {want!r}\n  executor:  {got!r}")
    return "\n".join(parts)


def assert_same(expected: Trace, actual: Trace, *, branch_order: BranchOrder = "exact") -> None:
    """Raise ``AssertionError`` describing every difference between the two traces."""
    text = differences(expected, actual, branch_order=branch_order)
    if text:
        raise AssertionError(text)


def check_event_contract(events: tuple[Any, ...] | list[Any]) -> None:
    """Check DESIGN §5's lifecycle contract on a run's raw events; ``AssertionError`` if broken.

    ``GraphStart`` first; exactly one terminal event, last; one trace id; every
    ``NodeStart`` has exactly one ``NodeEnd`` with the same span id, and span ids are
    unique; node-level events come inside their node's span and carry its span id;
    steps count up by one from the first.
    """
    problems: list[str] = []
    if not events or not isinstance(events[0], ev.GraphStart):
        problems.append("the first event is not GraphStart")
    terminals = [i for i, e in enumerate(events) if isinstance(e, ev.TERMINAL)]
    if terminals != [len(events) - 1]:
        problems.append(f"terminal events at {terminals}, expected exactly one, last")
    traces = {e.trace_id for e in events}
    if len(traces) > 1:
        problems.append(f"several trace ids: {traces}")
    open_span: tuple[str, int] | None = None
    spans: set[int] = set()
    last_step: int | None = None
    for i, e in enumerate(events):
        if isinstance(e, ev.NodeStart):
            if open_span is not None:
                problems.append(f"#{i} NodeStart while {open_span} is open")
            if e.span_id in spans:
                problems.append(f"#{i} span id {e.span_id} reused")
            if last_step is not None and e.step != last_step + 1:
                problems.append(f"#{i} step {e.step} after step {last_step}")
            spans.add(e.span_id)
            last_step = e.step
            open_span = (e.node, e.span_id)
        elif isinstance(e, ev.NodeEnd):
            if open_span != (e.node, e.span_id):
                problems.append(f"#{i} NodeEnd {(e.node, e.span_id)} but open is {open_span}")
            open_span = None
        elif isinstance(
            e, ev.StateChanged | ev.BarrierWaiting | ev.ParallelStarted | ev.NodeOutput
        ):
            if open_span != (e.node, e.span_id):
                problems.append(f"#{i} {type(e).__name__} outside its node's span")
        elif isinstance(e, ev.BarrierResolved | ev.BranchCompleted | ev.ParallelCompleted):
            if open_span is None or open_span[0] != e.node:
                problems.append(f"#{i} {type(e).__name__} outside its node's span")
        elif isinstance(e, ev.TERMINAL) and open_span is not None:
            problems.append(f"#{i} terminal event while {open_span} is open")
    if problems:
        raise AssertionError("event contract broken:\n  " + "\n  ".join(problems))
