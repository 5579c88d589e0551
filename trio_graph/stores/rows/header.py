"""A checkpoint header written without building a document: the common case, fast.

Pure (no trio, no I/O). Most checkpoints (a loop writing one every step) have no
barrier, decisions, branches, frames or error: their header differs from the run's
previous one only in a few scalars. :func:`plain_header` writes exactly the JSON that
:func:`~trio_graph.stores.rows.codec.encode_header` would (same keys, same order, same
encoders: the C string encoder ``json.dumps`` uses, ``repr`` of ints and finite
floats) by joining pre-encoded parts, about five times faster; anything else returns
None and goes the general way.
"""

from __future__ import annotations

import functools
import json
import math
from collections.abc import Callable
from typing import Any

from ... import serde
from ..._model.checkpoint import Checkpoint, CheckpointPolicy, RunStatus

_string: Callable[[str], str] = json.encoder.encode_basestring_ascii
"""``json.dumps(text)`` for a str (``ensure_ascii``, the default), without the encoder."""


@functools.lru_cache(maxsize=64)
def _policy_json(policy: CheckpointPolicy) -> str:
    doc: dict[str, Any] = serde.converter.unstructure(policy, CheckpointPolicy)
    return json.dumps(doc, separators=(",", ":"), allow_nan=False)


_last_policy: list[tuple[Any, str]] = [(None, "null")]
"""The policy last encoded and its JSON, as one pair (held, so that the identity check
is sound; read and replaced whole, so that saves in two threads never mix two pairs)."""


def policy_json(policy: CheckpointPolicy | None) -> str:
    """A run's policy as JSON, once per policy (every checkpoint of a run has the same
    object: an identity check, before hashing it for the cache)."""
    held, text = _last_policy[0]
    if policy is not held:
        text = "null" if policy is None else _policy_json(policy)
        _last_policy[0] = (policy, text)
    return text


def _status(status: RunStatus) -> str:
    """The status's value (plain ASCII words), without the enum's call for a member."""
    return status.value if type(status) is RunStatus else RunStatus(status).value


def _text(value: object) -> str | None:
    if value is None:
        return "null"
    return _string(value) if type(value) is str else None


_last_run: list[tuple[Any, Any]] = [((), None)]
"""The last checkpoint's run fields and their JSON parts (one run saves many
checkpoints), as one pair read and replaced whole (saves may run in threads)."""


def _run_parts(c: Checkpoint) -> tuple[str, str, str] | None:
    """The header's parts that every checkpoint of a run repeats (trace, graph, lineage,
    run id, policy), encoded once per run and kept while the next checkpoint's fields
    are the same (a tuple compare: identity first); None: one is not a str."""
    key = (c.trace_id, c.graph_name, c.graph_hash, c.resumed_from, c.run_id, c.policy)
    held, parts = _last_run[0]
    if key == held:
        return parts  # type: ignore[no-any-return]
    texts = [_text(v) for v in key[:5]]
    if None in texts:
        return None
    trace, name, digest, resumed, run = texts
    parts = (
        f'"trace_id":{trace},"graph_name":{name},"graph_hash":{digest},"next_node":',
        f',"resumed_from":{resumed},"resume_count":',
        f',"error":null,"frames":[],"run_id":{run},"policy":{policy_json(c.policy)}}}',
    )
    _last_run[0] = (key, parts)
    return parts


def plain_header(c: Checkpoint, new_at: tuple[int, ...] | None) -> str | None:
    """The header of a checkpoint with nothing but scalars to say, else None."""
    if (
        c.pending_barrier is not None
        or c.pending_payload is not None
        or c.deadline is not None
        or c.error is not None
        or c.occurrences
        or c.decisions
        or c.branches
        or c.frames
        or (new_at is not None and new_at != ())
        or type(c.step) is not int
        or type(c.resume_count) is not int
        or type(c.created_at) is not float
        or not math.isfinite(c.created_at)
    ):
        return None
    run = _run_parts(c)
    cid, next_node = _text(c.checkpoint_id), _text(c.next_node)
    if run is None or cid is None or next_node is None:
        return None
    trace_to_next, resumed_to_count, error_to_end = run
    branches = '"branches":[],"branches_at":[]' if new_at is not None else '"branches":[]'
    return "".join(
        (
            f'{{"checkpoint_id":{cid},{trace_to_next}{next_node},"step":{c.step!r},',
            f'"state":{{}},"status":"{_status(c.status)}","pending_barrier":null,',
            '"pending_payload":null,"deadline":null,"occurrences":{},"decisions":[],',
            f"{branches}{resumed_to_count}{c.resume_count!r},",
            f'"created_at":{c.created_at!r}{error_to_end}',
        )
    )
