"""The command line's table (trio_graph._cli.parser): one row per command, built into argparse."""

from __future__ import annotations

import pytest

from trio_graph._cli.parser import COMMANDS, build_parser
from trio_graph._cli.usage import DEFAULT_MAX_STEPS, UsageError


def test_every_row_becomes_a_command_with_its_handler() -> None:
    """Each table row parses as its command and carries its handler and its defaults."""
    parser = build_parser()
    samples = {
        "demo": [],
        "runs": [],
        "history": ["abcd"],
        "decide": ["abcd", "review", "approve"],
        "resume": ["abcd"],
        "cancel": ["abcd"],
        "mermaid": ["m:g"],
        "submit": ["g"],
        "worker": ["--graph", "m:g"],
        "run": ["m:g"],
        "show": ["abcd"],
        "diff": ["abcd"],
        "jobs": [],
        "prune": ["--older-than", "30"],
        "copy": ["--to", "other.db"],
        "ui": [],
    }
    assert sorted(row.name for row in COMMANDS) == sorted(samples)
    for row in COMMANDS:
        args = parser.parse_args([row.name, *samples[row.name]])
        assert args.command == row.name
        assert args.handler is row.handler
    assert parser.parse_args(["resume", "abcd"]).max_steps == DEFAULT_MAX_STEPS
    assert parser.parse_args(["submit", "g"]).state == "{}"


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["run", "m:g"], {"graph": "m:g", "state": "{}", "checkpoints": False}),
        (
            ["run", "m:g", "--state", '{"n": 1}', "--checkpoints", "--max-steps", "9"],
            {"state": '{"n": 1}', "checkpoints": True, "max_steps": 9, "leave_waiting": False},
        ),
        (["demo", "--checkpoints"], {"checkpoints": True}),
        (["show", "abcd"], {"trace": "abcd"}),
        (["diff", "abcd"], {"trace": "abcd", "a": None, "b": None}),
        (["diff", "abcd", "1", "-1"], {"a": "1", "b": "-1"}),
        (["jobs"], {"status": None}),
        (["jobs", "--status", "waiting"], {"status": "waiting"}),
        (["prune", "--older-than", "1.5"], {"older_than": 1.5, "dry_run": False}),
        (["prune", "--older-than", "0", "--dry-run"], {"older_than": 0.0, "dry_run": True}),
        (["copy", "--to", "b.db"], {"to": "b.db", "to_schema": None}),
        (
            ["copy", "--to", "postgresql://h/db", "--to-schema", "s"],
            {"to": "postgresql://h/db", "to_schema": "s"},
        ),
    ],
)
def test_new_commands_parse_their_options(argv: list[str], expected: dict[str, object]) -> None:
    """The rows of run, show, diff, jobs, prune and copy give their handlers these values."""
    args = vars(build_parser().parse_args(argv))
    assert {key: args[key] for key in expected} == expected


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["run"], r"required: MODULE:ATTR \(see `.* run --help`\)$"),
        (["prune"], r"required: --older-than \(see `.* prune --help`\)$"),
        (["prune", "--older-than", "soon"], r"argument --older-than: invalid float value"),
        (["copy"], r"required: --to \(see `.* copy --help`\)$"),
        (["jobs", "--status", "lost"], r"argument --status: invalid choice: 'lost'"),
        (["diff", "abcd", "1", "2", "3"], r"unrecognized arguments: 3"),
    ],
)
def test_new_commands_refuse_bad_arguments(argv: list[str], message: str) -> None:
    """A missing or malformed argument of a new command is a UsageError naming it."""
    with pytest.raises(UsageError, match=message):
        build_parser().parse_args(argv)


def test_store_options_go_before_or_after_the_command() -> None:
    """--db/--json given before the command are kept; given after, they win."""
    parser = build_parser()
    before = parser.parse_args(["--db", "a.db", "--json", "runs"])
    assert (before.db, before.json) == ("a.db", True)
    after = parser.parse_args(["--db", "a.db", "runs", "--db", "b.db"])
    assert (after.db, after.json) == ("b.db", False)


def test_a_parse_error_is_a_usage_error_naming_the_commands_help() -> None:
    """A command missing its argument is a UsageError pointing at that command's --help."""
    with pytest.raises(UsageError, match=r"required: TRACE \(see `.* history --help`\)$"):
        build_parser().parse_args(["history"])
