"""Every error trio_graph raises, as one typed hierarchy rooted at :class:`GraphError`.

Model layer: no trio import. Each error is an attrs class, so its context rides
along as attributes (``err.node``, ``err.key``, ``err.problems``) and it
serialises through :mod:`trio_graph.serde` like any event. The live cause of a
failure (the user's exception) is kept as ``__cause__``; what is serialised is
its type name and message.
"""

from __future__ import annotations

import attrs


@attrs.define(eq=False, str=False)
class GraphError(Exception):
    """Base of every trio_graph error; ``str(err)`` is one line naming what went wrong."""

    def describe(self) -> str:
        return self.__class__.__name__

    def __str__(self) -> str:
        return self.describe()


@attrs.define(eq=False, str=False)
class InvalidGraph(GraphError):
    """A graph failed validation; ``problems`` lists every problem found, not just the first."""

    graph: str
    problems: list[str] = attrs.field(factory=list)

    def describe(self) -> str:
        lines = "; ".join(self.problems)
        return f"graph {self.graph!r} is invalid ({len(self.problems)} problem(s)): {lines}"


@attrs.define(eq=False, str=False)
class NodeNotFound(GraphError):
    """The run was routed to a node the graph does not have."""

    node: str

    def describe(self) -> str:
        return f"node {self.node!r} not found in the graph"


@attrs.define(eq=False, str=False)
class MissingEdge(GraphError):
    """A ``Goto`` or ``Reroute`` named a target with no edge (of any class) from the node."""

    frm: str
    to: str

    def describe(self) -> str:
        return f"no edge from {self.frm!r} to {self.to!r} (Goto/Reroute needs an edge of any class)"


@attrs.define(frozen=True)
class ConditionResult:
    """One conditional edge tried while routing, and what its condition returned."""

    to: str
    result: bool


@attrs.define(eq=False, str=False)
class Unrouted(GraphError):
    """No outgoing edge of ``node`` applied; ``attempted`` lists every condition tried."""

    node: str
    attempted: list[ConditionResult] = attrs.field(factory=list)

    def describe(self) -> str:
        tried = ", ".join(f"{a.to}={a.result}" for a in self.attempted) or "none"
        return f"no route from node {self.node!r} (conditions tried: {tried})"


@attrs.define(eq=False, str=False)
class StepsExceeded(GraphError):
    """The run would take step ``limit + 1``; ``node`` is the node it would have run."""

    limit: int
    node: str = ""

    def describe(self) -> str:
        return f"max_steps={self.limit} exceeded before running node {self.node!r}"


@attrs.define(frozen=True)
class BranchFailure:
    """One failed branch of a parallel node."""

    branch: str
    error_type: str
    message: str


@attrs.define(eq=False, str=False)
class NodeExecutionFailed(GraphError):
    """A node raised, or asked for a fallback it does not have.

    ``error_type``/``message`` describe the cause (the live exception is
    ``__cause__``). For a parallel node, ``branch`` names the failing branch
    (fail_fast) or ``failures`` lists every failed branch (collect_all, with an
    ``ExceptionGroup`` as ``__cause__``).
    """

    node: str
    error_type: str = ""
    message: str = ""
    branch: str | None = None
    failures: list[BranchFailure] = attrs.field(factory=list)
    attempts: int = 1
    """How many attempts were made (more than 1 under a retry policy)."""
    previous: list[str] = attrs.field(factory=list)
    """The earlier attempts' errors, ``"Type: message"`` each, oldest first."""

    def describe(self) -> str:
        where = f"node {self.node!r}"
        if self.attempts > 1:
            where += f" (after {self.attempts} attempts)"
        if self.branch is not None:
            where += f" branch {self.branch!r}"
        if self.failures:
            names = ", ".join(f"{f.branch} ({f.error_type}: {f.message})" for f in self.failures)
            return f"{where} failed in {len(self.failures)} branch(es): {names}"
        return f"{where} failed: {self.error_type}: {self.message}"


@attrs.define(eq=False, str=False)
class NodeTimeout(NodeExecutionFailed):
    """A node ran past its ``timeout``; ``limit`` is the limit in seconds."""

    limit: float = 0.0

    def describe(self) -> str:
        branch = f" branch {self.branch!r}" if self.branch is not None else ""
        return f"node {self.node!r}{branch} timed out after {self.limit}s"


@attrs.define(eq=False, str=False)
class StateError(GraphError):
    """A delta could not be applied: a reducer raised, a type mismatch, a merge conflict,
    or a result that is not a mapping of updates."""

    message: str
    node: str = ""
    key: str = ""
    branches: list[str] = attrs.field(factory=list)

    def describe(self) -> str:
        parts = [self.message]
        if self.node:
            parts.append(f"node {self.node!r}")
        if self.key:
            parts.append(f"key {self.key!r}")
        if self.branches:
            parts.append(f"branches {self.branches!r}")
        return ": ".join(parts[:1]) + (" (" + ", ".join(parts[1:]) + ")" if parts[1:] else "")


