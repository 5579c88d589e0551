"""Following a run in the terminal: its events as they arrive, and its barriers.

:func:`follow_run` shows every event (the :class:`~trio_graph._cli.view.Terminal` lines,
or JSON lines with ``--json``) until the run ends, and handles each barrier that waits
in one of three ways (:data:`BarrierHandling`): ``"prompt"`` asks the person at the
terminal (the prompt is cancelled if the barrier resolves otherwise, e.g. its timeout),
``"default"`` takes the barrier's default at once, ``"leave"`` stops at the first wait
and leaves the run saved in the store, printing how to answer it. A prompt with nobody
left reading stdout leaves the run waiting too.
"""

from __future__ import annotations

import sys
from collections.abc import Collection, Mapping
from typing import Any, Literal

import trio

from .. import events as ev
from .. import serde
from .._model.decisions import BarrierId, describe_decision
from .._model.graph import BarrierNode, Graph
from .._runtime.run import Run
from .hints import hint, left_waiting
from .output import stdout_gone
from .prompt import LineReader, ask, default_decision
from .traces import run_key
from .usage import EXIT_OK, EXIT_RUN_FAILED, INTERRUPTED
from .view import Terminal

_REDRAW = 0.5
"""Seconds between redraws of the live status line (its timers)."""

BarrierHandling = Literal["prompt", "default", "leave"]


def barrier_handling(args: Any, *, no_terminal: BarrierHandling) -> BarrierHandling:
    """``leave`` with ``--leave-waiting``; else ``prompt`` on a terminal, else ``no_terminal``."""
    if args.leave_waiting:
        return "leave"
    return "prompt" if sys.stdin.isatty() else no_terminal


async def follow_run(
    run: Run,
    graph: Graph,
    args: Any,
    *,
    barriers: BarrierHandling,
    answered: Collection[BarrierId] = (),
    deadlines: Mapping[BarrierId, float] | None = None,
) -> int:
    """Show a run's events until it ends or is left waiting; the exit code.

    Barriers in ``answered`` already have their decision (they wait for nothing);
    ``deadlines`` are the stored deadlines (wall clock) of barriers already waiting,
    for the prompt's countdown (others count down from their timeout).
    """
    INTERRUPTED["trace"] = run_key(run)  # every run shown here has a store
    INTERRUPTED["resume"] = hint(args, "resume", run_key(run), run_options=True, quote="")
    follower = _Follower(run, graph, args, barriers, answered)
    follower.deadlines = dict(deadlines or {})
    async with trio.open_nursery() as nursery:
        left_waiting = await follower.follow(nursery)
        nursery.cancel_scope.cancel()
    if left_waiting or run.result is not None:
        return EXIT_OK
    return EXIT_RUN_FAILED


class _Follower:
    """One run on the terminal: the view, the open prompts, where notes go."""

    def __init__(
        self,
        run: Run,
        graph: Graph,
        args: Any,
        barriers: BarrierHandling,
        answered: Collection[BarrierId],
    ) -> None:
        self.run = run
        self.graph = graph
        self.args = args
        self.barriers = barriers
        self.answered = answered
        self.notes = sys.stderr if args.json else sys.stdout
        self.terminal = (
            None
            if args.json
            else Terminal(
                sys.stdout,
                max_steps=args.max_steps,
                graph=graph,
                checkpoints=getattr(args, "checkpoints", False),
            )
        )
        self.reader = LineReader() if barriers == "prompt" else None
        self.prompts: dict[BarrierId, trio.CancelScope] = {}
        self.deadlines: dict[BarrierId, float] = {}

    async def follow(self, nursery: trio.Nursery) -> bool:
        """Show events until the run ends (False) or is left waiting at a barrier (True)."""
        if self.terminal is not None and self.terminal.live:
            nursery.start_soon(self._redraw, self.terminal)
        async for event in self.run:
            if self.terminal is not None:
                self.terminal.show(event)
            else:
                print(serde.to_json(event, ev.Event), flush=True)
            if isinstance(event, ev.BarrierWaiting):
                if self._waiting(event, nursery):
                    return True
            elif isinstance(event, ev.BarrierResolved):
                prompt = self.prompts.pop(event.barrier_id, None)
                if prompt is not None:
                    prompt.cancel()
        return False

    async def _redraw(self, terminal: Terminal) -> None:
        """Keep the live status line's timers moving."""
        while True:
            await trio.sleep(_REDRAW)
            terminal.redraw()

    def _waiting(self, event: ev.BarrierWaiting, nursery: trio.Nursery) -> bool:
        """Handle a barrier that waits; True when the run is left waiting there."""
        bid = event.barrier_id
        if bid in self.answered or getattr(event, "answered", False):
            return False
        found = self.graph.find(bid.node)
        node = found if isinstance(found, BarrierNode) else None
        if self.barriers == "leave" or (self.barriers == "prompt" and stdout_gone()):
            self._note(left_waiting(run_key(self.run), bid, self.args))
            return True
        if self.barriers == "default":
            decision = default_decision(node)
            if decision is not None:
                self._note(f"no terminal: taking {bid}'s default ({describe_decision(decision)})")
                self.run.decide(bid, decision)
            return False
        scope = trio.CancelScope()
        self.prompts[bid] = scope
        nursery.start_soon(self._prompt, event, node, scope)
        return False

    async def _prompt(
        self, event: ev.BarrierWaiting, node: BarrierNode | None, scope: trio.CancelScope
    ) -> None:
        assert self.reader is not None
        with scope:
            await ask(
                self.run.decide,
                event.barrier_id,
                node,
                self.reader,
                self.notes,
                deadline=self.deadlines.get(event.barrier_id),
                # the view already shows the payload; with --json the prompt does
                payload=getattr(event, "payload", None) if self.terminal is None else None,
                live=self.terminal is not None and self.terminal.live,
            )
        if scope.cancelled_caught:
            self.notes.write("\n")

    def _note(self, text: str) -> None:
        if stdout_gone():  # the reader left; what the person must know goes to stderr
            print(text, file=sys.stderr, flush=True)
        elif self.terminal is not None:
            self.terminal.note(text)
        else:
            print(text, file=self.notes, flush=True)
