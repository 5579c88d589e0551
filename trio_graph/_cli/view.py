"""The live terminal view of a run, and the barrier prompt.

:class:`Terminal` turns a run's events into readable lines as they arrive: one line per
node execution (step / max_steps, node, duration, the state keys it changed), and a
line for each fallback, barrier, branch, checkpoint and the outcome. On a terminal
it also keeps a status line at the bottom (the node running, branches done / total
in a fan-out) that is rewritten in place; elsewhere (a pipe, a file, CI) every line
is plain and final. ``StateChanged``, ``NodeStart`` and ``ParallelCompleted`` are
folded into the node's line rather than printed on their own.

:func:`ask` is the barrier prompt: it reads the person's answer without blocking
the run (stdin is read in a thread) and is simply cancelled when the barrier
resolves some other way, e.g. its own timeout.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from typing import Any, TextIO

import outcome
import trio

from .. import events as ev
from .._model.decisions import (
    Approve,
    BarrierId,
    Decision,
    Modify,
    Reject,
    Reroute,
    brief_value,
    describe_decision,
)
from .._model.graph import BarrierNode, Graph
from ..errors import Cancelled, GraphError

_CLEAR = "\r\x1b[2K"
_STATE_LINES = 20


def format_duration(seconds: float) -> str:
    """``0.42 ms``, ``12.3 ms``, ``1.25 s``."""
    if seconds < 0.01:
        return f"{seconds * 1000:.2f} ms"
    if seconds < 1:
        return f"{seconds * 1000:.1f} ms"
    return f"{seconds:.2f} s"


class Terminal:
    """Writes a run's events to ``out`` as they arrive.

    ``max_steps`` shows progress as ``[step/max_steps]``; ``graph`` sizes the node
    column; ``live`` (default: ``out.isatty()``) keeps a rewritten status line.
    """

    def __init__(
        self,
        out: TextIO | None = None,
        *,
        max_steps: int | None = None,
        graph: Graph | None = None,
        live: bool | None = None,
    ) -> None:
        self.out = out if out is not None else sys.stdout
        self.max_steps = max_steps
        self.live = self.out.isatty() if live is None else live
        names = list(graph.nodes) if graph is not None else []
        self.width = max([len(n) for n in names] + [10])
        self._steps: dict[int, int] = {}
        self._keys: dict[int, list[str]] = {}
        self._branches: dict[str, tuple[int, int]] = {}
        self._status = ""
        self._top_step = 0
        self.steps_done = 0

    # -- output ----------------------------------------------------------------------
    def show(self, event: ev.Event) -> None:
        """Write the lines for ``event`` (and refresh the status line on a terminal)."""
        lines = self.lines(event)
        if self._status:
            self.out.write(_CLEAR)
            self._status = ""
        for line in lines:
            self.out.write(line + "\n")
        if self.live:
            status = self.status(event)
            if status:
                self.out.write(status)
                self._status = status
        self.out.flush()

    def note(self, text: str) -> None:
        """Write a line of the caller's own (clearing the status line first)."""
        if self._status:
            self.out.write(_CLEAR)
            self._status = ""
        self.out.write(text + "\n")
        self.out.flush()

    def status(self, event: ev.Event) -> str:
        """The transient status line after ``event`` ("" for none)."""
        if isinstance(event, ev.NodeStart):
            return f"{self._progress(self._top_step)} {event.node} running..."
        if isinstance(event, ev.ParallelStarted | ev.BranchCompleted):
            done, total = self._branches.get(event.node, (0, 0))
            return f"{' ' * 9}{event.node}: {done}/{total} branches done..."
        return ""

    # -- formatting ------------------------------------------------------------------
    def _progress(self, step: int) -> str:
        if self.max_steps is None:
            return f"[{step:>3}]"
        digits = len(str(self.max_steps))
        return f"[{step:>{digits}}/{self.max_steps}]"

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

    def _observed_error(self, event: ev.ObservedError) -> list[str]:
        err = event.error
        text = f"{self._indent()}! {event.node} {err.kind.lower()}: {err.message}"
        if err.kind == "Retrying":
            text += f" (retry in {format_duration(err.delay)})"
        return [text]

    def _barrier_waiting(self, event: ev.BarrierWaiting) -> list[str]:
        return [f"{self._indent()}|| {event.barrier_id} waits for a decision"]

    def _barrier_resolved(self, event: ev.BarrierResolved) -> list[str]:
        how = describe_decision(event.decision)
        if event.timed_out:
            how += " (timed out: the barrier's default)"
        return [f"{self._indent()}-> {event.barrier_id}: {how}"]

    def _parallel_started(self, event: ev.ParallelStarted) -> list[str]:
        self._branches[event.node] = (0, event.branch_count)
        return [f"{self._indent()}{event.node}: {event.branch_count} branches in parallel"]

    def _branch_completed(self, event: ev.BranchCompleted) -> list[str]:
        done, total = self._branches.get(event.node, (0, 0))
        done += 1
        self._branches[event.node] = (done, total)
        result = "ok" if event.success else "FAILED"
        took = format_duration(event.duration)
        where = f"{event.node}.{event.branch}"
        return [f"{self._indent()}  {where} {result} in {took} ({done}/{total} done)"]

    def _parallel_completed(self, event: ev.ParallelCompleted) -> list[str]:
        self._branches.pop(event.node, None)
        return []

    def _checkpoint_saved(self, event: ev.CheckpointSaved) -> list[str]:
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


