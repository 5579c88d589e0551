"""Hypothesis strategies for graphs, states, node behaviours and decision scripts.

Everything drawn is plain data (:mod:`trio_graph.testing.spec`): print it, shrink
it, build it with :func:`~trio_graph.testing.spec.build_graph`. The bounds are
keyword arguments; the defaults keep one example to a few milliseconds.

- :func:`graphs`: valid graphs, cycles included, every edge class, task / condition /
  barrier / parallel / map nodes (every fan-out strategy), reducers (built-in and
  custom) on some keys;
- :func:`node_behaviours`: what a task node or branch does on one call: updates,
  ``None``, ``Goto``, ``Fallback``, raising, sleeping, malformed results;
- :func:`states`: initial states for a graph's keys;
- :func:`decision_scripts`: a person's decisions, before, at and after barriers,
  exact and wildcard, some refused on purpose;
- :func:`scenarios`: all of it at once, for differential tests;
- :func:`graph_and_state`: a graph and a state for it, as two given arguments;
- :func:`~trio_graph.testing.invalid.invalid_graphs`: builders with injected problems
  that ``build()`` must list.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from typing import Any, Literal

import attrs
from hypothesis import strategies as st

from .._model.decisions import Approve, DefaultAction, Modify, Reject, Reroute
from .._model.graph import EdgeKind
from .script import DecisionScript, Send, SendTarget
from .spec import (
    BarrierSpec,
    Behaviour,
    BranchSpec,
    Cond,
    ConditionSpec,
    EdgeSpec,
    GraphSpec,
    MapSpec,
    NodeSpec,
    ParallelSpec,
    StrategyName,
    TaskSpec,
)
from .values import (
    KIND_REDUCERS,
    KIND_VALUES,
    MALFORMED_DECISIONS,
    KeyInfo,
    below,
    draw_behaviour,
    draw_condition,
    draw_value,
    keys_of,
    percent,
    pick,
)
from .values import conditions as conditions
from .values import node_behaviours as node_behaviours
from .values import values_for as values_for

_NODE_KINDS = ("task", "task", "task", "condition", "barrier", "parallel", "map")
TASKS_AND_CONDITIONS: tuple[str, ...] = ("task", "task", "task", "condition")
"""``node_kinds`` for :func:`graphs` whose runs need nobody: task and condition nodes
only (no barrier waits for a person, no parallel node)."""
_EDGE_KINDS: tuple[EdgeKind, ...] = ("normal", "normal", "normal", "conditional", "fallback")
_TIMEOUTS = (None, 1.0, 2.5)
_DEFAULTS: tuple[DefaultAction, ...] = ("reject", "approve", "skip")
_STRATEGIES: tuple[StrategyName, ...] = ("fail_fast", "collect_all", "first_completed", "quorum")


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
    raising_conditions: int = 0,
) -> GraphSpec:
    """A valid graph: ``n0`` starts, the last node ends, a chain of edges (of any class)
    joins them in order so every node is reachable and reaches the end, and extra edges
    (cycles and self-loops included) go anywhere; when a key is a counter (an int with
    ``add``), up to two "go back while the counter is small" edges make loops that end.
    Barriers wait for a decision or time out after a few seconds; parallel branches
    finish at distinct instants, or with ``ties`` at 0 or 1 s (several at once).
    ``node_kinds`` weighs the kinds (repeat one to favour it); ``raising_conditions`` is
    the percentage of drawn conditions that always raise (see :func:`conditions`)."""
    n = draw(st.integers(min_nodes, max_nodes))
    names = [f"n{i}" for i in range(n)]
    keys = _draw_keys(draw, max_keys)
    kinds = [pick(draw, node_kinds) for _ in names]
    cond_keys = [(k, kind) for k, kind, _ in keys] + [
        (f"{name}.approved", "bool")
        for name, kind in zip(names, kinds, strict=True)
        if kind == "barrier"
    ]
    edges = _draw_edges(draw, names, keys, cond_keys, max_extra_edges, raising_conditions)

    def behaviours(branch: bool) -> tuple[Behaviour, ...]:
        sleeps = (0.0,) if branch else (0.0, 0.0, 0.5, 1.0)
        return tuple(
            draw_behaviour(draw, names, keys, sleeps, failures, malformed, not branch)
            for _ in range(1 + draw(below(max_behaviours)))
        )

    nodes: list[NodeSpec] = []
    for name, kind in zip(names, kinds, strict=True):
        if kind == "task":
            nodes.append(TaskSpec(name, behaviours(False), is_async=draw(st.booleans())))
        elif kind == "condition":
            branches = tuple(
                (pick(draw, names), draw_condition(draw, cond_keys, raising_conditions))
                for _ in range(1 + draw(below(2)))
            )
            nodes.append(ConditionSpec(name, branches))
        elif kind == "barrier":
            timeout, default = pick(draw, _TIMEOUTS), pick(draw, _DEFAULTS)
            nodes.append(BarrierSpec(name, timeout=timeout, default=default))
        elif kind == "map":
            nodes.append(_draw_map(draw, name, max_branches, ties, behaviours))
        else:
            nodes.append(_draw_parallel(draw, name, max_branches, ties, behaviours))
    return GraphSpec(
        name="fuzz",
        nodes=tuple(nodes),
        edges=tuple(edges),
        start=names[0],
        end=names[-1],
        reducers=tuple((k, r) for k, _, r in keys if r is not None),
        keys=tuple((k, kind) for k, kind, _ in keys),
        max_steps=pick(draw, max_steps),
    )


def _draw_keys(draw: st.DrawFn, max_keys: int) -> list[KeyInfo]:
    """The graph's state keys: ``a``, ``b``, ... each of a kind, with a reducer or not."""
    keys: list[KeyInfo] = []
    for i in range(1 + draw(below(max(1, max_keys)))):
        name = "abcdef"[i]
        if i == 0 and draw(st.booleans()):
            keys.append((name, "int", "add"))  # a counter, for loops that end
            continue
        kind = pick(draw, list(KIND_VALUES))
        keys.append((name, kind, pick(draw, KIND_REDUCERS[kind])))
    return keys


