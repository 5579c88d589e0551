"""How a claimed job's errors are classified: a lost lease, or a store outage.

Either may arrive bare, inside an exception group (a fan-out, a nursery) or as the
cause of the run's own error, so both look through groups and ``__cause__`` chains.
A lost lease stops the run (another worker has it); an outage is retried from the
job's last checkpoint (it is not the run's failure).
"""

from __future__ import annotations

from ..errors import LeaseLost, StoreUnavailable

_DEPTH = 20
"""How deep groups and causes are searched (a guard against cycles)."""


def _found(exc: BaseException | None, kind: type[BaseException], depth: int = 0) -> bool:
    if exc is None or depth > _DEPTH:
        return False
    if isinstance(exc, kind):
        return True
    if isinstance(exc, BaseExceptionGroup):
        return any(_found(e, kind, depth + 1) for e in exc.exceptions)
    return _found(exc.__cause__, kind, depth + 1)


def outage_in(exc: BaseException | None) -> bool:
    """Whether ``exc`` is, holds or was caused by a store outage (``StoreUnavailable``)."""
    return _found(exc, StoreUnavailable)


def lease_lost_in(exc: BaseException | None) -> bool:
    """Whether ``exc`` is, holds (an exception group) or was caused by a ``LeaseLost``."""
    return _found(exc, LeaseLost)
