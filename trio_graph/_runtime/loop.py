"""The step loop of one run: a thin Trio shell around its :class:`RunState`.

Runtime layer. A :class:`StepLoop` is started by ``executor.stream()`` as a child task
(:meth:`StepLoop.main`) with the send side of the run's event channel. It does the I/O
only: every rule of what the run does next is the pure ``RunState``'s (as httpcore
drives h11). One step, as DESIGN §5 reads (:meth:`StepLoop.step`): honour a pending
cancel and checkpoint request; ``begin`` (budget, node lookup, span); ``NodeStart``; run
the node by its kind (:data:`RUNNERS`; a plain task inline, see ``TaskNode.plain``);
``finish`` (commit, route); its events; the checkpoint the policy wants. A subgraph
node runs its steps inline, one level down.
Events go out through an :class:`~trio_graph._runtime.outbox.Outbox`. Exceptions become
the terminal event once, in :meth:`StepLoop.main`; store failures become
``CheckpointError`` once, in :func:`~trio_graph._runtime.saving.save`.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

import trio
from trio.lowlevel import checkpoint as trio_checkpoint
from trio.lowlevel import checkpoint_if_cancelled

from .. import events as ev
from .._model.checkpoint import BranchResult, RunStatus
from .._model.decisions import BarrierId, Decision
from .._model.graph import BarrierNode, ConditionNode, MapNode, ParallelNode, SubgraphNode, TaskNode
from .._model.levels import Step
from .._model.results import NEXT, Outcome, normalise
from .._model.run_state import RunState
from .._model.steering import check_barrier_id
from .._model.typed import is_typed
from ..errors import (
    BarrierError,
    Cancelled,
    CheckpointError,
    GraphError,
    NodeExecutionFailed,
)
from .barriers import run_barrier
from .calls import call, call_task, failure
from .context import NodeContext
from .fanout import Fork, run_parallel
from .groups import only_cancelled
from .outbox import UNSENT, ConsumerGone, Outbox, not_sent, not_started
from .saving import save
from .services import Services

if TYPE_CHECKING:
    from ..stores.protocol import Store

_YIELD_EVERY = 16


class StepLoop:
    """Runs one run's steps: drives its :class:`RunState`, sends its events, saves."""

    services = Services()
    """What the executor gives the run (its deadline, resources, limiters; DESIGN §14)."""

    def __init__(
        self, state: RunState, store: Store | None, *, wall_clock: Callable[[], float] = time.time
    ) -> None:
        self.state = state
        self.store = store
        self.wall_clock = wall_clock
        """Wall-clock epoch seconds, for barrier deadlines and resolution times (DESIGN §8);
        trio's clock still times the waits themselves."""
        self.cancel_scope = trio.CancelScope()
        self.result: ev.RunResult | None = None
        self.error: GraphError | None = None
        self.finished = False
        self.emit: Callable[[ev.Event], Awaitable[None]] = not_started  # Outbox.put, in main
        self._nowait: Callable[[ev.Event], None] = not_sent  # Outbox.send_nowait, in main
        self._now: Callable[[], float] = trio.current_time  # the run's clock, in main
        self._limited = True  # some node may hold a shared limiter (set in main)
        self.wakeup: trio.Event | None = None  # set when a decision may answer the wait
        self._started = 0.0
        self._final = False  # cancelled through the store
        self.typed = is_typed(state.graph)

    @property
    def trace_id(self) -> str:
        return self.state.trace_id

    # -- steering (plain methods, called from the consumer's task) -----------------
    def decide(self, barrier_id: BarrierId, decision: Decision) -> None:
        bid = check_barrier_id(barrier_id)
        self._check(bid.node, decision)
        registry = self.state.registry
        if bid in registry.resolved:
            raise BarrierError(f"barrier {bid} was already resolved", node=bid.node)
        registry.submit(bid, decision)
        self._wake(bid.node)

    def decide_all(self, node: str, decision: Decision) -> None:
        self._check(node, decision)
        self.state.registry.submit_all(node, decision)
        self._wake(node)

    def _check(self, node: str, decision: Decision) -> None:
        if self.finished or self.result is not None or self.error is not None:
            # result/error are set before the terminal event is sent: once the outcome is
            # settled no decision can matter, so none is accepted.
            raise BarrierError("the run has finished; decision not applied", node=node)
        self.state.check_decision(node, decision)

    def _wake(self, node: str) -> None:
        waiting = self.state.waiting()
        if self.wakeup is not None and waiting is not None and waiting.node == node:
            self.wakeup.set()

    def cancel(self, *, cancelled: bool = False) -> None:
        """Stop the run at once; ``cancelled``: for good (sent through the store), its
        checkpoint says CANCELLED rather than where to resume."""
        self._final |= cancelled
        self.cancel_scope.cancel()

    def request_checkpoint(self) -> None:
        if self.store is None:
            raise CheckpointError("request_checkpoint() needs an Executor with a store")
        if not self.state.policy.on_request:
            raise CheckpointError(
                "request_checkpoint() refused: the executor's CheckpointPolicy has on_request=False"
            )
        self.state.checkpoint_requested = True

    # -- the run -------------------------------------------------------------------
    async def main(self, send: trio.MemorySendChannel[ev.Event]) -> None:
        """Run to one terminal event, then close the channel."""
        outbox = Outbox(send)
        self.emit, self._nowait = outbox.put, outbox.send_nowait
        # The clock itself: trio.current_time() looks it up through the run context on
        # every call, twice per step.
        self._now = trio.lowlevel.current_clock().current_time
        self._limited = bool(self.services.limiters) or bool(self.state.graph.limiters())
        self._started = trio.current_time()
        terminal: ev.Event | None = None
        try:
            with self.cancel_scope, trio.CancelScope(deadline=self.services.deadline) as limit:
                terminal = await self._run()
            if terminal is None:  # our own scope was cancelled: run.cancel(), or the deadline
                where = self.services.stopped(self.state, limit.cancelled_caught, self._started)
                terminal = await self._fail(where)
            await self.emit(terminal)
        except ConsumerGone:
            # The consumer stopped listening: stop as if cancelled (checkpoint included);
            # from now on events that cannot be sent at once are dropped. Shielded: the
            # consumer often left because an enclosing scope was cancelled, and the
            # checkpoint of the last completed step must land.
            if self.error is None and self.result is None:
                with trio.CancelScope(shield=True):
                    await self._fail(self.state.inner.cancelled())
        except BaseException as exc:
            if not only_cancelled(exc):
                raise
            # An enclosing scope cancelled us: record, checkpoint (shielded), say
            # so if the consumer still has room, and let Cancelled propagate.
            outbox.closing = True
            with trio.CancelScope(shield=True):
                await self.emit(await self._fail(self.state.inner.cancelled()))
            raise
        finally:
            self.finished = True
            outbox.close()

    async def _run(self) -> ev.Event | None:
        """The steps. Returns the terminal event (None when cancelled by our scope)."""
        state = self.state
        root = state.root
        await self.emit(
            ev.GraphStart(
                state.trace_id,
                state.graph.name,
                root.current,
                root.step,
                state.resumed_from,
                run_id=state.run_id,
            )
        )
        try:
            while not await self.step():
                pass
            if self.store is not None and state.policy.on_completion:
                await self.checkpoint("completion", done=True, status=RunStatus.COMPLETED)
        except GraphError as exc:
            return await self._fail(exc)
        took = trio.current_time() - self._started
        self.result = ev.RunResult(
            state.trace_id,
            dict(root.state),
            state.log,
            took,
            state.log_count,
            run_id=state.run_id,
        )
        return ev.GraphComplete(state.trace_id, self.result)

    async def step(self) -> bool:
        """Run the innermost level's next node; True when that level is complete."""
        await checkpoint_if_cancelled()
        state = self.state
        if state.checkpoint_requested:
            state.checkpoint_requested = False
            await self.checkpoint("requested")
        step = state.begin()
        if step.number % _YIELD_EVERY == 0:
            await trio_checkpoint()
        # Events go out with send_nowait while the channel has room, else the awaited
        # emit (which waits for room, drops or raises ConsumerGone): no coroutine per event.
        nowait, now = self._nowait, self._now
        slot = self.services.slot(step.node) if self._limited else None
        waited = 0.0 if slot is None else await self.services.wait(slot)
        try:
            start = ev.NodeStart(state.trace_id, step.path, step.span, step.number, waited)
            try:
                nowait(start)
            except UNSENT:
                await self.emit(start)
            state.opened(step, now())
            node = step.node
            if type(node) is TaskNode and node.plain:  # _task's plain call, without its frame
                try:
                    view = step.level.view
                    raw = (await node.fn(view)) if node.is_async else node.fn(view)
                except Exception as exc:  # the funnel of calls.call: nothing else is raised
                    raise failure(node.name, exc) from exc
                outcome = normalise(node.name, raw)
            else:
                outcome = await RUNNERS[type(node)](self, step)
        finally:
            if slot is not None:
                self.services.release(slot)
        finished = state.finish(step, outcome, now())
        for event in finished.events:
            try:
                nowait(event)
            except UNSENT:
                await self.emit(event)
        state.ended(step)  # only now: a NodeEnd whose send was cancelled is still owed
        for event in finished.after:
            await self.emit(event)
        if finished.error is not None:
            raise finished.error
        if finished.save is not None:
            await self.checkpoint(finished.save)
        return finished.complete

    # -- node kinds ------------------------------------------------------------------
    async def _task(self, step: Step) -> Outcome:
        node = step.node
        assert isinstance(node, TaskNode)
        view = step.level.view
        ctx = NodeContext.of(self, step) if node.takes_context else None
        try:
            if node.retry is None:
                fn, limit = node.fn, node.timeout
                raw = await call(node.name, fn, node.is_async, view, limit, node.blocking, ctx=ctx)
            else:

                async def on_retry(observed: ev.Observed) -> None:
                    await self.emit(ev.ObservedError(self.trace_id, step.path, observed))

                raw = await call_task(node, view, on_retry, ctx)
        except NodeExecutionFailed as err:
            kinds = node.fallback_on
            if not kinds or not (isinstance(err, kinds) or isinstance(err.__cause__, kinds)):
                raise
            return Outcome((), fallback=str(err))
        return normalise(node.name, raw)

    async def _condition(self, step: Step) -> Outcome:
        return NEXT  # routed by its conditional edges

    async def _parallel(self, step: Step) -> Outcome:
        node, state, level = step.node, self.state, step.level  # or a map node's fork
        assert isinstance(node, ParallelNode | MapNode)
        recording = self.store is not None and state.policy.branch_writes
        forked, done = state.fan_out(node)
        fork = Fork(
            trace_id=self.trace_id,
            path=step.path,
            span=step.span,
            state=level.state,
            done=done,
            reducers=level.graph.reducers,
            emit=self.emit,
            record=self._record if recording else None,
            durable=state.durable and level.graph.schema is None,  # typed: checked at merge
            context=functools.partial(NodeContext.of, self, step),
            typed=level.graph.schema is not None,
            limiter=self.services.shared(node.limiter),
            now=self._now,
            nowait=self._nowait,
        )
        outcome = await run_parallel(forked, fork)
        state.fanned_in()
        return outcome

    async def _record(self, site: str, records: list[BranchResult]) -> None:
        await self.checkpoint(site, branches=records)

    async def _subgraph(self, step: Step) -> Outcome:
        node = step.node
        assert isinstance(node, SubgraphNode)
        self.state.enter(node)
        while not await self.step():
            pass
        return self.state.leave(node)  # left only on success: on error its spans are closed

    # -- stopping and saving -------------------------------------------------------
    async def _fail(self, error: GraphError) -> ev.Event:
        """Close the open node spans, checkpoint the last completed step, build the terminal."""
        state = self.state
        for end in state.close_spans(trio.current_time()):
            await self.emit(end)
        if self.store is not None:
            cut = state.inner.interruption(error, final=self._final)
            site = "cancel" if isinstance(error, Cancelled) else "failure"
            try:
                await self.checkpoint(
                    site,
                    status=cut.status,
                    pending=cut.pending,
                    branches=cut.branches,
                    error=str(error),
                )
            except GraphError as exc:
                error, warning = state.unsaved_terminal(error, exc)
                if warning is not None:
                    await self.emit(warning)
        self.error = error
        return ev.GraphError(self.trace_id, error, dict(state.root.state))

    async def checkpoint(
        self,
        site: str,
        *,
        done: bool = False,
        status: RunStatus = RunStatus.RUNNING,
        pending: BarrierId | None = None,
        branches: list[BranchResult] | None = None,
        error: str | None = None,
    ) -> None:
        """Save a checkpoint of the run now (``done``: it has no next node); emits
        ``CheckpointSaved``. Store failures are translated once, by :func:`save`."""
        state = self.state
        assert self.store is not None
        checkpoint, changes = state.checkpoint(
            done=done, status=status, pending=pending, branches=branches, error=error
        )
        await save(self.store, state, checkpoint, changes, site, done=done, typed=self.typed)
        saved = state.saved(checkpoint)
        try:  # as step's events: send_nowait, the awaited emit only when that did not send
            self._nowait(saved)
        except UNSENT:
            await self.emit(saved)


Runner = Callable[[StepLoop, Step], Awaitable[Outcome]]
RUNNERS: dict[type, Runner] = {
    TaskNode: StepLoop._task,
    ConditionNode: StepLoop._condition,
    BarrierNode: run_barrier,
    ParallelNode: StepLoop._parallel,
    MapNode: StepLoop._parallel,
    SubgraphNode: StepLoop._subgraph,
}
"""How each node kind runs: its updates and where it goes, as an :class:`Outcome`."""
