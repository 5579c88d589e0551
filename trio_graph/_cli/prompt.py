"""The barrier prompt: the question, the answers a person types, and reading them.

:func:`ask` writes what the barrier shows (its payload, when it has one), the four
decisions and, for a barrier with a timeout, a countdown to its default; then it reads
the person's answer without blocking the run (stdin is read in a thread, see
:class:`LineReader`) and is simply cancelled when the barrier resolves some other way,
e.g. its own timeout. On a terminal the countdown line above the question is rewritten
every second (the cursor saved and restored, so what the person is typing stays put).
"""

from __future__ import annotations

import json
import math
import sys
import time
from collections.abc import Callable
from typing import Any, TextIO

import outcome
import trio

from .._model.decisions import (
    Approve,
    BarrierId,
    Decision,
    Modify,
    Reject,
    Reroute,
    describe_decision,
)
from .._model.graph import BarrierNode
from ..errors import GraphError

HELP = (
    "answer a[pprove], r[eject] [reason], m[odify] KEY=VALUE, g[oto] TARGET, "
    "or press Enter for the default"
)
CHOICES = "[a]pprove, [r]eject REASON, [m]odify KEY=VALUE or [g]oto NODE"
"""The four decisions, as the question lists them."""

_PAYLOAD_LINES = 12
_WIDTH = 100
_ABOVE = "\x1b7\x1b[1A\r\x1b[2K{text}\x1b8"
"""Rewrite the line above the cursor and put the cursor back (DEC save/restore)."""


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


def payload_lines(payload: Any, indent: str = "  ") -> list[str]:
    """What a barrier shows (``BarrierWaiting.payload``), as indented lines of JSON."""
    if payload is None:
        return []
    if isinstance(payload, str):
        lines = payload.splitlines() or [""]
    else:
        lines = json.dumps(payload, indent=2, ensure_ascii=False, default=repr).splitlines()
    shown = [
        indent + (line if len(line) <= _WIDTH else line[: _WIDTH - 3] + "...") for line in lines
    ]
    if len(shown) > _PAYLOAD_LINES:
        more = len(shown) - _PAYLOAD_LINES
        shown = [*shown[:_PAYLOAD_LINES], f"{indent}... ({more} more lines)"]
    return shown


def countdown(default: Decision | None, seconds_left: float) -> str:
    """``Enter = approve; approve by default in 28 s`` (whole seconds, rounded up)."""
    left = max(0, math.ceil(seconds_left))
    return f"{describe_decision(default)} by default in {left} s"


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
    *,
    deadline: float | None = None,
    payload: Any = None,
    live: bool = False,
    clock: Callable[[], float] = time.time,
) -> Decision | None:
    """Ask the person at the terminal for ``barrier_id``'s decision and send it.

    Shows ``payload`` (what the barrier shows, if anything) and, with a ``deadline``
    (``clock()`` time at which the barrier's default applies; default: the barrier's
    timeout from now), a countdown, rewritten every second when ``live``. Re-asks on
    an answer that does not parse or that ``decide`` refuses. At end of input, sends
    the barrier's default. Cancel it (e.g. when the barrier timed out) to stop asking.
    Returns the decision sent (None: ``skip`` default, nothing sent).
    """
    default = default_decision(node)
    if deadline is None and node is not None and node.timeout:
        deadline = clock() + node.timeout
    for line in payload_lines(payload):
        out.write(line + "\n")
    question = f"{barrier_id}: {CHOICES}? Enter = {describe_decision(default)}: "
    while True:
        if deadline is not None:
            out.write(f"{barrier_id} waits: {countdown(default, deadline - clock())}\n")
        out.write(question)
        out.flush()
        async with trio.open_nursery() as nursery:
            if live and deadline is not None:
                nursery.start_soon(_tick, out, barrier_id, default, deadline, clock)
            line = await reader.readline()
            nursery.cancel_scope.cancel()
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


async def _tick(
    out: TextIO,
    barrier_id: BarrierId,
    default: Decision | None,
    deadline: float,
    clock: Callable[[], float],
) -> None:
    """Rewrite the countdown line above the question once a second until cancelled."""
    while True:
        left = deadline - clock()
        await trio.sleep(max(0.05, left - math.floor(left)) if left > 0 else 1)
        text = f"{barrier_id} waits: {countdown(default, deadline - clock())}"
        out.write(_ABOVE.format(text=text))
        out.flush()
