"""Loading stored checkpoints never executes code (issue 6; LangGraph's RCE advisories).

A ``sys.addaudithook`` hook records, while a crafted row is loaded, every audit event
that would mean code execution or class loading: ``exec``/``compile``, ``import``,
``pickle.find_class``, ``marshal.loads``, process spawning, ``ctypes``. Rows are
crafted with raw SQL: pickle opcodes, a ``__reduce__`` payload, jsonpickle-style
class-path envelopes, unknown tags and reducer names. Each load must raise
``CheckpointError`` naming the checkpoint, and record nothing. An envelope stored as
a *state value* is plain data: it loads as the dict it is, inertly.
"""

from __future__ import annotations

import json
import os
import pickle
import sqlite3
import sys
from collections import OrderedDict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from trio_graph import serde
from trio_graph._model.checkpoint import Checkpoint
from trio_graph._model.decisions import Approve
from trio_graph.errors import CheckpointError
from trio_graph.stores.rows import row_checksum
from trio_graph.stores.sqlite import SQLiteStore

FORBIDDEN = (
    "exec",
    "compile",
    "import",
    "pickle.",
    "marshal.",
    "os.system",
    "os.exec",
    "os.posix_spawn",
    "os.spawn",
    "os.fork",
    "subprocess.",
    "ctypes.",
)

_recording: list[str] | None = None


def _hook(event: str, args: tuple[Any, ...]) -> None:
    if _recording is not None and event.startswith(FORBIDDEN):
        _recording.append(event)


sys.addaudithook(_hook)  # cannot be removed; inert unless recording


@pytest.fixture
def audit() -> Iterator[list[str]]:
    global _recording
    events: list[str] = []
    _recording = events
    try:
        yield events
    finally:
        _recording = None


class Evil:
    def __reduce__(self) -> tuple[Any, ...]:
        return (os.system, ("echo pwned > /dev/null",))


PICKLE = pickle.dumps(Evil(), protocol=4)
ENVELOPE = {
    "py/object": "os.system",
    "py/reduce": [{"py/function": "os.system"}, {"py/tuple": ["echo pwned"]}],
    "__class__": "subprocess.Popen",
}


async def _stored(path: Path) -> tuple[str, str, str]:
    """A trace with a base snapshot and a delta row; warms every code path first."""
    from test_store_conformance import Writer

    w = Writer(state={"n": 0, "log": []})
    async with SQLiteStore(path) as store:
        base = await w.save(store, decisions=[])
        w.apply({"n": 1, "log": "x"})
        delta = await w.save(store)
        # Warm up: hooks cattrs generates, reader connections, thread pool.
        await store.load(base.checkpoint_id)
        await store.load(delta.checkpoint_id)
        await store.list(w.trace_id)
        await store.runs()
    serde.from_json(serde.to_json(Approve(), serde.Decision), serde.Decision)
    return w.trace_id, base.checkpoint_id, delta.checkpoint_id


def _header(path: Path, checkpoint_id: str) -> dict[str, Any]:
    db = sqlite3.connect(path)
    try:
        (text,) = db.execute(
            "SELECT header FROM checkpoints WHERE checkpoint_id = ?", (checkpoint_id,)
        ).fetchone()
    finally:
        db.close()
    doc: dict[str, Any] = json.loads(text)
    return doc


def _craft(path: Path, checkpoint_id: str, column: str, value: Any) -> None:
    """Replace a column and give the row a matching checksum (an attacker who can write
    the file can compute one too): the decoders themselves must refuse the payload."""
    assert column in ("header", "body")
    db = sqlite3.connect(path, isolation_level=None)
    try:
        db.execute(
            f"UPDATE checkpoints SET {column} = ? WHERE checkpoint_id = ?",  # column: fixed list
            (value, checkpoint_id),
        )
        (*cols,) = db.execute(
            "SELECT checkpoint_id, trace_id, base_id, prev_id, link, header, body "
            "FROM checkpoints WHERE checkpoint_id = ?",
            (checkpoint_id,),
        ).fetchone()
        if all(isinstance(c, str | int | None) for c in cols):
            db.execute(
                "UPDATE checkpoints SET checksum = ? WHERE checkpoint_id = ?",
                (row_checksum(*cols), checkpoint_id),
            )
    finally:
        db.close()


def _with(doc: dict[str, Any], **changes: Any) -> str:
    return json.dumps({**doc, **changes})


