"""Hypothesis strategies for graphs, states, node behaviours and decision scripts.

Everything drawn is plain data (:mod:`trio_graph.testing.spec`): print it, shrink
it, build it with :func:`~trio_graph.testing.spec.build_graph`. The bounds are
keyword arguments; the defaults keep one example to a few milliseconds.

- :func:`graphs`: valid graphs, cycles included, every edge class, task / condition /
  barrier / parallel nodes, reducers (built-in and custom) on some keys;
- :func:`node_behaviours`: what a task node or branch does on one call: updates,
  ``None``, ``Goto``, ``Fallback``, raising, sleeping, malformed results;
- :func:`states`: initial states for a graph's keys;
- :func:`decision_scripts`: a person's decisions, before, at and after barriers,
  exact and wildcard, some refused on purpose;
- :func:`scenarios`: all of it at once, for differential tests;
- :func:`invalid_graphs`: builders with injected problems that ``build()`` must list.
"""

from __future__ import annotations

import functools
import itertools
import re
from collections.abc import Sequence
from typing import Any, TypeVar

import attrs
from hypothesis import strategies as st

from .._model.builder import GraphBuilder
from .._model.decisions import Approve, DefaultAction, Modify, Reject, Reroute
from .._model.graph import EdgeKind, Strategy
from .._model.results import Fallback, Goto
from .spec import (
    BarrierSpec,
    Behaviour,
    BranchSpec,
    Cond,
    ConditionSpec,
    CondOp,
    DecisionScript,
    EdgeSpec,
    GraphSpec,
    NodeSpec,
    ParallelSpec,
    Send,
    SendTarget,
    TaskSpec,
    declare,
)

KIND_VALUES: dict[str, st.SearchStrategy[Any]] = {
    "int": st.integers(-2, 5),
    "str": st.sampled_from(["", "a", "b", "ab"]),
    "list": st.lists(st.integers(0, 3), max_size=3),
    "dict": st.dictionaries(st.sampled_from(["x", "y"]), st.integers(0, 3), max_size=2),
}
"""Values of each kind of key."""

KIND_REDUCERS: dict[str, tuple[str | None, ...]] = {
    "int": (None, None, "add", "add", "max", "min", "inc_only"),
    "str": (None, "add", "max", "min", "concat"),
    "list": (None, "append", "extend", "union", "add"),
    "dict": (None, "merge"),
}
"""Reducers that make sense for each kind of key (None: overwrite)."""

KeyInfo = tuple[str, str, str | None]
"""A state key: name, kind of value, reducer name (or None)."""

MALFORMED_RESULTS: tuple[Any, ...] = (42, "text", [("a", 1)], ("a", 1), {1: 2}, Goto(7))  # type: ignore[arg-type]
"""Results no node may return: the executor must refuse them with a typed error."""

MALFORMED_DECISIONS: tuple[Any, ...] = ("approve", None, 1, Modify(1, "x"), Approve)  # type: ignore[arg-type]
"""Decisions ``decide`` must refuse with ``BarrierError``."""

# Drawing is the slow part of an example: the helpers below draw from a few strategies
# built once (building strategies inside a draw costs more than running the graph).

_ITEM = st.integers(0, 3)
_WRONG = {k: st.one_of(*(s for j, s in KIND_VALUES.items() if j != k)) for k in KIND_VALUES}


@functools.cache
def _below(n: int) -> st.SearchStrategy[int]:
    return st.integers(0, n - 1)


_T = TypeVar("_T")


def _pick(draw: st.DrawFn, items: Sequence[_T]) -> _T:
    """One of ``items`` (shrinks towards the first)."""
    return items[draw(_below(len(items)))]


def _percent(draw: st.DrawFn) -> int:
    return draw(_below(100))


def _keys_of(spec: GraphSpec) -> list[KeyInfo]:
    reducers = dict(spec.reducers)
    return [(name, kind, reducers.get(name)) for name, kind in spec.keys]


def _value(draw: st.DrawFn, kind: str, reducer: str | None) -> Any:
    if draw(_below(30)) == 29:
        return draw(_WRONG[kind])
    return draw(_ITEM if reducer == "append" else KIND_VALUES[kind])


def values_for(kind: str, reducer: str | None = None) -> st.SearchStrategy[Any]:
    """Update values for a key: mostly the right kind (an item for ``append``), now and
    then another kind, to reach reducer and condition type errors."""
    return st.composite(lambda draw: _value(draw, kind, reducer))()