_LINES: dict[type, Callable[[Terminal, Any], list[str]]] = {
    ev.GraphStart: Terminal._graph_start,
    ev.NodeStart: Terminal._node_start,
    ev.StateChanged: Terminal._state_changed,
    ev.NodeEnd: Terminal._node_end,
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
    return "cancelled" if isinstance(error, Cancelled) else "failed"


# -- the barrier prompt -----------------------------------------------------------------
HELP = (
    "answer a[pprove], r[eject] [reason], m[odify] KEY=VALUE, g[oto] TARGET, "
    "or press Enter for the default"
)


def default_decision(node: BarrierNode | None) -> Decision | None:
    """The decision a barrier's default action stands for (None: ``skip``)."""
    default = node.default if node is not None else "reject"
    if default == "approve":
        return Approve()
    if default == "skip":
        return None
    return Reject("no answer: the barrier's default")


def parse_answer(text: str, default: Decision | None) -> Decision | None:
    """Parse a typed answer; "" is ``default``. Raises ``ValueError`` with a hint."""
    text = text.strip()
    if not text:
        return default
    word, _, rest = text.partition(" ")
    word, rest = word.lower(), rest.strip()
    if word in ("a", "approve", "y", "yes", "ok"):
        return Approve()
    if word in ("r", "reject", "n", "no"):
        return Reject(rest or "rejected at the terminal")
    if word in ("m", "modify"):
        key, sep, value = rest.partition("=")
        if not sep or not key.strip():
            raise ValueError("modify needs KEY=VALUE (VALUE as JSON, or plain text)")
        return Modify(key.strip(), parse_value(value.strip()))
    if word in ("g", "goto", "reroute"):
        if not rest:
            raise ValueError("reroute needs a target node")
        return Reroute(rest)
    raise ValueError(f"unknown answer {text!r}")


def parse_value(text: str) -> Any:
    """A value typed by a person: JSON if it parses (``3``, ``true``, ``[1]``), else the text."""
    try:
        return json.loads(text)
    except ValueError:
        return text


class LineReader:
    """Reads lines from a blocking ``readline`` in a thread, without blocking Trio.

    One read is outstanding at a time; a line that arrives while nobody is asking
    (the prompt was cancelled) is dropped, so it never answers the next question.
    Create it inside ``trio.run``.
    """

    def __init__(self, readline: Callable[[], str] | None = None) -> None:
        self._readline = readline if readline is not None else sys.stdin.readline
        self._token = trio.lowlevel.current_trio_token()
        self._reading = False
        self._asking = False
        self._send, self._receive = trio.open_memory_channel[outcome.Outcome[str]](1)

    async def readline(self) -> str:
        """The next line ("" at end of input)."""
        self._asking = True
        try:
            if not self._reading:
                self._reading = True
                trio.lowlevel.start_thread_soon(self._readline, self._deliver_from_thread)
            result = await self._receive.receive()
        finally:
            self._asking = False
        return result.unwrap()

    def _deliver_from_thread(self, result: outcome.Outcome[str]) -> None:
        try:
            self._token.run_sync_soon(self._deliver, result)
        except trio.RunFinishedError:
            pass

    def _deliver(self, result: outcome.Outcome[str]) -> None:
        self._reading = False
        if self._asking:
            self._send.send_nowait(result)


async def ask(
    decide: Callable[[BarrierId, Decision], None],
    barrier_id: BarrierId,
    node: BarrierNode | None,
    reader: LineReader,
    out: TextIO,
) -> Decision | None:
    """Ask the person at the terminal for ``barrier_id``'s decision and send it.

    Re-asks on an answer that does not parse or that ``decide`` refuses. At end of
    input, sends the barrier's default. Cancel it (e.g. when the barrier timed out)
    to stop asking. Returns the decision sent (None: ``skip`` default, nothing sent).
    """
    default = default_decision(node)
    said = describe_decision(default)
    after = f", automatic after {node.timeout:g} s" if node is not None and node.timeout else ""
    question = f"{barrier_id}: [a]pprove or [r]eject (+ reason)? Enter = {said}{after}: "
    while True:
        out.write(question)
        out.flush()
        line = await reader.readline()
        if not line:  # end of input
            out.write("\n")
            decision = default
        else:
            try:
                decision = parse_answer(line, default)
            except ValueError as exc:
                out.write(f"{exc}; {HELP}\n")
                continue
        if decision is None:
            return None
        try:
            decide(barrier_id, decision)
        except GraphError as exc:
            if not line:
                raise
            out.write(f"not accepted: {exc}\n")
            continue
        return decision
