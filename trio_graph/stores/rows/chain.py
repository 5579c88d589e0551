"""The one chain check, and the restoring of states along a chain of rows.

Pure (no trio, no I/O). Reading checks every row's checksum (:class:`~.codec.Row`) and
follows ``prev_id`` back to the base (:func:`chain`), whatever other rows sit in
between; :func:`load_trace` replays rows in write order, each delta row on the row it
names, checking each link with the same rule (:func:`follows`). Any damage (a flipped
character, swapped bodies, a link column of the wrong type, a missing row) is a
``CheckpointError`` naming the checkpoint being loaded.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import attrs

from ..._model.checkpoint import Checkpoint, StoredDelta
from ...reducers import BUILTINS
from .codec import Row, decode_deltas, decode_header, decode_state, fail, header_doc, short


def restore(base: Mapping[str, Any], chain: Iterable[Iterable[StoredDelta]]) -> dict[str, Any]:
    """The state of a base snapshot plus each row's deltas, in order."""
    state = dict(base)
    for deltas in chain:
        for d in deltas:
            if d.reducer is None:
                state[d.key] = d.value
                continue
            reducer = BUILTINS[d.reducer]
            if d.key in state:
                state[d.key] = reducer.fn(state[d.key], d.value)
            elif reducer.initial is not None:
                state[d.key] = reducer.fn(reducer.initial(), d.value)
            else:
                state[d.key] = d.value
    return state


def apply_deltas(
    state: Mapping[str, Any], deltas: list[StoredDelta], checkpoint_id: str
) -> dict[str, Any]:
    """:func:`restore` of one row, with a failing reducer as ``CheckpointError``."""
    try:
        return restore(state, [deltas])
    except Exception as exc:
        why = f"{type(exc).__name__}: {short(exc)}"
        raise fail(f"cannot replay deltas ({why})", checkpoint_id) from exc


def _insert(previous: list[Any], new: list[Any], at: object, checkpoint_id: str) -> list[Any]:
    """``previous`` with ``new`` placed at the places ``at`` (increasing) of the result."""
    size = len(previous) + len(new)
    if not (
        isinstance(at, list)
        and len(at) == len(new)
        and all(type(i) is int for i in at)
        and all(0 <= a < b for a, b in zip(at, [*at[1:], size], strict=False))
    ):
        raise fail("bad places of its new branches", checkpoint_id)
    out, rest, places = [], iter(previous), set(at)
    fresh = iter(new)
    for i in range(size):
        out.append(next(fresh) if i in places else next(rest))
    return out


# -- the chain check and loading -----------------------------------------------------------
def follows(row: Row, prev: Row | None) -> bool:
    """True when ``prev`` is the row one link before delta row ``row`` in its chain."""
    return (
        prev is not None
        and row.base_id is not None
        and row.link >= 1
        and prev.trace_id == row.trace_id
        and prev.link == row.link - 1
        and (prev.base_id if prev.link else prev.checkpoint_id) == row.base_id
        and (prev.link != 0 or prev.base_id is None)
    )


def _is_base(row: Row) -> bool:
    return row.base_id is None and row.link == 0


def chain(target: Row, rows: Mapping[str, Row]) -> list[Row]:
    """The one chain check: ``target``'s chain, base first, each delta row's ``prev_id``
    one link back in the same trace and chain, down to its base row (``rows`` by id,
    each checked by :meth:`Row.of`). A broken chain is a ``CheckpointError``."""
    out = [target]
    row = target
    while not _is_base(row):
        prev = rows.get(row.prev_id) if row.prev_id is not None else None
        if not follows(row, prev):
            raise fail("its chain of deltas is broken", target.checkpoint_id)
        assert prev is not None
        out.append(prev)
        row = prev
    out.reverse()
    return out


def load(target: Row, rows: Mapping[str, Row]) -> Checkpoint:
    """The checkpoint of ``target`` with its full state and branches."""
    return load_trace([*chain(target, rows)], target.checkpoint_id)[-1]


def load_trace(rows: Iterable[Row], checkpoint_id: str = "") -> list[Checkpoint]:
    """The checkpoints of rows given in write order (a trace's, or one chain base first);
    each delta row is replayed on the row it names. Errors name ``checkpoint_id`` (or
    the row's own id)."""
    states: dict[str, tuple[dict[str, Any], list[Any]]] = {}
    by_id: dict[str, Row] = {}
    out: list[Checkpoint] = []
    for row in rows:
        where = checkpoint_id or row.checkpoint_id
        by_id[row.checkpoint_id] = row
        doc = header_doc(row, where)
        if _is_base(row):
            state, branches = decode_state(row, where), doc["branches"]
        else:
            prev = by_id.get(row.prev_id or "") if row.prev_id in states else None
            if not follows(row, prev):  # checked link by link, from the base on
                raise fail("its chain of deltas is broken", where)
            prev_state, prev_branches = states[row.prev_id or ""]
            state = apply_deltas(prev_state, decode_deltas(row, where), where)
            branches = doc["branches"]
            if "branches_at" in doc:
                branches = _insert(prev_branches, branches, doc["branches_at"], where)
        states[row.checkpoint_id] = (state, branches)
        checkpoint = decode_header({**doc, "branches": branches}, where)
        out.append(attrs.evolve(checkpoint, state=state))
    return out
