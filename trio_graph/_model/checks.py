"""The builder's checks of node options, each adding what is wrong to ``problems``.

Model layer: no trio import. :class:`~trio_graph._model.builder.GraphBuilder` collects
every problem and ``build()`` reports them together (``InvalidGraph``).
"""

from __future__ import annotations

from collections.abc import Mapping

from .graph import Branch, NodeFn, is_async_callable, takes_context
from .mapping import items_key


def check_limit(where: str, limit: int | None, problems: list[str]) -> None:
    """``limit`` (concurrent branches) is None or a positive int."""
    if limit is not None and (not isinstance(limit, int) or limit < 1):
        problems.append(f"{where}: limit must be a positive int, got {limit!r}")


def check_timeout(where: str, timeout: float | None, problems: list[str]) -> None:
    """``timeout`` is None or a number >= 0 (not a bool)."""
    if timeout is not None and (
        not isinstance(timeout, int | float) or isinstance(timeout, bool) or timeout < 0
    ):
        problems.append(f"{where}: timeout must be a number >= 0, got {timeout!r}")


def check_limiter(where: str, limiter: str | None, problems: list[str]) -> None:
    """``limiter`` is None or the name of one of the executor's shared limiters."""
    if limiter is not None and (not isinstance(limiter, str) or not limiter):
        problems.append(f"{where}: limiter must be a limiter's name, got {limiter!r}")


def fork_branches(
    where: str,
    name: str,
    branches: Mapping[str, NodeFn],
    timeouts: Mapping[str, float] | None,
    problems: list[str],
) -> tuple[Branch, ...]:
    """The branches of parallel node ``name``, each with its timeout, checked."""
    left = dict(timeouts or {})
    built = []
    for bname, fn in branches.items():
        if not callable(fn):
            problems.append(f"{where}: branch {bname!r} is not callable ({fn!r:.60})")
        if bname == items_key(name):
            problems.append(f"{where}: branch name {bname!r} is reserved (map items)")
        t = left.pop(bname, None)
        check_timeout(f"{where} branch {bname!r}", t, problems)
        built.append(
            Branch(
                bname,
                fn,
                is_async=is_async_callable(fn),
                timeout=t,
                takes_context=takes_context(fn),
            )
        )
    for bname in left:
        problems.append(f"{where}: timeout given for unknown branch {bname!r}")
    return tuple(built)