@attrs.define(eq=False, str=False)
class Cancelled(GraphError):
    """The run was cancelled (``run.cancel()`` or an enclosing cancel scope).

    ``node`` is the node that was interrupted (empty between steps); ``barrier``
    names the barrier occurrence it was waiting at, if any.
    """

    node: str = ""
    barrier: str = ""

    def describe(self) -> str:
        if self.barrier:
            return f"run cancelled while waiting at barrier {self.barrier}"
        if self.node:
            return f"run cancelled during node {self.node!r}"
        return "run cancelled"


@attrs.define(eq=False, str=False)
class RunTimeout(Cancelled):
    """The run passed its deadline (``Executor(deadline=...)`` or ``timeout=``): it is
    stopped like a cancel, so with a store its checkpoint is resumable. ``node`` (or
    ``barrier``) names where it was, ``deadline`` is the deadline (``trio.current_time()``
    units), ``limit`` the seconds this segment of the run had from its start."""

    run_id: str = ""
    deadline: float = 0.0
    limit: float = 0.0

    def describe(self) -> str:
        where = "between steps"
        if self.barrier:
            where = f"while waiting at barrier {self.barrier}"
        elif self.node:
            where = f"during node {self.node!r}"
        return (
            f"run {self.run_id!r} passed its deadline {self.deadline:g} "
            f"(after {self.limit:g}s) {where}; resumable from its last checkpoint"
        )


@attrs.define(eq=False, str=False)
class ResourceError(GraphError):
    """``ctx.resource(name)`` failed: no such resource declared, the run is over, or its
    factory failed (its exception the cause); names the node and the resource."""

    message: str
    node: str = ""
    resource: str = ""

    def describe(self) -> str:
        return f"resource {self.resource!r} (node {self.node!r}): {self.message}"


@attrs.define(eq=False, str=False)
class TrioRequired(GraphError, RuntimeError):
    """A trio_graph entry point was awaited outside Trio (under asyncio, say): run it
    under Trio, or from asyncio through Trio's guest mode with
    ``trio_graph.asyncio_run`` (docs/nodes.md)."""

    what: str
    library: str = "unknown"

    def describe(self) -> str:
        return (
            f"{self.what} must run under Trio, but it was awaited under {self.library}; "
            "from an asyncio program use trio_graph.asyncio_run(...), which runs Trio in "
            "guest mode on the asyncio loop (trio.lowlevel.start_guest_run)"
        )


@attrs.define(eq=False, str=False)
class BarrierError(GraphError):
    """A decision could not be accepted or applied (not a barrier, already resolved,
    malformed decision); ``node`` names the node it was for."""

    message: str
    node: str = ""

    def describe(self) -> str:
        return f"{self.message} (node {self.node!r})" if self.node else self.message


@attrs.define(eq=False, str=False)
class CheckpointError(GraphError):
    """A checkpoint could not be saved or loaded; names the checkpoint or key involved."""

    message: str
    checkpoint_id: str = ""
    key: str = ""

    def describe(self) -> str:
        where = []
        if self.checkpoint_id:
            where.append(f"checkpoint {self.checkpoint_id!r}")
        if self.key:
            where.append(f"key {self.key!r}")
        return f"{self.message} ({', '.join(where)})" if where else self.message


@attrs.define(eq=False, str=False)
class GraphChanged(GraphError):
    """The graph's structure differs from the one that wrote the checkpoint."""

    graph: str
    expected_hash: str
    actual_hash: str

    def describe(self) -> str:
        return (
            f"graph {self.graph!r} changed since the checkpoint was written "
            f"(checkpoint hash {self.expected_hash[:12]}, graph hash {self.actual_hash[:12]}); "
            "pass force=True to resume anyway"
        )


@attrs.define(eq=False, str=False)
class LeaseLost(GraphError):
    """A worker's lease on a run was taken over; its writes are refused (fencing)."""

    trace_id: str
    epoch: int

    def describe(self) -> str:
        return f"lease on run {self.trace_id!r} lost (epoch {self.epoch} is stale); write refused"


@attrs.define(eq=False, str=False)
class StoreUnavailable(CheckpointError):
    """The store could not be reached (connection lost, server restarting): an outage,
    not the run's failure. A worker retries with back-off from the last checkpoint."""


@attrs.define(eq=False, str=False)
class RunBusy(GraphError):
    """A run is being continued by another process (worker, CLI, executor): continuing a
    run is exclusive, so this one neither runs its next step nor records a decision."""

    trace_id: str
    message: str

    def describe(self) -> str:
        return f"run {self.trace_id!r} {self.message}"


@attrs.define(eq=False, str=False)
class RunEnded(GraphError):
    """A stored run that ``store.wait`` waited for ended without a result: ``status`` is
    ``failed`` or ``cancelled``, ``message`` the error its last checkpoint kept."""

    run_id: str
    status: str
    message: str = ""

    def describe(self) -> str:
        why = f": {self.message}" if self.message else ""
        return f"run {self.run_id!r} ended {self.status}{why}"


ERROR_TYPES: tuple[type[GraphError], ...] = (
    InvalidGraph,
    NodeNotFound,
    MissingEdge,
    Unrouted,
    StepsExceeded,
    NodeTimeout,
    NodeExecutionFailed,
    StateError,
    RunTimeout,
    Cancelled,
    ResourceError,
    TrioRequired,
    BarrierError,
    CheckpointError,
    GraphChanged,
    LeaseLost,
    RunBusy,
    StoreUnavailable,
    RunEnded,
)
