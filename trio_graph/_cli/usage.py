"""The command line's contract with its caller: exit codes, defaults, and ``UsageError``.

Exit codes: 0 done (a run completed, or was left waiting at a barrier on request);
1 a run ended with an error; 2 a mistake on the command line (unknown trace id, bad
``module:attr``, unreachable, invalid or read-only database, a decision the run cannot
take), reported as one line on stderr, never a traceback; 130 interrupted (Ctrl-C);
141 stdout was closed early (``... | head``): the output stops, nothing else does (a
run in progress goes on to its next barrier or its end, as it would have).
"""

from __future__ import annotations

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


class UsageError(Exception):
    """A mistake on the command line: reported as one line on stderr, exit code 2."""


INTERRUPTED: dict[str, str] = {}
"""The run being shown and the command resuming it, for the message when Ctrl-C
interrupts it (it checkpoints): keys ``trace`` and ``resume``."""
