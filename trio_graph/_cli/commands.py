"""The command line: ``python -m trio_graph`` / ``trio-graph`` (DESIGN §12).

Commands: ``demo``, ``runs``, ``history TRACE``, ``decide TRACE BARRIER ACTION ...``,
``resume TRACE --graph module:attr``, ``mermaid module:attr``, ``worker --graph
module:attr --dsn DSN``. ``--db PATH`` picks the SQLite file (default
``./trio_graph.db``), ``--dsn`` a PostgreSQL store; ``--json`` prints events (and
rows) as JSON lines through :mod:`trio_graph.serde`.

Exit codes: 0 done (a run completed, or was left waiting at a barrier on request);
1 a run ended with an error; 2 a mistake on the command line (unknown trace id, bad
``module:attr``, unreachable, invalid or read-only database, a decision the run cannot
take), reported as one line on stderr, never a traceback; 130 interrupted (Ctrl-C);
141 stdout was closed early (``... | head``): the output stops, nothing else does (a
run in progress goes on to its next barrier or its end, as it would have).

Hints print commands that run as printed (:func:`trio_graph._cli.output.command`), with
the options given: the store, ``--graph``, ``--max-steps``.

``decide`` answers a stored run waiting at a barrier. On a store with a run queue
(PostgreSQL) and no ``--graph``, the decision is recorded with ``store.decide`` and a
worker serving the graph resumes the run. Otherwise the run is resumed in this
process with the decision (``executor.resume(graph, trace, decisions=...)``) and runs
on until it completes or waits again; that needs the graph: ``--graph module:attr``,
or nothing for the bundled demo (recognised by its graph hash).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import importlib
import json
import logging
import os
import signal
import sqlite3
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Collection, Sequence
from typing import Any, NoReturn, TextIO, cast

import trio

from .. import events as ev
from .. import serde
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
from .._model.graph import BarrierNode, Graph
from .._runtime.executor import Executor
from .._runtime.run import Run
from ..errors import GraphError
from ..stores.protocol import RunInfo, Store
from ..stores.queue import QueueStore
from .output import StdoutGuard, standing, stdout_gone
from .output import command as runnable
from .view import LineReader, View, ask, default_decision, parse_value

PROG = "trio-graph"
DEFAULT_DB = "trio_graph.db"
DEMO_GRAPH = "trio_graph.demo:graph"
DEFAULT_MAX_STEPS = 50

EXIT_OK = 0
EXIT_RUN_FAILED = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130
EXIT_PIPE = 141
"""stdout was closed by its reader before the command finished writing (128 + SIGPIPE)."""

log = logging.getLogger("trio_graph._cli.commands")


_INTERRUPTED: dict[str, str] = {}
"""The run being shown and the command resuming it, for the message when Ctrl-C
interrupts it (it checkpoints)."""


class UsageError(Exception):
    """A mistake on the command line: reported as one line on stderr, exit code 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{message} (see `{runnable([*self.prog.split()[1:], '--help'])}`)")


