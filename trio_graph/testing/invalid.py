"""Invalid graphs: valid specs with injected problems that ``build()`` must list.

:func:`invalid_graphs` draws an :class:`InvalidGraphCase`; :func:`injections_for`
makes one by hand; :data:`INJECTIONS` names every kind of problem.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import attrs
from hypothesis import strategies as st

from .._model.builder import GraphBuilder
from .spec import ConditionSpec, GraphSpec, declare
from .strategies import graphs
from .values import below

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
    picks = [draw(below(8)) for _ in kinds]
    return injections_for(spec, kinds, picks)
