"""Subgraph nodes at run time: a child loop run inline, in its parent's task.

Runtime layer. The child shares the run's trace id, span counter, event channel,
decision registry and (through the root loop) the store; its events go out with
``"sub/node"`` paths and its barriers are decided with the parent's ``run.decide``.
Checkpoints taken while it runs record it as a ``Frame``, so a resume continues
inside the subgraph rather than re-running it from its start.
"""

from __future__ import annotations

import attrs

from . import events as ev
from .graph import SubgraphNode
from .loop import Loop
from .results import Outcome, normalise
from .state import check_state


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
