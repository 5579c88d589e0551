"""Saving a run's checkpoint: the one funnel of store failures.

Runtime layer. :meth:`~trio_graph._runtime.loop.StepLoop.checkpoint` takes the checkpoint
from the run's pure state and hands it here; a typed run's checkpoint goes to the store
with JSON types (``_model/typed.py``, DESIGN §16).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._model.checkpoint import Changes, Checkpoint
from .._model.run_state import RunState
from .._model.typed import to_store
from ..errors import CheckpointError, GraphError

if TYPE_CHECKING:
    from ..stores.protocol import Store


async def save(
    store: Store,
    state: RunState,
    checkpoint: Checkpoint,
    changes: Changes,
    site: str,
    *,
    done: bool,
    typed: bool,
) -> None:
    """``store.save`` the checkpoint. trio_graph's own errors pass unchanged; any other
    exception of the store becomes a ``CheckpointError`` naming the checkpoint (``site``:
    what it records, the run, the step, the next node, the last checkpoint saved), the
    store's exception as ``__cause__``; ``trio.Cancelled`` and other ``BaseException``
    pass unchanged. What was not saved is owed to the next (``state.unsaved``)."""
    try:
        if typed:  # the store keeps JSON types
            stored, hint = to_store(checkpoint, changes)
            await store.save(stored, changes=hint)
        else:
            await store.save(checkpoint, changes=changes)
    except GraphError:
        state.unsaved(changes)
        raise
    except Exception as exc:
        state.unsaved(changes)
        inner = state.inner
        where = "none, run finished" if done else inner.prefix + inner.current
        raise CheckpointError(
            f"could not save the {site} checkpoint of run {state.trace_id!r} at step "
            f"{inner.step} (next node {where!r}; last saved checkpoint "
            f"{state.last_checkpoint!r}): store.save raised {type(exc).__name__}: {exc}"
        ) from exc
    except BaseException:
        state.unsaved(changes)
        raise
