"""The command line's grammar, as data: one :class:`Command` row per command.

Each row names the command, its help, its handler (an ``async def cmd_*(args) -> int``)
and its arguments (:class:`Arg`: what ``add_argument`` takes); :func:`build_parser`
turns the table into argparse. The store options (``--db``, ``--dsn``, ``--schema``,
``--json``) go before or after the command. To add a command: write its handler in the
module of its kind (:mod:`.running`, :mod:`.inspecting`, :mod:`.queueing`) and add a row.
"""

from __future__ import annotations

import argparse
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, NoReturn

import attrs

from ..stores.queue import JobStatus
from .cancelling import cmd_cancel
from .inspecting import cmd_history, cmd_mermaid, cmd_runs
from .maintenance import cmd_copy, cmd_prune
from .output import command
from .queueing import cmd_jobs, cmd_submit, cmd_worker
from .running import cmd_decide, cmd_demo, cmd_resume, cmd_run
from .showing import cmd_diff, cmd_show
from .ui import DEFAULT_HOST, DEFAULT_PORT, cmd_ui
from .usage import DEFAULT_DB, DEFAULT_MAX_STEPS, DEMO_GRAPH, PROG, UsageError

Handler = Callable[[Any], Awaitable[int]]


@attrs.frozen
class Arg:
    """One argument: its name or flags, and the keywords ``add_argument`` takes."""

    names: tuple[str, ...]
    options: Mapping[str, Any]


def arg(*names: str, **options: Any) -> Arg:
    """An :class:`Arg`, spelled like ``add_argument``."""
    return Arg(names, options)


@attrs.frozen
class Command:
    """One command: ``trio-graph NAME ARGS...`` runs ``handler(args)``."""

    name: str
    help: str
    handler: Handler
    args: tuple[Arg, ...] = ()


STORE_OPTIONS = (
    arg("--db", metavar="PATH", help=f"SQLite database file (default ./{DEFAULT_DB})"),
    arg(
        "--dsn",
        metavar="DSN",
        help="PostgreSQL connection string instead of SQLite (needs the postgres extra)",
    ),
    arg(
        "--schema",
        metavar="NAME",
        help="PostgreSQL schema for trio_graph's tables (default public)",
    ),
    arg("--json", action="store_true", help="print events and rows as JSON lines"),
)

TRACE = arg(
    "trace", metavar="TRACE", help="run id or trace id (or a unique prefix of 4+ characters)"
)
FORCE = arg("--force", action="store_true", help="resume even if the graph changed")
RUN_OPTIONS = (
    arg(
        "--max-steps",
        type=int,
        default=DEFAULT_MAX_STEPS,
        metavar="N",
        help=f"step budget (default {DEFAULT_MAX_STEPS})",
    ),
    arg(
        "--leave-waiting",
        action="store_true",
        help="stop at the first barrier that waits and leave the run saved in the store",
    ),
    arg("--checkpoints", action="store_true", help="show a line for each checkpoint saved"),
)

