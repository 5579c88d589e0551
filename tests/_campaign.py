"""Hypothesis campaigns in two sizes: a quick one in the fast loop, the full one under
``-m slow``.

``@pytest.mark.parametrize("examples", sizes(3000))`` gives a test two ids, ``quick``
(about a twentieth of the examples, default selection) and ``campaign`` (all of them,
marked ``slow``); the test body calls ``explore(strategy, examples, check)``, which runs
the property ``check`` on that many examples drawn from ``strategy``. Both sizes run the
same property with the same assertions; only the number of examples differs.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

T = TypeVar("T")


def sizes(full: int, quick: int | None = None) -> list[Any]:
    """The two parameter sets: ``quick`` examples (default ``full // 20``, at least 10)
    and the ``full`` campaign, marked slow."""
    small = quick if quick is not None else max(10, full // 20)
    return [
        pytest.param(small, id="quick"),
        pytest.param(full, id="campaign", marks=pytest.mark.slow),
    ]


def explore(strategy: st.SearchStrategy[T], examples: int, check: Callable[[T], None]) -> None:
    """Run ``check`` on ``examples`` values of ``strategy`` (shrinking a failure as usual)."""
    settings(max_examples=examples, deadline=None)(given(strategy)(check))()
