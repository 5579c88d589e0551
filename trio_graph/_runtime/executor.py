"""``Executor``: run graphs as streams of events, resume and fork stored runs.

Runtime layer. ``stream()`` is an async context manager that opens a nursery,
starts the run's :class:`~trio_graph._runtime.loop.StepLoop` in it and yields a
:class:`~trio_graph._runtime.run.Run`; leaving the block cancels whatever is still running,
so no task outlives it. ``run()`` is the one-call form.
"""

from __future__ import annotations

import contextlib
import logging
import math
import time
import uuid
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any

import attrs
import trio

from .. import events as ev
from .._model.checkpoint import Checkpoint, CheckpointPolicy
from .._model.decisions import BarrierId, Decision, check_decision
from .._model.graph import Graph, SubgraphNode
from .._model.jsonvalue import check_values
from .._model.patch import patch_checkpoint
from .._model.run_state import RunState
from .._model.schema import InitialState
from .._model.state import check_state
from .._model.steering import check_barrier_id
from .._model.typed import is_typed, restored
from ..errors import BarrierError, CheckpointError, GraphChanged, InvalidGraph
from ..stores.continuation import continuing, starting
from ..stores.protocol import Store
from .groups import lone_error
from .guest import require_trio
from .loop import StepLoop
from .resources import Factory, Resources
from .run import Run
from .services import Services, check_limiters, checked_factories, seconds, shared_limiters
from .steering import POLL, Steered, follow_store

log = logging.getLogger("trio_graph")

FIRST_READ = 1.0
"""Seconds a run on a steered store waits for the first read of its steering at most."""