def _updates(draw: st.DrawFn, keys: Sequence[KeyInfo]) -> dict[str, Any]:
    updates: dict[str, Any] = {}
    for _ in range(draw(_below(3)) if keys else 0):
        name, kind, reducer = _pick(draw, keys)
        updates[name] = _value(draw, kind, reducer)
    return updates


def _behaviour(
    draw: st.DrawFn,
    targets: Sequence[str],
    keys: Sequence[KeyInfo],
    sleeps: Sequence[float],
    failures: int,
    malformed: bool,
    routing: bool,
) -> Behaviour:
    roll = _percent(draw)  # the simplest example (0) must be benign
    sleep = _pick(draw, sleeps)
    if roll >= 100 - failures:
        if roll % 3 == 2 and malformed:
            return Behaviour(_pick(draw, MALFORMED_RESULTS), sleep=sleep)
        return Behaviour(raises=_pick(draw, ["boom", "bad input"]), sleep=sleep)
    roll = _percent(draw)
    if roll < 70:
        return Behaviour(_updates(draw, keys), sleep=sleep)
    if roll < 80 or not routing:
        return Behaviour(None, sleep=sleep)
    if roll < 93:
        target = _pick(draw, [*targets, *targets, "nowhere"])
        return Behaviour(Goto(target, _updates(draw, keys)), sleep=sleep)
    return Behaviour(Fallback(_pick(draw, ["flaky", "slow"]), _updates(draw, keys)))


@st.composite
def node_behaviours(
    draw: st.DrawFn,
    targets: Sequence[str] = ("n0",),
    keys: Sequence[KeyInfo] = (("a", "int", None),),
    *,
    sleeps: Sequence[float] = (0.0, 0.0, 0.5, 1.0),
    failures: int = 5,
    malformed: bool = True,
    routing: bool = True,
) -> Behaviour:
    """One call's behaviour: updates (most often), None, ``Goto`` (to one of ``targets``
    or to a node with no edge) and ``Fallback`` (with ``routing``; parallel branches
    may return neither), and, in about ``failures`` percent of calls (default 5), raising or (with
    ``malformed``) returning a malformed result. ``keys`` are (name, kind, reducer)."""
    return _behaviour(draw, targets, keys, sleeps, failures, malformed, routing)


_COND_OPS: dict[str, tuple[CondOp, ...]] = {
    "int": ("eq", "lt", "odd", "has"),
    "str": ("eq", "lt", "has"),
    "list": ("eq", "has"),
    "dict": ("has", "eq"),
    "bool": ("eq", "has"),
}
_COND_VALUES: dict[str, st.SearchStrategy[Any]] = {
    **KIND_VALUES,
    "int": st.integers(-1, 4),
    "bool": st.booleans(),
}
_ANY_COND_VALUE = st.one_of(*_COND_VALUES.values())


def _condition(draw: st.DrawFn, keys: Sequence[tuple[str, str]]) -> Cond:
    roll = _percent(draw)
    if roll >= 85 or not keys:
        return Cond("true" if roll % 2 else "false")
    key, kind = _pick(draw, keys)
    if roll >= 4:
        return Cond(_pick(draw, _COND_OPS[kind]), key, draw(_COND_VALUES[kind]))
    return Cond(_pick(draw, ("lt", "odd")), key, draw(_ANY_COND_VALUE))


@st.composite
def conditions(draw: st.DrawFn, keys: Sequence[tuple[str, str]] = (("a", "int"),)) -> Cond:
    """An edge condition on one of ``keys`` (name, kind): mostly a test that suits the
    kind, now and then a constant, rarely one that raises ``TypeError``."""
    return _condition(draw, keys)


_NODE_KINDS = ("task", "task", "task", "condition", "barrier", "parallel")
_EDGE_KINDS: tuple[EdgeKind, ...] = ("normal", "normal", "normal", "conditional", "fallback")
_TIMEOUTS = (None, 1.0, 2.5)
_DEFAULTS: tuple[DefaultAction, ...] = ("reject", "approve", "skip")
_STRATEGIES: tuple[Strategy, ...] = ("fail_fast", "collect_all")


