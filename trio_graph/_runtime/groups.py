"""Exception groups from the nurseries a run opens, as the caller should see them.

Runtime layer. A run's tasks raise one real error at a time (the loop turns everything
else into its terminal event); a nursery wraps it in a group, with the ``Cancelled``
of its siblings. :func:`lone_error` unwraps it again, so callers get the bare error
with its own ``__cause__``.
"""

from __future__ import annotations

import trio


def only_cancelled(exc: BaseException) -> bool:
    """True for ``trio.Cancelled`` or a group holding nothing else (from a nursery)."""
    if isinstance(exc, trio.Cancelled):
        return True
    if isinstance(exc, BaseExceptionGroup):
        return all(only_cancelled(e) for e in exc.exceptions)
    return False


def lone_error(group: BaseExceptionGroup[BaseException]) -> BaseException | None:
    """The one error in ``group`` (nested groups flattened, ``Cancelled`` ignored), or
    None when it holds several or none."""
    errors: list[BaseException] = []
    for exc in group.exceptions:
        if isinstance(exc, BaseExceptionGroup):
            inner = lone_error(exc)
            if inner is None:
                if not only_cancelled(exc):
                    return None
                continue
            errors.append(inner)
        elif not isinstance(exc, trio.Cancelled):
            errors.append(exc)
    return errors[0] if len(errors) == 1 else None
