"""``GraphBuilder``: declare nodes, edges and reducers fluently, then ``build()``.

Model layer: no trio import. ``build()`` validates everything at once and raises
:class:`~trio_graph.errors.InvalidGraph` whose ``problems`` lists every problem
found (unknown endpoints, missing start/end, non-callables, dead ends, nodes
unreachable from start, nodes from which the end cannot be reached...).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from ..errors import InvalidGraph
from ..reducers import Reducer, as_reducer
from .analysis import reachable
from .checks import check_limit, check_limiter, check_timeout, fork_branches
from .decisions import DefaultAction
from .graph import (
    BarrierNode,
    Condition,
    ConditionNode,
    Edge,
    EdgeKind,
    Graph,
    MapNode,
    Node,
    NodeFn,
    NodeMeta,
    ParallelNode,
    Strategy,
    SubgraphNode,
    TaskNode,
    index_edges,
    is_async_callable,
    structural_hash,
    takes_context,
)
from .retry import RetryPolicy
from .strategies import check_strategy
from .typed import typed_schema

_DEFAULTS = ("reject", "approve", "skip")


def _meta(token_cost: float, side_effects: bool) -> NodeMeta:
    return NodeMeta(token_cost=token_cost, side_effects=side_effects)


class GraphBuilder:
    """Collects a graph's declaration; problems are reported together by :meth:`build`.
    ``state``: an attrs class, a dataclass or a ``TypedDict`` whose fields are the state's
    keys (DESIGN §16); without it the state is a dict of JSON values."""

    def __init__(self, name: str, *, state: type | None = None) -> None:
        self.name = name
        self._state = state
        self._nodes: list[Node] = []
        self._edges: list[Edge] = []
        self._reducers: dict[str, Reducer] = {}
        self._start: str | None = None
        self._end: str | None = None
        self._problems: list[str] = []

    # -- nodes -------------------------------------------------------------
    def task(
        self,
        name: str,
        fn: NodeFn,
        *,
        timeout: float | None = None,
        retry: RetryPolicy | None = None,
        blocking: bool = False,
        fallback_on: tuple[type[BaseException], ...] = (),
        token_cost: float = 0.0,
        side_effects: bool = False,
        limiter: str | None = None,
    ) -> GraphBuilder:
        """A task node: ``fn(state)`` returns updates, ``Goto``, ``Fallback`` or None.

        ``timeout`` (seconds) bounds each attempt (``NodeTimeout``); ``retry`` retries
        failures with back-off; ``blocking=True`` runs a plain function in a worker
        thread so it cannot stall the run (abandoned if the run is cancelled).
        ``fallback_on`` lists failure types (``NodeTimeout``, your exceptions) that take
        the node's fallback edge like a ``Fallback`` result instead of ending the run.
        ``token_cost``/``side_effects`` feed the adaptive checkpoint policy. ``limiter``
        names a shared limiter of the executor (``Executor(limiters={name: n})``): the
        node waits for a slot before it starts (not counted in its timeout).
        """
        where = f"node {name!r}"
        check_limiter(where, limiter, self._problems)
        if not callable(fn):
            self._problems.append(f"{where}: task function is not callable ({fn!r:.60})")
        check_timeout(where, timeout, self._problems)
        is_async = is_async_callable(fn)
        if blocking and is_async:
            self._problems.append(f"{where}: blocking=True is for plain functions, not async ones")
        context = takes_context(fn)
        if blocking and context:
            self._problems.append(
                f"{where}: a blocking=True function cannot take a NodeContext (emit is async)"
            )
        if fallback_on and not (
            isinstance(fallback_on, tuple)
            and all(isinstance(t, type) and issubclass(t, BaseException) for t in fallback_on)
        ):
            self._problems.append(f"{where}: fallback_on must be a tuple of exception types")
        if retry is not None and not isinstance(retry, RetryPolicy):
            self._problems.append(f"{where}: retry must be a RetryPolicy, got {retry!r:.60}")
        self._nodes.append(
            TaskNode(
                name,
                fn,
                is_async=is_async,
                timeout=timeout,
                meta=_meta(token_cost, side_effects),
                retry=retry,
                blocking=blocking,
                fallback_on=tuple(fallback_on),
                takes_context=context,
                limiter=limiter,
            )
        )
        return self

    def subgraph(
        self,
        name: str,
        graph: Graph,
        *,
        input: Callable[[Mapping[str, Any]], Mapping[str, Any]] | None = None,
        output: Callable[[Mapping[str, Any]], Mapping[str, Any]] | None = None,
        max_steps: int | None = None,
    ) -> GraphBuilder:
        """Run a built ``graph`` as one node (its events carry ``"name/child"`` paths)."""
        where = f"subgraph {name!r}"
        if not isinstance(graph, Graph):
            self._problems.append(f"{where}: graph must be a built Graph, got {graph!r:.60}")
        for label, fn in (("input", input), ("output", output)):
            if fn is not None and not callable(fn):
                self._problems.append(f"{where}: {label} must be callable, got {fn!r:.60}")
        if max_steps is not None and (not isinstance(max_steps, int) or max_steps < 1):
            self._problems.append(f"{where}: max_steps must be a positive int, got {max_steps!r}")
        self._nodes.append(
            SubgraphNode(name, graph, input=input, output=output, max_steps=max_steps)
        )
        return self

    def condition(self, name: str, branches: Sequence[tuple[str, Condition]]) -> GraphBuilder:
        """A routing node: goes to the first target whose predicate holds, else "next".

        Each ``(target, predicate)`` becomes a conditional edge, in order; add a
        normal or fallback edge for the "else" case.
        """
        targets = []
        for i, item in enumerate(branches):
            try:
                target, predicate = item
            except (TypeError, ValueError):
                self._problems.append(
                    f"node {name!r}: condition branch {i} must be a (target, predicate) pair"
                )
                continue
            targets.append(target)
            self.edge_if(name, target, predicate)
        self._nodes.append(ConditionNode(name, tuple(targets)))
        return self

    def barrier(
        self,
        name: str,
        *,
        timeout: float | None = None,
        default: DefaultAction = "reject",
        approved_key: str | None = None,
        reason_key: str | None = None,
        show: NodeFn | None = None,
    ) -> GraphBuilder:
        """A barrier: pause for a decision (Approve/Reject/Modify/Reroute). ``show(state)``
        (async or plain) gives what the person decides on, carried by ``BarrierWaiting``
        and stored with the waiting checkpoint; with a store it must be JSON-compatible."""
        if default not in _DEFAULTS:
            self._problems.append(
                f"barrier {name!r}: default must be one of {_DEFAULTS}, got {default!r}"
            )
        check_timeout(f"barrier {name!r}", timeout, self._problems)
        if show is not None and not callable(show):
            self._problems.append(f"barrier {name!r}: show must be callable, got {show!r:.60}")
        self._nodes.append(
            BarrierNode(
                name,
                timeout=timeout,
                default=default,
                approved_key=approved_key or f"{name}.approved",
                reason_key=reason_key or f"{name}.reject_reason",
                show=show,
                show_is_async=show is not None and is_async_callable(show),
            )
        )
        return self

    def parallel(
        self,
        name: str,
        branches: Mapping[str, NodeFn],
        *,
        strategy: Strategy = "fail_fast",
        limit: int | None = None,
        label: str | None = None,
        timeouts: Mapping[str, float] | None = None,
        quorum: int | None = None,
        limiter: str | None = None,
    ) -> GraphBuilder:
        """A fan-out: each branch runs concurrently on the pre-fork state; ``strategy``
        or ``quorum=k`` says how many must succeed (``_model/strategies.py``); each
        branch holds a slot of the executor's shared ``limiter``, when named."""
        where = f"parallel node {name!r}"
        check_limiter(where, limiter, self._problems)
        if not isinstance(branches, Mapping) or not branches:
            self._problems.append(f"{where}: branches must be a non-empty mapping name -> fn")
            branches = {}
        size = len(branches)
        strategy, quorum = check_strategy(where, strategy, quorum, self._problems, size)
        check_limit(where, limit, self._problems)
        built = fork_branches(where, name, branches, timeouts, self._problems)
        node = ParallelNode(name, built, strategy, limit, label, quorum=quorum, limiter=limiter)
        self._nodes.append(node)
        return self

    def map(
        self,
        name: str,
        fn: Callable[..., Any],
        *,
        over: NodeFn,
        limit: int | None = None,
        strategy: Strategy = "fail_fast",
        timeout: float | None = None,
        retry: RetryPolicy | None = None,
        label: str | None = None,
        quorum: int | None = None,
        limiter: str | None = None,
    ) -> GraphBuilder:
        """A fan-out over the list ``over(state)`` gives at run time: ``fn(item, state)``
        (or ``fn(item, state, ctx)``) per item, as branch ``"name[i]"``, merged in item
        order; ``timeout``/``retry`` are per item; the rest as :meth:`parallel`."""
        where = f"map node {name!r}"
        for label_, f in (("fn", fn), ("over", over)):
            if not callable(f):
                self._problems.append(f"{where}: {label_} is not callable ({f!r:.60})")
        strategy, quorum = check_strategy(where, strategy, quorum, self._problems)
        check_limit(where, limit, self._problems)
        check_limiter(where, limiter, self._problems)
        check_timeout(where, timeout, self._problems)
        if retry is not None and not isinstance(retry, RetryPolicy):
            self._problems.append(f"{where}: retry must be a RetryPolicy, got {retry!r:.60}")
        context = takes_context(fn, before=2)
        is_async = is_async_callable(fn)
        args = (strategy, limit, timeout, retry, label, quorum)
        self._nodes.append(MapNode(name, fn, over, is_async, context, *args, limiter=limiter))
        return self

    # -- edges -------------------------------------------------------------
    def edge(self, frm: str, to: str, *, max_visits: int | None = None) -> GraphBuilder:
        """A normal edge: taken when no conditional edge of ``frm`` holds."""
        return self._edge(frm, to, "normal", None, max_visits)

    def edge_if(
        self, frm: str, to: str, condition: Condition, *, max_visits: int | None = None
    ) -> GraphBuilder:
        """A conditional edge: taken when ``condition(state)`` is true (first one wins)."""
        if not callable(condition):
            self._problems.append(
                f"edge {frm!r} -> {to!r}: condition is not callable ({condition!r:.60})"
            )
        return self._edge(frm, to, "conditional", condition, max_visits)

    def edge_fallback(self, frm: str, to: str, *, max_visits: int | None = None) -> GraphBuilder:
        """A fallback edge: taken on ``Fallback`` results, or when nothing else routes."""
        return self._edge(frm, to, "fallback", None, max_visits)

    def _edge(
        self,
        frm: str,
        to: str,
        kind: EdgeKind,
        condition: Condition | None,
        max_visits: int | None,
    ) -> GraphBuilder:
        if max_visits is not None and (not isinstance(max_visits, int) or max_visits < 1):
            self._problems.append(
                f"edge {frm!r} -> {to!r}: max_visits must be a positive int, got {max_visits!r}"
            )
        self._edges.append(Edge(frm, to, kind, condition, max_visits))
        return self

    # -- the rest ------------------------------------------------------------
    def reducer(self, key: str, reducer: Reducer | Callable[[Any, Any], Any]) -> GraphBuilder:
        """Merge updates of ``key`` with ``reducer`` (a built-in or ``(old, new) -> merged``)."""
        if not callable(reducer):
            self._problems.append(f"reducer for key {key!r} is not callable ({reducer!r:.60})")
            return self
        if key in self._reducers:
            self._problems.append(f"key {key!r} has two reducers")
        self._reducers[key] = as_reducer(reducer)
        return self

    def start(self, node: str) -> GraphBuilder:
        """The node the run begins at."""
        self._start = node
        return self

    def end(self, node: str) -> GraphBuilder:
        """The node whose completion completes the run."""
        self._end = node
        return self

    def build(self) -> Graph:
        """Validate and return the :class:`Graph`; raise ``InvalidGraph`` listing every problem."""
        problems = list(self._problems)
        nodes: dict[str, Node] = {}
        for node in self._nodes:
            if not isinstance(node.name, str) or not node.name:
                problems.append(f"node name must be a non-empty str, got {node.name!r}")
            elif "/" in node.name or "#" in node.name:
                problems.append(
                    f"node {node.name!r}: names may not contain '/' or '#' "
                    "(they separate subgraph paths and barrier occurrences)"
                )
            elif node.name in nodes:
                problems.append(f"duplicate node {node.name!r}")
            else:
                nodes[node.name] = node
        for e in self._edges:
            for end, label in ((e.frm, "from"), (e.to, "to")):
                if end not in nodes:
                    problems.append(f"edge {e.frm!r} -> {e.to!r}: {label} unknown node {end!r}")
        for label, value in (("start", self._start), ("end", self._end)):
            if value is None:
                problems.append(f"missing {label} node (call .{label}(name))")
            elif value not in nodes:
                problems.append(f"{label} node {value!r} is not a node")
        edges = tuple(e for e in self._edges if e.frm in nodes and e.to in nodes)
        out = index_edges(nodes, edges)
        for name in nodes:
            if name != self._end and not out[name].targets:
                problems.append(f"node {name!r} has no outgoing edge and is not the end node")
        if self._start in nodes:
            reached = reachable(self._start, {n: o.targets for n, o in out.items()})
            for name in nodes:
                if name not in reached:
                    problems.append(f"node {name!r} is unreachable from start {self._start!r}")
        if self._end in nodes:
            rev: dict[str, set[str]] = {n: set() for n in nodes}
            for e in edges:
                rev[e.to].add(e.frm)
            reaching = reachable(self._end, rev)
            for name in nodes:
                if name not in reaching:
                    problems.append(f"node {name!r} cannot reach the end node {self._end!r}")
        schema, reducers = typed_schema(self._state, nodes, self._reducers, problems)
        if problems:
            raise InvalidGraph(self.name, problems)
        assert self._start is not None and self._end is not None
        fields = None if schema is None else schema.hashed()
        return Graph(
            name=self.name,
            nodes=nodes,
            edges=edges,
            start=self._start,
            end=self._end,
            reducers=reducers,
            out=out,
            hash=structural_hash(nodes, edges, self._start, self._end, reducers, fields),
            schema=schema,
        )
