"""The built graph: nodes, edges, start and end, reducers, and its stable hash.

Model layer: no trio import. A :class:`Graph` is immutable once built by
:class:`~trio_graph._model.builder.GraphBuilder`; the runtime reads its per-node
outgoing-edge index (``out``) on every step.
"""

from __future__ import annotations

import hashlib
import inspect
import json
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any, ClassVar, Literal

import attrs

from ..reducers import Reducer
from .analysis import CycleInfo, analyze_cycles
from .decisions import DefaultAction
from .mermaid import to_mermaid
from .retry import RetryPolicy

if TYPE_CHECKING:
    from .schema import StateSchema

EdgeKind = Literal["conditional", "normal", "fallback"]
Strategy = Literal["fail_fast", "collect_all", "first_completed", "quorum"]
NodeFn = Callable[..., Any]
"""A node of the state (a read-only mapping; a typed graph's nodes may annotate it with
the state class, DESIGN §16); with a context, ``fn(state, ctx)``."""
Condition = Callable[[Any], Any]


def is_async_callable(fn: object) -> bool:
    """True when calling ``fn`` returns an awaitable we must await (checked once, at build)."""
    if inspect.iscoroutinefunction(fn):
        return True
    call = getattr(fn, "__call__", None)  # noqa: B004 - callable objects with async __call__
    return call is not None and inspect.iscoroutinefunction(call)


def takes_context(fn: object, before: int = 1) -> bool:
    """True when ``fn`` takes a positional parameter after its ``before`` ones (the
    state; a map node's item and state), a ``NodeContext`` (checked once, at build: a
    node without one is called as before, at no cost)."""
    try:
        params = list(inspect.signature(fn).parameters.values())  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return False
    positional = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    return len([p for p in params if p.kind in positional]) > before


@attrs.frozen
class NodeMeta:
    """Hints for the adaptive checkpoint policy: expected token cost and side effects."""

    token_cost: float = 0.0
    side_effects: bool = False


@attrs.frozen
class TaskNode:
    """Runs ``fn(state)`` (async or plain); its result is updates, Goto, Fallback or None."""

    name: str
    fn: NodeFn = attrs.field(eq=False)
    is_async: bool = False
    timeout: float | None = None
    meta: NodeMeta = NodeMeta()
    retry: RetryPolicy | None = None
    blocking: bool = False
    """A plain function that blocks: run it in a worker thread (abandoned on cancel)."""
    fallback_on: tuple[type[BaseException], ...] = ()
    """Failures of these types take the fallback edge (as ``Fallback``) instead of ending
    the run; e.g. ``(NodeTimeout,)``."""
    takes_context: bool = False
    """``fn(state, ctx)``: called with a ``NodeContext`` (DESIGN §14)."""
    limiter: str | None = None
    """The executor's shared limiter it holds a slot of while it runs (DESIGN §14)."""
    plain: bool = attrs.field(init=False, eq=False, repr=False)
    """Called as ``fn(state)`` and nothing else: no context, retry, timeout, thread or
    fallback (the step loop's path without a frame of its own; set from the fields)."""
    kind: ClassVar[str] = "task"

    def __attrs_post_init__(self) -> None:
        plain = not (self.takes_context or self.blocking or self.fallback_on)
        plain = plain and self.retry is None and self.timeout is None
        object.__setattr__(self, "plain", plain)


@attrs.frozen
class ConditionNode:
    """Does nothing itself; routed by its conditional edges (one per branch), in order."""

    name: str
    targets: tuple[str, ...] = ()
    meta: NodeMeta = NodeMeta()
    kind: ClassVar[str] = "condition"