@st.composite
def graphs(
    draw: st.DrawFn,
    *,
    min_nodes: int = 2,
    max_nodes: int = 6,
    max_extra_edges: int = 5,
    max_branches: int = 3,
    max_behaviours: int = 3,
    node_kinds: Sequence[str] = _NODE_KINDS,
    max_keys: int = 3,
    max_steps: Sequence[int] = (40, 25, 12, 6, 2),
    failures: int = 5,
    malformed: bool = True,
    ties: bool = False,
) -> GraphSpec:
    """A valid graph: ``n0`` starts, the last node ends, a chain of edges (of any class)
    joins them in order so every node is reachable and reaches the end, and extra edges
    (cycles and self-loops included) go anywhere; when a key is a counter (an int with
    ``add``), up to two "go back while the counter is small" edges make loops that end.
    Barriers wait for a decision or time out after a few seconds; parallel branches
    finish at distinct instants, or with ``ties`` at 0 or 1 s (several at once).
    ``node_kinds`` weighs the kinds (repeat one to favour it)."""
    n = draw(st.integers(min_nodes, max_nodes))
    names = [f"n{i}" for i in range(n)]
    keys: list[KeyInfo] = []
    for i in range(1 + draw(_below(max(1, max_keys)))):
        name = "abcdef"[i]
        if i == 0 and draw(st.booleans()):
            keys.append((name, "int", "add"))  # a counter, for loops that end
            continue
        kind = _pick(draw, list(KIND_VALUES))
        keys.append((name, kind, _pick(draw, KIND_REDUCERS[kind])))
    kinds = [_pick(draw, node_kinds) for _ in names]
    cond_keys = [(k, kind) for k, kind, _ in keys] + [
        (f"{name}.approved", "bool")
        for name, kind in zip(names, kinds, strict=True)
        if kind == "barrier"
    ]

    def edge(frm: str, to: str) -> EdgeSpec:
        kind = _pick(draw, _EDGE_KINDS)
        cond = _condition(draw, cond_keys) if kind == "conditional" else None
        return EdgeSpec(frm, to, kind, cond, _pick(draw, (None, None, 1, 3)))

    edges = [edge(a, b) for a, b in itertools.pairwise(names)]
    for _ in range(draw(_below(max_extra_edges + 1))):
        edges.append(edge(_pick(draw, names), _pick(draw, names)))
    edges = draw(st.permutations(edges))  # registration order matters for routing
    counters = [k for k, kind, red in keys if kind == "int" and red == "add"]
    if counters:  # loops that end, registered first so they are tried first
        for _ in range(draw(_below(3))):
            i = draw(_below(n))
            j = i + draw(_below(n - i))
            cond = Cond("lt", _pick(draw, counters), 2 + draw(_below(7)))
            edges.insert(0, EdgeSpec(names[j], names[i], "conditional", cond))

    def behaviours(branch: bool) -> tuple[Behaviour, ...]:
        sleeps = (0.0,) if branch else (0.0, 0.0, 0.5, 1.0)
        return tuple(
            _behaviour(draw, names, keys, sleeps, failures, malformed, not branch)
            for _ in range(1 + draw(_below(max_behaviours)))
        )

    nodes: list[NodeSpec] = []
    for name, kind in zip(names, kinds, strict=True):
        if kind == "task":
            nodes.append(TaskSpec(name, behaviours(False), is_async=draw(st.booleans())))
        elif kind == "condition":
            branches = tuple(
                (_pick(draw, names), _condition(draw, cond_keys))
                for _ in range(1 + draw(_below(2)))
            )
            nodes.append(ConditionSpec(name, branches))
        elif kind == "barrier":
            timeout, default = _pick(draw, _TIMEOUTS), _pick(draw, _DEFAULTS)
            nodes.append(BarrierSpec(name, timeout=timeout, default=default))
        else:
            k = 1 + draw(_below(max_branches))
            if ties:  # branches finishing at the same instant: compare with branch_order="any"
                delays = [draw(_below(2)) for _ in range(k)]
            else:  # distinct: a definite completion order
                delays = draw(st.permutations(range(k)))
            branch_specs = tuple(
                BranchSpec(f"b{i}", behaviours(True), float(d), draw(st.booleans()))
                for i, d in enumerate(delays)
            )
            nodes.append(ParallelSpec(name, branch_specs, strategy=_pick(draw, _STRATEGIES)))
    return GraphSpec(
        name="fuzz",
        nodes=tuple(nodes),
        edges=tuple(edges),
        start=names[0],
        end=names[-1],
        reducers=tuple((k, r) for k, _, r in keys if r is not None),
        keys=tuple((k, kind) for k, kind, _ in keys),
        max_steps=_pick(draw, max_steps),
    )


