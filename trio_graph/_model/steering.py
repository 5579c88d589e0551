"""What a run accepts from whoever steers it: a barrier id and a decision it can take.

Model layer: no trio import. ``run.decide``, ``run.decide_all``, ``executor.run(decisions=)``
and ``executor.resume(decisions=)`` check here, at once, in the caller's task: a decision
the graph could never take is refused with an error naming the barrier, instead of being
kept while the run waits forever.
"""

from __future__ import annotations

from ..errors import BarrierError
from .decisions import BarrierId, Decision, Modify, Reroute, check_decision
from .graph import BarrierNode, Graph
from .jsonvalue import check_value
from .routing import check_target


def check_barrier_id(barrier_id: object) -> BarrierId:
    """``barrier_id`` as a ``BarrierId`` whose occurrence is an int from 1, or ``BarrierError``."""
    if not isinstance(barrier_id, BarrierId):
        raise BarrierError(
            f"decide() needs a BarrierId, got {type(barrier_id).__name__} {barrier_id!r}"
        )
    occ = barrier_id.occurrence
    if not isinstance(occ, int) or isinstance(occ, bool) or occ < 1:
        raise BarrierError(
            f"barrier occurrence must be an int >= 1, got {occ!r}", node=barrier_id.node
        )
    return barrier_id


def check_steering(graph: Graph, node: str, decision: Decision, *, durable: bool) -> None:
    """Refuse a decision for barrier ``node`` (a ``"sub/node"`` path) of ``graph`` that the
    run could never take: not a barrier, a malformed decision, a ``Modify`` value a store
    would not give back (``durable``) or its typed state refuses (``StateError``), a
    ``Reroute`` with no edge (``MissingEdge``)."""
    if not isinstance(graph.find(node), BarrierNode):
        raise BarrierError("decision for a node that is not a barrier", node=node)
    check_decision(decision, node)
    level, local = graph, node
    while "/" in local:
        head, _, local = local.partition("/")
        level = level.nodes[head].graph  # type: ignore[union-attr]
    if isinstance(decision, Modify) and level.schema is not None:
        level.schema.check_patch({decision.key: decision.value}, node=node)
    elif isinstance(decision, Modify) and durable:
        check_value(decision.key, decision.value, f"Modify for barrier {node!r} writes")
    if isinstance(decision, Reroute):
        check_target(node, level.out[local], decision.target)
