"""The decisions a queue store keeps for a job, handed to the job's run.

A worker gives its run every stored decision the run has not passed yet
(:meth:`StoredDecisions.ahead_of`, with :func:`~trio_graph._model.decisions.passed`),
exact ones by barrier id and wildcards (occurrence :data:`~trio_graph._model.decisions.EVERY`)
by node, as ``executor.resume(decisions=...)`` would. A decision the graph refuses (not a
barrier, no edge for a ``Reroute``) does not fail the job: it is logged and kept in
:attr:`StoredDecisions.refused`, and its barrier parks as if unanswered. A decision that
arrives while the run is going is taken at its barrier (:meth:`StoredDecisions.take`).
"""

from __future__ import annotations

import logging

import attrs

from .._model.checkpoint import Checkpoint
from .._model.decisions import EVERY, BarrierId, Decision, DecisionEntry, passed
from .._runtime.run import Run
from ..errors import GraphError

log = logging.getLogger("trio_graph.worker")


@attrs.define
class StoredDecisions:
    """Stored decisions given to one run: exact by barrier, wildcards by node."""

    exact: dict[BarrierId, Decision] = attrs.field(factory=dict)
    wild: dict[str, Decision] = attrs.field(factory=dict)
    refused: list[DecisionEntry] = attrs.field(factory=list)
    """The entries the graph refused (dropped from ``exact``/``wild``)."""

    @classmethod
    def ahead_of(cls, entries: list[DecisionEntry], latest: Checkpoint | None) -> StoredDecisions:
        """The ``entries`` a run resuming from ``latest`` has not passed (all, for a new run)."""
        if latest is not None:
            entries = [
                e for e in entries if not passed(e, latest.occurrences, latest.pending_barrier)
            ]
        return cls(
            {BarrierId(e.node, e.occurrence): e.decision for e in entries if not e.every},
            {e.node: e.decision for e in entries if e.every},
        )

    def answers(self, bid: BarrierId) -> bool:
        """Whether the run already holds a decision for ``bid`` (it takes it at once)."""
        return bid in self.exact or bid.node in self.wild

    def hand_to(self, run: Run) -> None:
        """Give every decision to ``run``; move those it refuses to :attr:`refused`."""
        for bid, decision in list(self.exact.items()):
            try:
                run.decide(bid, decision)
            except GraphError as exc:
                del self.exact[bid]
                self.refused.append(DecisionEntry(bid.node, bid.occurrence, decision))
                log.warning("decision for %s not applied: %s", bid, exc)
        for node, decision in list(self.wild.items()):
            try:
                run.decide_all(node, decision)
            except GraphError as exc:
                del self.wild[node]
                self.refused.append(DecisionEntry(node, EVERY, decision))
                log.warning("decision for every %s not applied: %s", node, exc)

    def take(self, run: Run, entry: DecisionEntry) -> bool:
        """Give ``run`` a decision stored since it started; whether the run took it."""
        arrived = StoredDecisions.ahead_of([entry], None)
        arrived.hand_to(run)
        self.refused += arrived.refused
        self.exact.update(arrived.exact)
        self.wild.update(arrived.wild)
        return bool(arrived.exact or arrived.wild)