@st.composite
def states(draw: st.DrawFn, spec: GraphSpec) -> dict[str, Any]:
    """An initial state for ``spec``'s keys (some absent, now and then a wrong kind)."""
    state: dict[str, Any] = {}
    for name, kind, reducer in _keys_of(spec):
        if draw(st.booleans()):
            state[name] = _value(draw, "list" if reducer == "append" else kind, None)
    return state


def _decision(draw: st.DrawFn, spec: GraphSpec, malformed: bool, reroute: bool) -> Any:
    roll = _percent(draw)
    keys = _keys_of(spec) or [("a", "int", None)]
    if roll < 35:
        return Approve()
    if roll < 60:
        return Reject(_pick(draw, ["no", "redo"]))
    if roll < 80 or not reroute:
        name, kind, reducer = _pick(draw, keys)
        return Modify(name, _value(draw, kind, reducer))
    if roll < 95 or not malformed:
        return Reroute(_pick(draw, spec.node_names()))
    return _pick(draw, MALFORMED_DECISIONS)


@st.composite
def decisions(
    draw: st.DrawFn, spec: GraphSpec, *, malformed: bool = True, reroute: bool = True
) -> Any:
    """A decision for ``spec``: Approve, Reject, Modify (of a key of the graph),
    Reroute (to any node: one with no edge is refused), or a malformed one."""
    return _decision(draw, spec, malformed, reroute)


_BEFORE: tuple[SendTarget, ...] = ("exact", "all")
_AT_WAIT: tuple[SendTarget, ...] = ("this", "this", "this_all", "earlier", "exact", "all")


@st.composite
def decision_scripts(
    draw: st.DrawFn,
    spec: GraphSpec,
    *,
    max_before: int = 3,
    max_responses: int = 4,
    malformed: bool = True,
) -> DecisionScript:
    """A person's decisions for ``spec``: some sent before the run (exact occurrences
    or wildcards), some when it blocks at a barrier (that occurrence, its node, an
    earlier occurrence, another barrier), some after it ends; now and then for a node
    that is no barrier, or malformed; and one time in eight a cancel at a blocked wait."""
    barriers = spec.barrier_names()
    others = ["ghost", *[n for n in spec.node_names() if n not in barriers]]

    def send(targets: Sequence[SendTarget]) -> Send:
        if barriers and (not malformed or draw(_below(5))):
            node = _pick(draw, barriers)
        else:
            node = _pick(draw, others)
        decision = _decision(draw, spec, malformed, True)
        return Send(_pick(draw, targets), decision, node, 1 + draw(_below(3)))

    answer = Approve() if draw(st.booleans()) else _decision(draw, spec, False, False)
    return DecisionScript(
        before=tuple(send(_BEFORE) for _ in range(draw(_below(max_before + 1)))),
        responses=tuple(
            tuple(send(_AT_WAIT) for _ in range(draw(_below(3))))
            for _ in range(draw(_below(max_responses + 1)))
        ),
        answer=answer,
        after_end=tuple(send(_BEFORE) for _ in range(draw(_below(2)))),
        cancel_at=None if draw(_below(8)) else draw(_below(max_responses + 1)),
    )


@attrs.frozen
class Scenario:
    """One differential example: a graph, its initial state, a script, a channel size."""

    spec: GraphSpec
    state: dict[str, Any]
    script: DecisionScript
    buffer: int = 256


@st.composite
def scenarios(
    draw: st.DrawFn, /, *, buffers: Sequence[int] = (256, 1, 3), **graph_options: Any
) -> Scenario:
    """A graph (``graph_options`` go to :func:`graphs`), a state, a decision script and an
    event buffer size from ``buffers`` (1 makes the run wait for its reader at every event)."""
    spec = draw(graphs(**graph_options))
    return Scenario(spec, draw(states(spec)), draw(decision_scripts(spec)), _pick(draw, buffers))


# -- invalid graphs -----------------------------------------------------------------------

INJECTIONS: tuple[str, ...] = (
    "duplicate",
    "edge_to_unknown",
    "edge_from_unknown",
    "missing_start",
    "bad_start",
    "missing_end",
    "bad_end",
    "bad_condition",
    "dead_end",
    "unreachable",
    "cannot_reach_end",
    "bad_default",
    "bad_strategy",
    "empty_parallel",
    "bad_branch",
    "bad_task",
    "bad_name",
    "empty_name",
    "two_reducers",
    "bad_reducer",
    "bad_timeout",
    "bad_max_visits",
    "bad_limit",
)
"""The kinds of problem :func:`invalid_graphs` injects into a valid graph."""


