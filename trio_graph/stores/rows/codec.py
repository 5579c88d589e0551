"""The row codec: a checkpoint as one checksummed row of JSON text, and back.

Pure (no trio, no I/O). See :mod:`trio_graph.stores.rows` for the row's columns; this
module writes and reads them (the header, a full state, a list of deltas), checks a
row's column types and checksum, and refuses what no database could store. Loading
never imports or executes anything: plain JSON, our own attrs classes, reducers by
built-in name.
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

import attrs
import cattrs

from ... import errors, serde
from ..._model.checkpoint import Checkpoint, CheckpointPolicy, RunStatus, StoredDelta
from ..._model.decisions import Modify
from ..._model.jsonvalue import check_value
from ...reducers import BUILTINS
from .header import plain_header


def fail(message: str, checkpoint_id: str = "") -> errors.CheckpointError:
    return errors.CheckpointError(f"corrupted checkpoint: {message}", checkpoint_id=checkpoint_id)


def short(exc: BaseException) -> str:
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return text[:200]


# -- text columns --------------------------------------------------------------------------
def check_text(checkpoint: Checkpoint) -> None:
    """Refuse ids and names that no database can store (a lone surrogate), naming the field."""
    for field in ("checkpoint_id", "trace_id", "run_id", "graph_name", "resumed_from"):
        value = getattr(checkpoint, field)
        if value is not None and not is_text(value):
            raise errors.CheckpointError(
                f"cannot save: {field} {value!r:.80} is not valid Unicode (a lone surrogate)"
            )


def is_text(value: object) -> bool:
    """True for a str that encodes as UTF-8 (what SQLite and PostgreSQL can store)."""
    if not isinstance(value, str):
        return False
    if value.isascii():  # a flag of the str: the common case (hex ids, plain names)
        return True
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


# -- the row -----------------------------------------------------------------------------
@attrs.frozen
class Row:
    """One stored checkpoint, column by column (see the module notes)."""

    checkpoint_id: str
    trace_id: str
    base_id: str | None
    prev_id: str | None
    link: int
    header: str
    body: str
    checksum: str

    COLUMNS = "checkpoint_id, trace_id, base_id, prev_id, link, header, body, checksum"

    @classmethod
    def of(cls, values: Sequence[Any], checkpoint_id: str = "") -> Row:
        """A row from its columns in ``COLUMNS`` order, each of the right type and the
        checksum right (else ``CheckpointError`` naming ``checkpoint_id``)."""
        if len(values) != 8:
            raise fail("a row with the wrong columns", checkpoint_id)
        cid, trace, base, prev, link, header, body, digest = values
        where = checkpoint_id or (cid if is_text(cid) else "")
        texts, optional = (cid, trace, header, body, digest), (base, prev)
        if (
            not all(is_text(v) for v in texts)
            or not all(v is None or is_text(v) for v in optional)
            or type(link) is not int
        ):
            raise fail("a column of its row has the wrong type", where)
        row = cls(cid, trace, base, prev, link, header, body, digest)
        if digest != row_checksum(cid, trace, base, prev, link, header, body):
            raise fail("its row does not match its checksum", where)
        return row

    def values(self) -> tuple[Any, ...]:
        """The columns in ``COLUMNS`` order."""
        return (
            self.checkpoint_id,
            self.trace_id,
            self.base_id,
            self.prev_id,
            self.link,
            self.header,
            self.body,
            self.checksum,
        )


class LazyRows(Mapping[str, Row]):
    """Raw rows (``Row.COLUMNS`` order) by checkpoint id, each checked when looked up,
    so a load checks the rows of its chain and no others."""

    def __init__(self, raw: Iterable[Sequence[Any]], checkpoint_id: str) -> None:
        self._raw = {r[0]: r for r in raw if r and isinstance(r[0], str)}
        self._checkpoint_id = checkpoint_id

    def __getitem__(self, key: str) -> Row:
        return Row.of(self._raw[key], self._checkpoint_id)

    def __iter__(self) -> Iterator[str]:
        return iter(self._raw)

    def __len__(self) -> int:
        return len(self._raw)


def row_checksum(
    cid: str, trace: str, base: str | None, prev: str | None, link: int, header: str, body: str
) -> str:
    """BLAKE2b of every column, each length-prefixed (None apart from the empty string)."""
    h = hashlib.blake2b(digest_size=16)
    for part in (cid, trace, base, prev, str(link), header, body):
        data = b"\xff" if part is None else part.encode("utf-8")
        h.update(b"%d:" % len(data))
        h.update(data)
    return h.hexdigest()


# -- encoding ------------------------------------------------------------------------------
# Fields whose values are plain JSON already; the rest go through the converter. Built
# field by field: about four times faster than unstructuring the whole checkpoint.
_HEADER_PLAIN = frozenset(
    {
        "checkpoint_id",
        "trace_id",
        "run_id",
        "graph_name",
        "graph_hash",
        "next_node",
        "step",
        "resumed_from",
        "resume_count",
        "created_at",
        "error",
    }
)
_HEADER_FIELDS = tuple(a.name for a in attrs.fields(Checkpoint))


def encode_header(checkpoint: Checkpoint, new_at: tuple[int, ...] | None = None) -> str:
    """The checkpoint without its state, as JSON; with ``new_at``, only the branches at
    those places (the others are the previous row's). A non-JSON value names its key."""
    _check_header_values(checkpoint)
    plain = plain_header(checkpoint, new_at)  # the common case, the same text, faster
    return document_header(checkpoint, new_at) if plain is None else plain


def document_header(checkpoint: Checkpoint, new_at: tuple[int, ...] | None) -> str:
    """:func:`encode_header`'s general way: a document of every field, then JSON."""
    doc: dict[str, Any] = {}
    for name in _HEADER_FIELDS:
        value = getattr(checkpoint, name)
        if name == "state":
            doc[name] = {}
        elif name in _HEADER_PLAIN or value is None:
            doc[name] = value
        elif name == "status":
            doc[name] = RunStatus(value).value
        elif name == "occurrences":
            doc[name] = dict(value)
        elif name == "policy":
            doc[name] = _policy_doc(value)
        elif name == "branches" and new_at is not None:
            doc[name] = serde.converter.unstructure([value[i] for i in new_at], type(value))
            doc["branches_at"] = list(new_at)
        elif not value and isinstance(value, list):
            doc[name] = []
        else:
            doc[name] = serde.converter.unstructure(value, type(value))
    try:
        return json.dumps(doc, separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise errors.CheckpointError(f"cannot encode checkpoint: {short(exc)}") from exc


@functools.lru_cache(maxsize=64)
def _policy_doc(policy: CheckpointPolicy) -> dict[str, Any]:
    """A run's policy as JSON, once per policy (every checkpoint of the run has it)."""
    doc: dict[str, Any] = serde.converter.unstructure(policy, CheckpointPolicy)
    return doc


def _check_header_values(checkpoint: Checkpoint) -> None:
    for entry in checkpoint.decisions:
        decision = entry.decision
        if isinstance(decision, Modify):
            _check_values({decision.key: decision.value}, "a decision's Modify holds")
    for branch in checkpoint.branches:
        _check_values(branch.updates, f"branch {branch.branch!r} holds")
    for frame in checkpoint.frames:
        where = f"subgraph {frame.node!r} holds"
        _check_values(frame.state, where)
        _check_values(dict(frame.collected), where)


def _check_values(values: Mapping[str, Any], where: str = "") -> None:
    """``where``: who holds the values, with a verb (``"branch 'b' holds"``). No
    checkpoint id in the error: the checkpoint was not stored, so none can be cited."""
    for key in values:
        if not isinstance(key, str):
            raise errors.CheckpointError(
                f"{where + ' ' if where else ''}state key {key!r:.80} is not a str", key=str(key)
            )
    serde.check_json(values, where=where)


def encode_state(state: Mapping[str, Any]) -> str:
    """A full state as one JSON object; a non-JSON value names its key."""
    _check_values(state)
    return serde.dumps_value(dict(state))


_ENCODE = json.JSONEncoder(separators=(",", ":"), allow_nan=False).encode
"""``serde.dumps_value``'s JSON (the same options) without building an encoder per call."""


def encode_deltas(deltas: Iterable[StoredDelta]) -> str:
    """Deltas as a JSON list of ``[key, value, reducer]``; a non-JSON value names its key."""
    items = []
    for d in deltas:
        key = d.key
        if not isinstance(key, str):  # _check_values of the one pair, without its dict
            raise errors.CheckpointError(f"state key {key!r:.80} is not a str", key=str(key))
        check_value(key, d.value)
        items.append([key, d.value, d.reducer])
    try:
        return _ENCODE(items)
    except (TypeError, ValueError, RecursionError):
        return serde.dumps_value(items)  # raises, saying why


# -- decoding ------------------------------------------------------------------------------
def _loads(text: str, checkpoint_id: str, what: str) -> Any:
    try:
        return json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise fail(f"{what} is not valid JSON ({short(exc)})", checkpoint_id) from exc


def header_doc(row: Row, checkpoint_id: str) -> dict[str, Any]:
    doc = _loads(row.header, checkpoint_id, "header")
    if not isinstance(doc, dict) or doc.get("checkpoint_id") != row.checkpoint_id:
        raise fail("its header does not name its row", checkpoint_id)
    if not isinstance(doc.setdefault("branches", []), list):
        raise fail("its header has no list of branches", checkpoint_id)
    return doc


def decode_header(doc: dict[str, Any], checkpoint_id: str) -> Checkpoint:
    """A checkpoint (with an empty state) from a header document."""
    doc = {k: v for k, v in doc.items() if k != "branches_at"}
    try:
        checkpoint = serde.converter.structure(doc, Checkpoint)
    except (ValueError, TypeError, KeyError, AttributeError, cattrs.BaseValidationError) as exc:
        raise fail(f"bad header ({short(exc)})", checkpoint_id) from exc
    return checkpoint


def decode_state(row: Row, checkpoint_id: str) -> dict[str, Any]:
    """The full state of a base row."""
    state = _loads(row.body, checkpoint_id, "state snapshot")
    if not isinstance(state, dict):
        kind = type(state).__name__
        raise fail(f"state snapshot is a JSON {kind}, not an object", checkpoint_id)
    return state


def decode_deltas(row: Row, checkpoint_id: str) -> list[StoredDelta]:
    """The deltas of a delta row (reducers must be built-in names)."""
    items = _loads(row.body, checkpoint_id, "deltas")
    if not isinstance(items, list):
        raise fail("deltas are not a JSON list", checkpoint_id)
    deltas = []
    for item in items:
        if not (
            isinstance(item, list)
            and len(item) == 3
            and isinstance(item[0], str)
            and (item[2] is None or item[2] in BUILTINS)
        ):
            raise fail(f"bad delta {item!r:.80}", checkpoint_id)
        deltas.append(StoredDelta(item[0], item[1], item[2]))
    return deltas


# -- migrating rows of schema version 1 ----------------------------------------------------
def migrate_v1(rows: Iterable[tuple[Any, ...]]) -> list[tuple[str | None, str, str]]:
    """``(prev_id, checksum, checkpoint_id)`` for version-1 rows ``(checkpoint_id,
    trace_id, base_id, link, header, body)`` in write order: a version-1 delta row's
    deltas are since the row before it in its trace. Rows keep their text as it is."""
    last: dict[str, str] = {}
    out = []
    for cid, trace, base, link, header, body in rows:
        prev = last.get(trace)
        digest = row_checksum(cid, trace, base, prev, link, header, body)
        out.append((prev, digest, cid))
        last[trace] = cid
    return out
