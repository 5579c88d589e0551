"""Barrier ids, the four decisions, and the level-triggered decision registry.

Model layer: no trio import. The runtime asks :class:`DecisionRegistry` for the
decision of a barrier occurrence; decisions may arrive before the barrier is
reached (they are kept), and a wildcard answers every occurrence of a node from
then on. An exact decision beats a wildcard.

The occurrence arithmetic lives here once, for the run, the stores, the worker and
the command line: a kept decision is a :class:`DecisionEntry` whose occurrence is
:data:`EVERY` (0) for a wildcard; :func:`find_entry` picks the one that answers an
arrival, :func:`passed` says whether an entry's occurrence is behind the run, and
:func:`check_answers` refuses what a parked run could never take.
"""

from __future__ import annotations

import json
from typing import Any, Literal

import attrs

from ..errors import BarrierError


@attrs.frozen(order=True)
class BarrierId:
    """One arrival at a barrier: ``occurrence`` counts arrivals at ``node`` in a run, from 1."""

    node: str
    occurrence: int

    def __str__(self) -> str:
        return f"{self.node}#{self.occurrence}"

    @classmethod
    def parse(cls, text: str) -> BarrierId:
        """Parse ``"node#3"``; a bare ``"node"`` is occurrence 1."""
        node, sep, occ = text.rpartition("#")
        if not sep:
            return cls(text, 1)
        if not occ.isdigit() or int(occ) < 1:
            raise ValueError(f"barrier id {text!r}: occurrence must be a positive integer")
        return cls(node, int(occ))


def _repr(decision: Any) -> str:
    """``Reject(reason='x')``, with ``by=...`` only when it is said (as in JSON)."""
    said = [
        f"{a.name}={getattr(decision, a.name)!r}"
        for a in attrs.fields(type(decision))
        if a.name != "by" or decision.by is not None
    ]
    return f"{type(decision).__name__}({', '.join(said)})"


@attrs.frozen(repr=False)
class Approve:
    """Continue; writes ``<node>.approved = True``."""

    by: str | None = attrs.field(default=None, kw_only=True)
    """Who made the decision (``Approve(by="ana")``); None when unsaid."""

    __repr__ = _repr


@attrs.frozen(repr=False)
class Reject:
    """Writes ``<node>.approved = False`` and ``<node>.reject_reason``; edges decide what next."""

    reason: str = ""
    by: str | None = attrs.field(default=None, kw_only=True)
    """Who made the decision; None when unsaid."""

    __repr__ = _repr


@attrs.frozen(repr=False)
class Modify:
    """Write ``key = value`` into the state, then continue."""

    key: str
    value: Any
    by: str | None = attrs.field(default=None, kw_only=True)
    """Who made the decision; None when unsaid."""

    __repr__ = _repr


@attrs.frozen(repr=False)
class Reroute:
    """Go to ``target`` next (an edge of any class from the barrier must lead there)."""

    target: str
    by: str | None = attrs.field(default=None, kw_only=True)
    """Who made the decision; None when unsaid."""

    __repr__ = _repr


Decision = Approve | Reject | Modify | Reroute
DECISION_TYPES: tuple[type, ...] = (Approve, Reject, Modify, Reroute)

DefaultAction = Literal["reject", "approve", "skip"]

EVERY = 0
"""The occurrence of a :class:`DecisionEntry` that answers every arrival (``decide_all``)."""


@attrs.frozen
class DecisionEntry:
    """A decision kept for a barrier occurrence (or, with ``occurrence == EVERY``, a wildcard)."""

    node: str
    occurrence: int
    decision: Decision

    @property
    def every(self) -> bool:
        """True for a wildcard: it answers every occurrence of ``node`` not answered exactly."""
        return self.occurrence == EVERY


_TIMEOUT_DEFAULTS: dict[str, Any] = {
    "approve": lambda timeout: Approve(),
    "skip": lambda timeout: None,
    "reject": lambda timeout: Reject(f"timed out after {timeout}s"),
}


def timeout_decision(default: DefaultAction, timeout: float | None) -> Decision | None:
    """What a barrier's ``default`` decides when its timeout passes with no decision
    (None: skip, go on along its edges)."""
    decision: Decision | None = _TIMEOUT_DEFAULTS[default](timeout)
    return decision


