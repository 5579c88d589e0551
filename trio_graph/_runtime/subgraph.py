"""Subgraph nodes at run time: a child loop run inline, in its parent's task.

Runtime layer. The child shares the run's trace id, span counter, event channel,
decision registry and (through the root loop) the store; its events go out with
``"sub/node"`` paths and its barriers are decided with the parent's ``run.decide``.
Checkpoints taken while it runs record it as a ``Frame``, so a resume continues
inside the subgraph rather than re-running it from its start.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import attrs

from .. import events as ev
from .._model.checkpoint import Checkpoint, Frame
from .._model.graph import Graph, SubgraphNode
from .._model.results import Outcome, normalise
from .._model.state import check_state
from ..serde import check_json
from .loop import Loop


class ChildLoop(Loop):
    """A subgraph's loop: its events go out through the root with ``"sub/node"`` paths.

    ``prefix`` is the loop's whole path from the root (``"outer/inner/"``, built once in
    :func:`run_subgraph`), so an event is prefixed once, here, and handed straight to
    the root loop: the levels in between must not prefix it again.
    """

    async def emit(self, event: ev.Event) -> None:
        node = getattr(event, "node", None)
        if node is not None and not isinstance(event, ev.CheckpointSaved):
            event = attrs.evolve(event, node=self.prefix + node)
        await self.chain_root().emit(event)


async def run_subgraph(loop: Loop, node: SubgraphNode) -> Outcome:
    """Run a subgraph inline (same task, same nursery); its updates become ours."""
    frame = loop.frames.pop(0) if loop.frames and loop.frames[0].node == node.name else None
    if frame is not None:
        state, current, step = dict(frame.state), frame.next_node, frame.step
    else:
        start = node.input(loop.view) if node.input is not None else loop.view
        state, current, step = check_state(start), node.graph.start, 0
        if loop.store is not None and node.input is not None:  # new values: refuse as a node's
            check_json(state, where=f"the input of subgraph {loop.prefix + node.name!r} holds")
    child = ChildLoop(
        node.graph,
        state,
        max_steps=node.max_steps or loop.max_steps,
        store=loop.store,
        policy=loop.policy,
        trace_id=loop.trace_id,
        current=current,
        step=step,
        registry=loop.registry,
        # A resume hands the finished branches down with the frames: they belong to the
        # innermost frame's fan-out, however deep (the loop left with no frame uses them).
        branches=loop.resumed_branch_list() if frame is not None else None,
        frames=loop.frames if frame is not None else None,
        parent=loop,
        prefix=f"{loop.prefix}{node.name}/",
    )
    if frame is not None:
        child.collected = list(frame.collected)
        loop.frames = []
    loop.child = child
    while not await child._step():
        pass
    loop.child = None  # cleared only on success: on error the root closes its spans
    if node.output is not None:
        return normalise(node.name, node.output(child.view))
    return Outcome(list(child.collected or ()))


def patch_checkpoint(graph: Graph, checkpoint: Checkpoint, patch: Mapping[str, Any]) -> Checkpoint:
    """``checkpoint`` with a fork's ``patch`` written where each key belongs (DESIGN §8).

    The run's own state takes every key. A subgraph frame the checkpoint is in takes a
    key when it *belongs* there: the frame's state holds the key, or its subgraph node
    has no ``input`` mapping (its state started as a copy of its parent's, so they share
    their keys). A frame that takes a key must not hand its earlier writes of it back up
    on the way out: when the level above took the key too, those writes are dropped from
    the frame's collected updates; otherwise they become one write of the patched value.
    """
    state = dict(checkpoint.state)
    state.update(patch)
    frames: list[Frame] = []
    above = set(patch)  # the keys the level above took
    level: Graph | None = graph
    for frame in checkpoint.frames:
        node = level.nodes.get(frame.node) if level is not None else None
        # A graph changed since (a forced fork) may not have the node: keys held only.
        shared = isinstance(node, SubgraphNode) and node.input is None
        keys = {k for k in patch if shared or k in frame.state}
        frames.append(_patch_frame(frame, {k: patch[k] for k in keys}, above))
        above = keys
        level = node.graph if isinstance(node, SubgraphNode) else None
    return attrs.evolve(checkpoint, state=state, frames=frames)


def _patch_frame(frame: Frame, patch: Mapping[str, Any], above: set[str]) -> Frame:
    """One frame with ``patch`` applied to its state and its collected updates."""
    if not patch:
        return frame
    collected: list[tuple[str, Any]] = []
    written: set[str] = set()
    for key, value in frame.collected:
        if key not in patch:
            collected.append((key, value))
        elif key not in above and key not in written:
            written.add(key)
            collected.append((key, patch[key]))
    return attrs.evolve(frame, state={**frame.state, **patch}, collected=collected)
