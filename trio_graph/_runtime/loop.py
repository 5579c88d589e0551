"""The step loop of one run: ask the model what is next, run the node, send the events.

Runtime layer. A :class:`Loop` is driven by :meth:`Loop.main` as a child task of
the nursery that ``executor.stream()`` opens. Per step (DESIGN §5): honour a
pending cancel and checkpoint request; count the step against ``max_steps``;
look the node up; ``NodeStart``; run it; apply its deltas (``StateChanged`` each);
``NodeEnd``; observed errors; complete at the end node, else route.

Events go out with ``send_nowait`` while the channel has room and ``await send``
only when it is full (back-pressure without a scheduler round trip per event).
Exceptions become terminal events once, in :meth:`Loop.main`.
"""

from __future__ import annotations

import math
import types
from collections import deque
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import trio

from .. import events as ev
from .._model.checkpoint import (
    BranchResult,
    ChangeLog,
    Checkpoint,
    CheckpointPolicy,
    Frame,
    RunStatus,
    new_id,
)
from .._model.decisions import (
    Approve,
    BarrierId,
    Decision,
    DecisionRegistry,
    Modify,
    Reject,
    Reroute,
    check_decision,
    decision_updates,
)
from .._model.graph import BarrierNode, Graph, Node, ParallelNode, SubgraphNode, TaskNode
from .._model.jsonvalue import check_update, check_value
from .._model.results import NEXT, Outcome, normalise
from .._model.routing import check_target, route, route_fallback
from .._model.state import reduce_updates
from ..errors import (
    BarrierError,
    Cancelled,
    CheckpointError,
    GraphError,
    LeaseLost,
    NodeExecutionFailed,
    NodeNotFound,
    StepsExceeded,
)
from .calls import call_node, call_task, failure, own_timeout

if TYPE_CHECKING:
    from ..stores.protocol import Store

_YIELD_EVERY = 16


class _ConsumerGone(Exception):
    """The receive side of the event channel was closed: stop quietly."""


def only_cancelled(exc: BaseException) -> bool:
    """True for ``trio.Cancelled`` or a group holding nothing else (from a nursery)."""
    if isinstance(exc, trio.Cancelled):
        return True
    if isinstance(exc, BaseExceptionGroup):
        return all(only_cancelled(e) for e in exc.exceptions)
    return False


