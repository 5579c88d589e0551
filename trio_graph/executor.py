"""``Executor``: run graphs as streams of events, resume and fork stored runs.

Runtime layer. ``stream()`` is an async context manager that opens a nursery,
starts the run's :class:`~trio_graph.loop.Loop` in it and yields a
:class:`~trio_graph.run.Run`; leaving the block cancels whatever is still running,
so no task outlives it. ``run()`` is the one-call form.
"""

from __future__ import annotations

import contextlib
import logging
import uuid
from collections.abc import AsyncIterator, Mapping
from typing import Any

import trio

from . import events as ev
from .checkpoint import Checkpoint, CheckpointPolicy
from .decisions import BarrierId, Decision
from .errors import CheckpointError, GraphChanged, InvalidGraph
from .graph import Graph
from .loop import Loop, registry_from
from .run import Run
from .serde import check_json
from .state import check_state
from .stores.continuation import continuing
from .stores.protocol import Store
from .subgraph import patch_checkpoint

log = logging.getLogger("trio_graph")


class Executor:
    """Runs graphs. ``max_steps`` bounds every run (resumes included); ``store`` and
    ``policy`` enable checkpoints; ``buffer`` is the event channel's capacity."""

    def __init__(
        self,
        *,
        max_steps: int = 50,
        store: Store | None = None,
        policy: CheckpointPolicy | None = None,
        buffer: int = 256,
    ) -> None:
        if not isinstance(max_steps, int) or max_steps < 1:
            raise ValueError(f"max_steps must be a positive int, got {max_steps!r}")
        if not isinstance(buffer, int) or buffer < 1:
            raise ValueError(f"buffer must be a positive int, got {buffer!r}")
        self.max_steps = max_steps
        self.store = store
        self.policy = policy or CheckpointPolicy()
        self.buffer = buffer

    # -- starting runs -----------------------------------------------------------
    @contextlib.asynccontextmanager
    async def stream(
        self, graph: Graph, state: Mapping[str, Any], *, trace_id: str | None = None
    ) -> AsyncIterator[Run]:
        """Start ``graph`` on ``state``; yield the :class:`Run` to iterate and steer."""
        state = check_state(state)
        if self.store is not None:  # refuse what the store would not give back
            check_json(state, where="the initial state holds")
        loop = Loop(
            graph,
            state,
            max_steps=self.max_steps,
            store=self.store,
            policy=self.policy,
            trace_id=trace_id or uuid.uuid4().hex,
            current=graph.start,
        )
        async with self._drive(loop) as run:
            yield run

    @contextlib.asynccontextmanager
    async def resume(
        self,
        graph: Graph,
        trace_id: str,
        *,
        force: bool = False,
        decisions: Mapping[BarrierId, Decision] | None = None,
    ) -> AsyncIterator[Run]:
        """Continue a stored run at its latest checkpoint's next node, under a new trace id.

        The state **and step count** are restored (``max_steps`` cannot be dodged); a run
        that stopped at a barrier waits at that same occurrence; finished branches of an
        interrupted fan-out are not run again. ``decisions`` are applied as ``run.decide``.
        """
        # On a queue store, continuing is exclusive (RunBusy for a second process).
        async with continuing(self._need_store("resume"), trace_id) as store:
            checkpoint = await store.latest(trace_id)
            if checkpoint is None:
                raise CheckpointError(f"no checkpoint for run {trace_id!r}")
            loop = self._loop_from(graph, checkpoint, force=force, store=store)
            for barrier_id, decision in (decisions or {}).items():
                loop.decide(barrier_id, decision)
            async with self._drive(loop) as run:
                yield run

    @contextlib.asynccontextmanager
    async def fork(
        self,
        graph: Graph,
        checkpoint_id: str,
        patch: Mapping[str, Any] | None = None,
        *,
        force: bool = False,
    ) -> AsyncIterator[Run]:
        """A new run from any checkpoint, with ``patch`` overwriting keys (no reducers)."""
        store = self._need_store("fork")
        checkpoint = await store.load(checkpoint_id)
        if patch:  # into the run's state and the subgraph frames the keys belong to
            patch = check_state(patch)
            check_json(patch, where=f"the patch of checkpoint {checkpoint_id!r} holds")
            checkpoint = patch_checkpoint(graph, checkpoint, patch)
        loop = self._loop_from(graph, checkpoint, force=force)
        async with self._drive(loop) as run:
            yield run

    async def run(
        self,
        graph: Graph,
        state: Mapping[str, Any],
        *,
        decisions: Mapping[BarrierId | str, Decision] | None = None,
    ) -> ev.RunResult:
        """Run to completion and return the result, or raise the terminal error.

        A barrier with no timeout needs a wildcard decision in ``decisions`` (keyed by
        the node's name); otherwise use ``stream()`` to answer it.
        """
        decisions = dict(decisions or {})
        waiting = [
            path
            for path in graph.barriers()  # subgraph barriers as "sub/node" paths
            if getattr(graph.find(path), "timeout", None) is None and path not in decisions
        ]
        if waiting:
            raise InvalidGraph(
                graph.name,
                [
                    f"barrier {name!r} has no timeout and no decision: run() cannot answer "
                    "it; use executor.stream() and run.decide(), give it a timeout, or pass "
                    f"decisions={{{name!r}: Approve()}}"
                    for name in waiting
                ],
            )
        async with self.stream(graph, state) as run:
            for key, decision in decisions.items():
                if isinstance(key, BarrierId):
                    run.decide(key, decision)
                else:
                    run.decide_all(key, decision)
            return await run.wait()

    # -- internals ---------------------------------------------------------------
    @contextlib.asynccontextmanager
    async def _drive(self, loop: Loop) -> AsyncIterator[Run]:
        send, receive = trio.open_memory_channel[ev.Event](self.buffer)
        run = Run(loop, receive)
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(loop.main, send)
                try:
                    yield run
                finally:
                    nursery.cancel_scope.cancel()
                    receive.close()
        except BaseExceptionGroup as group:
            # The loop never raises except Cancelled: give the caller the bare error.
            errors = [e for e in group.exceptions if not isinstance(e, trio.Cancelled)]
            if len(errors) == 1:
                error = errors[0]
                raise error from error.__cause__  # keep the cause; hide the group
            raise

    def _need_store(self, what: str) -> Store:
        if self.store is None:
            raise CheckpointError(f"{what}() needs an Executor with a store")
        return self.store

    def _loop_from(
        self, graph: Graph, checkpoint: Checkpoint, *, force: bool, store: Store | None = None
    ) -> Loop:
        if checkpoint.graph_hash != graph.hash():
            changed = GraphChanged(graph.name, checkpoint.graph_hash, graph.hash())
            if not force:
                raise changed
            log.warning("resuming despite graph change: %s", changed)
        if checkpoint.next_node is None:
            raise CheckpointError(
                f"run {checkpoint.trace_id!r} has nothing left to run (status "
                f"{checkpoint.status.value})",
                checkpoint_id=checkpoint.checkpoint_id,
            )
        return Loop(
            graph,
            dict(checkpoint.state),
            max_steps=self.max_steps,
            store=store or self.store,
            policy=self.policy,
            trace_id=uuid.uuid4().hex,
            current=checkpoint.next_node,
            step=checkpoint.step,
            registry=registry_from(checkpoint),
            branches=checkpoint.branches,
            resumed_from=checkpoint.trace_id,
            resume_count=checkpoint.resume_count + 1,
            frames=checkpoint.frames,
        )
