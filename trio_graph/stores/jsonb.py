"""JSON text that PostgreSQL's JSONB stores and gives back unchanged.

Model layer: pure text transforms, no I/O. JSONB keeps numbers as exact decimals and
prints them positionally, so ``1e300`` would come back as the integer 10**300, and it
refuses the ``\\u0000`` escape. :func:`to_jsonb` is applied to ASCII JSON (what
``json.dumps`` writes by default) before it is stored, :func:`from_jsonb` to JSONB's text
output after, so the codec on either side stays plain JSON (the shared
:mod:`trio_graph.serde` one for checkpoints). Object key order is not kept (JSONB orders
keys), which dict equality does not see.
"""

from __future__ import annotations

import json
import re
from decimal import Decimal
from typing import Any

# Text transforms applied to ASCII JSON (``json.dumps``' default) before it is stored and
# to JSONB's text output after: the codec on either side stays plain JSON.
_MARK = "\ufdd0"
_EXP_HINT = re.compile(r"\d[eE][-+]\d")
_NUMBER = re.compile(r'"(?:[^"\\]|\\.)*"|(-?\d+(?:\.\d+)?[eE][-+]\d+)')
_ESCAPE = re.compile(r"\\(?:\\|u0000|ufdd0)")
_ESCAPED = {"\\\\": "\\\\", "\\u0000": "\\ufdd0\\ufdd2", "\\ufdd0": "\\ufdd0\\ufdd1"}
_UNESCAPE = re.compile(_MARK + "(.)", re.DOTALL)
_UNESCAPED = {"\ufdd1": _MARK, "\ufdd2": "\\u0000"}


def _positional(match: re.Match[str]) -> str:
    number = match.group(1)
    if number is None:  # a string token: unchanged
        return match.group(0)
    text = format(Decimal(number), "f")
    return text if "." in text else text + ".0"


def to_jsonb(text: str) -> str:
    """JSON text (ASCII) that JSONB stores and gives back unchanged.

    JSONB keeps numbers as exact decimals and prints them positionally, so ``1e300``
    would come back as the integer 10**300: exponent floats are written positionally
    with a decimal point. JSONB refuses ``\\u0000``: NUL (and the mark U+FDD0 itself)
    become two-character sequences starting with U+FDD0.
    """
    if "\\u0000" in text or "\\ufdd0" in text:
        text = _ESCAPE.sub(lambda m: _ESCAPED[m.group(0)], text)
    if _EXP_HINT.search(text):
        text = _NUMBER.sub(_positional, text)
    return text


def from_jsonb(text: str) -> str:
    """The JSON text :func:`to_jsonb` encoded, from JSONB's text output."""
    if _MARK in text:
        text = _UNESCAPE.sub(lambda m: _UNESCAPED.get(m.group(1), m.group(0)), text)
    return text


def dumps(value: Any) -> str:
    """``value`` as JSON text for a JSONB column."""
    return to_jsonb(json.dumps(value, separators=(",", ":"), allow_nan=False))


def loads(text: str) -> Any:
    """A value from a JSONB column's text output."""
    return json.loads(from_jsonb(text))


__all__ = ["dumps", "from_jsonb", "loads", "to_jsonb"]
