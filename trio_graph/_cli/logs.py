"""Log records as the command line shows them on stderr: one line, fields made visible."""

from __future__ import annotations

import logging
import sys

from .usage import PROG


class FieldsFormatter(logging.Formatter):
    """``trio-graph: warning: message (key=value ...)``: structured fields made visible."""

    _PLAIN = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}

    def format(self, record: logging.LogRecord) -> str:
        text = f"{PROG}: {record.levelname.lower()}: {record.getMessage()}"
        fields = {k: v for k, v in vars(record).items() if k not in self._PLAIN}
        if fields:
            text += " (" + " ".join(f"{k}={v}" for k, v in fields.items()) + ")"
        return text


def setup_logging() -> None:
    """Warnings of ``trio_graph`` loggers to stderr, once per process."""
    root = logging.getLogger("trio_graph")
    if not any(getattr(h, "_trio_graph_cli", False) for h in root.handlers):
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(FieldsFormatter())
        handler._trio_graph_cli = True  # type: ignore[attr-defined]
        root.addHandler(handler)
        root.setLevel(logging.WARNING)
