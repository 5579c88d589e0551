"""The commands that run a graph in this process: ``demo``, ``run``, ``decide``, ``resume``.

``run module:attr [--state JSON]`` starts your graph on the chosen store with the live
view and the barrier prompt of ``demo``; with no terminal, a barrier leaves the run
waiting in the store and prints how to answer it.

``decide`` answers a stored run waiting at a barrier. On a store with a run queue
(PostgreSQL) and no ``--graph``, the decision is recorded with ``store.decide`` and a
worker serving the graph resumes the run. Otherwise the run is resumed in this
process with the decision (``executor.resume(graph, trace, decisions=...)``) and runs
on until it completes or waits again; that needs the graph: ``--graph module:attr``,
or nothing for the bundled demo (recognised by its graph hash).
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
from ..stores.queue import QueueStore
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
    """Answer a waiting run: resume it here with the decision, or hand it to the store."""
    decision = decision_from(args.action, args.args)
    async with open_store(args) as store:
        info, _ = await resolve_trace(store, args.trace, args)
        trace = info.run_id
        job = await store.job(trace) if isinstance(store, QueueStore) else None
        if job is not None:
            # A submitted run, served by workers: record the decision, a worker resumes it.
            assert isinstance(store, QueueStore)
            bid = barrier_id(args.barrier, job.pending_barrier)
            await store.decide(trace, bid, decision)
            print(
                f"decision for {bid} of run {trace} recorded ({describe_decision(decision)}); "
                f"a worker serving graph {info.graph_name!r} will resume it",
                flush=True,
            )
            return EXIT_OK
        checkpoint = await store.latest(trace)
        if checkpoint is None or checkpoint.status != RunStatus.WAITING:
            status = checkpoint.status if checkpoint is not None else info.status
            raise UsageError(f"run {trace} is not waiting at a barrier (status {status})")
        bid = barrier_id(args.barrier, checkpoint.pending_barrier)
        graph = graph_for(args.graph, checkpoint)
        if graph is None:
            raise UsageError(
                f"decide needs --graph MODULE:ATTR for graph {info.graph_name!r} "
                "(the graph the run was started with)"
            )
        executor = Executor(store=store, max_steps=args.max_steps)
        barriers = barrier_handling(args, no_terminal="leave")
        async with executor.resume(
            graph, trace, force=args.force, decisions={bid: decision}
        ) as run:
            return await follow_run(run, graph, args, barriers=barriers, answered={bid})


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