class Executor:
    """Runs graphs. ``max_steps`` bounds every run (resumes included); ``store`` and
    ``policy`` enable checkpoints; ``buffer`` is the event channel's capacity;
    ``log_limit`` how many of the last entries a result's execution log keeps;
    ``wall_clock`` gives epoch seconds for barrier deadlines (injectable for tests);
    ``deadline`` is an absolute ``trio.current_time()`` deadline of every run it starts
    (``timeout=`` of one run is relative to its start; the earlier of the two holds, and
    node timeouts nest inside it). A run that passes it ends in ``RunTimeout``, stopped
    like a cancel: with a store it can be resumed (under a new deadline).
    ``resources`` maps names to factories of async context managers: each run opens its
    own on its first ``ctx.resource(name)`` and closes them when it is over.
    ``limiters`` maps names to slot counts: one ``trio.CapacityLimiter`` per name, shared
    by every run and branch of this executor naming it (``task(..., limiter=name)``).

    ``policy`` is the policy of the runs it starts. A run's policy is stored with its
    checkpoints (``Checkpoint.policy``), so a resume or a fork keeps the run's own
    wherever it happens (the CLI, a worker); ``policy=`` on ``resume``/``fork`` replaces
    it (and is stored from then on). A checkpoint stored before policies were (None)
    continues under this executor's ``policy``."""

    def __init__(
        self,
        *,
        max_steps: int = 50,
        store: Store | None = None,
        policy: CheckpointPolicy | None = None,
        buffer: int = 256,
        log_limit: int = 1000,
        wall_clock: Callable[[], float] = time.time,
        deadline: float | None = None,
        resources: Mapping[str, Factory] | None = None,
        limiters: Mapping[str, int] | None = None,
    ) -> None:
        if not isinstance(max_steps, int) or max_steps < 1:
            raise ValueError(f"max_steps must be a positive int, got {max_steps!r}")
        if not isinstance(buffer, int) or buffer < 1:
            raise ValueError(f"buffer must be a positive int, got {buffer!r}")
        if not isinstance(log_limit, int) or isinstance(log_limit, bool) or log_limit < 0:
            raise ValueError(f"log_limit must be an int >= 0, got {log_limit!r}")
        self.max_steps = max_steps
        self.store = store
        self.policy = policy or CheckpointPolicy()
        self.buffer = buffer
        self.log_limit = log_limit
        self.wall_clock = wall_clock
        self.deadline = seconds("deadline", deadline, absolute=True)
        self.resources = checked_factories(resources or {})
        self.limiters = shared_limiters(limiters or {})

    # -- starting runs -----------------------------------------------------------
    @contextlib.asynccontextmanager
    async def stream(
        self,
        graph: Graph,
        state: InitialState,
        *,
        trace_id: str | None = None,
        timeout: float | None = None,  # noqa: ASYNC109 - the run's own deadline (§14)
    ) -> AsyncIterator[Run]:
        """Start ``graph`` on ``state``; yield the :class:`Run` to iterate and steer."""
        require_trio("Executor.stream()/run()")
        check_limiters(graph, self.limiters)
        if graph.schema is not None:  # checked by the schema; the store keeps JSON types
            state = graph.schema.initial(state)
        else:
            state = check_state(state)
            if self.store is not None:  # refuse what the store would not give back
                check_values(state, where="the initial state holds")
        run_state = RunState(
            graph,
            state,
            trace_id=trace_id or uuid.uuid4().hex,
            max_steps=self.max_steps,
            policy=self.policy,
            durable=self.store is not None,
            log_limit=self.log_limit,
        )
        # On a queue store the run is owned live from its start: its job is held.
        async with starting(self.store, run_state.run_id, graph.name) as store:
            loop = StepLoop(run_state, store, wall_clock=self.wall_clock)
            async with self._started(loop, timeout) as run:
                yield run

    @contextlib.asynccontextmanager
    async def resume(
        self,
        graph: Graph,
        run_id: str,
        *,
        force: bool = False,
        decisions: Mapping[BarrierId, Decision] | None = None,
        policy: CheckpointPolicy | None = None,
        timeout: float | None = None,  # noqa: ASYNC109 - the run's own deadline (§14)
    ) -> AsyncIterator[Run]:
        """Continue a stored run at its latest checkpoint's next node, under the same run
        id and a new trace id (``run_id`` may also be any of its segments' trace ids).

        The state **and step count** are restored (``max_steps`` cannot be dodged); a run
        that stopped at a barrier waits at that same occurrence; finished branches of an
        interrupted fan-out are not run again. ``decisions`` are applied as ``run.decide``;
        ``policy`` replaces the run's stored checkpoint policy.
        """
        require_trio("Executor.resume()")
        check_limiters(graph, self.limiters)
        store = self._need_store("resume")
        found = await store.latest(run_id)
        if found is None:
            raise CheckpointError(f"no checkpoint for run {run_id!r}")
        # On a queue store, continuing is exclusive (RunBusy for a second process): the
        # hold is of the run's current segment, whose latest checkpoint is read again.
        async with continuing(store, found.trace_id) as store:
            checkpoint = await store.latest(found.run_id)
            if checkpoint is None:
                raise CheckpointError(f"no checkpoint for run {run_id!r}")
            loop = self._loop_from(graph, checkpoint, force=force, store=store, policy=policy)
            for barrier_id, decision in (decisions or {}).items():
                loop.decide(barrier_id, decision)
            async with self._started(loop, timeout) as run:
                yield run

    @contextlib.asynccontextmanager
    async def fork(
        self,
        graph: Graph,
        checkpoint_id: str,
        patch: Mapping[str, Any] | None = None,
        *,
        force: bool = False,
        policy: CheckpointPolicy | None = None,
        timeout: float | None = None,  # noqa: ASYNC109 - the run's own deadline (§14)
    ) -> AsyncIterator[Run]:
        """A new run from any checkpoint, with ``patch`` overwriting keys (no reducers),
        under the checkpoint's stored policy unless ``policy`` is given."""
        require_trio("Executor.fork()")
        check_limiters(graph, self.limiters)
        store = self._need_store("fork")
        checkpoint = await store.load(checkpoint_id)
        if patch:  # into the run's state and the subgraph frames the keys belong to
            patch = check_state(patch)
            if not is_typed(graph):  # a typed level checks its keys as it is restored
                check_values(patch, where=f"the patch of checkpoint {checkpoint_id!r} holds")
            checkpoint = patch_checkpoint(graph, checkpoint, patch)
        checkpoint = attrs.evolve(checkpoint, deadline=None)  # a new run: a new deadline
        loop = self._loop_from(graph, checkpoint, force=force, fork=True, policy=policy)
        async with self._started(loop, timeout) as run:
            yield run

    async def run(
        self,
        graph: Graph,
        state: InitialState,
        *,
        decisions: Mapping[BarrierId | str, Decision] | None = None,
        timeout: float | None = None,  # noqa: ASYNC109 - the run's own deadline (§14)
    ) -> ev.RunResult:
        """Run to completion and return the result, or raise the terminal error.

        ``decisions`` are keyed by a barrier's name (or ``"sub/node"`` path: a wildcard
        answering every occurrence) or by a ``BarrierId`` (that occurrence only). Every
        barrier with no timeout must be answered wherever the run can reach it: a
        wildcard, or a ``BarrierId`` for occurrence 1 when the barrier is on no cycle (it
        is reached at most once). Otherwise ``InvalidGraph``; use ``stream()`` to answer
        as the run goes. A key that names no barrier is a ``BarrierError`` naming it.
        ``timeout`` (seconds from now) bounds the run: ``RunTimeout`` when it passes.
        """
        require_trio("Executor.run()")
        decisions = dict(decisions or {})
        check_run_decisions(graph, decisions)
        async with self.stream(graph, state, timeout=timeout) as run:
            for key, decision in decisions.items():
                if isinstance(key, BarrierId):
                    run.decide(key, decision)
                else:
                    run.decide_all(key, decision)
            return await run.wait()

    # -- internals ---------------------------------------------------------------
    @contextlib.asynccontextmanager
    async def _started(self, loop: StepLoop, within: float | None) -> AsyncIterator[Run]:
        """Run ``loop`` in a nursery of its own while the caller holds the :class:`Run`,
        under the earlier of the executor's deadline and ``within`` seconds from now."""
        limit = seconds("timeout", within)
        deadline = min(
            math.inf if self.deadline is None else self.deadline,
            math.inf if limit is None else trio.current_time() + limit,
        )
        resources = Resources(self.resources)
        loop.services = Services(deadline, resources if self.resources else None, self.limiters)
        send, receive = trio.open_memory_channel[ev.Event](self.buffer)
        run = Run(loop, receive)
        try:
            async with trio.open_nursery() as nursery:
                steered = self.store
                main: tuple[Any, ...] = (loop.main, send)
                if isinstance(steered, Steered):
                    main = (_followed, loop, steered, send)
                if self.resources:  # the run's resource keeper beside its loop
                    main = (resources.serve, *main)
                nursery.start_soon(*main)
                try:
                    yield run
                finally:
                    nursery.cancel_scope.cancel()
                    receive.close()
        except BaseExceptionGroup as group:
            # The loop never raises except Cancelled: give the caller the bare error.
            error = lone_error(group)
            if error is not None:
                raise error from error.__cause__  # keep the cause; hide the group
            raise

    def _need_store(self, what: str) -> Store:
        if self.store is None:
            raise CheckpointError(f"{what}() needs an Executor with a store")
        return self.store

    def _loop_from(
        self,
        graph: Graph,
        checkpoint: Checkpoint,
        *,
        force: bool,
        store: Store | None = None,
        fork: bool = False,
        policy: CheckpointPolicy | None = None,
    ) -> StepLoop:
        if checkpoint.graph_hash != graph.hash():
            changed = GraphChanged(graph.name, checkpoint.graph_hash, graph.hash())
            if not force:
                raise changed
            log.warning("resuming despite graph change: %s", changed)
        if checkpoint.next_node is None:
            raise CheckpointError(
                f"run {checkpoint.run_id!r} has nothing left to run (status "
                f"{checkpoint.status.value})",
                checkpoint_id=checkpoint.checkpoint_id,
            )
        run_state = RunState.resume(
            graph,
            restored(graph, checkpoint),  # typed states get their types back
            trace_id=uuid.uuid4().hex,
            max_steps=self.max_steps,
            policy=policy or checkpoint.policy or self.policy,
            log_limit=self.log_limit,
            fork=fork,
        )
        return StepLoop(run_state, store or self.store, wall_clock=self.wall_clock)


