"""The scripted human: what a person at the keyboard does during a run.

A :class:`DecisionScript` lists the decisions; :class:`Human` plays it against a run,
identically for the Trio executor (:func:`trio_graph.testing.harness.drive`) and the
reference interpreter (:func:`trio_graph.testing.reference.interpret`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal

import attrs

from .._model.decisions import Approve, BarrierId, Decision

# -- the scripted human -------------------------------------------------------------------

SendTarget = Literal["exact", "all", "this", "this_all", "earlier"]


@attrs.frozen
class Send:
    """One decision a person sends.

    ``exact``: ``run.decide(BarrierId(node, occurrence), decision)``; ``all``:
    ``run.decide_all(node, decision)``. Only in responses: ``this`` answers the
    occurrence the run is waiting at, ``this_all`` its node (wildcard), ``earlier``
    an occurrence already resolved (the ``occurrence``-th earlier wait, modulo their
    number; skipped when there is none). ``decision`` may be malformed on purpose.
    """

    target: SendTarget
    decision: Any
    node: str = ""
    occurrence: int = 1


@attrs.frozen
class DecisionScript:
    """What the person does during a run.

    - ``before``: sent as soon as the run starts, before any event is read;
    - ``responses[i]``: sent when the run **blocks** at its i-th waiting barrier, that
      is at a ``BarrierWaiting`` for which no decision was sent yet (no exact decision
      for that occurrence, no wildcard for that node). Decisions are sent only while
      the run is blocked, so what the run sees never depends on scheduling;
    - ``answer``: sent (exact) to a blocked barrier with no timeout that the responses
      left undecided, so a run never waits forever;
    - ``after_end``: sent on the terminal event (a finished run refuses them);
    - ``cancel_at``: at its ``cancel_at``-th blocked wait, if the responses left the
      barrier undecided, the person cancels the run (``run.cancel()``) instead.
    """

    before: tuple[Send, ...] = ()
    responses: tuple[tuple[Send, ...], ...] = ()
    answer: Decision = attrs.field(factory=Approve)
    after_end: tuple[Send, ...] = ()
    cancel_at: int | None = None


@attrs.frozen
class Call:
    """A resolved send: ``barrier_id`` for ``decide``, else ``node`` for ``decide_all``."""

    decision: Any
    barrier_id: BarrierId | None = None
    node: str = ""


Perform = Callable[[Call], str | None]
"""Carries out a call; returns the error type name it raised, or None."""


class Human:
    """Plays a :class:`DecisionScript`; ``perform`` is the side (executor or reference).

    It remembers what was accepted, to know which waits block: a wait blocks when no
    accepted exact decision names its occurrence and no accepted wildcard its node.
    ``results`` lists, per call, the error type it raised or None.
    """

    def __init__(
        self,
        script: DecisionScript,
        timeouts: Mapping[str, float | None],
        perform: Perform,
        cancel: Callable[[], None] | None = None,
    ) -> None:
        self.script = script
        self.timeouts = timeouts
        self.perform = perform
        self.cancel = cancel
        self.cancelled = False
        self.results: list[str | None] = []
        self.exact: set[BarrierId] = set()
        self.wildcards: set[str] = set()
        self.waits: list[BarrierId] = []
        self.blocked = 0

    def _do(self, call: Call) -> None:
        error = self.perform(call)
        self.results.append(error)
        if error is None:
            if call.barrier_id is not None:
                self.exact.add(call.barrier_id)
            else:
                self.wildcards.add(call.node)

    def _resolve(self, send: Send, current: BarrierId | None) -> Call | None:
        if send.target == "exact":
            return Call(send.decision, barrier_id=BarrierId(send.node, send.occurrence))
        if send.target == "all":
            return Call(send.decision, node=send.node)
        if current is None:
            return None
        if send.target == "this":
            return Call(send.decision, barrier_id=current)
        if send.target == "this_all":
            return Call(send.decision, node=current.node)
        if not self.waits:
            return None
        return Call(send.decision, barrier_id=self.waits[send.occurrence % len(self.waits)])

    def _send_all(self, sends: Sequence[Send], current: BarrierId | None) -> None:
        for send in sends:
            call = self._resolve(send, current)
            if call is not None:
                self._do(call)

    def decided(self, bid: BarrierId) -> bool:
        return bid in self.exact or bid.node in self.wildcards

    def start(self) -> None:
        """The run has just started."""
        self._send_all(self.script.before, None)

    def waiting(self, bid: BarrierId) -> None:
        """The run reached barrier occurrence ``bid`` (a ``BarrierWaiting`` was seen)."""
        if not self.decided(bid):
            i = self.blocked
            self.blocked += 1
            if i < len(self.script.responses):
                self._send_all(self.script.responses[i], bid)
            if not self.decided(bid) and i == self.script.cancel_at and self.cancel is not None:
                self.cancelled = True
                self.cancel()
            elif not self.decided(bid) and self.timeouts.get(bid.node) is None:
                self._do(Call(self.script.answer, barrier_id=bid))
        self.waits.append(bid)

    def finished(self) -> None:
        """The terminal event was seen."""
        self._send_all(self.script.after_end, None)
