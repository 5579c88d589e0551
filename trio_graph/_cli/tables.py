"""Times and tables as the listing commands print them."""

from __future__ import annotations

import datetime
import sys
from collections.abc import Sequence
from typing import TextIO


def format_time(timestamp: float, *, with_ms: bool = False) -> str:
    """``2026-01-02 03:04:05`` in local time (``.678`` more with ``with_ms``)."""
    moment = datetime.datetime.fromtimestamp(timestamp)
    if with_ms:
        return moment.strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]
    return moment.strftime("%Y-%m-%d %H:%M:%S")


def print_table(rows: Sequence[Sequence[str]], out: TextIO | None = None) -> None:
    """Left-aligned columns two spaces apart, the first row the header; trailing blanks cut."""
    out = out or sys.stdout
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for row in rows:
        out.write("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
        out.write("\n")
    out.flush()