@attrs.frozen
class BarrierNode:
    """Pauses the run for a decision, with an optional timeout and default action, and
    ``show(state)`` (async or plain) giving what the person decides on (DESIGN §6)."""

    name: str
    timeout: float | None = None
    default: DefaultAction = "reject"
    approved_key: str = ""
    reason_key: str = ""
    meta: NodeMeta = NodeMeta()
    show: NodeFn | None = attrs.field(default=None, eq=False)
    """The payload of its ``BarrierWaiting`` (JSON-compatible with a store), or None."""
    show_is_async: bool = False
    kind: ClassVar[str] = "barrier"


@attrs.frozen
class Branch:
    """One branch of a parallel node: a task-like function of the pre-fork state."""

    name: str
    fn: NodeFn = attrs.field(eq=False)
    is_async: bool = False
    timeout: float | None = None
    takes_context: bool = False
    """``fn(state, ctx)``: called with a ``NodeContext`` (DESIGN §14)."""
    retry: RetryPolicy | None = None
    """Retries of a failed attempt (the items of a map node)."""


@attrs.frozen
class ParallelNode:
    """Runs its branches concurrently and merges their updates in declaration order."""

    name: str
    branches: tuple[Branch, ...]
    strategy: Strategy = "fail_fast"
    limit: int | None = None
    label: str | None = None
    meta: NodeMeta = NodeMeta()
    quorum: int | None = None
    """``strategy="quorum"``: the fork ends once this many branches succeeded."""
    limiter: str | None = None
    """The executor's shared limiter each branch holds a slot of while it runs."""
    kind: ClassVar[str] = "parallel"


@attrs.frozen
class MapNode:
    """A fan-out over a run-time list (DESIGN §15): one branch per item of
    ``over(state)``, ``fn(item, state)`` (or ``fn(item, state, ctx)``), named
    ``"name[i]"``, merged in item order (see ``_model/mapping.py``)."""

    name: str
    fn: Callable[..., Any] = attrs.field(eq=False)
    over: NodeFn = attrs.field(eq=False)
    is_async: bool = False
    takes_context: bool = False
    strategy: Strategy = "fail_fast"
    limit: int | None = None
    timeout: float | None = None
    retry: RetryPolicy | None = None
    label: str | None = None
    quorum: int | None = None
    meta: NodeMeta = NodeMeta()
    limiter: str | None = None
    """The executor's shared limiter each item holds a slot of while it runs."""
    kind: ClassVar[str] = "map"


@attrs.frozen
class SubgraphNode:
    """Runs a built graph as one node, with its own step budget.

    ``input(state)`` gives the child's initial state (default: a copy of the parent's);
    ``output(child_state)`` gives the updates for the parent (default: every delta
    the child committed, in order, merged by the parent's reducers).
    """

    name: str
    graph: Graph
    input: Callable[[Mapping[str, Any]], Mapping[str, Any]] | None = attrs.field(
        default=None, eq=False
    )
    output: Callable[[Mapping[str, Any]], Mapping[str, Any]] | None = attrs.field(
        default=None, eq=False
    )
    max_steps: int | None = None
    meta: NodeMeta = NodeMeta()
    kind: ClassVar[str] = "subgraph"


Node = TaskNode | ConditionNode | BarrierNode | ParallelNode | MapNode | SubgraphNode


@attrs.frozen
class Edge:
    """An edge; ``max_visits`` is an analysis hint only and never changes routing."""

    frm: str
    to: str
    kind: EdgeKind = "normal"
    condition: Condition | None = attrs.field(default=None, eq=False)
    max_visits: int | None = None
    label: str | None = None


@attrs.frozen
class OutEdges:
    """The edges leaving one node, by class, each in registration order."""

    conditional: tuple[Edge, ...] = ()
    normal: tuple[Edge, ...] = ()
    fallback: tuple[Edge, ...] = ()
    targets: frozenset[str] = frozenset()


