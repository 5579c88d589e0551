"""A fork's patch, written where each key belongs in a stored run (DESIGN §8).

Model layer: no trio import. ``executor.fork(graph, checkpoint_id, patch)`` overwrites
keys of the checkpoint it starts from; when the checkpoint is inside subgraphs, a key goes
into the subgraph levels (frames) it belongs to, and survives their way out.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import attrs

from .checkpoint import Checkpoint, Frame
from .graph import Graph, SubgraphNode


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
