"""The live terminal view of a run (the barrier prompt is :mod:`.prompt`).

:class:`Terminal` turns a run's events into readable lines as they arrive: one line per
node execution (``step 3``, node, duration, the state keys it changed), and a line for
each fallback, barrier (with what it shows), branch and the outcome; checkpoint lines
only when asked (``--checkpoints``). On a terminal it also keeps a status line at the
bottom (the node running or the branches done / total of a fan-out, with elapsed
timers) that is rewritten in place, by each event and by :meth:`Terminal.redraw`
(called every half second by whoever follows the run); elsewhere (a pipe, a file, CI)
every line is plain and final. ``StateChanged``, ``NodeStart`` and
``ParallelCompleted`` are folded into the node's line rather than printed on their own.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import Any, TextIO

from .. import events as ev
from .._model.decisions import brief_value, describe_decision
from .._model.graph import Graph, MapNode
from ..errors import Cancelled, GraphError, RunTimeout
from .prompt import HELP as HELP
from .prompt import LineReader as LineReader
from .prompt import ask as ask
from .prompt import default_decision as default_decision
from .prompt import parse_answer as parse_answer
from .prompt import parse_value as parse_value
from .prompt import payload_lines

_CLEAR = "\r\x1b[2K"
_KEEP_STATUS = (ev.StateChanged, ev.ObservedError, ev.CheckpointSaved)
"""Events inside a node that leave its status line as it is."""
_STATE_LINES = 20


def format_duration(seconds: float) -> str:
    """``0.42 ms``, ``12.3 ms``, ``1.25 s``."""
    if seconds < 0.01:
        return f"{seconds * 1000:.2f} ms"
    if seconds < 1:
        return f"{seconds * 1000:.1f} ms"
    return f"{seconds:.2f} s"


def format_elapsed(seconds: float) -> str:
    """A running timer: ``0.4 s``, ``12.0 s``, ``3m05s``."""
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, rest = divmod(int(seconds), 60)
    return f"{minutes}m{rest:02d}s"


class Terminal:
    """Writes a run's events to ``out`` as they arrive.

    ``max_steps`` sizes the step column (``step 3``); ``graph`` sizes the node column;
    ``live`` (default: ``out.isatty()``) keeps a rewritten status line; ``checkpoints``
    shows a line per checkpoint saved; ``clock`` times the status line's timers.
    """

    def __init__(
        self,
        out: TextIO | None = None,
        *,
        max_steps: int | None = None,
        graph: Graph | None = None,
        live: bool | None = None,
        checkpoints: bool = False,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.out = out if out is not None else sys.stdout
        self.max_steps = max_steps
        self.live = self.out.isatty() if live is None else live
        self.checkpoints = checkpoints
        self.clock = clock
        self.graph = graph
        names = list(graph.nodes) if graph is not None else []
        self.width = max([len(n) for n in names] + [10])
        self._steps: dict[int, int] = {}
        self._keys: dict[int, list[str]] = {}
        self._branches: dict[str, tuple[int, int]] = {}
        self._status = ""
        self._top_step = 0
        self._started: float | None = None
        self._running: tuple[str, float] | None = None
        """What the status line is about: its text before the timers, since when."""
        self.steps_done = 0

    # -- output ----------------------------------------------------------------------
    def show(self, event: ev.Event) -> None:
        """Write the lines for ``event`` (and refresh the status line on a terminal)."""
        if self._started is None:
            self._started = self.clock()
        lines = self.lines(event)
        self._clear()
        for line in lines:
            self.out.write(line + "\n")
        if self.live:
            self._running = self._about(event)
            self._draw()
        self.out.flush()

    def note(self, text: str) -> None:
        """Write a line of the caller's own (clearing the status line first)."""
        self._clear()
        self.out.write(text + "\n")
        self.out.flush()

    def redraw(self) -> None:
        """Rewrite the status line with its timers brought up to date (when one shows)."""
        if self._status:
            self.out.write(_CLEAR)
            self._draw()
            self.out.flush()

    def status(self) -> str:
        """The status line now ("" for none): what runs, for how long, the run's time."""
        if self._running is None:
            return ""
        text, since = self._running
        now = self.clock()
        run = now - (self._started if self._started is not None else now)
        return f"{text} {format_elapsed(now - since)} (run {format_elapsed(run)})"

    def _about(self, event: ev.Event) -> tuple[str, float] | None:
        """The status line's subject after ``event`` (None: no status line)."""
        if isinstance(event, ev.NodeStart):
            return f"{self._progress(self._top_step)} {event.node} running...", self.clock()
        if isinstance(event, ev.ParallelStarted | ev.BranchCompleted):
            done, total = self._branches.get(event.node, (0, 0))
            since = self._running[1] if self._running is not None else self.clock()
            if self._is_map(event.node):
                return f"{self._indent()}{event.node}[*]: {done}/{total} done...", since
            return f"{self._indent()}{event.node}: {done}/{total} branches done...", since
        if isinstance(event, _KEEP_STATUS):
            return self._running
        return None

    def _draw(self) -> None:
        status = self.status()
        if status:
            self.out.write(status)
        self._status = status

    def _clear(self) -> None:
        if self._status:
            self.out.write(_CLEAR)
            self._status = ""

    # -- formatting ------------------------------------------------------------------
    def _progress(self, step: int) -> str:
        digits = len(str(self.max_steps)) if self.max_steps is not None else 2
        return f"step {step:<{digits}}"

    def _indent(self) -> str:
        return " " * (len(self._progress(0)) + 1)

    def lines(self, event: ev.Event) -> list[str]:
        """The lines for one event (updates the per-span bookkeeping)."""
        format_lines = _LINES.get(type(event))
        if format_lines is None:  # pragma: no cover - every event type has a row
            return [repr(event)]
        return format_lines(self, event)

    # -- one method per event type (the table _LINES below) ---------------------------
    def _graph_start(self, event: ev.GraphStart) -> list[str]:
        if event.resumed_from:
            return [
                f"run {event.trace_id} (graph {event.graph!r}) resumes run "
                f"{event.resumed_from} at {event.node}, after step {event.step}"
            ]
        return [f"run {event.trace_id} (graph {event.graph!r}) starts at {event.node}"]

    def _node_start(self, event: ev.NodeStart) -> list[str]:
        # A subgraph's nodes ("sub/x") count their own steps: show the outer step.
        if "/" in event.node:
            self._steps[event.span_id] = self._top_step
        else:
            self._steps[event.span_id] = self._top_step = event.step
        self._keys[event.span_id] = []
        return []

    def _state_changed(self, event: ev.StateChanged) -> list[str]:
        keys = self._keys.setdefault(event.span_id, [])
        if event.key not in keys:
            keys.append(event.key)
        return []

    def _node_end(self, event: ev.NodeEnd) -> list[str]:
        step = self._steps.pop(event.span_id, 0)
        keys = self._keys.pop(event.span_id, [])
        self.steps_done = max(self.steps_done, step)
        changed = ", ".join(keys) if keys else "-"
        if not event.success:
            changed = "FAILED"
        took = format_duration(event.duration)
        return [f"{self._progress(step)} {event.node:<{self.width}} {took:>9}  {changed}"]

    def _node_output(self, event: ev.NodeOutput) -> list[str]:
        """What a node streamed (``ctx.emit``): text as it is, anything else as JSON."""
        data = event.data if isinstance(event.data, str) else brief_value(event.data, 200)
        where = event.node if event.branch is None else f"{event.node}.{event.branch}"
        return [f"{self._indent()}{where:<{self.width}} > {data}"]

    def _observed_error(self, event: ev.ObservedError) -> list[str]:
        err = event.error
        text = f"{self._indent()}! {event.node} {err.kind.lower()}: {err.message}"
        if err.kind == "Retrying":
            text += f" (retry in {format_duration(err.delay)})"
        return [text]

    def _barrier_waiting(self, event: ev.BarrierWaiting) -> list[str]:
        pad = self._indent()
        payload = getattr(event, "payload", None)  # what the barrier shows (``show=fn``)
        lines = [f"{pad}|| {event.barrier_id} waits for a decision"]
        if payload is not None:
            lines[0] += "; it shows:"
        return lines + payload_lines(payload, pad + "   ")

    def _barrier_resolved(self, event: ev.BarrierResolved) -> list[str]:
        how = describe_decision(event.decision)
        if event.timed_out:
            how += " (timed out: the barrier's default)"
        return [f"{self._indent()}-> {event.barrier_id}: {how}"]

    def _is_map(self, node: str) -> bool:
        """A map node's fan-out (known from the graph, when the view has it)."""
        return self.graph is not None and isinstance(self.graph.find(node), MapNode)

    def _parallel_started(self, event: ev.ParallelStarted) -> list[str]:
        self._branches[event.node] = (0, event.branch_count)
        if self._is_map(event.node):
            count = event.branch_count
            return [f"{self._indent()}{event.node}[*]: {count} item{'' if count == 1 else 's'}"]
        return [f"{self._indent()}{event.node}: {event.branch_count} branches in parallel"]

    def _branch_completed(self, event: ev.BranchCompleted) -> list[str]:
        done, total = self._branches.get(event.node, (0, 0))
        done += 1
        self._branches[event.node] = (done, total)
        result = _BRANCH_WORDS.get(event.outcome, "ok" if event.success else "FAILED")
        took = format_duration(event.duration)
        where = f"{event.node}.{event.branch}"
        return [f"{self._indent()}  {where} {result} in {took} ({done}/{total} done)"]

    def _parallel_completed(self, event: ev.ParallelCompleted) -> list[str]:
        self._branches.pop(event.node, None)
        return []

    def _checkpoint_saved(self, event: ev.CheckpointSaved) -> list[str]:
        if not self.checkpoints:
            return []
        where = f"next {event.node}" if event.node else "final"
        short = event.checkpoint_id[:8]
        return [f"{self._indent()}checkpoint {short} (after step {event.step}, {where})"]

    def _graph_complete(self, event: ev.GraphComplete) -> list[str]:
        pad = self._indent()
        res = event.result
        steps = res.execution_count
        took = format_duration(res.duration)
        count = f"{steps} step{'' if steps == 1 else 's'}"
        if self.steps_done > steps:  # a resumed run: earlier steps ran before
            count += f" here, {self.steps_done} in all"
        lines = [f"completed in {took}: {count}; final state:"]
        items = list(res.state.items())
        for key, value in items[:_STATE_LINES]:
            lines.append(f"{pad}{key} = {brief_value(value, 90)}")
        if len(items) > _STATE_LINES:
            lines.append(f"{pad}... and {len(items) - _STATE_LINES} more keys")
        return lines

    def _graph_error(self, event: ev.GraphError) -> list[str]:
        return [f"{_outcome_word(event.error)}: {event.error}"]