COMMANDS = (
    Command(
        "demo",
        "run the bundled demo graph and show its events live (it asks you at its barrier)",
        cmd_demo,
        RUN_OPTIONS,
    ),
    Command(
        "run",
        "run a graph of yours and show its events live (it asks you at its barriers)",
        cmd_run,
        (
            arg("graph", metavar="MODULE:ATTR", help="the graph, e.g. mypkg.flows:graph"),
            arg("--state", default="{}", metavar="JSON", help="initial state (a JSON object)"),
            *RUN_OPTIONS,
        ),
    ),
    Command("runs", "list the stored runs and their status", cmd_runs),
    Command(
        "show",
        "show where a run stands: status, step, the waiting barrier, the state",
        cmd_show,
        (TRACE,),
    ),
    Command("history", "list a run's checkpoints, oldest first", cmd_history, (TRACE,)),
    Command(
        "diff",
        "show what changed between two checkpoints of a run (default: the last two)",
        cmd_diff,
        (
            TRACE,
            arg("a", nargs="?", metavar="A", help="a checkpoint: its # in history, or id prefix"),
            arg("b", nargs="?", metavar="B", help="the other checkpoint"),
        ),
    ),
    Command(
        "decide",
        "answer a stored run waiting at a barrier",
        cmd_decide,
        (
            TRACE,
            arg("barrier", metavar="BARRIER", help="barrier node, or node#occurrence"),
            arg(
                "action",
                metavar="ACTION",
                choices=["approve", "reject", "modify", "reroute"],
                help="approve | reject [REASON] | modify KEY VALUE | reroute TARGET",
            ),
            arg("args", nargs="*", metavar="ARG", help="the action's arguments"),
            arg(
                "--graph",
                metavar="MODULE:ATTR",
                help="the run's graph, to resume it here with --resume (optional for the "
                "bundled demo)",
            ),
            arg(
                "--resume",
                action="store_true",
                help="resume the run here with the decision, unless a live process runs it",
            ),
            FORCE,
            *RUN_OPTIONS,
        ),
    ),
    Command(
        "cancel",
        "cancel a stored run for good (a live run ends cancelled within about a second)",
        cmd_cancel,
        (TRACE,),
    ),
    Command(
        "resume",
        "continue a stored run from its latest checkpoint",
        cmd_resume,
        (
            TRACE,
            arg(
                "--graph",
                metavar="MODULE:ATTR",
                help="the run's graph, e.g. mypkg.flows:graph (optional for the bundled demo)",
            ),
            FORCE,
            *RUN_OPTIONS,
        ),
    ),
    Command(
        "mermaid",
        "print a graph as a Mermaid flowchart",
        cmd_mermaid,
        (arg("graph", metavar="MODULE:ATTR", help=f"e.g. {DEMO_GRAPH}"),),
    ),
    Command(
        "submit",
        "queue a run of a graph for the workers (PostgreSQL store)",
        cmd_submit,
        (
            arg("name", metavar="GRAPH", help="the graph's name, as the workers serve it"),
            arg("--state", default="{}", metavar="JSON", help="initial state (a JSON object)"),
        ),
    ),
    Command(
        "jobs",
        "list the run queue's jobs, oldest first",
        cmd_jobs,
        (
            arg(
                "--status",
                choices=[str(s) for s in JobStatus],
                help="only the jobs with this status",
            ),
        ),
    ),
    Command(
        "prune",
        "delete the ended runs (completed, failed, cancelled) not updated for DAYS days",
        cmd_prune,
        (
            arg("--older-than", type=float, required=True, metavar="DAYS", help="age in days"),
            arg("--dry-run", action="store_true", help="only say how many would go"),
        ),
    ),
    Command(
        "copy",
        "save every checkpoint of every run into another store, in order",
        cmd_copy,
        (
            arg(
                "--to",
                required=True,
                metavar="DSN_OR_PATH",
                help="the target: a PostgreSQL DSN or a SQLite file (created if missing)",
            ),
            arg("--to-schema", metavar="NAME", help="the target's PostgreSQL schema"),
        ),
    ),
    Command(
        "ui",
        "serve the inspector page: see, decide and cancel runs in a browser (ui extra)",
        cmd_ui,
        (
            arg(
                "--host",
                default=DEFAULT_HOST,
                help=f"address to listen on (default {DEFAULT_HOST}, loopback; the page has "
                "no authentication)",
            ),
            arg(
                "--port",
                type=int,
                default=DEFAULT_PORT,
                help=f"port (default {DEFAULT_PORT}; 0 picks a free one)",
            ),
            arg(
                "--graph",
                metavar="MODULE:ATTR",
                action="append",
                help="a graph to draw whole and check decisions against (repeat for several; "
                "the bundled demo is known)",
            ),
        ),
    ),
    Command(
        "worker",
        "serve graphs from a PostgreSQL store (runs and decisions)",
        cmd_worker,
        (
            arg(
                "--graph",
                metavar="MODULE:ATTR",
                action="append",
                required=True,
                help="a graph to serve (repeat for several)",
            ),
            arg(
                "--concurrency",
                type=int,
                default=None,
                metavar="N",
                help="runs at once (worker default)",
            ),
            arg(
                "--until-idle",
                action="store_true",
                help="exit once no runnable run is left (runs waiting at barriers stay parked)",
            ),
        ),
    ),
)


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{message} (see `{command([*self.prog.split()[1:], '--help'])}`)")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (options --db/--dsn/--json go before or after the command)."""
    parser = _Parser(
        prog=PROG,
        description="trio_graph: run, inspect, decide and resume graph workflows.",
        parents=[_store_options(None)],
        epilog=f"Start with: {command(['demo'])}",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True
    after_command = _store_options(argparse.SUPPRESS)
    for row in COMMANDS:
        p = sub.add_parser(row.name, help=row.help, description=row.help, parents=[after_command])
        for a in row.args:
            p.add_argument(*a.names, **a.options)
        p.set_defaults(handler=row.handler)
    return parser


def _store_options(default: Any) -> _Parser:
    """The store options, with ``default`` for all (a flag's is False before the command).

    Two copies: argparse shares action objects with parents, and the copy on the
    subcommands must not set a value the one before the command already set.
    """
    p = _Parser(add_help=False)
    for a in STORE_OPTIONS:
        flag = a.options.get("action") == "store_true"
        p.add_argument(
            *a.names, default=False if flag and default is None else default, **a.options
        )
    return p
