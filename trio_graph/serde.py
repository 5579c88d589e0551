"""The one cattrs converter for events, decisions, errors, results and checkpoints.

Model layer: no trio import. Unions (events, decisions, errors) are tagged with
the class name under ``"type"``. Loading never imports or executes anything: the
tag is looked up in a fixed table of our own classes; unknown tags, malformed
documents and non-JSON values raise :class:`~trio_graph.errors.CheckpointError`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, TypeVar

import attrs
import cattrs
from cattrs.gen import make_dict_unstructure_fn, override
from cattrs.strategies import configure_tagged_union

from . import errors
from . import events as ev
from ._model.checkpoint import (
    BranchResult,
    Checkpoint,
    Frame,
    RunStatus,
)
from ._model.converter import converter as converter
from ._model.decisions import (
    DECISION_TYPES,
    Approve,
    BarrierId,
    Decision,
    DecisionEntry,
    Modify,
    Reject,
    Reroute,
    check_decision,
)
from ._model.jsonvalue import check_values, json_problem

T = TypeVar("T")


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

# A decision's ``by`` is written only when said, so a decision without one is the same
# document as before decisions had it (stored decisions compare equal as text).
for _cls in DECISION_TYPES:
    converter.register_unstructure_hook(
        _cls, make_dict_unstructure_fn(_cls, converter, by=override(omit_if_default=True))
    )

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


check_json = check_values  # the stores' name for it


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
    decisions: list[Decision] = [Approve(by="w"), Reject("r"), Modify("k", 1), Reroute("n")]
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
        pending_payload={"k": [1]},
        deadline=1.0,
        occurrences={"n": 1},
        decisions=[DecisionEntry("n", i, d) for i, d in enumerate(decisions)],
        branches=[BranchResult("b", {"k": 1})],
        frames=[Frame("n", "m", 1, {"k": 1}, [("k", 1)])],
        error="e",
    )
    from_json(to_json(sample), Checkpoint)
    for decision in decisions:
        from_json(to_json(decision, Decision), Decision)
    _warm = True
