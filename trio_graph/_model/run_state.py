"""One run's bookkeeping as a pure state machine: what the run does next (DESIGN §1, §5).

Model layer: no trio, no I/O, no clock (the caller passes ``now``). ``_runtime/loop.py``
drives a :class:`RunState` as httpcore drives h11: it asks what is next, does the I/O,
and tells the state what happened; every rule of DESIGN §5 is here, testable without
an event loop.

Rules
-----
- The run is a stack of :class:`Level` s: the run itself, then one per subgraph it is
  inside (innermost last). A step always belongs to the innermost level; a subgraph node
  pushes a level (:meth:`RunState.enter`) and pops it when the subgraph completes
  (:meth:`RunState.leave`). Each level has its own state, next node, step count and step
  budget; the run shares one span counter, one decision registry and one checkpoint chain.
- A step is opened by :meth:`begin` and :meth:`opened` (its ``NodeStart`` went out) and
  closed once: by :meth:`finish` then :meth:`ended`, or by :meth:`close_spans` when the
  run stops midway. ``finish`` settles state, step and next node *before* any event is
  sent: a cancel while sending leaves a consistent checkpoint, and a committed span still
  ends with ``success=True``.
- Only the root level's steps go into the execution log (a subgraph is one entry there).
- A checkpoint is always of the whole run: the root's state and next node, the levels
  below as frames, the barrier waited at, the finished branches of a fan-out in progress.

Theory of operation
-------------------
::

    begin() -> Step                         budget counted, node looked up, span taken
    opened(step, now)                       NodeStart sent: its NodeEnd is owed
    finish(step, outcome, now) -> Finished  committed; send Finished.events, then
    ended(step)                             NodeEnd sent; send Finished.after
    arrive(node, now, payload) -> BarrierId waiting, its payload and deadline (cancel: WAITING)
    resolve(node, decision) -> Outcome       the decision's updates and where it goes
    enter(node) / leave(node) -> Outcome    a subgraph level
    close_spans(now) -> [NodeEnd]           interrupted: every span still owed
    inner.interruption(error)               the failure/cancel checkpoint to write
    checkpoint(...) -> (Checkpoint, Changes), then saved(...) or unsaved(...)
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping, Sequence
from typing import Any

from .. import events as ev
from ..errors import (
    GraphError,
    NodeExecutionFailed,
    NodeNotFound,
    StepsExceeded,
)
from .checkpoint import (
    BranchResult,
    ChangeLog,
    Changes,
    Checkpoint,
    CheckpointPolicy,
    RunStatus,
    new_branches,
    new_id,
)
from .decisions import BarrierId, Decision, DecisionRegistry, decision_updates, timeout_decision
from .graph import BarrierNode, Graph, MapNode, ParallelNode, SubgraphNode
from .levels import (
    Fanout,
    Finished,
    Level,
    Step,
    Wait,
    barrier_wait,
    subgraph_level,
    subgraph_outcome,
    unsaved_terminal,
)
from .mapping import forking
from .results import NEXT, Outcome
from .routing import check_target, route, route_fallback
from .steering import check_steering

_NOT_WAITING = Wait()
"""A checkpoint's wait when no barrier is pending (frozen: one for all)."""


