"""Checkpoint rows: the codec, the full/delta planner and the one chain check.

Pure (no trio, no I/O); shared by every store, so MemoryStore, SQLiteStore and
PostgresStore write, check and read the same rows.

**A row** holds one checkpoint: ``header`` (the checkpoint without its state, JSON),
``body`` (JSON: the full state for a *base* row, or the deltas since the row
``prev_id`` as a list of ``[key, value, reducer]``), the link columns ``base_id``
(None for a base row; else the base its chain starts from), ``prev_id`` (for a delta
row, the row its deltas apply to; for a base row, only lineage: the run's previous
checkpoint, if the run said so) and ``link`` (0 for a base row, then 1, 2, ... along
its chain), and ``checksum``: a BLAKE2b digest of every other column, exactly as
stored. A delta row's header may also list only the branches finished since
``prev_id``, with their places in the full list (``"branches_at"``), so a fan-out's
records cost O(branches) bytes in total.

**The planner** (:class:`Planner`, one per store) writes a delta row only when the
run's hint (:class:`~trio_graph._model.checkpoint.Changes`) names as previous checkpoint the
last row this store wrote for the trace; otherwise (a copy from another store, a
hand-built checkpoint, another process's rows, a failed save) it writes a base row
of the full ``checkpoint.state``. It rebases once the bytes written since the base
outweigh it ``ceiling`` (4) times: O(update) bytes per step, amortised, and a load
replays at most about four bases' worth of rows.

**Reading** checks every row's checksum and follows ``prev_id`` back to the base
(:func:`chain`), whatever other rows sit in between. Any damage (a flipped character,
swapped bodies, a link column of the wrong type, a missing row) is a
``CheckpointError`` naming the checkpoint being loaded; loading never imports or
executes anything: plain JSON, our own attrs classes, reducers by built-in name.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

import attrs
import cattrs

from .. import errors, serde
from .._model.checkpoint import Changes, Checkpoint, RunStatus, StoredDelta
from .._model.decisions import Modify
from ..reducers import BUILTINS


def _fail(message: str, checkpoint_id: str = "") -> errors.CheckpointError:
    return errors.CheckpointError(f"corrupted checkpoint: {message}", checkpoint_id=checkpoint_id)


def _short(exc: BaseException) -> str:
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return text[:200]


# -- text columns --------------------------------------------------------------------------
def check_text(checkpoint: Checkpoint) -> None:
    """Refuse ids and names that no database can store (a lone surrogate), naming the field."""
    for field in ("checkpoint_id", "trace_id", "graph_name", "resumed_from"):
        value = getattr(checkpoint, field)
        if value is not None and not is_text(value):
            raise errors.CheckpointError(
                f"cannot save: {field} {value!r:.80} is not valid Unicode (a lone surrogate)"
            )


def is_text(value: object) -> bool:
    """True for a str that encodes as UTF-8 (what SQLite and PostgreSQL can store)."""
    if not isinstance(value, str):
        return False
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
            raise _fail("a row with the wrong columns", checkpoint_id)
        cid, trace, base, prev, link, header, body, digest = values
        where = checkpoint_id or (cid if is_text(cid) else "")
        texts, optional = (cid, trace, header, body, digest), (base, prev)
        if (
            not all(is_text(v) for v in texts)
            or not all(v is None or is_text(v) for v in optional)
            or type(link) is not int
        ):
            raise _fail("a column of its row has the wrong type", where)
        row = cls(cid, trace, base, prev, link, header, body, digest)
        if digest != row_checksum(cid, trace, base, prev, link, header, body):
            raise _fail("its row does not match its checksum", where)
        return row

    def values(self) -> tuple[Any, ...]:
        """The columns in ``COLUMNS`` order."""
        return attrs.astuple(self, recurse=False)


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


def make_row(
    checkpoint: Checkpoint, plan: Plan, changes: Changes | None, new_at: tuple[int, ...] | None
) -> Row:
    """Encode ``checkpoint`` as ``plan`` says; a non-JSON value is refused naming its key.

    Deltas that cannot be encoded (a value refused by an earlier save, since
    overwritten) fall back to a base row: the state is the truth, the hint only a help.
    """
    check_text(checkpoint)
    body = None
    if plan.base_id is not None:
        assert changes is not None
        try:
            body = encode_deltas(changes.deltas)
        except errors.CheckpointError:
            plan, new_at = Plan(None, 0), None
    if body is None:
        body = encode_state(checkpoint.state)
    header = encode_header(checkpoint, new_at)
    cid, trace = checkpoint.checkpoint_id, checkpoint.trace_id
    prev = None if changes is None else changes.previous_id
    digest = row_checksum(cid, trace, plan.base_id, prev, plan.link, header, body)
    return Row(cid, trace, plan.base_id, prev, plan.link, header, body, digest)


# -- the planner ---------------------------------------------------------------------------
@attrs.frozen
class Plan:
    """How to write one checkpoint: ``base_id`` None for a base row."""

    base_id: str | None
    link: int


@attrs.define
class _Chain:
    base_id: str
    base_bytes: int
    last_id: str
    branches: int
    since_bytes: int = 0
    links: int = 0


@attrs.define
class Planner:
    """A store's choice between a base row and a delta row, per trace (see the module notes)."""

    ceiling: int = 4
    """Rebase once the rows since the base weigh this many times the base."""
    _chains: dict[str, _Chain] = attrs.field(factory=dict)

    def plan(
        self, checkpoint: Checkpoint, changes: Changes | None
    ) -> tuple[Plan, tuple[int, ...] | None]:
        """The plan, and the places of the only branches the header lists (None: all)."""
        chain = self._chains.get(checkpoint.trace_id)
        if (
            chain is None
            or changes is None
            or changes.previous_id != chain.last_id
            or chain.since_bytes >= self.ceiling * chain.base_bytes
        ):
            return Plan(None, 0), None
        new = changes.new_branches
        if new is not None and len(checkpoint.branches) - len(new) != chain.branches:
            new = None  # not the branches of the row before: list them all
        return Plan(chain.base_id, chain.links + 1), new

    def base_bytes(self, trace_id: str) -> int | None:
        """The size of the trace's current base row, if this store wrote one."""
        chain = self._chains.get(trace_id)
        return None if chain is None else chain.base_bytes

    def wrote(self, checkpoint: Checkpoint, row: Row) -> None:
        """Record a committed row for ``checkpoint``."""
        nbytes = len(row.header) + len(row.body)
        trace, count = checkpoint.trace_id, len(checkpoint.branches)
        chain = self._chains.get(trace)
        if row.base_id is None or chain is None:
            self._chains[trace] = _Chain(row.checkpoint_id, nbytes, row.checkpoint_id, count)
            return
        chain.since_bytes += nbytes
        chain.links += 1
        chain.last_id, chain.branches = row.checkpoint_id, count

    def forget(self, trace_id: str) -> None:
        """The trace was deleted or ended: its next checkpoint is a base row."""
        self._chains.pop(trace_id, None)