@attrs.frozen
class Graph:
    """A validated graph. Build one with :class:`~trio_graph._model.builder.GraphBuilder`."""

    name: str
    nodes: Mapping[str, Node]
    edges: tuple[Edge, ...]
    start: str
    end: str
    reducers: Mapping[str, Reducer]
    out: Mapping[str, OutEdges] = attrs.field(eq=False, repr=False)
    _hash: str = attrs.field(eq=False, repr=False, default="")
    schema: StateSchema | None = attrs.field(default=None, eq=False, repr=False)
    """The typed state (DESIGN §16), or None: a dict of JSON values."""

    def hash(self) -> str:
        """A stable structural fingerprint (sha256 hex), equal across processes and runs."""
        return self._hash

    def barriers(self) -> list[str]:
        """Names of the barrier nodes (subgraph barriers as ``"sub/node"`` paths)."""
        names = []
        for n in self.nodes.values():
            if isinstance(n, BarrierNode):
                names.append(n.name)
            elif isinstance(n, SubgraphNode):
                names += [f"{n.name}/{b}" for b in n.graph.barriers()]
        return names

    def limiters(self) -> list[tuple[str, str]]:
        """``(node path, limiter name)`` of every node naming a shared limiter (subgraph
        nodes as ``"sub/node"`` paths)."""
        found = []
        for n in self.nodes.values():
            if isinstance(n, TaskNode | ParallelNode | MapNode) and n.limiter is not None:
                found.append((n.name, n.limiter))
            elif isinstance(n, SubgraphNode):
                found += [(f"{n.name}/{p}", name) for p, name in n.graph.limiters()]
        return found

    def find(self, path: str) -> Node | None:
        """The node at ``path``: a name, or ``"sub/node"`` inside a subgraph node."""
        head, sep, rest = path.partition("/")
        node = self.nodes.get(head)
        if not sep:
            return node
        if isinstance(node, SubgraphNode):
            return node.graph.find(rest)
        return None

    def to_mermaid(self) -> str:
        """The graph as Mermaid flowchart text."""
        return to_mermaid(self)

    def analyze_cycles(self) -> list[CycleInfo]:
        """Every cycle, whether it has a ``max_visits`` hint, and whether it has an exit."""
        edges = [(e.frm, e.to, e.max_visits is not None) for e in self.edges]
        return analyze_cycles(list(self.nodes), edges, self.end)


def structural_hash(
    nodes: Mapping[str, Node],
    edges: tuple[Edge, ...],
    start: str,
    end: str,
    reducers: Mapping[str, Reducer],
    fields: list[list[str]] | None = None,
) -> str:
    """sha256 of a canonical JSON of the structure (no ``hash()``, no ``id()``);
    ``fields``: a typed state's ``[name, type]`` pairs (untyped graphs hash as before)."""

    def node_repr(node: Node) -> list[Any]:
        extra: list[Any] = []
        if isinstance(node, ParallelNode):
            extra = [b.name for b in node.branches]
        elif isinstance(node, SubgraphNode):
            extra = [node.graph.hash()]
        return [node.name, node.kind, extra]

    doc = {
        "nodes": [node_repr(n) for n in nodes.values()],
        "edges": [[e.frm, e.to, e.kind] for e in edges],
        "start": start,
        "end": end,
        "reducers": sorted([k, r.name] for k, r in reducers.items()),
    }
    if fields is not None:
        doc["fields"] = fields
    text = json.dumps(doc, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def index_edges(nodes: Mapping[str, Node], edges: Iterable[Edge]) -> dict[str, OutEdges]:
    """Each node's outgoing edges by class, in registration order."""
    by: dict[str, dict[str, list[Edge]]] = {
        n: {"conditional": [], "normal": [], "fallback": []} for n in nodes
    }
    for e in edges:
        by[e.frm][e.kind].append(e)
    return {
        n: OutEdges(
            conditional=tuple(k["conditional"]),
            normal=tuple(k["normal"]),
            fallback=tuple(k["fallback"]),
            targets=frozenset(e.to for lst in k.values() for e in lst),
        )
        for n, k in by.items()
    }
