"""The reference interpreter: DESIGN §3-7 as a small sequential program, for clarity.

It runs a built :class:`~trio_graph.Graph` on a state, with a scripted person
answering barriers (:class:`~trio_graph.testing.spec.DecisionScript`), and returns
the :class:`~trio_graph.testing.spec.Trace` the Trio executor must produce: the events
(without ids and durations), the nodes run, the final state or the error.

It shares no logic with the executor: it reads the graph's nodes and its ``edges``
(in registration order), not the executor's routing index, applies the built-in
reducers with its own definitions, and knows nothing of Trio. Time exists only to
order the branches of parallel and map nodes (:mod:`.reference_forks`): a branch
finishes ``fn.delay`` seconds after its fork (0 when it has no ``delay``), and branches
finishing at the same instant all finish (what the scheduler decides among them is
``Unsupported``).

Node functions are called directly; a function with a ``reference`` attribute is
called through it instead (how the generated async nodes skip their sleep). An async
function without one must not really await anything. Not modelled (``Unsupported``):
node timeouts, retries, blocking nodes, ``fallback_on``, subgraphs, a parallel or
map ``limit`` smaller than the branch count, checkpoints, and cancellation other than
the person's (at a barrier they leave undecided).

Each rule below says where DESIGN states it; where DESIGN is silent the rule follows
the Rust executor (DESIGN: "read it for the exact behaviour") or, where the two differ,
the project's decision (a ``Goto`` from the end node is obeyed).
"""

from __future__ import annotations

import copy
import types
from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any

from .._model.decisions import Approve, BarrierId, Modify, Reject, Reroute
from .._model.graph import BarrierNode, ConditionNode, Edge, Graph, MapNode, ParallelNode, TaskNode
from .reference_forks import mapped, parallel
from .reference_rules import (
    NodeFailed,
    Outcome,
    RunFailed,
    call_function,
    read_result,
    reducer_parts,
    route_edges,
    state_error,
)
from .reference_rules import Unsupported as Unsupported
from .script import Call, DecisionScript, Human
from .traces import ErrorInfo, Record, Trace, error_info

# -- the interpreter ----------------------------------------------------------------------


def interpret(
    graph: Graph,
    state: Mapping[str, Any],
    script: DecisionScript | None = None,
    *,
    max_steps: int = 50,
) -> Trace:
    """The trace DESIGN prescribes for running ``graph`` on ``state`` with ``script``
    (the same as ``Executor(max_steps=max_steps)`` driven by
    :func:`trio_graph.testing.harness.run_graph`). Call node functions with memory on a
    fresh graph: the reference calls them as the executor would."""
    return _Interpreter(graph, script or DecisionScript(), max_steps).run(state)


