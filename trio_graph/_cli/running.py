"""The commands that run a graph in this process: ``demo``, ``run``, ``decide``, ``resume``.

``run module:attr [--state JSON]`` starts your graph on the chosen store with the live
view and the barrier prompt of ``demo``; with no terminal, a barrier leaves the run
waiting in the store and prints how to answer it.

``decide`` records a decision for a stored run (``store.decide``): a process executing
the run live (its job held with a live lease) takes it from the store within about a
second, a worker resumes a queued job. With ``--resume``, and only when no live process
owns the run, the run is resumed in this process with the decision
(``executor.resume(graph, run_id, decisions=...)``) and runs on until it completes or
waits again; that needs the graph: ``--graph module:attr``, or nothing for the bundled
demo (recognised by its graph hash).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from .._model.checkpoint import Checkpoint, RunStatus
from .._model.decisions import (
    Approve,
    BarrierId,
    Decision,
    Modify,
    Reject,
    Reroute,
    describe_decision,
)
from .._runtime.executor import Executor
from ..errors import BarrierError, RunBusy
from ..stores.protocol import RunInfo, Store
from ..stores.queue import HOLD_PREFIX, JobStatus, QueueStore
from ..stores.queue.live import LiveRules
from .follow import barrier_handling, follow_run
from .graphs import graph_for, load_graph
from .hints import hint, where
from .output import command
from .prompt import parse_value
from .store_options import open_store
from .traces import barrier_id, resolve_trace, run_key
from .usage import DEMO_GRAPH, EXIT_OK, UsageError


async def cmd_demo(args: Any) -> int:
    """Run the bundled demo on SQLite, live; a barrier prompt or, with no terminal, its default."""
    from .. import demo

    async with open_store(args, create=True) as store:
        executor = Executor(store=store, max_steps=args.max_steps)
        if not args.json:
            print(
                f"trio_graph demo (runs saved in {where(args)}): research falls back to notes, "
                "draft/score loops until both scores pass, a person reviews, publish.",
                flush=True,
            )
        async with executor.stream(demo.graph, demo.initial_state()) as run:
            barriers = barrier_handling(args, no_terminal="default")
            code = await follow_run(run, demo.graph, args, barriers=barriers)
        if not args.json and not args.leave_waiting:
            runs, history = hint(args, "runs"), hint(args, "history", run_key(run))
            mermaid = f"`{command(['mermaid', DEMO_GRAPH])}`"
            print(f"next: {runs}, {history}, {mermaid}", flush=True)
        return code


async def cmd_run(args: Any) -> int:
    """Run a graph of yours (``module:attr``) live on the store, as ``demo`` does."""
    graph = load_graph(args.graph)
    state = json_object(args.state, "--state")
    async with open_store(args, create=True) as store:
        executor = Executor(store=store, max_steps=args.max_steps)
        async with executor.stream(graph, state) as run:
            barriers = barrier_handling(args, no_terminal="leave")
            return await follow_run(run, graph, args, barriers=barriers)


def json_object(text: str, option: str) -> dict[str, Any]:
    """``text`` parsed as a JSON object, for ``option``; else a ``UsageError``."""
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise UsageError(f"{option} must be a JSON object: {exc}") from None
    if not isinstance(value, dict):
        raise UsageError(f"{option} must be a JSON object, got {type(value).__name__}")
    return value


def decision_from(action: str, params: Sequence[str]) -> Decision:
    """``approve`` | ``reject [REASON...]`` | ``modify KEY VALUE`` | ``reroute TARGET``."""
    if action == "approve":
        if params:
            raise UsageError(f"approve takes no arguments, got {' '.join(params)!r}")
        return Approve()
    if action == "reject":
        return Reject(" ".join(params) or "rejected from the command line")
    if action == "modify":
        if len(params) != 2:
            raise UsageError("modify needs KEY VALUE (VALUE as JSON, or plain text)")
        return Modify(params[0], parse_value(params[1]))
    if len(params) != 1:
        raise UsageError("reroute needs exactly one TARGET node")
    return Reroute(params[0])


async def cmd_decide(args: Any) -> int:
    """Record a decision for a run; resume it here only with ``--resume`` and when no
    live process executes it (that process takes the decision from the store)."""
    decision = decision_from(args.action, args.args)
    async with open_store(args) as store:
        info, _ = await resolve_trace(store, args.trace, args)
        run_id = info.run_id
        if not isinstance(store, QueueStore):  # a store that keeps no decisions
            return await _decide_here(store, args, info, decision, recorded=False)
        owner = await store.live_owner(run_id) if isinstance(store, LiveRules) else None
        job = await store.job(run_id)
        checkpoint = await store.latest(run_id)
        if owner is None and (job is None or job.status in _ENDED):
            _check_waiting(run_id, checkpoint, info.status)
        pending = job.pending_barrier if job is not None else None
        if pending is None and checkpoint is not None:
            pending = checkpoint.pending_barrier
        bid = barrier_id(args.barrier, pending)
        if owner is None and args.resume:
            if job is not None:  # a queue job: its kept decision for bid is this one now
                await _record(store, run_id, bid, decision)
            return await _decide_here(store, args, info, decision, recorded=job is not None)
        await _record(store, run_id, bid, decision)
        said = f"decision for {bid} of run {run_id} recorded ({describe_decision(decision)})"
        print(f"{said}; {_who_takes_it(args, info, owner, job is not None)}", flush=True)
        return EXIT_OK


_ENDED = (JobStatus.COMPLETED, JobStatus.FAILED)


async def _record(store: QueueStore, run_id: str, bid: BarrierId, decision: Decision) -> None:
    """``store.decide``; a run that ended meanwhile is named as not waiting any more."""
    try:
        await store.decide(run_id, bid, decision)
    except BarrierError:
        latest = await store.latest(run_id)
        _check_waiting(run_id, latest, "unknown")
        raise


def _who_takes_it(args: Any, info: RunInfo, owner: str | None, queued: bool) -> str:
    """Who acts on a recorded decision: the live run, a worker, or the user (a hint)."""
    if owner is not None:
        ignored = " (not resumed here: --resume is for a run nobody executes)"
        who = "the live run takes it" if owner.startswith(HOLD_PREFIX) else "its worker takes it"
        return f"{who} ({owner}){ignored if args.resume else ''}"
    if queued:
        return f"a worker serving graph {info.graph_name!r} will resume it"
    again = hint(args, "resume", info.run_id, run_options=True)
    return (
        f"nobody is executing run {info.run_id}: a worker serving graph "
        f"{info.graph_name!r} resumes it, or resume it here with {again}"
    )


def _check_waiting(run_id: str, checkpoint: Checkpoint | None, status: object) -> None:
    if checkpoint is None or checkpoint.status != RunStatus.WAITING:
        shown = checkpoint.status if checkpoint is not None else status
        raise UsageError(f"run {run_id} is not waiting at a barrier (status {shown})")


async def _decide_here(
    store: Store, args: Any, info: RunInfo, decision: Decision, *, recorded: bool
) -> int:
    """Resume the run in this process with the decision, until it ends or waits again."""
    run_id = info.run_id
    checkpoint = await store.latest(run_id)
    _check_waiting(run_id, checkpoint, info.status)
    assert checkpoint is not None
    bid = barrier_id(args.barrier, checkpoint.pending_barrier)
    graph = graph_for(args.graph, checkpoint)
    if graph is None:
        kept = "; the decision is recorded" if recorded else ""
        raise UsageError(
            f"decide needs --graph MODULE:ATTR for graph {info.graph_name!r} "
            f"(the graph the run was started with){kept}"
        )
    executor = Executor(store=store, max_steps=args.max_steps)
    barriers = barrier_handling(args, no_terminal="leave")
    try:
        resumed = executor.resume(graph, run_id, force=args.force, decisions={bid: decision})
        async with resumed as run:
            return await follow_run(run, graph, args, barriers=barriers, answered={bid})
    except RunBusy:  # a process took the run meanwhile: it takes the decision instead
        if not isinstance(store, QueueStore):
            raise
        await _record(store, run_id, bid, decision)
        print(f"decision for {bid} of run {run_id} recorded; the live run takes it", flush=True)
        return EXIT_OK


async def cmd_resume(args: Any) -> int:
    """Continue a stored run from its latest checkpoint, under a new trace id."""
    async with open_store(args) as store:
        info, _ = await resolve_trace(store, args.trace, args)
        trace = info.run_id
        checkpoint = await store.latest(trace)
        if checkpoint is None:
            raise UsageError(f"run {trace} has no checkpoint to resume from")
        graph = graph_for(args.graph, checkpoint)
        if graph is None:
            raise UsageError(
                f"resume needs --graph MODULE:ATTR: the graph {info.graph_name!r} "
                "that run was started with"
            )
        executor = Executor(store=store, max_steps=args.max_steps)
        barriers = barrier_handling(args, no_terminal="leave")
        async with executor.resume(graph, trace, force=args.force) as run:
            return await follow_run(
                run, graph, args, barriers=barriers, deadlines=stored_deadline(checkpoint)
            )


def stored_deadline(checkpoint: Checkpoint) -> dict[BarrierId, float]:
    """The waiting barrier's stored deadline (``Checkpoint.deadline``, when the store has
    one), so that the prompt counts down what is left of it."""
    deadline = getattr(checkpoint, "deadline", None)
    if checkpoint.pending_barrier is None or deadline is None:
        return {}
    return {checkpoint.pending_barrier: float(deadline)}
