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
        "mermaid": ["m:g"],
        "submit": ["g"],
        "worker": ["--graph", "m:g"],
    }
    assert sorted(row.name for row in COMMANDS) == sorted(samples)
    for row in COMMANDS:
        args = parser.parse_args([row.name, *samples[row.name]])
        assert args.command == row.name
        assert args.handler is row.handler
    assert parser.parse_args(["resume", "abcd"]).max_steps == DEFAULT_MAX_STEPS
    assert parser.parse_args(["submit", "g"]).state == "{}"


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