# -- the parser ----------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    """The argument parser (options --db/--dsn/--json go before or after the command)."""

    def common(default: Any) -> _Parser:
        # Two copies: argparse shares action objects with parents, and the copy on the
        # subcommands must not set a value the one before the command already set.
        p = _Parser(add_help=False)
        p.add_argument(
            "--db",
            metavar="PATH",
            default=default,
            help=f"SQLite database file (default ./{DEFAULT_DB})",
        )
        p.add_argument(
            "--dsn",
            metavar="DSN",
            default=default,
            help="PostgreSQL connection string instead of SQLite (needs the postgres extra)",
        )
        p.add_argument(
            "--schema",
            metavar="NAME",
            default=default,
            help="PostgreSQL schema for trio_graph's tables (default public)",
        )
        p.add_argument(
            "--json",
            action="store_true",
            default=False if default is None else default,
            help="print events and rows as JSON lines",
        )
        return p

    parser = _Parser(
        prog=PROG,
        description="trio_graph: run, inspect, decide and resume graph workflows.",
        parents=[common(None)],
        epilog=f"Start with: {runnable(['demo'])}",
    )
    sub_common = common(argparse.SUPPRESS)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True

    def command(name: str, help: str) -> argparse.ArgumentParser:
        p: argparse.ArgumentParser = sub.add_parser(
            name, help=help, description=help, parents=[sub_common]
        )
        return p

    def run_options(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "--max-steps",
            type=int,
            default=DEFAULT_MAX_STEPS,
            metavar="N",
            help=f"step budget (default {DEFAULT_MAX_STEPS})",
        )
        p.add_argument(
            "--leave-waiting",
            action="store_true",
            help="stop at the first barrier that waits and leave the run saved in the store",
        )

    p = command(
        "demo", "run the bundled demo graph and show its events live (it asks you at its barrier)"
    )
    run_options(p)
    p.set_defaults(handler=cmd_demo)

    p = command("runs", "list the stored runs and their status")
    p.set_defaults(handler=cmd_runs)

    p = command("history", "list a run's checkpoints, oldest first")
    p.add_argument("trace", metavar="TRACE", help="trace id (or a unique prefix of one)")
    p.set_defaults(handler=cmd_history)

    p = command("decide", "answer a stored run waiting at a barrier")
    p.add_argument("trace", metavar="TRACE", help="trace id (or a unique prefix of one)")
    p.add_argument("barrier", metavar="BARRIER", help="barrier node, or node#occurrence")
    p.add_argument(
        "action",
        metavar="ACTION",
        choices=["approve", "reject", "modify", "reroute"],
        help="approve | reject [REASON] | modify KEY VALUE | reroute TARGET",
    )
    p.add_argument("args", nargs="*", metavar="ARG", help="the action's arguments")
    p.add_argument(
        "--graph",
        metavar="MODULE:ATTR",
        help="the run's graph, to resume it here with the decision (optional for the "
        "bundled demo; without it a PostgreSQL store records the decision for a worker)",
    )
    p.add_argument("--force", action="store_true", help="resume even if the graph changed")
    run_options(p)
    p.set_defaults(handler=cmd_decide)

    p = command("resume", "continue a stored run from its latest checkpoint")
    p.add_argument("trace", metavar="TRACE", help="trace id (or a unique prefix of one)")
    p.add_argument(
        "--graph",
        metavar="MODULE:ATTR",
        help="the run's graph, e.g. mypkg.flows:graph (optional for the bundled demo)",
    )
    p.add_argument("--force", action="store_true", help="resume even if the graph changed")
    run_options(p)
    p.set_defaults(handler=cmd_resume)

    p = command("mermaid", "print a graph as a Mermaid flowchart")
    p.add_argument("graph", metavar="MODULE:ATTR", help=f"e.g. {DEMO_GRAPH}")
    p.set_defaults(handler=cmd_mermaid)

    p = command("submit", "queue a run of a graph for the workers (PostgreSQL store)")
    p.add_argument("name", metavar="GRAPH", help="the graph's name, as the workers serve it")
    p.add_argument("--state", default="{}", metavar="JSON", help="initial state (a JSON object)")
    p.set_defaults(handler=cmd_submit)

    p = command("worker", "serve graphs from a PostgreSQL store (runs and decisions)")
    p.add_argument(
        "--graph",
        metavar="MODULE:ATTR",
        action="append",
        required=True,
        help="a graph to serve (repeat for several)",
    )
    p.add_argument(
        "--concurrency", type=int, default=None, metavar="N", help="runs at once (worker default)"
    )
    p.add_argument(
        "--until-idle",
        action="store_true",
        help="exit once no runnable run is left (runs waiting at barriers stay parked)",
    )
    p.set_defaults(handler=cmd_worker)
    return parser


