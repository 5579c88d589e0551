"""The fast header (``stores/rows/header.py``) writes exactly the general encoder's JSON."""

from __future__ import annotations

import math

import pytest

from trio_graph._model.checkpoint import Checkpoint, CheckpointPolicy, RunStatus
from trio_graph._model.decisions import BarrierId
from trio_graph.stores.rows.codec import document_header, encode_header
from trio_graph.stores.rows.header import plain_header


def _checkpoint(**changes: object) -> Checkpoint:
    fields: dict[str, object] = {
        "checkpoint_id": "c1",
        "trace_id": "t1",
        "graph_name": "loop",
        "graph_hash": "h" * 64,
        "next_node": "a",
        "step": 7,
        "state": {"n": 7},
        "run_id": "r1",
        "created_at": 1796193566.9816258,
        "policy": CheckpointPolicy(every_step=True),
    }
    fields.update(changes)
    return Checkpoint(**fields)  # type: ignore[arg-type]


PLAIN = [
    {},
    {"next_node": None},
    {"status": RunStatus.COMPLETED},
    {"resumed_from": "t0", "resume_count": 3},
    {"policy": None},
    {"graph_name": 'quote " and é and \\u2603 ☃', "next_node": "sub/node"},
    {"created_at": 0.1 + 0.2, "step": 0},
]


@pytest.mark.parametrize("changes", PLAIN)
@pytest.mark.parametrize("new_at", [None, ()])
def test_plain_header_is_the_general_json(changes: dict[str, object], new_at: object) -> None:
    """For checkpoints of scalars only, the fast text is byte for byte the general one."""
    checkpoint = _checkpoint(**changes)
    fast = plain_header(checkpoint, new_at)  # type: ignore[arg-type]
    assert fast is not None
    assert fast == document_header(checkpoint, new_at)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "changes",
    [
        {"pending_barrier": BarrierId("gate", 1)},
        {"error": "boom"},
        {"occurrences": {"gate": 1}},
        {"deadline": 5.0},
        {"created_at": math.inf},
        {"step": True},
    ],
)
def test_other_headers_go_the_general_way(changes: dict[str, object]) -> None:
    """Anything but scalars (or a value the fast path does not encode) is not written fast."""
    checkpoint = _checkpoint(**changes)
    assert plain_header(checkpoint, None) is None
    if changes.get("created_at") is not math.inf:
        assert encode_header(checkpoint) == document_header(checkpoint, None)


def test_run_parts_follow_the_checkpoint_not_the_last_run() -> None:
    """The run's parts are kept between checkpoints, yet a checkpoint of another run (or
    the same run with another field: lineage, policy, a non-str id) is never written
    with the parts of the one before."""
    variants = [
        {},
        {"trace_id": "t2", "run_id": "r2"},
        {},
        {"resumed_from": "t0"},
        {"policy": CheckpointPolicy()},
        {"policy": None},
        {"graph_hash": "g" * 64, "checkpoint_id": "c2"},
        {},
    ]
    for changes in variants:
        checkpoint = _checkpoint(**changes)
        assert plain_header(checkpoint, None) == document_header(checkpoint, None)
    assert plain_header(_checkpoint(trace_id=7), None) is None
    assert plain_header(_checkpoint(), None) == document_header(_checkpoint(), None)
