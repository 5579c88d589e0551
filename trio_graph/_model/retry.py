"""Retry policy for task nodes: attempts, exponential back-off, jitter.

Model layer: no trio import. The runtime sleeps ``delay(attempt)`` with
``trio.sleep`` between attempts (cancellable, MockClock-testable); this module
only computes the numbers.
"""

from __future__ import annotations

import random
from collections.abc import Callable

import attrs


def _positive_int(_: object, attribute: attrs.Attribute[int], value: int) -> None:
    if not isinstance(value, int) or value < 1:
        raise ValueError(f"RetryPolicy.{attribute.name} must be a positive int, got {value!r}")


def _non_negative(_: object, attribute: attrs.Attribute[float], value: float) -> None:
    if not isinstance(value, int | float) or value < 0:
        raise ValueError(f"RetryPolicy.{attribute.name} must be a number >= 0, got {value!r}")


@attrs.frozen
class RetryPolicy:
    """Retry a failing task node.

    The delay before attempt ``n + 1`` is ``min(backoff * multiplier**(n-1), max_backoff)``;
    with ``jitter`` it is drawn uniformly from ``[delay/2, delay]`` (so concurrent
    retries spread out but never wait longer than the un-jittered delay).
    Only exceptions that are instances of ``retry_on`` are retried (a node timeout is
    a ``NodeTimeout``, an ``Exception``, so it is retried by default).
    """

    max_attempts: int = attrs.field(default=3, validator=_positive_int)
    backoff: float = attrs.field(default=0.5, validator=_non_negative)
    multiplier: float = attrs.field(default=2.0, validator=_non_negative)
    max_backoff: float = attrs.field(default=30.0, validator=_non_negative)
    jitter: bool = True
    retry_on: tuple[type[BaseException], ...] = (Exception,)

    def retries(self, exc: BaseException, attempt: int) -> bool:
        """Whether failing ``attempt`` (from 1) with ``exc`` earns another attempt."""
        return attempt < self.max_attempts and isinstance(exc, self.retry_on)

    def delay(self, attempt: int, rand: Callable[[], float] = random.random) -> float:
        """Seconds to wait after failed ``attempt`` (from 1)."""
        base = min(self.backoff * self.multiplier ** (attempt - 1), self.max_backoff)
        if self.jitter:
            return base / 2 + rand() * base / 2
        return base