# -- entry point ---------------------------------------------------------------------------
def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code."""
    saved = sys.stdout
    guard = StdoutGuard(saved)
    sys.stdout = cast(TextIO, guard)
    try:
        code = _main(argv)
    finally:
        sys.stdout = saved
    return EXIT_PIPE if guard.gone and code == EXIT_OK else code


def _main(argv: Sequence[str] | None) -> int:
    _setup_logging()
    try:
        args = build_parser().parse_args(argv)
        if args.db is not None and args.dsn is not None:
            raise UsageError("give --db or --dsn, not both")
        handler: Callable[[argparse.Namespace], Awaitable[int]] = args.handler
        return trio.run(_guarded, handler, args)
    except UsageError as exc:
        return _fail(str(exc))
    except KeyboardInterrupt:
        lead = "\n" if sys.stderr.isatty() else ""
        trace = _INTERRUPTED.get("trace")
        hint = f"; run {trace} is saved: `{_INTERRUPTED['resume']}`" if trace else ""
        print(f"{lead}{PROG}: interrupted{hint}", file=sys.stderr)
        return EXIT_INTERRUPTED


def _fail(message: str) -> int:
    text = " ".join(message.split())  # one line, whatever the message held
    print(f"{PROG}: error: {text}", file=sys.stderr)
    return EXIT_USAGE


async def _guarded(handler: Callable[[argparse.Namespace], Awaitable[int]], args: Any) -> int:
    """Run a command; turn user-facing failures into ``UsageError`` (one line, exit 2)."""
    try:
        return await handler(args)
    except BaseExceptionGroup as group:
        leaf = _single(group)
        if leaf is None:
            raise
        raise _as_usage(leaf, args) from leaf
    except (GraphError, sqlite3.Error, OSError) as exc:
        raise _as_usage(exc, args) from exc
    except Exception as exc:
        if _is_db_error(exc):
            raise _as_usage(exc, args) from exc
        raise


def _single(group: BaseExceptionGroup[BaseException]) -> BaseException | None:
    leaves = [e for e in group.exceptions if not isinstance(e, trio.Cancelled)]
    if len(leaves) != 1:
        return None
    leaf = leaves[0]
    return _single(leaf) if isinstance(leaf, BaseExceptionGroup) else leaf


def _as_usage(exc: BaseException, args: Any) -> BaseException:
    if isinstance(exc, UsageError | KeyboardInterrupt):
        return exc
    if isinstance(exc, GraphError):
        return UsageError(str(exc))
    if isinstance(exc, sqlite3.Error | OSError) or _is_db_error(exc):
        return UsageError(f"database {_where(args)}: {exc}")
    return exc


def _is_db_error(exc: BaseException) -> bool:
    return type(exc).__module__.split(".")[0] in ("psycopg", "psycopg_pool")


class _FieldsFormatter(logging.Formatter):
    """``trio-graph: warning: message (key=value ...)``: structured fields made visible."""

    _PLAIN = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}

    def format(self, record: logging.LogRecord) -> str:
        text = f"{PROG}: {record.levelname.lower()}: {record.getMessage()}"
        fields = {k: v for k, v in vars(record).items() if k not in self._PLAIN}
        if fields:
            text += " (" + " ".join(f"{k}={v}" for k, v in fields.items()) + ")"
        return text


def _setup_logging() -> None:
    root = logging.getLogger("trio_graph")
    if not any(getattr(h, "_trio_graph_cli", False) for h in root.handlers):
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(_FieldsFormatter())
        handler._trio_graph_cli = True  # type: ignore[attr-defined]
        root.addHandler(handler)
        root.setLevel(logging.WARNING)


# -- stores, graphs, trace ids -------------------------------------------------------------
def _where(args: Any) -> str:
    if getattr(args, "dsn", None):
        return f"PostgreSQL {_safe_dsn(args.dsn)}"
    return str(getattr(args, "db", None) or os.path.join(".", DEFAULT_DB))


@contextlib.asynccontextmanager
async def open_store(args: Any, *, create: bool = False) -> AsyncIterator[Store]:
    """The store the options name, opened and checked before the command does anything.

    ``create=False`` refuses a SQLite file that is missing. A file that is not a
    trio_graph database, or that cannot be written, fails here (``CheckpointError``,
    one line, exit 2), before a run takes its first step.
    """
    store: Any
    if args.dsn:
        try:
            from ..stores.postgres import PostgresStore
        except ImportError as exc:
            raise UsageError(
                f"--dsn needs PostgreSQL support: pip install 'trio_graph[postgres]' ({exc})"
            ) from exc
        await trio.to_thread.run_sync(_probe_postgres, args.dsn)
        try:
            store = PostgresStore(args.dsn, schema=args.schema or "public")
        except ValueError as exc:
            raise UsageError(str(exc)) from None
    else:
        path = _sqlite_path(args, create=create)
        from ..stores.sqlite import SQLiteStore

        store = SQLiteStore(path)
    try:
        await store.__aenter__()  # open it now: a bad file is refused before any step
        yield store
    finally:
        with trio.CancelScope(shield=True):
            await store.aclose()


def _probe_postgres(dsn: str) -> None:
    """Connect once, quickly, so an unreachable server is one clear error, not a long wait."""
    import psycopg

    try:
        psycopg.connect(dsn, connect_timeout=5).close()
    except psycopg.Error as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise UsageError(f"cannot connect to PostgreSQL ({_safe_dsn(dsn)}): {first}") from None


def _safe_dsn(dsn: str) -> str:
    """The DSN without its password, for messages."""
    import re

    return re.sub(r"(://[^:/@]*:)[^@]*@", r"\1***@", re.sub(r"password=\S+", "password=***", dsn))


def _sqlite_path(args: Any, *, create: bool) -> str:
    path: str = args.db or DEFAULT_DB
    folder = os.path.dirname(os.path.abspath(path))
    if not create and not os.path.exists(path):
        demo = _hint(args, "demo")
        raise UsageError(f"no database at {path} (run {demo} to create one, or pass --db PATH)")
    if create and not os.path.isdir(folder):
        raise UsageError(f"cannot create database {path}: folder {folder} does not exist")
    return path


def load_graph(spec: str) -> Graph:
    """Import ``module:attr`` (attr may be dotted) and return the Graph it names.

    The attribute may also be a function of no arguments that returns a Graph.
    """
    module_name, sep, attr = spec.partition(":")
    if not sep or not module_name or not attr:
        raise UsageError(f"expected MODULE:ATTR (e.g. {DEMO_GRAPH}), got {spec!r}")
    if os.getcwd() not in sys.path and "" not in sys.path:
        sys.path.insert(0, os.getcwd())  # like `python -m`: the current folder's modules
    try:
        obj: Any = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        raise UsageError(f"cannot import {module_name!r}: {exc}") from exc
    except Exception as exc:
        raise UsageError(f"importing {module_name!r} failed: {type(exc).__name__}: {exc}") from exc
    for part in attr.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise UsageError(f"{module_name!r} has no attribute {attr!r}") from None
    if not isinstance(obj, Graph) and callable(obj):
        try:
            obj = obj()
        except Exception as exc:
            raise UsageError(f"{spec}() failed: {type(exc).__name__}: {exc}") from exc
    if not isinstance(obj, Graph):
        raise UsageError(
            f"{spec} is a {type(obj).__name__}, not a trio_graph Graph "
            "(build one with GraphBuilder(...).build())"
        )
    return obj


async def resolve_trace(store: Store, text: str, args: Any) -> tuple[RunInfo, list[RunInfo]]:
    """The run whose trace id is ``text`` or starts with it; and all rows (for lineage)."""
    rows = await store.runs()
    exact = [r for r in rows if r.trace_id == text]
    matches = exact or ([r for r in rows if r.trace_id.startswith(text)] if len(text) >= 4 else [])
    if not matches:
        runs = _hint(args, "runs")
        raise UsageError(f"no run {text!r} in {_where(args)} (list them with {runs})")
    if len(matches) > 1:
        raise UsageError(
            f"{text!r} matches {len(matches)} runs ({', '.join(r.trace_id for r in matches[:3])}"
            f"{', ...' if len(matches) > 3 else ''}): give more of the trace id"
        )
    return matches[0], rows


def _successor(trace_id: str, rows: Sequence[RunInfo]) -> RunInfo | None:
    later = [r for r in rows if r.resumed_from == trace_id]
    return max(later, key=lambda r: r.updated_at) if later else None


def _graph_for(spec: str | None, checkpoint: Checkpoint) -> Graph | None:
    """The graph named by ``--graph``; else the bundled demo if the run is one; else None."""
    if spec:
        return load_graph(spec)
    from .. import demo

    if checkpoint.graph_hash == demo.graph.hash():
        return demo.graph
    return None


# -- driving a run in the terminal ---------------------------------------------------------
async def drive(
    run: Run,
    graph: Graph,
    args: Any,
    *,
    barriers: str,
    answered: Collection[BarrierId] = (),
) -> int:
    """Show a run's events until it ends; handle barriers by ``barriers``:

    ``"prompt"`` asks the person at the terminal, ``"default"`` takes each barrier's
    default at once, ``"leave"`` stops at the first wait and leaves the run stored.
    Barriers in ``answered`` already have their decision (they wait for nothing).
    """
    json_mode = bool(args.json)
    notes = sys.stderr if json_mode else sys.stdout
    _INTERRUPTED["trace"] = run.trace_id  # every run shown here has a store
    _INTERRUPTED["resume"] = _hint(args, "resume", run.trace_id, run_options=True, quote="")
    view = None if json_mode else View(sys.stdout, max_steps=args.max_steps, graph=graph)
    reader = LineReader() if barriers == "prompt" else None
    prompts: dict[BarrierId, trio.CancelScope] = {}

    def note(text: str) -> None:
        if stdout_gone():  # the reader left; what the person must know goes to stderr
            print(text, file=sys.stderr, flush=True)
        elif view is not None:
            view.note(text)
        else:
            print(text, file=notes, flush=True)

    async def prompt(bid: BarrierId, node: BarrierNode | None, scope: trio.CancelScope) -> None:
        assert reader is not None
        with scope:
            await ask(run.decide, bid, node, reader, notes)
        if scope.cancelled_caught:
            notes.write("\n")

    async with trio.open_nursery() as nursery:
        async for event in run:
            if view is not None:
                view.show(event)
            else:
                print(serde.to_json(event, ev.Event), flush=True)
            if isinstance(event, ev.BarrierWaiting):
                bid = event.barrier_id
                if bid in answered:
                    continue
                found = graph.find(bid.node)
                node = found if isinstance(found, BarrierNode) else None
                if barriers == "leave" or (barriers == "prompt" and stdout_gone()):
                    note(_left_waiting(run.trace_id, bid, args))
                    nursery.cancel_scope.cancel()
                    return EXIT_OK
                if barriers == "default":
                    decision = default_decision(node)
                    if decision is not None:
                        note(f"no terminal: taking {bid}'s default ({describe_decision(decision)})")
                        run.decide(bid, decision)
                    continue
                scope = trio.CancelScope()
                prompts[bid] = scope
                nursery.start_soon(prompt, bid, node, scope)
            elif isinstance(event, ev.BarrierResolved):
                scope_done = prompts.pop(event.barrier_id, None)
                if scope_done is not None:
                    scope_done.cancel()
        nursery.cancel_scope.cancel()
    if run.result is not None:
        return EXIT_OK
    return EXIT_RUN_FAILED


def _hint(args: Any, *words: str, run_options: bool = False, quote: str = "`") -> str:
    """A command to suggest, runnable as printed, with the options the user gave.

    Always the store (``--db`` when not the default, ``--dsn``/``--schema``); with
    ``run_options``, also ``--graph`` and a ``--max-steps`` that is not the default.
    A DSN's password is masked (it is never printed): such a hint needs it put back.
    """
    flags: list[str] = []
    if args.dsn:
        flags += ["--dsn", _safe_dsn(args.dsn)]
        flags += ["--schema", args.schema] if args.schema else []
    elif args.db and os.path.normpath(args.db) != DEFAULT_DB:
        flags += ["--db", args.db]
    if run_options and getattr(args, "graph", None):
        flags += ["--graph", args.graph]
    steps = getattr(args, "max_steps", None)
    if run_options and steps is not None and steps != DEFAULT_MAX_STEPS:
        flags += ["--max-steps", str(steps)]
    return f"{quote}{runnable([*words, *flags])}{quote}"


def _left_waiting(trace_id: str, bid: BarrierId, args: Any) -> str:
    answer = _hint(args, "decide", trace_id, str(bid), "approve", run_options=True, quote="")
    return (
        f"run {trace_id} is left waiting at {bid} (saved in {_where(args)}); answer it with:\n"
        f"  {answer}"
    )


def _barrier_mode(args: Any, *, no_terminal: str) -> str:
    if args.leave_waiting:
        return "leave"
    return "prompt" if sys.stdin.isatty() else no_terminal


# -- commands --------------------------------------------------------------------------------
async def cmd_demo(args: Any) -> int:
    """Run the bundled demo on SQLite, live; a barrier prompt or, with no terminal, its default."""
    from .. import demo

    async with open_store(args, create=True) as store:
        executor = Executor(store=store, max_steps=args.max_steps)
        if not args.json:
            print(
                f"trio_graph demo (runs saved in {_where(args)}): research falls back to notes, "
                "draft/score loops until both scores pass, a person reviews, publish.",
                flush=True,
            )
        async with executor.stream(demo.graph, demo.initial_state()) as run:
            code = await drive(
                run, demo.graph, args, barriers=_barrier_mode(args, no_terminal="default")
            )
        if not args.json and not args.leave_waiting:
            runs, history = _hint(args, "runs"), _hint(args, "history", run.trace_id)
            mermaid = f"`{runnable(['mermaid', DEMO_GRAPH])}`"
            print(f"next: {runs}, {history}, {mermaid}", flush=True)
        return code


async def cmd_runs(args: Any) -> int:
    """List runs, oldest first; a run continued under a new trace id says so."""
    async with open_store(args) as store:
        rows = sorted(await store.runs(), key=lambda r: r.updated_at)
    if args.json:
        for row in rows:
            print(serde.to_json(row), flush=True)
        return EXIT_OK
    if not rows:
        print(f"no runs in {_where(args)} yet (try {_hint(args, 'demo')})")
        return EXIT_OK
    table = [("TRACE ID", "GRAPH", "STATUS", "UPDATED", "NOTE")]
    for row in rows:
        note = f"resumed from {row.resumed_from[:12]}" if row.resumed_from else ""
        after = _successor(row.trace_id, rows)
        if after is not None and row.status in (RunStatus.WAITING, RunStatus.RUNNING):
            note = f"continued in {after.trace_id[:12]}"
        table.append((row.trace_id, row.graph_name, str(row.status), _time(row.updated_at), note))
    _print_table(table)
    return EXIT_OK


async def cmd_history(args: Any) -> int:
    """A run's checkpoints, oldest first."""
    async with open_store(args) as store:
        info, rows = await resolve_trace(store, args.trace, args)
        checkpoints = await store.list(info.trace_id)
        job = await store.job(info.trace_id) if isinstance(store, QueueStore) else None
    if args.json:
        for cp in checkpoints:
            print(serde.to_json(cp), flush=True)
        return EXIT_OK
    head = f"run {info.trace_id} (graph {info.graph_name!r}, {info.status}): "
    head += f"{len(checkpoints)} checkpoint(s)"
    if info.resumed_from:
        head += f"; resumed from {info.resumed_from}"
    after = _successor(info.trace_id, rows)
    if after is not None:
        head += f"; continued in {after.trace_id}"
    print(head)
    table = [("#", "CHECKPOINT", "STEP", "NEXT", "STATUS", "BARRIER", "KEYS", "TIME")]
    for i, cp in enumerate(checkpoints, 1):
        table.append(
            (
                str(i),
                cp.checkpoint_id[:12],
                str(cp.step),
                cp.next_node or "-",
                str(cp.status),
                str(cp.pending_barrier) if cp.pending_barrier else "-",
                str(len(cp.state)),
                _time(cp.created_at, with_ms=True),
            )
        )
    _print_table(table)
    last = checkpoints[-1] if checkpoints else None
    line = standing(last, job)
    if line is not None:
        print(line + (_answer_hint(args, last, job) if after is None else ""))
    return EXIT_OK