async def _followed(loop: StepLoop, store: Steered, send: trio.MemorySendChannel[ev.Event]) -> None:
    """The run's loop, and beside it what is sent to the run through the store
    (:func:`~trio_graph._runtime.steering.follow_store`), until the run ends."""
    async with trio.open_nursery() as nursery:
        ready = trio.Event()
        nursery.start_soon(follow_store, loop, store, loop.state.run_id, POLL, ready)
        # The first read first (a decision kept while nobody executed the run answers it
        # before its first step), for at most FIRST_READ; shielded, so that a cancel
        # meanwhile reaches the loop, which records it (and the run ends done).
        with trio.CancelScope(shield=True), trio.move_on_after(FIRST_READ):
            await ready.wait()
        await loop.main(send)
        nursery.cancel_scope.cancel()


def check_run_decisions(graph: Graph, decisions: Mapping[BarrierId | str, Decision]) -> None:
    """Refuse ``run(decisions=...)`` that names no barrier, or leaves one waiting forever.

    A key naming no barrier (a typo) is a ``BarrierError`` naming that key; a barrier
    with no timeout that the decisions do not answer at every arrival is a problem of
    the ``InvalidGraph`` raised (a ``BarrierId`` key answers one occurrence, so it is
    enough only for a barrier that no cycle brings back).
    """
    barriers = graph.barriers()  # subgraph barriers as "sub/node" paths
    for key, decision in decisions.items():
        _check_key(graph.name, barriers, key, decision)
    exact = {key for key in decisions if isinstance(key, BarrierId)}
    problems = []
    for path in barriers:
        if getattr(graph.find(path), "timeout", None) is not None or path in decisions:
            continue
        if BarrierId(path, 1) not in exact:
            first = f" for {path}#1" if any(k.node == path for k in exact) else ""
            problems.append(
                f"barrier {path!r} has no timeout and no decision{first}: run() cannot answer it"
            )
        elif _recurs(graph, path):
            problems.append(
                f"barrier {path!r} has no timeout and no decision for its arrivals after "
                f"{path}#1: it is on a cycle, so run() cannot answer them"
            )
        else:
            continue
        problems[-1] += (
            "; use executor.stream() and run.decide(), give it a timeout, or pass "
            f"decisions={{{path!r}: Approve()}}"
        )
    if problems:
        raise InvalidGraph(graph.name, problems)


