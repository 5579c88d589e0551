"""Optional OpenTelemetry adapter: a run's events become spans, run -> node -> branch.

Needs only the OpenTelemetry **API** (``pip install opentelemetry-api``), imported
when an :class:`OtelSpans` is created, never when trio_graph is imported; add an SDK
and an exporter of your choice to send the spans somewhere. Without the API,
creating an ``OtelSpans`` raises ``ImportError`` saying what to install.

Usage::

    spans = OtelSpans()                      # or OtelSpans(tracer=my_tracer)
    async with executor.stream(graph, state) as run:
        async for event in spans.watch(run): # events pass through unchanged
            ...

or call ``spans.on_event(event)`` yourself for each event. Spans:

- one **run** span per run (``trio_graph.run <graph>``), from ``GraphStart`` to the
  terminal event; status ERROR with the error's description if the run failed;
- one **node** span per node execution (``trio_graph.node <node>``), child of the
  run span (a subgraph's nodes are children of the subgraph node's span), from
  ``NodeStart`` to ``NodeEnd``, with the state keys the node changed; barrier waits
  and resolutions are events on it;
- one **branch** span per parallel branch (``trio_graph.branch <node>.<branch>``),
  child of the parallel node's span, timed from its ``BranchCompleted`` duration.

Every span carries ``trio_graph.trace_id`` and, below the run, ``trio_graph.span_id``
(the event's span id), so a span can be matched with the event stream and the
stored checkpoints. Fallbacks and checkpoints are events on the run span.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING, Any

from . import events as ev
from ._model.decisions import brief_value, describe_decision

if TYPE_CHECKING:
    from ._runtime.run import Run

log = logging.getLogger("trio_graph.otel")

INSTALL_HINT = (
    "trio_graph.otel needs the OpenTelemetry API: pip install opentelemetry-api "
    "(and opentelemetry-sdk plus an exporter to send the spans somewhere)"
)


def _trace_api() -> Any:
    try:
        from opentelemetry import trace
    except ImportError as exc:
        raise ImportError(INSTALL_HINT) from exc
    return trace


class OtelSpans:
    """Turns the events of one or more runs into OpenTelemetry spans.

    ``tracer`` defaults to ``trace.get_tracer("trio_graph", tracer_provider=...)``
    (the global provider unless ``tracer_provider`` is given).
    """

    def __init__(self, tracer: Any = None, *, tracer_provider: Any = None) -> None:
        trace = _trace_api()
        self._trace = trace
        self.tracer = tracer or trace.get_tracer("trio_graph", tracer_provider=tracer_provider)
        self._runs: dict[str, Any] = {}
        self._nodes: dict[tuple[str, int], Any] = {}
        self._open: dict[tuple[str, str], list[tuple[Any, int]]] = {}
        """Open node spans by (trace id, node), with their event span ids: the parents."""
        self._keys: dict[tuple[str, int], list[str]] = {}

    async def watch(self, run: Run) -> AsyncIterator[ev.Event]:
        """Iterate ``run``'s events, recording each, and yield them unchanged."""
        async for event in run:
            self.on_event(event)
            yield event

    def on_event(self, event: ev.Event) -> None:
        """Record one event (events of several runs may be interleaved)."""
        now = time.time_ns()
        if isinstance(event, ev.GraphStart):
            self._start_run(event, now)
            return
        run_span = self._runs.get(event.trace_id)
        if run_span is None:
            log.warning(
                "event for a run whose GraphStart was not seen; ignored",
                extra={"trace_id": event.trace_id, "event": type(event).__name__},
            )
            return
        record = _RECORDERS.get(type(event))
        if record is not None:  # ParallelStarted/ParallelCompleted: the branch spans say it
            record(self, event, run_span, now)

    # -- one method per event type (the table _RECORDERS below) -----------------------
    def _start_run(self, event: ev.GraphStart, now: int) -> None:
        attributes = {
            "trio_graph.trace_id": event.trace_id,
            "trio_graph.graph": event.graph,
            "trio_graph.start_node": event.node,
            "trio_graph.start_step": event.step,
        }
        if event.resumed_from:
            attributes["trio_graph.resumed_from"] = event.resumed_from
        self._runs[event.trace_id] = self.tracer.start_span(
            f"trio_graph.run {event.graph}", attributes=attributes, start_time=now
        )

    def _node_start(self, event: ev.NodeStart, run_span: Any, now: int) -> None:
        trace_id = event.trace_id
        head, sep, _ = event.node.rpartition("/")
        parent = run_span
        if sep and self._open.get((trace_id, head)):
            parent = self._open[(trace_id, head)][-1][0]
        span = self.tracer.start_span(
            f"trio_graph.node {event.node}",
            context=self._trace.set_span_in_context(parent),
            attributes={
                "trio_graph.trace_id": trace_id,
                "trio_graph.span_id": event.span_id,
                "trio_graph.node": event.node,
                "trio_graph.step": event.step,
            },
            start_time=now,
        )
        self._nodes[(trace_id, event.span_id)] = span
        self._open.setdefault((trace_id, event.node), []).append((span, event.span_id))
        self._keys[(trace_id, event.span_id)] = []

    def _state_changed(self, event: ev.StateChanged, run_span: Any, now: int) -> None:
        keys = self._keys.setdefault((event.trace_id, event.span_id), [])
        if event.key not in keys:
            keys.append(event.key)

    def _node_output(self, event: ev.NodeOutput, run_span: Any, now: int) -> None:
        """A node's streamed output: an ``output`` event on its span (data as JSON)."""
        span = self._nodes.get((event.trace_id, event.span_id), run_span)
        attributes = {"trio_graph.data": brief_value(event.data, 1000)}
        if event.branch is not None:
            attributes["trio_graph.branch"] = event.branch
        span.add_event("output", attributes, now)

    def _node_end(self, event: ev.NodeEnd, run_span: Any, now: int) -> None:
        trace_id = event.trace_id
        span = self._nodes.pop((trace_id, event.span_id), None)
        keys = self._keys.pop((trace_id, event.span_id), [])
        if span is None:
            return
        stack = self._open.get((trace_id, event.node))
        if stack and (span, event.span_id) in stack:
            stack.remove((span, event.span_id))
        span.set_attribute("trio_graph.success", event.success)
        span.set_attribute("trio_graph.duration_s", event.duration)
        span.set_attribute("trio_graph.keys_changed", keys)
        if not event.success:
            span.set_status(self._status("ERROR"), f"node {event.node!r} failed")
        span.end(end_time=now)

    def _branch_completed(self, event: ev.BranchCompleted, run_span: Any, now: int) -> None:
        stack = self._open.get((event.trace_id, event.node))
        parent, parent_id = stack[-1] if stack else (run_span, 0)
        span = self.tracer.start_span(
            f"trio_graph.branch {event.node}.{event.branch}",
            context=self._trace.set_span_in_context(parent),
            attributes={
                "trio_graph.trace_id": event.trace_id,
                "trio_graph.span_id": parent_id,
                "trio_graph.node": event.node,
                "trio_graph.branch": event.branch,
                "trio_graph.success": event.success,
                "trio_graph.outcome": event.outcome,
            },
            start_time=now - int(event.duration * 1e9),
        )
        if not event.success:
            span.set_status(self._status("ERROR"), f"branch {event.branch!r} failed")
        span.end(end_time=now)

    def _barrier_waiting(self, event: ev.BarrierWaiting, run_span: Any, now: int) -> None:
        target = self._open_node_span(event.trace_id, event.node, run_span)
        target.add_event("barrier waiting", {"trio_graph.barrier": str(event.barrier_id)}, now)

    def _barrier_resolved(self, event: ev.BarrierResolved, run_span: Any, now: int) -> None:
        target = self._open_node_span(event.trace_id, event.node, run_span)
        attributes = {
            "trio_graph.barrier": str(event.barrier_id),
            "trio_graph.decision": describe_decision(event.decision),
            "trio_graph.timed_out": event.timed_out,
        }
        target.add_event("barrier resolved", attributes, now)

    def _observed_error(self, event: ev.ObservedError, run_span: Any, now: int) -> None:
        run_span.add_event(
            f"observed {event.error.kind.lower()}",
            {"trio_graph.node": event.node, "trio_graph.message": event.error.message},
            now,
        )

    def _checkpoint_saved(self, event: ev.CheckpointSaved, run_span: Any, now: int) -> None:
        attributes = {
            "trio_graph.checkpoint_id": event.checkpoint_id,
            "trio_graph.step": event.step,
            "trio_graph.next_node": event.node,
        }
        run_span.add_event("checkpoint", attributes, now)

    def _end_run(self, event: ev.GraphComplete | ev.GraphError, run_span: Any, now: int) -> None:
        self._finish(event.trace_id, event, now)

    def _open_node_span(self, trace_id: str, node: str, run_span: Any) -> Any:
        """The innermost open span of ``node`` in the run, else the run span."""
        stack = self._open.get((trace_id, node))
        return stack[-1][0] if stack else run_span

    def _finish(self, trace_id: str, event: ev.GraphComplete | ev.GraphError, now: int) -> None:
        # Close anything left open (a node interrupted by a cancel), innermost last-opened first.
        for key in [k for k in self._nodes if k[0] == trace_id][::-1]:
            self._nodes.pop(key).end(end_time=now)
            self._keys.pop(key, None)
        for name in [k for k in self._open if k[0] == trace_id]:
            del self._open[name]
        run_span = self._runs.pop(trace_id)
        if isinstance(event, ev.GraphComplete):
            run_span.set_attribute("trio_graph.steps", event.result.execution_count)
            run_span.set_status(self._status("OK"))
        else:
            run_span.set_attribute("trio_graph.error", type(event.error).__name__)
            run_span.set_status(self._status("ERROR"), str(event.error))
        run_span.end(end_time=now)

    def _status(self, name: str) -> Any:
        return getattr(self._trace.StatusCode, name)


_RECORDERS: dict[type, Callable[[OtelSpans, Any, Any, int], None]] = {
    ev.NodeStart: OtelSpans._node_start,
    ev.StateChanged: OtelSpans._state_changed,
    ev.NodeEnd: OtelSpans._node_end,
    ev.NodeOutput: OtelSpans._node_output,
    ev.BranchCompleted: OtelSpans._branch_completed,
    ev.BarrierWaiting: OtelSpans._barrier_waiting,
    ev.BarrierResolved: OtelSpans._barrier_resolved,
    ev.ObservedError: OtelSpans._observed_error,
    ev.CheckpointSaved: OtelSpans._checkpoint_saved,
    ev.GraphComplete: OtelSpans._end_run,
    ev.GraphError: OtelSpans._end_run,
}
"""How each event type after ``GraphStart`` is recorded: an :class:`OtelSpans` method
``(self, event, run_span, now_ns)``; event types not listed leave no trace."""