class _Interpreter:
    def __init__(self, graph: Graph, script: DecisionScript, max_steps: int) -> None:
        self.graph = graph
        self.max_steps = max_steps
        self.out: dict[str, list[Edge]] = {name: [] for name in graph.nodes}
        for edge in graph.edges:  # registration order
            self.out[edge.frm].append(edge)
        self.events: list[Record] = []
        self.nodes_run: list[str] = []
        self.log: list[tuple[int, str, bool]] = []
        self.state: dict[str, Any] = {}
        self.visits: Counter[str] = Counter()
        # decisions (DESIGN §6): exact ones kept until their occurrence, wildcards forever
        self.exact: dict[BarrierId, Any] = {}
        self.wildcards: dict[str, Any] = {}
        self.resolved: set[BarrierId] = set()
        self.finished = False
        timeouts = {n.name: n.timeout for n in graph.nodes.values() if isinstance(n, BarrierNode)}
        self.human = Human(script, timeouts, self.decide, lambda: None)

    def emit(self, *record: Any) -> None:
        self.events.append(copy.deepcopy(record))

    # -- the run (DESIGN §5) --------------------------------------------------------------
    def run(self, state: Mapping[str, Any]) -> Trace:
        self.state = copy.deepcopy(dict(state))
        self.emit("GraphStart", self.graph.name, self.graph.start, 0, None)
        self.human.start()
        error: ErrorInfo | None = None
        try:
            self.steps()
        except RunFailed as failed:
            error = failed.info
            self.emit("GraphError", error, self.state)
        else:
            self.emit("GraphComplete", self.state, tuple(self.log))
        self.finished = True
        self.human.finished()
        return Trace(
            events=tuple(self.events),
            nodes=tuple(self.nodes_run),
            state=copy.deepcopy(self.state),
            error=error,
            decisions=tuple(self.human.results),
        )

    def steps(self) -> None:
        current = self.graph.start
        step = 0
        while True:
            step += 1
            if step > self.max_steps:
                raise RunFailed(error_info("StepsExceeded", limit=self.max_steps, node=current))
            node = self.graph.nodes.get(current)
            if node is None:
                raise RunFailed(error_info("NodeNotFound", node=current))
            self.nodes_run.append(current)
            self.emit("NodeStart", current, step)
            try:
                outcome = self.execute(node)
                fallback_to: str | None = None
                if outcome.fallback is not None:
                    fallback_to = self.first(current, "fallback")
                    if fallback_to is None:  # DESIGN §5: no fallback edge -> failure
                        raise NodeFailed(
                            error_info("NodeExecutionFailed", node=current, error_type="Fallback")
                        )
                self.commit(current, outcome.items)
            except NodeFailed as failed:
                self.emit("NodeEnd", current, False)
                raise RunFailed(failed.info) from None
            self.log.append((step, current, True))
            for key, value in outcome.items:
                self.emit("StateChanged", current, key, value)
            self.emit("NodeEnd", current, True)
            if fallback_to is not None:
                # A fallback is taken even from the end node (as rs:970-1017).
                self.emit("ObservedError", current, "Degraded", outcome.fallback)
                current = fallback_to
            elif outcome.goto is not None:  # a Goto too is honoured at the end node
                current = self.goto(current, outcome.goto)
            elif current == self.graph.end:  # DESIGN §3: reaching the end, after it ran
                return
            else:
                current = self.route(current)

    def first(self, node: str, kind: str) -> str | None:
        for edge in self.out[node]:
            if edge.kind == kind:
                return edge.to
        return None

    # -- routing (DESIGN §3) ----------------------------------------------------------------
    def goto(self, node: str, target: str) -> str:
        """A named target needs an edge of any class to it."""
        if any(edge.to == target for edge in self.out[node]):
            return target
        raise RunFailed(error_info("MissingEdge", frm=node, to=target))

    def route(self, node: str) -> str:
        """Conditional edges in order, else the first normal, else the first fallback."""
        _, what = route_edges(self.out[node], types.MappingProxyType(self.state))
        if isinstance(what, str):
            return what
        if isinstance(what, Exception):
            raise RunFailed(
                error_info("NodeExecutionFailed", node=node, error_type=type(what).__name__)
            )
        raise RunFailed(error_info("Unrouted", node=node, attempted=tuple(what)))

    # -- state (DESIGN §4) --------------------------------------------------------------------
    def commit(self, node: str, items: Iterable[tuple[str, Any]]) -> None:
        """Fold the updates through the reducers; all of them apply, or none."""
        new: dict[str, Any] = {}
        for key, value in items:
            reducer = self.graph.reducers.get(key)
            if reducer is None:
                new[key] = value  # no reducer: overwrite
                continue
            fn, initial = reducer_parts(reducer)
            if key in new:
                old = new[key]
            elif key in self.state:
                old = self.state[key]
            elif initial is not None:
                old = initial()
            else:
                new[key] = value  # first value of a reducer without a start value
                continue
            try:
                new[key] = fn(old, value)
            except Exception:
                raise state_error(node, key) from None
        self.state.update(new)

    # -- nodes --------------------------------------------------------------------------------
    def execute(self, node: Any) -> Outcome:
        if isinstance(node, TaskNode):
            if node.timeout is not None or node.retry is not None or node.blocking:
                raise Unsupported(f"task {node.name!r}: timeout, retry and blocking")
            if getattr(node, "fallback_on", ()):
                raise Unsupported(f"task {node.name!r}: fallback_on")
            view = types.MappingProxyType(self.state)
            try:
                raw = call_function(node.fn, node.is_async, view)
            except Unsupported:
                raise
            except Exception as exc:
                raise NodeFailed(
                    error_info("NodeExecutionFailed", node=node.name, error_type=type(exc).__name__)
                ) from None
            return read_result(node.name, raw)
        if isinstance(node, ConditionNode):
            return Outcome()  # routed by its conditional edges
        if isinstance(node, BarrierNode):
            return self.barrier(node)
        if isinstance(node, ParallelNode):
            return parallel(node, self.state, self.graph.reducers, self.emit)
        if isinstance(node, MapNode):
            return mapped(node, self.state, self.graph.reducers, self.emit)
        raise Unsupported(f"node {node.name!r} of kind {node.kind!r}")

    # -- barriers (DESIGN §6) -------------------------------------------------------------------
    def barrier(self, node: BarrierNode) -> Outcome:
        self.visits[node.name] += 1
        bid = BarrierId(node.name, self.visits[node.name])
        self.emit("BarrierWaiting", node.name, bid)
        self.human.waiting(bid)  # the person reacts while the run waits
        if self.human.cancelled:  # DESIGN §5: cancel stops the run at once
            raise NodeFailed(error_info("Cancelled", node=node.name, barrier=str(bid)))
        decision = self.exact.pop(bid, None)  # an exact decision beats a wildcard
        if decision is None:
            decision = self.wildcards.get(node.name)
        self.resolved.add(bid)
        timed_out = decision is None
        if timed_out:
            if node.timeout is None:
                raise Unsupported(f"barrier {bid}: no decision and no timeout, waits forever")
            if node.default == "approve":
                decision = Approve()
            elif node.default == "reject":
                decision = Reject(f"timed out after {node.timeout}s")
        self.emit("BarrierResolved", node.name, bid, decision, timed_out)
        if isinstance(decision, Approve):
            return Outcome(((node.approved_key, True),))
        if isinstance(decision, Reject):
            return Outcome(((node.approved_key, False), (node.reason_key, decision.reason)))
        if isinstance(decision, Modify):
            return Outcome(((decision.key, decision.value),))
        if isinstance(decision, Reroute):
            return Outcome(goto=decision.target)
        return Outcome()  # timed out, default "skip": no approval keys

    def decide(self, call: Call) -> str | None:
        """``run.decide`` / ``run.decide_all``: the error type raised, or None if kept."""
        node = call.barrier_id.node if call.barrier_id is not None else call.node
        decision = call.decision
        if call.barrier_id is not None:
            occurrence = call.barrier_id.occurrence
            if not isinstance(occurrence, int) or isinstance(occurrence, bool) or occurrence < 1:
                return "BarrierError"  # an occurrence no run can have
        if self.finished or not isinstance(self.graph.nodes.get(node), BarrierNode):
            return "BarrierError"
        if not isinstance(decision, Approve | Reject | Modify | Reroute):
            return "BarrierError"
        if isinstance(decision, Modify) and not isinstance(decision.key, str):
            return "BarrierError"
        if isinstance(decision, Reroute) and all(e.to != decision.target for e in self.out[node]):
            return "MissingEdge"
        if call.barrier_id is None:
            self.wildcards[node] = decision
            return None
        if call.barrier_id in self.resolved:
            return "BarrierError"
        self.exact[call.barrier_id] = decision
        return None