def _check_key(graph: str, barriers: list[str], key: object, decision: Decision) -> None:
    """A ``decisions=`` key must name a barrier (a ``BarrierId``'s occurrence from 1)."""
    node = key.node if isinstance(key, BarrierId) else key
    if not isinstance(node, str):
        raise BarrierError(
            f"decisions= keys are barrier names or BarrierIds, got {type(key).__name__} {key!r}"
        )
    if node not in barriers:
        raise BarrierError(
            f"decision for a node that is not a barrier; graph {graph!r} has barrier(s) "
            f"{', '.join(map(repr, barriers)) or 'none'}",
            node=node,
        )
    check_decision(decision, node)
    if isinstance(key, BarrierId):
        check_barrier_id(key)


def _recurs(graph: Graph, path: str) -> bool:
    """True when the node at ``path`` may run more than once in a run: it, or a subgraph
    node on its way, can reach itself along edges (of any class)."""
    head, _, rest = path.partition("/")
    if _on_cycle(graph, head):
        return True
    node = graph.nodes[head]
    return bool(rest) and isinstance(node, SubgraphNode) and _recurs(node.graph, rest)


def _on_cycle(graph: Graph, name: str) -> bool:
    seen: set[str] = set()
    todo = [e.to for e in graph.edges if e.frm == name]
    while todo:
        node = todo.pop()
        if node == name:
            return True
        if node not in seen:
            seen.add(node)
            todo += [e.to for e in graph.edges if e.frm == node]
    return False