class RunState:
    """The bookkeeping of one run; see the module docstring for its rules."""

    def __init__(
        self,
        graph: Graph,
        state: dict[str, Any],
        *,
        trace_id: str,
        max_steps: int,
        policy: CheckpointPolicy,
        durable: bool,
        log_limit: int = 1000,
        run_id: str | None = None,
    ) -> None:
        self.trace_id = trace_id
        self.run_id = run_id or trace_id
        """The run's id for its whole life (DESIGN §8): its first segment's trace id."""
        self.graph = graph
        self.policy = policy
        self.durable = durable
        """A store keeps this run: values are checked and checkpoints are written."""
        self.levels = [Level(graph, state, graph.start, 0, max_steps)]
        self.registry = DecisionRegistry()
        self.resumed_from: str | None = None
        self.resume_count = 0
        self.resumed_branches: dict[str, Mapping[str, Any]] = {}
        # The last ``log_limit`` entries and a count: memory O(1) in steps (DESIGN §13).
        # Kept as tuples (an entry is built only when the log is read: not per step).
        self._log: deque[tuple[int, str, float, float, bool]] = deque(maxlen=log_limit)
        self.log_count = 0
        self.changes = ChangeLog() if durable else None
        self.last_checkpoint: str | None = None
        self.saved_branches: list[BranchResult] = []
        self.spans = 0
        self.checkpoint_requested = False
        self.kept_deadline: tuple[BarrierId, float] | None = None  # a resume's (DESIGN §8)

    @classmethod
    def resume(
        cls,
        graph: Graph,
        checkpoint: Checkpoint,
        *,
        trace_id: str,
        max_steps: int,
        policy: CheckpointPolicy,
        log_limit: int = 1000,
        fork: bool = False,
    ) -> RunState:
        """A run continuing ``checkpoint`` (a resume or a fork) under ``trace_id``: its
        state, step count, next node, subgraph frames, barrier occurrences, kept
        decisions and the finished branches of its fan-out in progress. A resume keeps
        the checkpoint's run id; a ``fork`` is a new run (its id is ``trace_id``)."""
        run = cls(
            graph,
            dict(checkpoint.state),
            trace_id=trace_id,
            max_steps=max_steps,
            policy=policy,
            durable=True,
            log_limit=log_limit,
            run_id=None if fork else checkpoint.run_id,
        )
        root = run.levels[0]
        root.current = checkpoint.next_node or graph.start
        root.step = checkpoint.step
        root.frames = list(checkpoint.frames)
        run.registry = DecisionRegistry.restore(
            checkpoint.occurrences, checkpoint.pending_barrier, checkpoint.decisions
        )
        run.resumed_from = checkpoint.trace_id
        run.resume_count = checkpoint.resume_count + 1
        run.resumed_branches = {b.branch: b.updates for b in checkpoint.branches}
        if checkpoint.pending_barrier is not None and checkpoint.deadline is not None:
            run.kept_deadline = (checkpoint.pending_barrier, checkpoint.deadline)
        return run

    @property
    def log(self) -> list[ev.ExecutionEntry]:
        """The last ``log_limit`` entries of the execution log, oldest first."""
        return [ev.ExecutionEntry(*entry) for entry in self._log]

    @property
    def root(self) -> Level:
        return self.levels[0]

    @property
    def inner(self) -> Level:
        return self.levels[-1]

    # -- steps ---------------------------------------------------------------------
    def begin(self) -> Step:
        """The next step of the innermost level (``StepsExceeded``, ``NodeNotFound``)."""
        level = self.levels[-1]
        number = level.step + 1
        name = level.current
        if number > level.max_steps:
            raise StepsExceeded(level.max_steps, name)
        node = level.graph.nodes.get(name)
        if node is None:
            raise NodeNotFound(name)
        self.spans += 1
        return Step(level, node, number, self.spans, level.prefix + name)

    def opened(self, step: Step, now: float) -> None:
        """The step's ``NodeStart`` went out: from now on its ``NodeEnd`` is owed."""
        step.started = now
        step.level.open = step
        step.level.resumable = True

    def finish(self, step: Step, outcome: Outcome, now: float) -> Finished:
        """Commit the step's updates, route, and say what to send and save."""
        level, node = step.level, step.node
        name, graph = node.name, level.graph
        out = graph.out[name]
        target: str | None = None
        fallback = outcome.fallback
        if fallback is not None:
            target = route_fallback(name, out)
            if target is None:
                raise NodeExecutionFailed(
                    name,
                    "Fallback",
                    f"Fallback({fallback!r}) but the node has no fallback edge",
                )
        items = outcome.items
        if items:  # self.commit, without its frame
            merged = level.commit(name, items, durable=self.durable)
            if self.changes is not None and level is self.levels[0]:
                self.changes.record_all(items, merged, graph.reducers)
        number = level.step = step.number
        error: GraphError | None = None
        if target is None:
            try:
                if outcome.goto is not None:  # honoured even at the end node (needs an edge)
                    target = check_target(name, out, outcome.goto)
                elif name != graph.end:
                    target = route(name, out, level.view)
            except GraphError as exc:
                error = exc
        if target is not None:
            level.current = target
            level.resumable = True
        else:
            level.resumable = False
        step.committed = now
        started = step.started
        took = now - started
        if level is self.levels[0]:
            self._log.append((number, name, started, now, True))
            self.log_count += 1
        trace, path, span = self.trace_id, step.path, step.span
        end = ev.NodeEnd(trace, path, span, True, took)
        events: list[ev.Event]
        if len(items) == 1:  # the common case, without a comprehension's frame
            key, value = items[0]
            events = [ev.StateChanged(trace, path, span, key, value), end]
        else:
            events = [ev.StateChanged(trace, path, span, k, v) for k, v in items]
            events.append(end)
        after: Sequence[ev.Event] = ()
        if fallback is not None:
            after = [ev.ObservedError(trace, path, ev.Observed("Degraded", fallback))]
        save = self.policy.site_after(node, took) if self.durable and target is not None else None
        return Finished(events, after, target is None and error is None, error, save)

    def ended(self, step: Step) -> None:
        """The step's ``NodeEnd`` went out: nothing is owed for it."""
        step.level.open = None

    def commit(self, level: Level, node: str, items: Sequence[tuple[str, Any]]) -> None:
        """Commit a step's updates to its level (all or nothing) and, at the root, note
        them for the next checkpoint's hint."""
        merged = level.commit(node, items, durable=self.durable)
        if self.changes is not None and level is self.levels[0]:
            self.changes.record_all(items, merged, level.graph.reducers)

    def close_spans(self, now: float) -> list[ev.NodeEnd]:
        """End every open span, innermost first: ``success=True`` for a step committed
        while its events were being sent, else ``False`` (and a failed log entry)."""
        ends = []
        for level in reversed(self.levels):
            step = level.open
            if step is None:
                continue
            level.open = None
            if step.committed is not None:
                took, ok = step.committed - step.started, True
            else:
                took, ok = now - step.started, False
                if level is self.levels[0]:
                    self._log.append((step.number, step.node.name, step.started, now, False))
                    self.log_count += 1
            ends.append(ev.NodeEnd(self.trace_id, step.path, step.span, ok, took))
        return ends

    # -- barriers ------------------------------------------------------------------
    def arrive(self, node: BarrierNode, *, now: float = 0.0, payload: Any = None) -> BarrierId:
        """Count an arrival at barrier ``node`` of the innermost level: it now waits,
        showing ``payload``, until its deadline (``now``: the wall clock); see
        :func:`~trio_graph._model.levels.barrier_wait` (``level.wait``)."""
        level = self.levels[-1]
        path = level.prefix + node.name
        bid, kept = self.registry.peek_id(path), self.kept_deadline  # counted once not refused
        level.wait = barrier_wait(path, node.timeout, kept, bid, now, payload, self.durable)
        level.waiting = self.registry.next_id(path)
        return bid

    def waiting(self) -> BarrierId | None:
        """The barrier occurrence the run waits at, if any."""
        return self.levels[-1].waiting

    def time_out(self, node: BarrierNode, bid: BarrierId) -> Decision | None:
        """The barrier's timeout passed with no decision: its default (None: skip)."""
        self.registry.mark_resolved(bid)
        return timeout_decision(node.default, node.timeout)

    def resolve(self, node: BarrierNode, decision: Decision | None) -> Outcome:
        """The barrier is resolved: what its decision writes and where it goes."""
        self.levels[-1].waiting, self.levels[-1].wait = None, Wait()
        if decision is None:
            return NEXT
        updates, target = decision_updates(
            node.name, decision, approved_key=node.approved_key, reason_key=node.reason_key
        )
        return Outcome(list(updates.items()), goto=target)

    def check_decision(self, node: str, decision: Decision) -> None:
        """Refuse a decision the graph could never take (``BarrierError``, ``MissingEdge``)."""
        check_steering(self.graph, node, decision, durable=self.durable)

    # -- fan-out -------------------------------------------------------------------
    def fan_out(self, node: ParallelNode | MapNode) -> Fanout:
        """A fan-out starts: the fork (a map's, over its items) and its finished branches."""
        level, resumed, self.resumed_branches = self.levels[-1], self.resumed_branches, {}
        level.fanout = forking(node, level.view, resumed, durable=self.durable)
        return level.fanout

    def fanned_in(self) -> None:
        """Every branch of the fan-out in progress succeeded."""
        self.levels[-1].fanout = None

    # -- subgraphs -----------------------------------------------------------------
    def enter(self, node: SubgraphNode) -> Level:
        """Push the level of subgraph ``node``: resumed from its stored frame, else new."""
        level = subgraph_level(self.levels[-1], node, durable=self.durable)
        self.levels.append(level)
        return level

    def leave(self, node: SubgraphNode) -> Outcome:
        """Pop the completed subgraph level: its output, or the updates it collected."""
        return subgraph_outcome(self.levels.pop(), node)

    # -- checkpoints ---------------------------------------------------------------
    def unsaved_terminal(
        self, error: GraphError, exc: GraphError
    ) -> tuple[GraphError, ev.ObservedError | None]:
        """See :func:`~trio_graph._model.levels.unsaved_terminal`."""
        return unsaved_terminal(self.trace_id, self.levels[0].current, error, exc)

    def checkpoint(
        self,
        *,
        done: bool = False,
        status: RunStatus = RunStatus.RUNNING,
        pending: BarrierId | None = None,
        branches: list[BranchResult] | None = None,
        error: str | None = None,
    ) -> tuple[Checkpoint, Changes]:
        """The checkpoint of the whole run now (``done``: it has no next node), and the
        store's hint of what changed since the last one saved."""
        assert self.changes is not None, "a checkpoint needs a store"
        saved = branches or []
        changes = self.changes.take(self.last_checkpoint, new_branches(self.saved_branches, saved))
        root = self.levels[0]
        next_node = None if done or not root.resumable else root.current
        wait = self.levels[-1].wait if pending is not None else _NOT_WAITING
        checkpoint = Checkpoint(
            checkpoint_id=new_id(),
            trace_id=self.trace_id,
            graph_name=self.graph.name,
            graph_hash=self.graph.hash(),
            next_node=next_node,
            step=root.step,
            state=root.state,
            status=status,
            pending_barrier=pending,
            pending_payload=wait.payload,
            deadline=wait.deadline,
            occurrences=dict(self.registry.occurrences),
            decisions=self.registry.entries(),
            branches=saved,
            resumed_from=self.resumed_from,
            resume_count=self.resume_count,
            error=error,
            frames=[lv.frame() for lv in self.levels[1:]],
            run_id=self.run_id,
            policy=self.policy,
        )
        return checkpoint, changes

    def saved(self, checkpoint: Checkpoint) -> ev.CheckpointSaved:
        """``checkpoint`` is in the store: the next one's hint names it."""
        self.last_checkpoint = checkpoint.checkpoint_id
        self.saved_branches = checkpoint.branches
        return ev.CheckpointSaved(
            self.trace_id, checkpoint.checkpoint_id, checkpoint.next_node or "", checkpoint.step
        )

    def unsaved(self, changes: Changes) -> None:
        """A save failed: its deltas are owed to the next one (whose hint keeps naming the
        last checkpoint saved; a store that holds something else writes in full)."""
        assert self.changes is not None
        self.changes.put_back(changes)