@attrs.define
class DecisionRegistry:
    """Decisions kept until their barrier occurrence takes them (level-triggered)."""

    pending: dict[BarrierId, Decision] = attrs.field(factory=dict)
    wildcards: dict[str, Decision] = attrs.field(factory=dict)
    occurrences: dict[str, int] = attrs.field(factory=dict)
    resolved: set[BarrierId] = attrs.field(factory=set)

    def next_id(self, node: str) -> BarrierId:
        """Count one more arrival at ``node`` and return its id."""
        bid = self.peek_id(node)
        self.occurrences[node] = bid.occurrence
        return bid

    def peek_id(self, node: str) -> BarrierId:
        """The id the next arrival at ``node`` gets (nothing counted)."""
        return BarrierId(node, self.occurrences.get(node, 0) + 1)

    def submit(self, barrier_id: BarrierId, decision: Decision) -> None:
        """Keep ``decision`` for exactly ``barrier_id`` (replacing an earlier one for it)."""
        self.pending[barrier_id] = decision

    def submit_all(self, node: str, decision: Decision) -> None:
        """Answer every occurrence of ``node`` not answered exactly, from now on."""
        self.wildcards[node] = decision

    def answers(self, barrier_id: BarrierId) -> bool:
        """Whether a decision kept now answers ``barrier_id`` (exact or wildcard)."""
        return barrier_id in self.pending or barrier_id.node in self.wildcards

    def take(self, barrier_id: BarrierId) -> Decision | None:
        """The decision for ``barrier_id``: exact first, else the node's wildcard, else None."""
        decision = self.pending.pop(barrier_id, None)
        if decision is None:
            decision = self.wildcards.get(barrier_id.node)
        if decision is not None:
            self.resolved.add(barrier_id)
        return decision

    def mark_resolved(self, barrier_id: BarrierId) -> None:
        """Record that ``barrier_id`` was resolved without a decision (timeout)."""
        self.pending.pop(barrier_id, None)
        self.resolved.add(barrier_id)

    def add(self, entry: DecisionEntry) -> None:
        """Keep a stored entry: exact, or a wildcard for :data:`EVERY`."""
        if entry.every:
            self.submit_all(entry.node, entry.decision)
        else:
            self.submit(BarrierId(entry.node, entry.occurrence), entry.decision)

    def entries(self) -> list[DecisionEntry]:
        """The decisions still kept, as entries (exact ones first, then wildcards)."""
        entries = [DecisionEntry(b.node, b.occurrence, d) for b, d in self.pending.items()]
        entries += [DecisionEntry(n, EVERY, d) for n, d in self.wildcards.items()]
        return entries

    @classmethod
    def restore(
        cls,
        occurrences: dict[str, int],
        pending: BarrierId | None,
        entries: list[DecisionEntry],
    ) -> DecisionRegistry:
        """The registry a checkpoint recorded: arrivals counted (the barrier it waits at
        not yet), every counted arrival resolved, and its kept decisions."""
        reg = cls(occurrences=dict(occurrences))
        if pending is not None:
            reg.occurrences[pending.node] = pending.occurrence - 1
        # Every arrival counted before this point was resolved: deciding it again is an error.
        reg.resolved = {
            BarrierId(n, i) for n, count in reg.occurrences.items() for i in range(1, count + 1)
        }
        for entry in entries:
            reg.add(entry)
        return reg


def find_entry(entries: list[DecisionEntry], bid: BarrierId) -> DecisionEntry | None:
    """The entry that answers ``bid``: an exact one first, else the node's wildcard."""
    wildcard = None
    for entry in entries:
        if entry.node == bid.node:
            if entry.occurrence == bid.occurrence:
                return entry
            if entry.every:
                wildcard = entry
    return wildcard


def passed(entry: DecisionEntry, occurrences: dict[str, int], pending: BarrierId | None) -> bool:
    """True when ``entry`` answers an arrival the run has already passed (a run that
    counted ``occurrences`` and waits at ``pending``, if any). A wildcard never has."""
    if entry.every:
        return False
    seen = occurrences.get(entry.node, 0)
    if pending is not None and pending.node == entry.node:
        seen = pending.occurrence - 1
    return entry.occurrence <= seen


def check_answers(trace_id: str, pending: BarrierId, node: str, occurrence: int) -> None:
    """Refuse a decision for a run parked at ``pending`` that could never be taken.

    A store does not hold the graph, so what it can check is the barrier the run is
    parked at: a decision must be for that barrier node, for its occurrence, a later one
    or every one (:data:`EVERY`). Anything else would be kept while the run stays parked
    forever.
    """
    if node != pending.node:
        raise BarrierError(
            f"run {trace_id!r} is waiting at barrier {pending}, not at a barrier {node!r}; "
            "decision not recorded",
            node=node,
        )
    if EVERY < occurrence < pending.occurrence:
        raise BarrierError(
            f"run {trace_id!r} is waiting at barrier {pending}: occurrence {occurrence} of "
            f"{node!r} has passed; decision not recorded",
            node=node,
        )


def check_decision(decision: object, node: str = "") -> None:
    """Raise ``BarrierError`` (naming ``node``) unless ``decision`` is a well-formed decision."""
    if not isinstance(decision, DECISION_TYPES):
        raise BarrierError(
            "malformed decision: expected Approve, Reject, Modify or Reroute, "
            f"got {type(decision).__name__}",
            node=node,
        )
    if isinstance(decision, Modify) and not isinstance(decision.key, str):
        raise BarrierError(f"Modify key must be a str, got {decision.key!r}", node=node)
    by = getattr(decision, "by", None)
    if by is not None and not isinstance(by, str):
        raise BarrierError(
            f"a decision's by must be a str or None, got {type(by).__name__} {by!r:.60}",
            node=node,
        )


def decision_updates(
    node: str, decision: Decision, *, approved_key: str, reason_key: str
) -> tuple[dict[str, Any], str | None]:
    """The state updates a decision writes, and the reroute target if any."""
    if isinstance(decision, Approve):
        return {approved_key: True}, None
    if isinstance(decision, Reject):
        return {approved_key: False, reason_key: decision.reason}, None
    if isinstance(decision, Modify):
        return {decision.key: decision.value}, None
    return {}, decision.target


def describe_decision(decision: Decision | None) -> str:
    """A decision as a person would say it: ``approve``, ``reject (too long)``...,
    followed by ``by ana`` when it names who made it."""
    if decision is None:
        return "skip"
    said = _describe(decision)
    return said if decision.by is None else f"{said} by {decision.by}"


def _describe(decision: Decision) -> str:
    if isinstance(decision, Approve):
        return "approve"
    if isinstance(decision, Reject):
        return f"reject ({decision.reason})" if decision.reason else "reject"
    if isinstance(decision, Modify):
        return f"modify {decision.key} = {brief_value(decision.value)}"
    return f"reroute to {decision.target}"


def brief_value(value: Any, width: int = 60) -> str:
    """A value as one short line of JSON (``repr`` for what JSON cannot say)."""
    try:
        text = json.dumps(value, ensure_ascii=False, default=repr)
    except ValueError:
        text = repr(value)
    return text if len(text) <= width else text[: width - 3] + "..."