class Loop:
    """One run's mutable state and its step loop."""

    def __init__(
        self,
        graph: Graph,
        state: dict[str, Any],
        *,
        max_steps: int,
        store: Store | None,
        policy: CheckpointPolicy,
        trace_id: str,
        current: str,
        step: int = 0,
        registry: DecisionRegistry | None = None,
        branches: list[BranchResult] | None = None,
        resumed_from: str | None = None,
        resume_count: int = 0,
        frames: list[Frame] | None = None,
        parent: Loop | None = None,
        prefix: str = "",
        log_limit: int = 1000,
    ) -> None:
        self.graph = graph
        self.state = state
        self.view = types.MappingProxyType(state)
        self.max_steps = max_steps
        self.store = store
        self.policy = policy
        self.trace_id = trace_id
        self.current = current
        self.step = step
        self.registry = registry or DecisionRegistry()
        self.resumed_branches = {b.branch: b.updates for b in branches or ()}
        self.resumed_from = resumed_from
        self.resume_count = resume_count
        self.cancel_scope = trio.CancelScope()
        self.result: ev.RunResult | None = None
        self.error: GraphError | None = None
        self.finished = False
        # The last ``log_limit`` entries and a count: memory O(1) in steps (DESIGN §13).
        self.execution_log: deque[ev.ExecutionEntry] = deque(maxlen=log_limit)
        self.execution_count = 0
        self.tracker = ChangeLog() if store is not None else None
        self.last_checkpoint: str | None = None
        self._saved_branches: list[BranchResult] = []  # those of the last checkpoint
        self._spans = 0
        # The node whose NodeEnd is owed: (name, span, start, end time once committed).
        self._open: tuple[str, int, float, float | None] | None = None
        self._waiting: BarrierId | None = None
        self._wakeup: trio.Event | None = None
        self._checkpoint_requested = False
        self._closing = False  # set once the consumer is gone or an outer scope cancelled us
        self._send: trio.MemorySendChannel[ev.Event] | None = None
        self._started = 0.0
        # Subgraphs: a child loop runs inline in its parent's task, shares the
        # registry, the span counter, the event channel and (through the root) the store.
        self.parent = parent
        self.prefix = prefix
        self.frames = list(frames or [])  # subgraph runs to resume inside, outermost first
        self.child: Loop | None = None
        # The fan-out in progress and its finished branches (see fanout.run_parallel).
        self.fanout: tuple[ParallelNode, dict[str, Mapping[str, Any]]] | None = None
        self.collected: list[tuple[str, Any]] | None = [] if parent is not None else None

    def chain(self) -> list[Loop]:
        """This loop and its active subgraph loops, outermost first."""
        loops = [self]
        while loops[-1].child is not None:
            loops.append(loops[-1].child)
        return loops

    # -- steering (plain methods, called from the consumer's task) -----------------
    def decide(self, barrier_id: BarrierId, decision: Decision) -> None:
        if not isinstance(barrier_id, BarrierId):
            raise BarrierError(
                f"decide() needs a BarrierId, got {type(barrier_id).__name__} {barrier_id!r}"
            )
        occ = barrier_id.occurrence
        if not isinstance(occ, int) or isinstance(occ, bool) or occ < 1:
            raise BarrierError(
                f"barrier occurrence must be an int >= 1, got {occ!r}", node=barrier_id.node
            )
        self._check_decision(barrier_id.node, decision)
        if barrier_id in self.registry.resolved:
            raise BarrierError(f"barrier {barrier_id} was already resolved", node=barrier_id.node)
        self.registry.submit(barrier_id, decision)
        self._wake(barrier_id.node)

    def decide_all(self, node: str, decision: Decision) -> None:
        self._check_decision(node, decision)
        self.registry.submit_all(node, decision)
        self._wake(node)

    def _check_decision(self, node: str, decision: Decision) -> None:
        if self.finished or self.result is not None or self.error is not None:
            # result/error are set before the terminal event is sent: once the outcome is
            # settled no decision can matter, so none is accepted.
            raise BarrierError("the run has finished; decision not applied", node=node)
        if not isinstance(self.graph.find(node), BarrierNode):
            raise BarrierError("decision for a node that is not a barrier", node=node)
        check_decision(decision, node)
        if isinstance(decision, Modify) and self.store is not None:
            check_value(decision.key, decision.value, f"Modify for barrier {node!r} writes")
        if isinstance(decision, Reroute):
            graph, local = self.graph, node
            while "/" in local:
                head, _, local = local.partition("/")
                graph = graph.nodes[head].graph  # type: ignore[union-attr]
            check_target(node, graph.out[local], decision.target)

    def _wake(self, node: str) -> None:
        for loop in self.chain():
            waiting, wakeup = loop._waiting, loop._wakeup
            if wakeup is not None and waiting is not None and waiting.node == node:
                wakeup.set()

    def cancel(self) -> None:
        self.cancel_scope.cancel()

    def request_checkpoint(self) -> None:
        if self.store is None:
            raise CheckpointError("request_checkpoint() needs an Executor with a store")
        if not self.policy.on_request:
            raise CheckpointError(
                "request_checkpoint() refused: the executor's CheckpointPolicy has on_request=False"
            )
        self._checkpoint_requested = True

    # -- events --------------------------------------------------------------------
    async def emit(self, event: ev.Event) -> None:
        send = self._send
        assert send is not None
        try:
            send.send_nowait(event)
        except trio.WouldBlock:
            if self._closing:
                return  # shutting down: never block on a consumer that has gone
            try:
                await send.send(event)
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                self._closing = True
                raise _ConsumerGone from None
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            if self._closing:
                return
            self._closing = True
            raise _ConsumerGone from None

    def next_span(self) -> int:
        if self.parent is not None:
            return self.parent.next_span()
        self._spans += 1
        return self._spans

    # -- the run -------------------------------------------------------------------
    async def main(self, send: trio.MemorySendChannel[ev.Event]) -> None:
        """Run to one terminal event, then close the channel."""
        self._send = send
        self._started = trio.current_time()
        terminal: ev.Event | None = None
        try:
            with self.cancel_scope:
                terminal = await self._run()
            if terminal is None:  # our own scope was cancelled: run.cancel()
                terminal = await self._fail(self._cancelled())
            await self.emit(terminal)
        except _ConsumerGone:
            # The consumer stopped listening: stop as if cancelled (checkpoint included);
            # from now on events that cannot be sent at once are dropped.
            if self.error is None and self.result is None:
                # Shielded: the consumer often left because an enclosing scope was
                # cancelled, and the checkpoint of the last completed step must land.
                with trio.CancelScope(shield=True):
                    await self._fail(self._cancelled())
        except BaseException as exc:
            if not only_cancelled(exc):
                raise
            # An enclosing scope cancelled us: record, checkpoint (shielded), say
            # so if the consumer still has room, and let Cancelled propagate.
            self._closing = True
            with trio.CancelScope(shield=True):
                terminal = await self._fail(self._cancelled())
                await self.emit(terminal)
            raise
        finally:
            self.finished = True
            # Closed synchronously: an awaited aclose() here would be a checkpoint at
            # which a cancel could replace an exception on its way out.
            send.close()

    def _cancelled(self) -> Cancelled:
        inner = self.chain()[-1]
        waiting = inner._waiting
        if waiting is not None:
            return Cancelled(node=waiting.node, barrier=str(waiting))
        return Cancelled(node=inner.prefix + inner._open[0] if inner._open else "")

    async def _fail(self, error: GraphError) -> ev.Event:
        """Close an open node span, checkpoint the last completed step, build the terminal."""
        await self._close_span()
        if self.store is not None:
            interrupted = isinstance(error, Cancelled)
            status = RunStatus.FAILED
            waiting = self.chain()[-1]._waiting
            if interrupted:
                status = RunStatus.WAITING if waiting is not None else RunStatus.RUNNING
            fanout = self.chain()[-1].fanout
            branches = None
            if fanout is not None:
                node, done = fanout
                branches = [
                    BranchResult(b.name, dict(done[b.name]))
                    for b in node.branches
                    if b.name in done
                ]
            try:
                await self.checkpoint(
                    "cancel" if interrupted else "failure",
                    self.current if self._resumable else None,
                    status=status,
                    pending=waiting,
                    branches=branches,
                    error=str(error),
                )
            except GraphError as exc:
                error = await self._unsaved(error, exc)
        self.error = error
        return ev.GraphError(self.trace_id, error, dict(self.state))

    async def _unsaved(self, error: GraphError, exc: GraphError) -> GraphError:
        """The failure/cancel checkpoint of ``error`` could not be saved (``exc``).

        The first error stays the terminal one (a ``Cancelled`` is never hidden), and
        the lost checkpoint is said, as an ``ObservedError`` warning before the terminal
        event and a note on the error. Only a lost lease wins: this process no longer
        owns the run, and the worker must know that.
        """
        if isinstance(exc, LeaseLost) and not isinstance(error, Cancelled):
            return exc
        message = f"the {'cancel' if isinstance(error, Cancelled) else 'failure'} checkpoint "
        message += f"was not saved: {exc}"
        error.add_note(message)
        warning = ev.Observed("Warning", message)
        await self.emit(ev.ObservedError(self.trace_id, self.current, warning))
        return error

    async def checkpoint(
        self,
        site: str,
        next_node: str | None,
        *,
        status: RunStatus = RunStatus.RUNNING,
        pending: BarrierId | None = None,
        branches: list[BranchResult] | None = None,
        error: str | None = None,
    ) -> None:
        """:meth:`save` through the one error funnel for store failures.

        trio_graph's own errors pass unchanged; any other exception of the store becomes a
        ``CheckpointError`` naming the checkpoint (``site``: what it records, the run, the
        step, the next node, the last checkpoint that was saved), the store's exception
        as ``__cause__``. ``trio.Cancelled`` and other ``BaseException`` pass unchanged.
        """
        try:
            await self.save(
                next_node, status=status, pending=pending, branches=branches, error=error
            )
        except GraphError:
            raise
        except Exception as exc:
            root = self.chain_root()
            where = self.prefix + next_node if next_node is not None else "none, run finished"
            raise CheckpointError(
                f"could not save the {site} checkpoint of run {root.trace_id!r} at step "
                f"{self.step} (next node {where!r}; last saved checkpoint "
                f"{root.last_checkpoint!r}): store.save raised {type(exc).__name__}: {exc}"
            ) from exc

    _resumable = True  # False once the current node's deltas are applied

    async def _close_span(self) -> None:
        """End every open node span (innermost subgraph first) with ``NodeEnd(success=False)``."""
        for loop in reversed(self.chain()):
            if loop._open is not None:
                node, span, t0, committed = loop._open
                loop._open = None
                if committed is not None:  # interrupted while sending its events: it succeeded
                    await loop.emit(ev.NodeEnd(self.trace_id, node, span, True, committed - t0))
                    continue
                end = trio.current_time()
                loop.log(ev.ExecutionEntry(loop.step + 1, node, t0, end, False))
                await loop.emit(ev.NodeEnd(self.trace_id, node, span, False, end - t0))

    async def _run(self) -> ev.Event | None:
        """The step loop. Returns the terminal event (None when cancelled by our scope)."""
        await self.emit(
            ev.GraphStart(
                self.trace_id, self.graph.name, self.current, self.step, self.resumed_from
            )
        )
        try:
            while True:
                if await self._step():
                    break
        except GraphError as exc:
            return await self._fail(exc)
        if self.store is not None and self.policy.on_completion:
            try:
                await self.checkpoint("completion", None, status=RunStatus.COMPLETED)
            except GraphError as exc:
                return await self._fail(exc)
        now = trio.current_time()
        self.result = ev.RunResult(
            self.trace_id,
            dict(self.state),
            list(self.execution_log),
            now - self._started,
            self.execution_count,
        )
        return ev.GraphComplete(self.trace_id, self.result)

    async def _step(self) -> bool:
        """Run one node; True when the run is complete."""
        await trio.lowlevel.checkpoint_if_cancelled()
        if self._checkpoint_requested:
            self._checkpoint_requested = False
            await self.checkpoint("requested", self.current)
        step = self.step + 1
        name = self.current
        if step > self.max_steps:
            raise StepsExceeded(self.max_steps, name)
        node = self.graph.nodes.get(name)
        if node is None:
            raise NodeNotFound(name)
        if step % _YIELD_EVERY == 0:
            await trio.lowlevel.checkpoint()
        trace = self.trace_id
        span = self.next_span()
        await self.emit(ev.NodeStart(trace, name, span, step))
        t0 = trio.current_time()
        self._open = (name, span, t0, None)
        self._resumable = True
        if isinstance(node, TaskNode):
            try:
                if node.retry is None and not node.blocking:
                    try:
                        raw = await call_node(name, node.fn, node.is_async, self.view, node.timeout)
                    except Exception as exc:
                        if own_timeout(exc, name):
                            raise
                        raise failure(name, exc) from exc
                else:
                    raw = await call_task(node, self.view, self._on_retry)
                outcome = normalise(name, raw)
            except NodeExecutionFailed as err:
                caught = node.fallback_on and (
                    isinstance(err, node.fallback_on) or isinstance(err.__cause__, node.fallback_on)
                )
                if not caught:
                    raise
                outcome = Outcome((), fallback=str(err))
        elif isinstance(node, BarrierNode):
            outcome = await self._barrier(node, span, step)
        elif isinstance(node, ParallelNode):
            from .fanout import run_parallel

            outcome = await run_parallel(self, node, span, step)
        elif isinstance(node, SubgraphNode):
            from .subgraph import run_subgraph

            outcome = await run_subgraph(self, node)
        else:  # ConditionNode: routed by its conditional edges
            outcome = NEXT
        return await self._finish(node, name, span, step, t0, outcome)

    async def _finish(
        self, node: Node, name: str, span: int, step: int, t0: float, outcome: Outcome
    ) -> bool:
        """Commit the node's deltas and route, then send its events. True: run complete.

        The state, step and next node are settled before any event is sent, so a
        cancellation while sending leaves a consistent point to checkpoint.
        """
        graph = self.graph
        out = graph.out[name]
        fallback_to: str | None = None
        if outcome.fallback is not None:
            fallback_to = route_fallback(name, out)
            if fallback_to is None:
                raise NodeExecutionFailed(
                    name,
                    "Fallback",
                    f"Fallback({outcome.fallback!r}) but the node has no fallback edge",
                )
        items = outcome.items
        if items:
            self.commit(name, items)
        self.step = step
        routing_error: GraphError | None = None
        target: str | None = None
        if fallback_to is not None:
            target = fallback_to
        elif outcome.goto is not None:  # honoured even at the end node (needs an edge)
            try:
                target = check_target(name, out, outcome.goto)
            except GraphError as exc:
                routing_error = exc
        elif name != graph.end:
            try:
                target = route(name, out, self.view)
            except GraphError as exc:
                routing_error = exc
        self._resumable = target is not None
        if target is not None:
            self.current = target
        end = trio.current_time()
        self._open = (name, span, t0, end)  # a cancel while sending still owes NodeEnd
        self.log(ev.ExecutionEntry(step, name, t0, end, True))
        trace = self.trace_id
        for key, value in items:
            await self.emit(ev.StateChanged(trace, name, span, key, value))
        await self.emit(ev.NodeEnd(trace, name, span, True, end - t0))
        self._open = None  # only now: a NodeEnd whose send was cancelled is still owed
        if fallback_to is not None:
            await self.emit(
                ev.ObservedError(trace, name, ev.Observed("Degraded", outcome.fallback or ""))
            )
        if routing_error is not None:
            raise routing_error
        if target is None:
            return True
        policy = self.policy
        if self.store is None:
            return False
        if policy.every_step:
            await self.checkpoint("every-step", target)
        elif policy.on_barrier and isinstance(node, BarrierNode):
            await self.checkpoint("barrier-resolved", target)
        elif policy.adaptive is not None and policy.adaptive.wants(
            end - t0, node.meta.token_cost, node.meta.side_effects
        ):
            await self.checkpoint("adaptive", target)
        return False

    def log(self, entry: ev.ExecutionEntry) -> None:
        """Keep ``entry`` among the log's last entries and count it."""
        self.execution_log.append(entry)
        self.execution_count += 1

    def commit(self, node: str, items: Sequence[tuple[str, Any]]) -> None:
        """Fold updates through the reducers and commit them at once (all or nothing)."""
        reducers = self.graph.reducers
        merged = reduce_updates(self.state, reducers, node, items)
        if self.store is not None:  # refuse what the store would not give back (docs/state.md)
            check_update(items, merged, reducers, f"node {self.prefix + node!r} wrote")
        self.state.update(merged)
        if self.collected is not None:
            self.collected.extend(items)
        tracker = self.tracker
        if tracker is not None:
            resolved: set[str] = set()
            for key, value in items:
                r = reducers.get(key)
                if r is None or r.builtin:
                    tracker.record(key, value, r.name if r is not None else None)
                elif key not in resolved:  # custom reducer: store the merged value once
                    resolved.add(key)
                    tracker.record(key, merged[key])

    # -- barriers -------------------------------------------------------------------
    async def _barrier(self, node: BarrierNode, span: int, step: int) -> Outcome:
        bid = self.registry.next_id(self.prefix + node.name)
        # _waiting stays set if we are cancelled, so the terminal error and the
        # checkpoint name the barrier occurrence.
        self._waiting = bid
        if self.store is not None and self.policy.on_barrier:
            await self.checkpoint(
                "barrier-waiting", node.name, status=RunStatus.WAITING, pending=bid
            )
        reg = self.registry  # a decision already waiting resolves it at once (DESIGN §6)
        answered = bid in reg.pending or bid.node in reg.wildcards
        await self.emit(ev.BarrierWaiting(self.trace_id, node.name, span, bid, answered))
        decision, timed_out = await self._wait_decision(node, bid)
        self._waiting = None
        self._wakeup = None
        await self.emit(ev.BarrierResolved(self.trace_id, node.name, bid, decision, timed_out))
        if decision is None:  # timed out with default "skip"
            return NEXT
        updates, target = decision_updates(
            node.name, decision, approved_key=node.approved_key, reason_key=node.reason_key
        )
        return Outcome(list(updates.items()), goto=target)

    async def _wait_decision(
        self, node: BarrierNode, bid: BarrierId
    ) -> tuple[Decision | None, bool]:
        timeout = math.inf if node.timeout is None else node.timeout
        with trio.move_on_after(timeout):
            while True:
                decision = self.registry.take(bid)
                if decision is not None:
                    return decision, False
                self._wakeup = trio.Event()
                await self._wakeup.wait()
        # A decision accepted after the deadline passed but before we woke up wins:
        # decide() returned without error, so it must not be dropped.
        decision = self.registry.take(bid)
        if decision is not None:
            return decision, False
        self.registry.mark_resolved(bid)
        if node.default == "approve":
            return Approve(), True
        if node.default == "skip":
            return None, True
        return Reject(f"timed out after {node.timeout}s"), True

    # -- checkpoints ----------------------------------------------------------------
    async def save(
        self,
        next_node: str | None,
        *,
        status: RunStatus = RunStatus.RUNNING,
        pending: BarrierId | None = None,
        branches: list[BranchResult] | None = None,
        error: str | None = None,
    ) -> str:
        """Write a checkpoint of the current state; emits ``CheckpointSaved``.

        Inside a subgraph the root run saves: its own next node is the subgraph node,
        and the active subgraph loops are recorded as ``frames`` to resume inside.
        """
        if self.parent is not None:
            self.current = next_node or self.current
            root = self.chain_root()
            return await root.save(
                root.current, status=status, pending=pending, branches=branches, error=error
            )
        store, tracker = self.store, self.tracker
        assert store is not None and tracker is not None
        cid = new_id()
        saved = branches or []
        changes = tracker.take(self.last_checkpoint, _new_branches(self._saved_branches, saved))
        step = self.step
        occurrences = dict(self.registry.occurrences)
        checkpoint = Checkpoint(
            checkpoint_id=cid,
            trace_id=self.trace_id,
            graph_name=self.graph.name,
            graph_hash=self.graph.hash(),
            next_node=next_node,
            step=step,
            state=self.state,
            status=status,
            pending_barrier=pending,
            occurrences=occurrences,
            decisions=self.registry.entries(),
            branches=saved,
            resumed_from=self.resumed_from,
            resume_count=self.resume_count,
            error=error,
            frames=[
                Frame(
                    loop.prefix.rstrip("/").rpartition("/")[2],
                    loop.current,
                    loop.step,
                    dict(loop.state),
                    list(loop.collected or ()),
                )
                for loop in self.chain()[1:]
            ],
        )
        try:
            await store.save(checkpoint, changes=changes)
        except BaseException:
            # Not saved: its deltas are still owed (the hint keeps naming the last saved
            # checkpoint; a store that holds something else writes in full).
            tracker.put_back(changes)
            raise
        self.last_checkpoint = cid
        self._saved_branches = saved
        await self.emit(ev.CheckpointSaved(self.trace_id, cid, next_node or "", step))
        return cid

    def chain_root(self) -> Loop:
        loop = self
        while loop.parent is not None:
            loop = loop.parent
        return loop

    async def _on_retry(self, observed: ev.Observed) -> None:
        await self.emit(ev.ObservedError(self.trace_id, self.current, observed))

    def resumed_branch_list(self) -> list[BranchResult]:
        branches = [BranchResult(b, dict(u)) for b, u in self.resumed_branches.items()]
        self.resumed_branches = {}
        return branches


def _new_branches(
    previous: list[BranchResult], branches: list[BranchResult]
) -> tuple[int, ...] | None:
    """Where in ``branches`` the records not in ``previous`` are, when ``previous``'s very
    records are all in it, in order (a fan-out's records grow by one); else None."""
    if not previous:
        return None
    new, j = [], 0
    for i, branch in enumerate(branches):
        if j < len(previous) and branch is previous[j]:
            j += 1
        else:
            new.append(i)
    return tuple(new) if j == len(previous) else None
