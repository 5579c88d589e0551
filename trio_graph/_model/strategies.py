"""The strategies of a fan-out (``.parallel`` and ``.map``): how many successes it needs.

Model layer: no trio import. DESIGN §7 and §15:

- ``fail_fast`` (default): every branch must succeed; the first failure cancels the rest.
- ``collect_all``: every branch must succeed; all run to their end, every failure reported.
- ``first_completed``: the first branch to succeed wins, the others are cancelled at once
  and their updates discarded; when every branch fails the error lists them all.
- ``quorum=k`` (``strategy="quorum"`` is implied): the fork ends once ``k`` branches
  succeeded; those ``k`` merge in declaration/item order, the rest are cancelled. It
  fails as soon as ``k`` successes are out of reach, listing every failure.

``first_completed`` is ``quorum=1``: :func:`needed` gives the number of successes a fork
of ``n`` branches waits for, and :class:`Tally` decides, branch by branch, what a result
means.
"""

from __future__ import annotations

from typing import Any

import attrs

STRATEGIES = ("fail_fast", "collect_all", "first_completed", "quorum")


def check_strategy(
    where: str, strategy: Any, quorum: Any, problems: list[str], branches: int | None = None
) -> tuple[Any, int | None]:
    """The (strategy, quorum) a fan-out declared, its problems appended to ``problems``.

    ``quorum=k`` alone means ``strategy="quorum"``; ``k`` must be an int from 1 to the
    number of ``branches`` (a map's items are only known at run time: ``branches=None``).
    """
    if quorum is not None and strategy == "fail_fast":
        strategy = "quorum"  # quorum=k alone
    if strategy not in STRATEGIES:
        problems.append(f"{where}: strategy must be one of {STRATEGIES}, got {strategy!r}")
        return strategy, None
    if strategy != "quorum":
        if quorum is not None:
            problems.append(f"{where}: quorum={quorum!r} goes with strategy='quorum' only")
        return strategy, None
    top = "" if branches is None else f" to {branches} (its branches)"
    if (
        not isinstance(quorum, int)
        or isinstance(quorum, bool)
        or quorum < 1
        or (branches is not None and quorum > branches)
    ):
        problems.append(f"{where}: quorum must be an int from 1{top}, got {quorum!r}")
        return strategy, None
    return strategy, quorum


def needed(strategy: str, quorum: int | None, branches: int) -> int:
    """How many of ``branches`` must succeed for the fork to succeed."""
    if strategy == "first_completed":
        return 1
    if strategy == "quorum":
        assert quorum is not None
        return quorum
    return branches


@attrs.define
class Tally:
    """A running fork's count: what each branch's end means for the fork.

    ``won`` counts the successes kept, ``lost`` the failures; ``left`` the branches not
    ended yet. Every method answers whether the fork's other branches must stop now.
    """

    strategy: str
    need: int
    left: int
    won: int = 0
    lost: int = 0
    racing: bool = attrs.field(init=False)
    """first_completed or quorum: successes past the ``need`` are discarded."""
    settled: bool = attrs.field(init=False, default=False)
    """The fork has what it waits for (the rest are cancelled or discarded)."""

    def __attrs_post_init__(self) -> None:
        self.racing = self.strategy in ("first_completed", "quorum")
        self.settled = self.racing and self.won >= self.need

    def keep(self) -> bool:
        """A branch succeeded: True when its updates count (False: discarded, the fork
        already has its ``need``)."""
        self.left -= 1
        if self.settled:
            return False
        self.won += 1
        self.settled = self.racing and self.won >= self.need
        return True

    def failed(self) -> bool:
        """A branch failed: True when the fork must stop its other branches now."""
        self.left -= 1
        self.lost += 1
        if self.strategy == "fail_fast":
            return True
        return self.racing and self.won + self.left < self.need  # out of reach

    def fails(self) -> bool:
        """Once every branch ended or was cancelled: the fork failed."""
        if self.racing:
            return self.won < self.need
        return self.lost > 0
