"""A typed graph's checks at build and its store boundary (DESIGN §16).

Model layer: no trio, no I/O. :func:`typed_problems` is what ``build()`` refuses in a
graph with a typed state; :func:`to_store` hands a store a typed run's checkpoint with
JSON types (O(update): the state is unstructured only where the store reads it), and
:func:`restored` gives a loaded checkpoint its types back.
"""

from __future__ import annotations

import typing
from collections.abc import Iterator, Mapping
from typing import Any

import attrs

from ..reducers import Reducer
from .checkpoint import BranchResult, Changes, Checkpoint, Frame, StoredDelta
from .graph import BarrierNode, Graph, Node, SubgraphNode
from .schema import StateSchema, checker, reducer_problem


def typed_schema(
    cls: type | None,
    nodes: Mapping[str, Node],
    reducers: Mapping[str, Reducer],
    problems: list[str],
) -> tuple[StateSchema | None, dict[str, Reducer]]:
    """The schema of ``GraphBuilder(state=cls)`` (None: untyped) and all the graph's
    reducers, those declared on fields included; what is wrong goes to ``problems``."""
    if cls is None:
        return None, dict(reducers)
    try:
        schema = StateSchema.of(cls)
    except (TypeError, NameError) as exc:
        problems.append(f"state={cls!r:.80}: {exc}")
        return None, dict(reducers)
    problems += typed_problems(schema, nodes, reducers)
    return schema, {**schema.declared_reducers(), **reducers}


def typed_problems(
    schema: StateSchema, nodes: Mapping[str, Node], reducers: Mapping[str, Reducer]
) -> list[str]:
    """What ``build()`` refuses in a typed graph: reducers of keys that are not fields
    or declared twice, built-in reducers on fields of the wrong kind, barrier keys that
    are not fields, a subgraph handing up keys that are not fields."""
    problems = schema.problems()
    where = schema.cls.__name__
    for key in reducers:
        if key not in schema.fields:
            problems.append(f"reducer for key {key!r}: not a field of {where}")
        elif schema.fields[key].reducer is not None:
            problems.append(f"key {key!r} has two reducers (its field declares one)")
    for key, reducer in {**schema.declared_reducers(), **reducers}.items():
        if key in schema.fields and (problem := reducer_problem(schema.fields[key], reducer)):
            problems.append(problem)
    for node in nodes.values():
        problems += _node_problems(schema, node)
    return problems


def _node_problems(schema: StateSchema, node: Node) -> list[str]:
    where = schema.cls.__name__
    if isinstance(node, BarrierNode):
        return [
            f"barrier {node.name!r}: its {label} {key!r} is not a field of {where} "
            f"(pass {label}= naming a field)"
            for label, key in (("approved_key", node.approved_key), ("reason_key", node.reason_key))
            if key not in schema.fields
        ]
    if isinstance(node, SubgraphNode) and node.output is None:
        child = node.graph.schema
        keys = child.fields if child is not None else {}
        return [
            f"subgraph {node.name!r}: hands up key {key!r}, not a field of {where} "
            "(give output= to map its state to fields)"
            for key in keys
            if key not in schema.fields
        ]
    return []


class _Unstructured(Mapping[str, Any]):
    """A typed state as a store keeps it, each value unstructured when the store reads
    it: a store that writes only the deltas never pays for the whole state."""

    __slots__ = ("_state",)

    def __init__(self, state: Mapping[str, Any]) -> None:
        self._state = state

    def __getitem__(self, key: str) -> Any:
        return checker.unstructure(self._state[key])

    def __iter__(self) -> Iterator[str]:
        return iter(self._state)

    def __len__(self) -> int:
        return len(self._state)


def is_typed(graph: Graph) -> bool:
    """Whether ``graph`` or a subgraph inside it has a typed state."""
    return graph.schema is not None or any(
        isinstance(n, SubgraphNode) and is_typed(n.graph) for n in graph.nodes.values()
    )


def to_store(checkpoint: Checkpoint, changes: Changes) -> tuple[Checkpoint, Changes]:
    """``checkpoint`` and ``changes`` of a typed run as a store keeps them (JSON types):
    O(update) here; the state is unstructured only if the store reads it."""
    plain = checker.unstructure
    stored = attrs.evolve(
        checkpoint,
        state=typing.cast(dict[str, Any], _Unstructured(checkpoint.state)),
        branches=[BranchResult(b.branch, plain(b.updates)) for b in checkpoint.branches],
        frames=[
            Frame(f.node, f.next_node, f.step, plain(f.state), plain(f.collected))
            for f in checkpoint.frames
        ],
    )
    deltas = tuple(StoredDelta(d.key, plain(d.value), d.reducer) for d in changes.deltas)
    return stored, attrs.evolve(changes, deltas=deltas)


def restored(graph: Graph, checkpoint: Checkpoint) -> Checkpoint:
    """A loaded ``checkpoint`` with its typed states structured again (the run's and
    each typed subgraph frame's); untyped levels as they are."""
    where = f"checkpoint {checkpoint.checkpoint_id!r}"
    state = checkpoint.state
    if graph.schema is not None:
        state = graph.schema.structure_state(state, where)
    frames, level = [], graph
    for frame in checkpoint.frames:
        node = level.nodes.get(frame.node)
        if not isinstance(node, SubgraphNode):
            break
        level = node.graph
        if level.schema is not None:
            frame = attrs.evolve(
                frame, state=level.schema.structure_state(frame.state, f"{where}, {frame.node}")
            )
        frames.append(frame)
    frames += checkpoint.frames[len(frames) :]
    return attrs.evolve(checkpoint, state=state, frames=frames)