def _answer_hint(args: Any, last: Checkpoint | None, job: Any) -> str:
    """``; answer it with `decide ...``` for a waiting run, when that runs as printed:
    a queued job (a worker resumes it) or the bundled demo (no ``--graph`` needed)."""
    if last is None or last.pending_barrier is None or last.status != RunStatus.WAITING:
        return ""
    if job is None and _graph_for(None, last) is None:
        return ""  # a user's graph: decide needs its --graph, which we cannot know
    decide = _hint(args, "decide", last.trace_id, str(last.pending_barrier), "approve")
    return f"; answer it with {decide}"


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
        info, rows = await resolve_trace(store, args.trace, args)
        trace = info.trace_id
        job = await store.job(trace) if isinstance(store, QueueStore) else None
        if job is not None:
            # A submitted run, served by workers: record the decision, a worker resumes it.
            assert isinstance(store, QueueStore)
            bid = _barrier_id(args.barrier, job.pending_barrier)
            await store.decide(trace, bid, decision)
            print(
                f"decision for {bid} of run {trace} recorded ({describe_decision(decision)}); "
                f"a worker serving graph {info.graph_name!r} will resume it",
                flush=True,
            )
            return EXIT_OK
        _refuse_continued(trace, rows, "decide on")
        checkpoint = await store.latest(trace)
        if checkpoint is None or checkpoint.status != RunStatus.WAITING:
            status = checkpoint.status if checkpoint is not None else info.status
            raise UsageError(f"run {trace} is not waiting at a barrier (status {status})")
        bid = _barrier_id(args.barrier, checkpoint.pending_barrier)
        graph = _graph_for(args.graph, checkpoint)
        if graph is None:
            raise UsageError(
                f"decide needs --graph MODULE:ATTR for graph {info.graph_name!r} "
                "(the graph the run was started with)"
            )
        executor = Executor(store=store, max_steps=args.max_steps)
        mode = _barrier_mode(args, no_terminal="leave")
        async with executor.resume(
            graph, trace, force=args.force, decisions={bid: decision}
        ) as run:
            return await drive(run, graph, args, barriers=mode, answered={bid})


