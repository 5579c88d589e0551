"""The one cattrs converter for events, decisions, errors, results and checkpoints.

Model layer: no trio import. Unions (events, decisions, errors) are tagged with
the class name under ``"type"``. Loading never imports or executes anything: the
tag is looked up in a fixed table of our own classes; unknown tags, malformed
documents and non-JSON values raise :class:`~trio_graph.errors.CheckpointError`.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any, TypeVar

import attrs
import cattrs
from cattrs.preconf.json import make_converter
from cattrs.strategies import configure_tagged_union

from . import errors
from . import events as ev
from .checkpoint import (
    BranchResult,
    Checkpoint,
    DecisionEntry,
    Frame,
    RunStatus,
    StoredDelta,
    restore,
)
from .decisions import Approve, BarrierId, Decision, Modify, Reject, Reroute, check_decision
from .jsonvalue import check_value, is_json_exact, json_problem
from .reducers import BUILTINS

T = TypeVar("T")

converter = make_converter()


_ERRORS: dict[str, type[errors.GraphError]] = {cls.__name__: cls for cls in errors.ERROR_TYPES}
for _cls in errors.ERROR_TYPES:
    attrs.resolve_types(_cls)


def _is_error(t: Any) -> bool:
    return isinstance(t, type) and issubclass(t, errors.GraphError)


def _unstructure_error(err: errors.GraphError) -> dict[str, Any]:
    doc: dict[str, Any] = {"type": type(err).__name__}
    for a in attrs.fields(type(err)):
        doc[a.name] = converter.unstructure(getattr(err, a.name), a.type)
    return doc


def _structure_error(doc: Any, _: Any) -> errors.GraphError:
    if not isinstance(doc, Mapping) or doc.get("type") not in _ERRORS:
        raise ValueError(f"not a trio_graph error document: {doc!r:.80}")
    cls = _ERRORS[doc["type"]]
    kwargs = {
        a.name: converter.structure(doc[a.name], a.type) for a in attrs.fields(cls) if a.name in doc
    }
    return cls(**kwargs)


converter.register_unstructure_hook_func(_is_error, _unstructure_error)
converter.register_structure_hook_func(_is_error, _structure_error)
converter.register_unstructure_hook(RunStatus, lambda s: s.value)
converter.register_structure_hook(RunStatus, lambda v, _: RunStatus(v))

# Unions last: their generated hooks capture the hooks registered above.
_DECISION: Any = Decision
configure_tagged_union(_DECISION, converter, tag_name="type")
converter.register_unstructure_hook(
    _DECISION | None,
    lambda d: None if d is None else converter.unstructure(d, _DECISION),
)
converter.register_structure_hook(
    _DECISION | None,
    lambda v, _: None if v is None else converter.structure(v, _DECISION),
)
_EVENT: Any = ev.Event
configure_tagged_union(_EVENT, converter, tag_name="type")


def to_json(obj: object, type_: Any = None) -> str:
    """One JSON document (a line: no newlines) for any event, decision, result or checkpoint."""
    return json.dumps(
        converter.unstructure(obj, type_ if type_ is not None else type(obj)),
        separators=(",", ":"),
        allow_nan=False,
    )


def from_json(text: str | bytes, type_: type[T] | Any) -> T:
    """Load what :func:`to_json` wrote; malformed input raises ``CheckpointError``."""
    try:
        doc = json.loads(text)
        return converter.structure(doc, type_)  # type: ignore[no-any-return]
    except (ValueError, TypeError, KeyError, cattrs.BaseValidationError) as exc:
        raise errors.CheckpointError(
            f"cannot load {getattr(type_, '__name__', type_)} from JSON: {_short(exc)}"
        ) from exc


def _short(exc: BaseException) -> str:
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return text[:200]


def check_json(state: Mapping[str, Any], keys: Any = None, where: str = "") -> None:
    """Raise ``CheckpointError`` naming the first key whose value a store would not give
    back equal and of the same type (see :mod:`trio_graph.jsonvalue`); ``where`` says
    who wrote it, with a verb (``"node 'count' wrote"``)."""
    for key in state if keys is None else keys:
        check_value(key, state[key], where)


def _json_ok(value: Any, depth: int = 0) -> bool:
    return is_json_exact(value)


def dumps_value(value: Any) -> str:
    """Plain JSON for state values (strict: no NaN, no non-JSON types).

    Callers check values first (:func:`check_json`); a value that still cannot be
    encoded is a ``CheckpointError`` saying why, never a bare ``ValueError``."""
    try:
        return json.dumps(value, separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError, RecursionError) as exc:
        problem = json_problem(value) or _short(exc)
        raise errors.CheckpointError(f"cannot encode a state value: {problem}") from exc


def decision_doc(decision: object) -> Any:
    """A decision as a JSON-ready document for a store, after checking it is well formed
    (``BarrierError``) and that a ``Modify`` value is JSON-compatible (``CheckpointError``)."""
    check_decision(decision)
    if isinstance(decision, Modify):
        check_json({decision.key: decision.value})
    return converter.unstructure(decision, _DECISION)


def full(checkpoint: Checkpoint) -> Checkpoint:
    """The checkpoint as a self-contained full snapshot (no base, no deltas)."""
    return attrs.evolve(checkpoint, base_id=None, deltas=[])


# -- checkpoint rows: the codec every store shares ----------------------------------
#
# A store writes a checkpoint as a *header* (the checkpoint without its state and
# deltas) plus a *body*: the full state (a JSON object) for a base snapshot, or the
# deltas since the previous checkpoint of the trace (a JSON list of
# ``[key, value, reducer]``) for an incremental one. Loading parses plain JSON and
# structures only our own attrs classes; reducers are looked up by name in the
# built-in table. Nothing is imported or executed, whatever the rows contain.


def encode_header(checkpoint: Checkpoint) -> str:
    """The checkpoint without state and deltas, as JSON; non-JSON values name their key."""
    for entry in checkpoint.decisions:
        decision = entry.decision
        if isinstance(decision, Modify) and not _json_ok(decision.value):
            raise errors.CheckpointError(
                f"decision value of type {type(decision.value).__name__} is not JSON-compatible",
                checkpoint_id=checkpoint.checkpoint_id,
                key=decision.key,
            )
    for branch in checkpoint.branches:
        _check_values(branch.updates, checkpoint.checkpoint_id, f"branch {branch.branch!r} ")
    for frame in getattr(checkpoint, "frames", ()):
        where = f"subgraph {frame.node!r} "
        _check_values(frame.state, checkpoint.checkpoint_id, where)
        _check_values(dict(frame.collected), checkpoint.checkpoint_id, where)
    try:
        return json.dumps(_header_doc(checkpoint), separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise errors.CheckpointError(
            f"cannot encode checkpoint: {_short(exc)}", checkpoint_id=checkpoint.checkpoint_id
        ) from exc


# Fields of a header left empty (the body carries the state) and fields whose values
# are plain JSON already; the rest go through the converter. Built field by field:
# about four times faster than unstructuring the whole checkpoint, on every save.
_HEADER_EMPTY: dict[str, Any] = {"state": {}, "deltas": [], "base_id": None}
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
        "parent_id",
        "error",
    }
)
_HEADER_FIELDS = tuple(a.name for a in attrs.fields(Checkpoint))


def _header_doc(checkpoint: Checkpoint) -> dict[str, Any]:
    doc: dict[str, Any] = {}
    for name in _HEADER_FIELDS:
        if name in _HEADER_EMPTY:
            doc[name] = _HEADER_EMPTY[name]
            continue
        value = getattr(checkpoint, name)
        if name in _HEADER_PLAIN or value is None:
            doc[name] = value
        elif name == "status":
            doc[name] = RunStatus(value).value
        elif name == "occurrences":
            doc[name] = dict(value)
        elif not value and isinstance(value, list):
            doc[name] = []
        else:
            doc[name] = converter.unstructure(value, type(value))
    return doc


def encode_state(state: Mapping[str, Any], checkpoint_id: str = "") -> str:
    """A full state snapshot as one JSON object; a non-JSON value names its key."""
    _check_values(state, checkpoint_id)
    return dumps_value(dict(state))


def encode_deltas(deltas: Iterable[StoredDelta], checkpoint_id: str = "") -> str:
    """Deltas as a JSON list of ``[key, value, reducer]``; a non-JSON value names its key."""
    items = []
    for d in deltas:
        if not isinstance(d.key, str) or not _json_ok(d.value):
            raise errors.CheckpointError(
                f"state value of type {type(d.value).__name__} is not JSON-compatible",
                checkpoint_id=checkpoint_id,
                key=str(d.key),
            )
        items.append([d.key, d.value, d.reducer])
    return dumps_value(items)


def _check_values(values: Mapping[str, Any], checkpoint_id: str, what: str = "") -> None:
    for key, value in values.items():
        if not isinstance(key, str) or not _json_ok(value):
            raise errors.CheckpointError(
                f"{what}state value of type {type(value).__name__} is not JSON-compatible",
                checkpoint_id=checkpoint_id,
                key=str(key),
            )


def _loads(text: object, checkpoint_id: str, what: str) -> Any:
    if not isinstance(text, str):
        raise errors.CheckpointError(
            f"corrupted checkpoint: {what} is {type(text).__name__}, not JSON text",
            checkpoint_id=checkpoint_id,
        )
    try:
        return json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise errors.CheckpointError(
            f"corrupted checkpoint: {what} is not valid JSON ({_short(exc)})",
            checkpoint_id=checkpoint_id,
        ) from exc


def decode_header(text: object, checkpoint_id: str) -> Checkpoint:
    """A header written by :func:`encode_header`; it must name ``checkpoint_id``."""
    doc = _loads(text, checkpoint_id, "header")
    try:
        checkpoint = converter.structure(doc, Checkpoint)
    except (ValueError, TypeError, KeyError, AttributeError, cattrs.BaseValidationError) as exc:
        raise errors.CheckpointError(
            f"corrupted checkpoint: bad header ({_short(exc)})", checkpoint_id=checkpoint_id
        ) from exc
    if checkpoint.checkpoint_id != checkpoint_id:
        raise errors.CheckpointError(
            f"corrupted checkpoint: header names {checkpoint.checkpoint_id!r:.80}",
            checkpoint_id=checkpoint_id,
        )
    return checkpoint


def decode_state(text: object, checkpoint_id: str) -> dict[str, Any]:
    """A full state snapshot written by :func:`encode_state`."""
    state = _loads(text, checkpoint_id, "state snapshot")
    if not isinstance(state, dict):
        raise errors.CheckpointError(
            f"corrupted checkpoint: state snapshot is a JSON {type(state).__name__}, not an object",
            checkpoint_id=checkpoint_id,
        )
    return state


def decode_deltas(text: object, checkpoint_id: str) -> list[StoredDelta]:
    """Deltas written by :func:`encode_deltas` (reducers must be built-in names)."""
    items = _loads(text, checkpoint_id, "deltas")
    if not isinstance(items, list):
        raise errors.CheckpointError(
            "corrupted checkpoint: deltas are not a JSON list", checkpoint_id=checkpoint_id
        )
    deltas = []
    for item in items:
        if not (
            isinstance(item, list)
            and len(item) == 3
            and isinstance(item[0], str)
            and (item[2] is None or item[2] in BUILTINS)
        ):
            raise errors.CheckpointError(
                f"corrupted checkpoint: bad delta {item!r:.80}", checkpoint_id=checkpoint_id
            )
        deltas.append(StoredDelta(item[0], item[1], item[2]))
    return deltas


def apply_deltas(
    state: Mapping[str, Any], chain: Iterable[Iterable[StoredDelta]], checkpoint_id: str
) -> dict[str, Any]:
    """:func:`~trio_graph.checkpoint.restore`, with a failing reducer as ``CheckpointError``."""
    try:
        return restore(state, chain)
    except Exception as exc:
        raise errors.CheckpointError(
            f"corrupted checkpoint: cannot replay deltas ({type(exc).__name__}: {_short(exc)})",
            checkpoint_id=checkpoint_id,
        ) from exc


def decode_checkpoint(
    checkpoint_id: str, header: object, base: object, deltas: Iterable[object] = ()
) -> Checkpoint:
    """A checkpoint from its header, its base snapshot's body and the delta bodies after it.

    The result is self-contained: the full restored ``state``, no ``base_id``, no deltas.
    """
    checkpoint = decode_header(header, checkpoint_id)
    state = decode_state(base, checkpoint_id)
    chain = [decode_deltas(text, checkpoint_id) for text in deltas]
    if chain:
        state = apply_deltas(state, chain, checkpoint_id)
    return attrs.evolve(checkpoint, state=state)


def decode_trace(
    rows: Iterable[tuple[str, str | None, int, object, object]],
) -> list[Checkpoint]:
    """Every checkpoint of a trace from its rows ``(id, base_id, link, header, body)``.

    Rows come in write order; each delta row is replayed on the state of the row
    before it, whose link must be one less (see :class:`~trio_graph.checkpoint.ChainPlanner`).
    """
    out: list[Checkpoint] = []
    state: dict[str, Any] | None = None
    base: str | None = None
    last = -1
    for checkpoint_id, base_id, link, header, body in rows:
        if base_id is None and link == 0:
            state, base = decode_state(body, checkpoint_id), checkpoint_id
        elif state is None or base_id != base or link != last + 1:
            raise errors.CheckpointError(
                "corrupted checkpoint: its chain of deltas is broken",
                checkpoint_id=checkpoint_id,
            )
        else:
            state = apply_deltas(state, [decode_deltas(body, checkpoint_id)], checkpoint_id)
        last = link
        out.append(attrs.evolve(decode_header(header, checkpoint_id), state=state))
    return out


_warm = False


def warm() -> None:
    """Generate the converter's checkpoint hooks now, once per process.

    cattrs compiles a structuring function the first time it meets a class; doing
    it here, from our own sample, means loading a stored checkpoint never compiles
    or executes anything. Stores call this when they are created.
    """
    global _warm
    if _warm:
        return
    decisions: list[Decision] = [Approve(), Reject("r"), Modify("k", 1), Reroute("n")]
    sample = Checkpoint(
        checkpoint_id="warm",
        trace_id="warm",
        graph_name="warm",
        graph_hash="",
        next_node="n",
        step=1,
        state={},
        status=RunStatus.WAITING,
        pending_barrier=BarrierId("n", 1),
        occurrences={"n": 1},
        decisions=[DecisionEntry("n", i, d) for i, d in enumerate(decisions)],
        branches=[BranchResult("b", {"k": 1})],
        frames=[Frame("n", "m", 1, {"k": 1}, [("k", 1)])],
        deltas=[StoredDelta("k", 1, None)],
        error="e",
    )
    decode_header(encode_header(sample), "warm")
    from_json(to_json(sample), Checkpoint)
    for decision in decisions:
        from_json(to_json(decision, Decision), Decision)
    _warm = True
