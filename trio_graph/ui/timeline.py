"""What a run's checkpoints say happened: one :class:`Entry` per checkpoint, oldest first.

Pure (no I/O). A store keeps checkpoints, not every step (the default policy saves at
barriers and at the end; ``CheckpointPolicy(every_step=True)`` saves each step), so the
timeline is as fine as the checkpoints: each entry names the node the run went on from
at the previous checkpoint (``from_node``), the steps taken since, the time they took,
the keys whose values changed (the diff of the two full states) and, for a fan-out
interrupted there, its finished branches.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import attrs

from .._cli.showing import StateDiff
from .._model.checkpoint import Checkpoint, RunStatus
from .._model.graph import Graph, ParallelNode


@attrs.frozen
class Entry:
    """One checkpoint of the run and what changed since the one before it."""

    number: int
    """Its position, 1 the oldest (as ``trio-graph history`` numbers them)."""
    checkpoint: Checkpoint
    from_node: str | None
    """The node the run went on from at the previous checkpoint (the graph's start for
    the first one, when the graph is known; else None)."""
    steps: int
    """Steps completed since the previous checkpoint."""
    duration: float | None
    """Seconds since the previous checkpoint (None for the first one)."""
    diff: StateDiff
    """The state's changes since the previous checkpoint (the first: from empty)."""
    branches: str
    """Progress of a fan-out interrupted at ``next_node`` (``1/2 done: style``), or ``""``."""

    @property
    def changed_keys(self) -> list[str]:
        """Keys added, changed or removed, in that order."""
        return [*self.diff.added, *self.diff.changed, *self.diff.removed]


def entries(checkpoints: Sequence[Checkpoint], graph: Graph | None = None) -> list[Entry]:
    """The timeline of ``checkpoints`` (oldest first), with ``graph`` when it is known."""
    out: list[Entry] = []
    previous: Checkpoint | None = None
    for number, cp in enumerate(checkpoints, 1):
        if previous is None:
            start = graph.start if graph is not None else None
            before: dict[str, object] = {}
            steps, duration = cp.step, None
        else:
            start, before = previous.next_node, previous.state
            steps, duration = cp.step - previous.step, max(0.0, cp.created_at - previous.created_at)
        diff = StateDiff.between(before, cp.state)
        out.append(Entry(number, cp, start, steps, duration, diff, branch_progress(cp, graph)))
        previous = cp
    return out


def branch_progress(checkpoint: Checkpoint, graph: Graph | None) -> str:
    """``"1/2 done: style"`` for a checkpoint inside a fan-out, else ``""``."""
    if not checkpoint.branches:
        return ""
    done = [b.branch for b in checkpoint.branches]
    node = graph.nodes.get(checkpoint.next_node or "") if graph is not None else None
    total = str(len(node.branches)) if isinstance(node, ParallelNode) else "?"
    return f"{len(done)}/{total} done: {', '.join(done)}"


def visited(checkpoints: Sequence[Checkpoint]) -> list[str]:
    """The nodes the checkpoints show the run at, in the order first seen (a run that
    completed has run its last checkpoint's previous node, which is included)."""
    seen: dict[str, None] = {}
    for cp in checkpoints:
        if cp.next_node is not None:
            seen.setdefault(cp.next_node, None)
    return list(seen)


def transitions(checkpoints: Sequence[Checkpoint]) -> list[tuple[str, str]]:
    """The moves between consecutive checkpoints' next nodes (``a`` then ``b``), each once."""
    moves: dict[tuple[str, str], None] = {}
    nodes = [cp.next_node for cp in checkpoints if cp.next_node is not None]
    for a, b in itertools.pairwise(nodes):
        if a != b:
            moves.setdefault((a, b), None)
    return list(moves)


def node_marks(checkpoints: Sequence[Checkpoint], graph: Graph | None = None) -> dict[str, str]:
    """Each node's mark for the drawing: where the run has been (``visited``), where it
    is (``current``; ``waiting`` at a barrier; ``failed`` where it failed)."""
    if not checkpoints:
        return {}
    marks = dict.fromkeys(visited(checkpoints[:-1]), "visited")
    last = checkpoints[-1]
    here = (last.next_node or "").split("/")[0]
    if last.status == RunStatus.COMPLETED:
        if graph is not None:
            marks[graph.end] = "visited"
    elif last.status == RunStatus.WAITING and last.pending_barrier is not None:
        marks[last.pending_barrier.node.split("/")[0]] = "waiting"
    elif here:
        marks[here] = "failed" if last.status == RunStatus.FAILED else "current"
    return marks