def _ok(state: Any) -> None:
    return None


@attrs.frozen
class InvalidGraphCase:
    """A valid ``spec`` with ``injections`` (kind, subject) applied by :meth:`builder`.

    :meth:`expected` gives one anchored pattern per problem ``build()`` must list;
    :meth:`check` compares them with ``InvalidGraph.problems``: every expected
    problem listed, and nothing listed that was not injected.
    """

    spec: GraphSpec
    injections: tuple[tuple[str, str], ...]

    def _kinds(self) -> set[str]:
        return {kind for kind, _ in self.injections}

    def builder(self) -> GraphBuilder:
        """The spec's declaration with every injection applied (not built)."""
        spec, kinds = self.spec, self._kinds()
        start, end = spec.start, spec.end
        b = declare(spec, start="missing_start" not in kinds, end="missing_end" not in kinds)
        for kind, x in self.injections:
            if kind == "duplicate":
                b.task(x, _ok)
            elif kind == "edge_to_unknown":
                b.edge(start, x)
            elif kind == "edge_from_unknown":
                b.edge(x, end)
            elif kind == "bad_start":
                b.start(x)
            elif kind == "bad_end":
                b.end(x)
            elif kind == "bad_condition":
                b.edge_if(start, end, 42)  # type: ignore[arg-type]
            elif kind == "dead_end":
                b.task(x, _ok).edge(start, x)
            elif kind == "unreachable":
                b.task(x, _ok).edge(x, end)
            elif kind == "cannot_reach_end":
                b.task(x, _ok).edge(start, x).edge(x, x)
            elif kind == "bad_default":
                b.barrier(x, default="maybe").edge(start, x).edge(x, end)  # type: ignore[arg-type]
            elif kind == "bad_strategy":
                b.parallel(x, {"b": _ok}, strategy="sometimes")  # type: ignore[arg-type]
                b.edge(start, x).edge(x, end)
            elif kind == "empty_parallel":
                b.parallel(x, {}).edge(start, x).edge(x, end)
            elif kind == "bad_branch":
                b.parallel(x, {"b": 42}).edge(start, x).edge(x, end)  # type: ignore[dict-item]
            elif kind == "bad_task":
                b.task(x, 42).edge(start, x).edge(x, end)  # type: ignore[arg-type]
            elif kind in ("bad_name", "empty_name"):
                b.task(x, _ok)
            elif kind == "two_reducers":
                b.reducer(x, max).reducer(x, min)
            elif kind == "bad_reducer":
                b.reducer(x, 42)  # type: ignore[arg-type]
            elif kind == "bad_timeout":
                b.barrier(x, timeout=-1).edge(start, x).edge(x, end)
            elif kind == "bad_max_visits":
                b.edge(start, end, max_visits=0)
            elif kind == "bad_limit":
                b.parallel(x, {"b": _ok}, limit=0).edge(start, x).edge(x, end)
        return b

    def expected(self) -> list[str]:
        """One anchored regex per problem ``build()`` must report."""
        spec, kinds = self.spec, self._kinds()
        start, end = spec.start, spec.end
        start_ok = not kinds & {"missing_start", "bad_start"}
        end_ok = not kinds & {"missing_end", "bad_end"}
        q = re.escape
        patterns = []
        if (
            not end_ok
            and not any(e.frm == end for e in spec.edges)
            and not any(isinstance(n, ConditionSpec) and n.name == end for n in spec.nodes)
        ):
            patterns.append(f"^node '{q(end)}' has no outgoing edge and is not the end node$")
        for kind, x in self.injections:
            name = f"'{q(x)}'"
            if kind == "duplicate":
                patterns.append(f"^duplicate node {name}$")
            elif kind == "edge_to_unknown":
                patterns.append(f"^edge '{q(start)}' -> {name}: to unknown node {name}$")
            elif kind == "edge_from_unknown":
                patterns.append(f"^edge {name} -> '{q(end)}': from unknown node {name}$")
            elif kind == "missing_start":
                patterns.append(r"^missing start node \(call \.start\(name\)\)$")
            elif kind == "missing_end":
                patterns.append(r"^missing end node \(call \.end\(name\)\)$")
            elif kind == "bad_start":
                patterns.append(f"^start node {name} is not a node$")
            elif kind == "bad_end":
                patterns.append(f"^end node {name} is not a node$")
            elif kind == "bad_condition":
                patterns.append(f"^edge '{q(start)}' -> '{q(end)}': condition is not callable")
            elif kind == "dead_end":
                patterns.append(f"^node {name} has no outgoing edge and is not the end node$")
                if end_ok:
                    patterns.append(f"^node {name} cannot reach the end node '{q(end)}'$")
            elif kind == "unreachable" and start_ok:
                patterns.append(f"^node {name} is unreachable from start '{q(start)}'$")
            elif kind == "cannot_reach_end" and end_ok:
                patterns.append(f"^node {name} cannot reach the end node '{q(end)}'$")
            elif kind == "bad_default":
                patterns.append(f"^barrier {name}: default must be one of ")
            elif kind == "bad_strategy":
                patterns.append(f"^parallel node {name}: strategy must be one of ")
            elif kind == "empty_parallel":
                patterns.append(f"^parallel node {name}: branches must be a non-empty mapping")
            elif kind == "bad_branch":
                patterns.append(f"^parallel node {name}: branch 'b' is not callable ")
            elif kind == "bad_task":
                patterns.append(f"^node {name}: task function is not callable ")
            elif kind == "bad_name":
                patterns.append(f"^node {name}: names may not contain '/' or '#' ")
            elif kind == "empty_name":
                patterns.append("^node name must be a non-empty str, got ''$")
            elif kind == "two_reducers":
                patterns.append(f"^key {name} has two reducers$")
            elif kind == "bad_reducer":
                patterns.append(f"^reducer for key {name} is not callable ")
            elif kind == "bad_timeout":
                patterns.append(f"^barrier {name}: timeout must be a number >= 0, got -1$")
            elif kind == "bad_max_visits":
                patterns.append(
                    f"^edge '{q(start)}' -> '{q(end)}': max_visits must be a positive int, got 0$"
                )
            elif kind == "bad_limit":
                patterns.append(f"^parallel node {name}: limit must be a positive int, got 0$")
        return patterns

    def check(self, problems: Sequence[str]) -> list[str]:
        """What is wrong with ``problems`` (empty when they are exactly as expected)."""
        complaints = []
        patterns = self.expected()
        for pattern in patterns:
            if not any(re.search(pattern, p) for p in problems):
                complaints.append(f"no problem matches {pattern!r}")
        for p in problems:
            if not any(re.search(pattern, p) for pattern in patterns):
                complaints.append(f"unexpected problem {p!r}")
        if len(problems) < len(patterns):
            complaints.append(f"{len(problems)} problem(s) listed for {len(patterns)} injected")
        return complaints