def _draw_edges(
    draw: st.DrawFn,
    names: Sequence[str],
    keys: Sequence[KeyInfo],
    cond_keys: Sequence[tuple[str, str]],
    max_extra_edges: int,
    raising: int,
) -> list[EdgeSpec]:
    """The chain, the extra edges (shuffled), and the counter loops registered first."""

    def edge(frm: str, to: str) -> EdgeSpec:
        kind = pick(draw, _EDGE_KINDS)
        cond = draw_condition(draw, cond_keys, raising) if kind == "conditional" else None
        return EdgeSpec(frm, to, kind, cond, pick(draw, (None, None, 1, 3)))

    n = len(names)
    edges = [edge(a, b) for a, b in itertools.pairwise(names)]
    for _ in range(draw(below(max_extra_edges + 1))):
        edges.append(edge(pick(draw, names), pick(draw, names)))
    edges = draw(st.permutations(edges))  # registration order matters for routing
    counters = [k for k, kind, red in keys if kind == "int" and red == "add"]
    if counters:  # loops that end, registered first so they are tried first
        for _ in range(draw(below(3))):
            i = draw(below(n))
            j = i + draw(below(n - i))
            cond = Cond("lt", pick(draw, counters), 2 + draw(below(7)))
            edges.insert(0, EdgeSpec(names[j], names[i], "conditional", cond))
    return edges


def _draw_branches(
    draw: st.DrawFn, k: int, ties: bool, behaviours: Callable[[bool], tuple[Behaviour, ...]]
) -> tuple[BranchSpec, ...]:
    if ties:  # branches finishing at the same instant: compare with branch_order="any"
        delays = [draw(below(2)) for _ in range(k)]
    else:  # distinct: a definite completion order
        delays = draw(st.permutations(range(k)))
    return tuple(
        BranchSpec(f"b{i}", behaviours(True), float(d), draw(st.booleans()))
        for i, d in enumerate(delays)
    )


def _draw_strategy(draw: st.DrawFn, k: int) -> tuple[StrategyName, int | None]:
    """A strategy, and for ``quorum`` a k from 1 to ``k`` (``k + 1`` now and then: more
    than a map has items)."""
    strategy = pick(draw, _STRATEGIES)
    if strategy != "quorum":
        return strategy, None
    return strategy, 1 + draw(below(k + 1 if draw(below(10)) == 0 else max(k, 1)))


