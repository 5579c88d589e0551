"""Traces: what a run did, comparable across the executor and the reference.

A :class:`Trace` holds the run's events as :data:`Record` tuples (no ids or
durations), the nodes run, the final state and the error as an :class:`ErrorInfo`;
:func:`summarize` cuts a trace to the facts most properties compare.
"""

from __future__ import annotations

import copy
from typing import Any

import attrs

from .. import events as ev

# -- traces -------------------------------------------------------------------------------


@attrs.frozen
class ErrorInfo:
    """An error's type and the attributes that identify it (messages are not compared)."""

    type: str
    fields: tuple[tuple[str, Any], ...] = ()

    def __str__(self) -> str:
        inner = ", ".join(f"{k}={v!r}" for k, v in self.fields)
        return f"{self.type}({inner})"


Record = tuple[Any, ...]
"""One event as a comparable tuple: the event's class name, then its fields without
``trace_id``, ``span_id`` and durations (see :func:`trio_graph.testing.harness.record`)."""


@attrs.frozen
class Trace:
    """What a run did: events, the nodes run (in order), the final state (or the state
    at the error), the error if any, and what each decision call raised."""

    events: tuple[Record, ...]
    nodes: tuple[str, ...]
    state: dict[str, Any]
    error: ErrorInfo | None
    decisions: tuple[str | None, ...] = ()
    raw: tuple[Any, ...] = attrs.field(default=(), eq=False, repr=False)
    """The executor's events themselves (empty for the reference)."""


ERROR_FIELDS: dict[str, tuple[tuple[str, Any], ...]] = {
    "NodeNotFound": (("node", ""),),
    "MissingEdge": (("frm", ""), ("to", "")),
    "Unrouted": (("node", ""), ("attempted", ())),
    "StepsExceeded": (("limit", 0), ("node", "")),
    "NodeExecutionFailed": (("node", ""), ("error_type", ""), ("branch", None), ("failures", ())),
    "StateError": (("node", ""), ("key", ""), ("branches", ())),
    "BarrierError": (("node", ""),),
    "Cancelled": (("node", ""), ("barrier", "")),
}
"""The attributes compared for each error type, with their defaults."""


def error_info(type_name: str, **fields: Any) -> ErrorInfo:
    """An :class:`ErrorInfo` with the compared fields of ``type_name`` (defaults filled in)."""
    known = ERROR_FIELDS.get(type_name, ())
    unknown = set(fields) - {k for k, _ in known}
    if unknown:
        raise ValueError(f"{type_name} has no compared field(s) {sorted(unknown)}")
    return ErrorInfo(type_name, tuple((k, fields.get(k, default)) for k, default in known))


def _plain(value: Any) -> Any:
    if isinstance(value, list | tuple):
        return tuple(_plain(v) for v in value)
    if attrs.has(type(value)):
        return tuple(_plain(v) for v in attrs.astuple(value, recurse=False))
    return value


def describe_error(error: BaseException) -> ErrorInfo:
    """The :class:`ErrorInfo` of a real error (lists become tuples, attempted conditions
    ``(to, result)`` pairs, branch failures ``(branch, error_type, message)`` triples
    cut to ``(branch, error_type)``)."""
    name = type(error).__name__
    fields: dict[str, Any] = {}
    for key, default in ERROR_FIELDS.get(name, ()):
        value = getattr(error, key, default)
        if key == "failures":
            value = tuple((f.branch, f.error_type) for f in value)
        fields[key] = _plain(value)
    return error_info(name, **fields)


def record(event: ev.Event) -> Record:
    """A real event as a :data:`Record`: no trace id, span id or duration.

    ``GraphComplete`` keeps the final state and the execution log as ``(step, node,
    success)`` triples; ``GraphError`` the :class:`ErrorInfo` and the state.
    """
    name = type(event).__name__
    if isinstance(event, ev.GraphStart):
        return (name, event.graph, event.node, event.step, event.resumed_from)
    if isinstance(event, ev.NodeStart):
        return (name, event.node, event.step)
    if isinstance(event, ev.StateChanged):
        return (name, event.node, event.key, copy.deepcopy(event.value))
    if isinstance(event, ev.NodeEnd):
        return (name, event.node, event.success)
    if isinstance(event, ev.ObservedError):
        return (name, event.node, event.error.kind, event.error.message)
    if isinstance(event, ev.BarrierWaiting):
        return (name, event.node, event.barrier_id)
    if isinstance(event, ev.BarrierResolved):
        return (name, event.node, event.barrier_id, event.decision, event.timed_out)
    if isinstance(event, ev.ParallelStarted):
        return (name, event.node, event.branch_count)
    if isinstance(event, ev.BranchCompleted):
        return (name, event.node, event.branch, event.success, event.outcome)
    if isinstance(event, ev.ParallelCompleted):
        return (name, event.node)
    if isinstance(event, ev.CheckpointSaved):
        return (name, event.node, event.step)
    if isinstance(event, ev.GraphComplete):
        log = tuple((e.step, e.node, e.success) for e in event.result.execution_log)
        return (name, copy.deepcopy(event.result.state), log)
    if isinstance(event, ev.GraphError):
        return (name, describe_error(event.error), copy.deepcopy(event.state))
    return (name,)


@attrs.frozen
class TraceSummary:
    """The facts of a :class:`Trace` most properties compare (see :func:`summarize`)."""

    nodes: list[tuple[str, bool]]
    """Every node execution as (node, success), in order (one per ``NodeEnd``)."""
    outcome: str
    """``"complete"`` or the name of the terminal error's type."""
    state: dict[str, Any]
    """The final state, or the state at the error."""
    changes: list[tuple[str, str, Any]]
    """Every ``StateChanged`` as (node, key, value), in order."""
    degraded: list[str]
    """The nodes that took a fallback (``ObservedError`` of kind ``Degraded``), in order."""


def summarize(trace: Trace) -> TraceSummary:
    """The :class:`TraceSummary` of ``trace`` (from the reference or the executor)."""
    kinds: dict[str, list[Record]] = {}
    for rec in trace.events:
        kinds.setdefault(rec[0], []).append(rec)
    return TraceSummary(
        nodes=[(r[1], r[2]) for r in kinds.get("NodeEnd", [])],
        outcome="complete" if trace.error is None else trace.error.type,
        state=copy.deepcopy(trace.state),
        changes=[(r[1], r[2], r[3]) for r in kinds.get("StateChanged", [])],
        degraded=[r[1] for r in kinds.get("ObservedError", []) if r[2] == "Degraded"],
    )