def injections_for(
    spec: GraphSpec, kinds: Sequence[str], picks: Sequence[int] = ()
) -> InvalidGraphCase:
    """The case injecting ``kinds`` into ``spec``, each with a fresh subject (``x<i>``;
    an existing node for ``duplicate``, chosen by ``picks``). Only the first way of
    getting the start (or the end) wrong is kept: the builder keeps one start and end."""
    injections: list[tuple[str, str]] = []
    seen: set[str] = set()
    for i, kind in enumerate(kinds):
        group = "start" if kind.endswith("_start") else "end" if kind.endswith("_end") else ""
        if group:
            if group in seen:
                continue
            seen.add(group)
        pick = picks[i] if i < len(picks) else 0
        if kind == "duplicate":
            names = spec.node_names()
            subject = names[pick % len(names)]
        elif kind == "bad_name":
            subject = f"x{i}" + ("/y", "#2")[pick % 2]
        elif kind == "empty_name":
            subject = ""
        else:
            subject = f"x{i}"
        injections.append((kind, subject))
    return InvalidGraphCase(spec, tuple(injections))


@st.composite
def invalid_graphs(
    draw: st.DrawFn, /, *, max_injections: int = 4, **graph_options: Any
) -> InvalidGraphCase:
    """An :class:`InvalidGraphCase`: a valid graph from :func:`graphs` with 1 to
    ``max_injections`` problems injected (see :func:`injections_for`)."""
    spec = draw(graphs(**graph_options))
    kinds = draw(st.lists(st.sampled_from(INJECTIONS), min_size=1, max_size=max_injections))
    picks = [draw(_below(8)) for _ in kinds]
    return injections_for(spec, kinds, picks)