def _draw_parallel(
    draw: st.DrawFn,
    name: str,
    max_branches: int,
    ties: bool,
    behaviours: Callable[[bool], tuple[Behaviour, ...]],
) -> ParallelSpec:
    k = 1 + draw(below(max_branches))
    branches = _draw_branches(draw, k, ties, behaviours)
    strategy, quorum = _draw_strategy(draw, k)
    return ParallelSpec(name, branches, strategy=strategy, quorum=min(quorum or 0, k) or None)


def _draw_map(
    draw: st.DrawFn,
    name: str,
    max_branches: int,
    ties: bool,
    behaviours: Callable[[bool], tuple[Behaviour, ...]],
) -> MapSpec:
    """A map node over 0 to ``max_branches`` items (now and then an ``over`` returning a
    tuple, which the node refuses)."""
    k = draw(below(max_branches + 1))
    items = _draw_branches(draw, k, ties, behaviours)
    strategy, quorum = _draw_strategy(draw, k)
    over: Literal["list", "tuple"] = "tuple" if draw(below(20)) == 0 else "list"
    return MapSpec(name, items, strategy=strategy, quorum=quorum, over_kind=over)


def _draw_state(draw: st.DrawFn, keys: Sequence[KeyInfo]) -> dict[str, Any]:
    state: dict[str, Any] = {}
    for name, kind, reducer in keys:
        if draw(st.booleans()):
            state[name] = draw_value(draw, "list" if reducer == "append" else kind, None)
    return state


@st.composite
def states(draw: st.DrawFn, spec: GraphSpec) -> dict[str, Any]:
    """An initial state for ``spec``'s keys (some absent, now and then a wrong kind)."""
    return _draw_state(draw, keys_of(spec))


@st.composite
def key_states(draw: st.DrawFn, keys: Sequence[tuple[str, str]]) -> dict[str, Any]:
    """An initial state for ``keys`` (name, kind: as :func:`conditions` takes them)
    without a graph, drawn as :func:`states` draws one (some keys absent, now and then
    a wrong kind)."""
    return _draw_state(draw, [(name, kind, None) for name, kind in keys])


def graph_and_state(
    *, key: str = "trio_graph.testing.graph_and_state", **graph_options: Any
) -> tuple[st.SearchStrategy[GraphSpec], st.SearchStrategy[dict[str, Any]]]:
    """Two strategies for one example: a graph (``graph_options`` go to :func:`graphs`)
    and an initial state for that same graph, as separate ``@given`` arguments::

        specs, initial = graph_and_state(node_kinds=TASKS_AND_CONDITIONS)

        @given(spec=specs, state=initial)
        def test_x(spec: GraphSpec, state: dict[str, Any]) -> None: ...

    Both share ``key`` (``st.shared``): use a different key for a second pair drawn in
    the same test."""
    specs = st.shared(graphs(**graph_options), key=key)
    return specs, specs.flatmap(states)


def _decision(draw: st.DrawFn, spec: GraphSpec, malformed: bool, reroute: bool) -> Any:
    roll = percent(draw)
    keys = keys_of(spec) or [("a", "int", None)]
    if roll < 35:
        return Approve()
    if roll < 60:
        return Reject(pick(draw, ["no", "redo"]))
    if roll < 80 or not reroute:
        name, kind, reducer = pick(draw, keys)
        return Modify(name, draw_value(draw, kind, reducer))
    if roll < 95 or not malformed:
        return Reroute(pick(draw, spec.node_names()))
    return pick(draw, MALFORMED_DECISIONS)


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
        if barriers and (not malformed or draw(below(5))):
            node = pick(draw, barriers)
        else:
            node = pick(draw, others)
        decision = _decision(draw, spec, malformed, True)
        return Send(pick(draw, targets), decision, node, 1 + draw(below(3)))

    answer = Approve() if draw(st.booleans()) else _decision(draw, spec, False, False)
    return DecisionScript(
        before=tuple(send(_BEFORE) for _ in range(draw(below(max_before + 1)))),
        responses=tuple(
            tuple(send(_AT_WAIT) for _ in range(draw(below(3))))
            for _ in range(draw(below(max_responses + 1)))
        ),
        answer=answer,
        after_end=tuple(send(_BEFORE) for _ in range(draw(below(2)))),
        cancel_at=None if draw(below(8)) else draw(below(max_responses + 1)),
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
    return Scenario(spec, draw(states(spec)), draw(decision_scripts(spec)), pick(draw, buffers))