async def cmd_resume(args: Any) -> int:
    """Continue a stored run from its latest checkpoint, under a new trace id."""
    async with open_store(args) as store:
        info, rows = await resolve_trace(store, args.trace, args)
        trace = info.trace_id
        _refuse_continued(trace, rows, "resume")
        checkpoint = await store.latest(trace)
        if checkpoint is None:
            raise UsageError(f"run {trace} has no checkpoint to resume from")
        graph = _graph_for(args.graph, checkpoint)
        if graph is None:
            raise UsageError(
                f"resume needs --graph MODULE:ATTR: the graph {info.graph_name!r} "
                "that run was started with"
            )
        executor = Executor(store=store, max_steps=args.max_steps)
        async with executor.resume(graph, trace, force=args.force) as run:
            return await drive(run, graph, args, barriers=_barrier_mode(args, no_terminal="leave"))


async def cmd_mermaid(args: Any) -> int:
    """Print the graph as Mermaid flowchart text."""
    await trio.lowlevel.checkpoint()
    sys.stdout.write(load_graph(args.graph).to_mermaid())
    return EXIT_OK


async def cmd_worker(args: Any) -> int:
    """Serve graphs from a store with a run queue (PostgreSQL) until interrupted."""
    graphs = [load_graph(spec) for spec in args.graph]
    if args.concurrency is not None and args.concurrency < 1:
        raise UsageError(f"--concurrency must be a positive int, got {args.concurrency}")
    from ..worker import Worker

    async with open_store(args) as store:
        if not isinstance(store, QueueStore):
            raise UsageError(
                f"worker needs a store with a run queue: --dsn DSN (PostgreSQL); {store!r} has none"
            )
        worker = Worker(store, graphs, concurrency=args.concurrency or 1)
        names = ", ".join(repr(g.name) for g in graphs)
        until = "until no run is left" if args.until_idle else "Ctrl-C to stop"
        print(
            f"worker {worker.worker_id} serving {names} from {_where(args)} ({until})",
            file=sys.stderr,
            flush=True,
        )
        with trio.CancelScope() as scope:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(_stop_on_signals, scope)
                await worker.serve(until_idle=args.until_idle)
                nursery.cancel_scope.cancel()
        stats = worker.stats
        print(
            f"worker stopped: {stats.claimed} claimed, {stats.completed} completed, "
            f"{stats.parked} parked at barriers, {stats.failed} failed, "
            f"{stats.released} released",
            file=sys.stderr,
            flush=True,
        )
    return EXIT_OK