_BRANCH_WORDS = {
    "succeeded": "ok",
    "failed": "FAILED",
    "cancelled": "cancelled",
    "discarded": "ok, discarded",
}
"""A branch's outcome, as its line says it."""

_LINES: dict[type, Callable[[Terminal, Any], list[str]]] = {
    ev.GraphStart: Terminal._graph_start,
    ev.NodeStart: Terminal._node_start,
    ev.StateChanged: Terminal._state_changed,
    ev.NodeEnd: Terminal._node_end,
    ev.NodeOutput: Terminal._node_output,
    ev.ObservedError: Terminal._observed_error,
    ev.BarrierWaiting: Terminal._barrier_waiting,
    ev.BarrierResolved: Terminal._barrier_resolved,
    ev.ParallelStarted: Terminal._parallel_started,
    ev.BranchCompleted: Terminal._branch_completed,
    ev.ParallelCompleted: Terminal._parallel_completed,
    ev.CheckpointSaved: Terminal._checkpoint_saved,
    ev.GraphComplete: Terminal._graph_complete,
    ev.GraphError: Terminal._graph_error,
}
"""The lines of each event type: a :class:`Terminal` method (one row per event type)."""


def _outcome_word(error: GraphError) -> str:
    if isinstance(error, RunTimeout):  # a Cancelled too, but nobody asked for it
        return "timed out"
    return "cancelled" if isinstance(error, Cancelled) else "failed"