CASES = {
    "pickle-blob-body": ("delta", "body", lambda h: PICKLE),
    "pickle-text-body": ("delta", "body", lambda h: PICKLE.decode("latin-1")),
    "pickle-blob-base": ("base", "body", lambda h: PICKLE),
    "pickle-blob-header": ("delta", "header", lambda h: PICKLE),
    "envelope-header": ("delta", "header", lambda h: json.dumps(ENVELOPE)),
    "envelope-status": ("delta", "header", lambda h: _with(h, status=ENVELOPE)),
    "envelope-pending-barrier": ("delta", "header", lambda h: _with(h, pending_barrier=ENVELOPE)),
    "decision-class-path-tag": (
        "delta",
        "header",
        lambda h: _with(
            h, decisions=[{"node": "r", "occurrence": 1, "decision": {"type": "os.system"}}]
        ),
    ),
    "decision-envelope": (
        "delta",
        "header",
        lambda h: _with(h, decisions=[{"node": "r", "occurrence": 1, "decision": ENVELOPE}]),
    ),
    "delta-reducer-class-path": ("delta", "body", lambda h: json.dumps([["n", 1, "os.system"]])),
    "delta-reducer-import": ("delta", "body", lambda h: json.dumps([["n", 1, "__import__"]])),
    "delta-envelope": ("delta", "body", lambda h: json.dumps(ENVELOPE)),
    "base-envelope-list": ("base", "body", lambda h: json.dumps([ENVELOPE])),
}


@pytest.mark.parametrize("case", sorted(CASES))
async def test_crafted_rows_raise_and_execute_nothing(
    case: str, tmp_path: Path, audit: list[str]
) -> None:
    """A crafted row gives CheckpointError naming the checkpoint; no code runs or loads."""
    path = tmp_path / "c.db"
    global _recording
    _recording = None
    trace, base, delta = await _stored(path)
    which, column, make = CASES[case]
    target = base if which == "base" else delta
    _craft(path, target, column, make(_header(path, target)))
    async with SQLiteStore(path) as store:
        await store.runs()  # open the connections before recording
        _recording = audit
        with pytest.raises(CheckpointError, match=rf"\(checkpoint '{delta}'\)$"):
            await store.load(delta)
        with pytest.raises(CheckpointError, match=r"^corrupted checkpoint"):
            await store.latest(trace)
        with pytest.raises(CheckpointError, match=r"^corrupted checkpoint"):
            await store.list(trace)
    assert audit == []


async def test_envelope_as_state_value_is_inert_data(tmp_path: Path, audit: list[str]) -> None:
    """A class-path envelope saved as a state value loads back as the plain dict it is."""
    global _recording
    _recording = None
    path = tmp_path / "c.db"
    trace, base, _ = await _stored(path)
    _craft(path, base, "body", json.dumps({"n": 0, "log": [], "payload": ENVELOPE}))
    async with SQLiteStore(path) as store:
        await store.runs()
        _recording = audit
        loaded = await store.load(base)
        latest = await store.latest(trace)
    assert loaded.state["payload"] == ENVELOPE
    assert latest is not None and latest.state["payload"] == ENVELOPE
    assert type(loaded.state["payload"]) is dict
    assert audit == []


@pytest.mark.parametrize(
    "doc",
    [
        {"type": "os.system"},
        {"type": "Approve", "__reduce__": ["os.system", ["echo"]]},
        ENVELOPE,
        PICKLE.decode("latin-1"),
    ],
)
def test_converter_refuses_unknown_tags(doc: Any, audit: list[str]) -> None:
    """serde.from_json on crafted decisions/checkpoints: CheckpointError, nothing executed."""
    text = doc if isinstance(doc, str) else json.dumps(doc)
    try:
        loaded = serde.from_json(text, serde.Decision)
    except CheckpointError:
        pass
    else:  # extra keys are ignored: the result is our own class, nothing else
        assert loaded == Approve()
    with pytest.raises(CheckpointError, match=r"^cannot load Checkpoint from JSON"):
        serde.from_json(text, Checkpoint)
    assert audit == []


def test_the_hook_sees_what_it_should(audit: list[str]) -> None:
    """Sanity check of the detector: a real unpickle and an exec are recorded."""
    assert pickle.loads(pickle.dumps(OrderedDict(a=1))) == {"a": 1}
    exec("x = 1", {})
    assert "pickle.find_class" in audit
    assert "exec" in audit