async def _stop_on_signals(scope: trio.CancelScope) -> None:
    """SIGTERM or SIGINT: stop serving gracefully (runs checkpoint, leases released)."""
    with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
        async for _ in signals:
            print("stopping: checkpointing runs in flight...", file=sys.stderr, flush=True)
            scope.cancel()
            return


async def cmd_submit(args: Any) -> int:
    """Queue a run of a graph for the workers (a store with a run queue)."""
    try:
        state = json.loads(args.state)
    except ValueError as exc:
        raise UsageError(f"--state must be a JSON object: {exc}") from None
    if not isinstance(state, dict):
        raise UsageError(f"--state must be a JSON object, got {type(state).__name__}")
    async with open_store(args) as store:
        submit = getattr(store, "submit", None)
        if submit is None:
            raise UsageError(
                f"submit needs a store with a run queue: --dsn DSN (PostgreSQL); {store!r} has none"
            )
        job_id = await submit(args.name, state)
    print(job_id, flush=True)
    return EXIT_OK


def _refuse_continued(trace: str, rows: Sequence[RunInfo], what: str) -> None:
    after = _successor(trace, rows)
    if after is not None:
        raise UsageError(
            f"run {trace} was already continued in run {after.trace_id} "
            f"({after.status}); {what} that one"
        )


def _barrier_id(text: str, pending: BarrierId | None) -> BarrierId:
    """``node#n`` as given; a bare ``node`` is the occurrence waiting, else the first."""
    if "#" not in text and pending is not None and pending.node == text:
        return pending
    try:
        return BarrierId.parse(text)
    except ValueError as exc:
        raise UsageError(str(exc)) from None


# -- output helpers ------------------------------------------------------------------------
def _time(timestamp: float, *, with_ms: bool = False) -> str:
    moment = datetime.datetime.fromtimestamp(timestamp)
    if with_ms:
        return moment.strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]
    return moment.strftime("%Y-%m-%d %H:%M:%S")


def _print_table(rows: Sequence[Sequence[str]], out: TextIO | None = None) -> None:
    out = out or sys.stdout
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for row in rows:
        out.write("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
        out.write("\n")
    out.flush()