# -- encoding ------------------------------------------------------------------------------
# Fields whose values are plain JSON already; the rest go through the converter. Built
# field by field: about four times faster than unstructuring the whole checkpoint.
_HEADER_PLAIN = frozenset(
    {
        "checkpoint_id",
        "trace_id",
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
        raise errors.CheckpointError(f"cannot encode checkpoint: {_short(exc)}") from exc


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


def encode_deltas(deltas: Iterable[StoredDelta]) -> str:
    """Deltas as a JSON list of ``[key, value, reducer]``; a non-JSON value names its key."""
    items = []
    for d in deltas:
        _check_values({d.key: d.value})
        items.append([d.key, d.value, d.reducer])
    return serde.dumps_value(items)


# -- decoding ------------------------------------------------------------------------------
def _loads(text: str, checkpoint_id: str, what: str) -> Any:
    try:
        return json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise _fail(f"{what} is not valid JSON ({_short(exc)})", checkpoint_id) from exc


def _header_doc(row: Row, checkpoint_id: str) -> dict[str, Any]:
    doc = _loads(row.header, checkpoint_id, "header")
    if not isinstance(doc, dict) or doc.get("checkpoint_id") != row.checkpoint_id:
        raise _fail("its header does not name its row", checkpoint_id)
    if not isinstance(doc.setdefault("branches", []), list):
        raise _fail("its header has no list of branches", checkpoint_id)
    return doc


def decode_header(doc: dict[str, Any], checkpoint_id: str) -> Checkpoint:
    """A checkpoint (with an empty state) from a header document."""
    doc = {k: v for k, v in doc.items() if k != "branches_at"}
    try:
        checkpoint = serde.converter.structure(doc, Checkpoint)
    except (ValueError, TypeError, KeyError, AttributeError, cattrs.BaseValidationError) as exc:
        raise _fail(f"bad header ({_short(exc)})", checkpoint_id) from exc
    return checkpoint


def decode_state(row: Row, checkpoint_id: str) -> dict[str, Any]:
    """The full state of a base row."""
    state = _loads(row.body, checkpoint_id, "state snapshot")
    if not isinstance(state, dict):
        kind = type(state).__name__
        raise _fail(f"state snapshot is a JSON {kind}, not an object", checkpoint_id)
    return state


def decode_deltas(row: Row, checkpoint_id: str) -> list[StoredDelta]:
    """The deltas of a delta row (reducers must be built-in names)."""
    items = _loads(row.body, checkpoint_id, "deltas")
    if not isinstance(items, list):
        raise _fail("deltas are not a JSON list", checkpoint_id)
    deltas = []
    for item in items:
        if not (
            isinstance(item, list)
            and len(item) == 3
            and isinstance(item[0], str)
            and (item[2] is None or item[2] in BUILTINS)
        ):
            raise _fail(f"bad delta {item!r:.80}", checkpoint_id)
        deltas.append(StoredDelta(item[0], item[1], item[2]))
    return deltas


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
        why = f"{type(exc).__name__}: {_short(exc)}"
        raise _fail(f"cannot replay deltas ({why})", checkpoint_id) from exc


def _insert(previous: list[Any], new: list[Any], at: object, checkpoint_id: str) -> list[Any]:
    """``previous`` with ``new`` placed at the places ``at`` (increasing) of the result."""
    size = len(previous) + len(new)
    if not (
        isinstance(at, list)
        and len(at) == len(new)
        and all(type(i) is int for i in at)
        and all(0 <= a < b for a, b in zip(at, [*at[1:], size], strict=False))
    ):
        raise _fail("bad places of its new branches", checkpoint_id)
    out, rest, places = [], iter(previous), set(at)
    fresh = iter(new)
    for i in range(size):
        out.append(next(fresh) if i in places else next(rest))
    return out


# -- the chain check and loading -----------------------------------------------------------
def _follows(row: Row, prev: Row | None) -> bool:
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
        if not _follows(row, prev):
            raise _fail("its chain of deltas is broken", target.checkpoint_id)
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
        doc = _header_doc(row, where)
        if _is_base(row):
            state, branches = decode_state(row, where), doc["branches"]
        else:
            prev = by_id.get(row.prev_id or "") if row.prev_id in states else None
            if not _follows(row, prev):  # checked link by link, from the base on
                raise _fail("its chain of deltas is broken", where)
            prev_state, prev_branches = states[row.prev_id or ""]
            state = apply_deltas(prev_state, decode_deltas(row, where), where)
            branches = doc["branches"]
            if "branches_at" in doc:
                branches = _insert(prev_branches, branches, doc["branches_at"], where)
        states[row.checkpoint_id] = (state, branches)
        checkpoint = decode_header({**doc, "branches": branches}, where)
        out.append(attrs.evolve(checkpoint, state=state))
    return out


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
