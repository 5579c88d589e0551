"""The controls of a waiting run: the decision forms and the cancel form, and reading
what they post back.

Forms post ``application/x-www-form-urlencoded`` (no multipart parser needed) to
``/runs/{id}/decide`` (fields ``barrier``, ``action`` and the action's own: ``reason``,
``key`` and ``value`` (JSON), ``target``) and ``/runs/{id}/cancel``. :func:`decision_from`
turns the fields into a decision or a :class:`FormError` saying which field is wrong.
"""

from __future__ import annotations

import json
import urllib.parse
from collections.abc import Mapping, Sequence

from .._model.decisions import Approve, BarrierId, Decision, Modify, Reject, Reroute
from .layout import esc

ACTIONS = ("approve", "reject", "modify", "reroute")
MAX_FIELD = 100_000
"""The longest field accepted (characters)."""


class FormError(ValueError):
    """A posted form that cannot be read: the message names the field."""


def form_fields(body: bytes) -> dict[str, str]:
    """A urlencoded body as fields (the last value of a repeated one); ``FormError`` if it
    is not text or a field is too long."""
    try:
        text = body.decode("utf-8")
        pairs = urllib.parse.parse_qsl(text, keep_blank_values=True, strict_parsing=False)
    except (UnicodeDecodeError, ValueError) as exc:
        raise FormError(f"the form is not urlencoded UTF-8 text ({exc})") from None
    fields = dict(pairs)
    for name, value in fields.items():
        if len(value) > MAX_FIELD:
            raise FormError(f"field {name!r} is longer than {MAX_FIELD} characters")
    return fields


def barrier_from(fields: Mapping[str, str]) -> BarrierId:
    """The ``barrier`` field (``node#occurrence``)."""
    text = fields.get("barrier", "").strip()
    if not text:
        raise FormError("field 'barrier' is missing (node#occurrence)")
    try:
        return BarrierId.parse(text)
    except ValueError as exc:
        raise FormError(f"field 'barrier': {exc}") from None


def decision_from(fields: Mapping[str, str]) -> Decision:
    """The decision the fields describe (``by`` from the optional field ``by``)."""
    action = fields.get("action", "")
    by = fields.get("by", "").strip() or None
    if action == "approve":
        return Approve(by=by)
    if action == "reject":
        return Reject(fields.get("reason", "").strip() or "rejected in the inspector", by=by)
    if action == "modify":
        key = fields.get("key", "").strip()
        if not key:
            raise FormError("modify needs a state key (field 'key')")
        text = fields.get("value", "")
        try:
            value = json.loads(text)
        except ValueError as exc:
            raise FormError(
                f"the value for {key!r} is not JSON ({exc}); write text in double quotes"
            ) from None
        return Modify(key, value, by=by)
    if action == "reroute":
        target = fields.get("target", "").strip()
        if not target:
            raise FormError("reroute needs a target node (field 'target')")
        return Reroute(target, by=by)
    raise FormError(f"field 'action' must be one of {', '.join(ACTIONS)}, got {action!r:.40}")


def decision_forms(run_id: str, barrier: BarrierId, targets: Sequence[str]) -> str:
    """Approve, reject (reason), modify (key, JSON value), reroute (target) for ``barrier``;
    ``targets`` are the nodes an edge from the barrier leads to (empty: unknown, type one)."""
    url = f"/runs/{esc(run_id)}/decide"
    hidden = f'<input type="hidden" name="barrier" value="{esc(barrier)}">'

    def form(action: str, inner: str, label: str) -> str:
        return (
            f'<form class="decide decide-{action}" method="post" action="{url}">{hidden}'
            f'<input type="hidden" name="action" value="{action}">{inner}'
            f'<button type="submit" name="go" value="{action}">{label}</button></form>'
        )

    if targets:
        options = "".join(f'<option value="{esc(t)}">{esc(t)}</option>' for t in targets)
        target = f'<label>Target <select name="target">{options}</select></label>'
    else:
        target = '<label>Target node <input name="target" required></label>'
    return "\n".join(
        [
            form("approve", "", "Approve"),
            form("reject", '<label>Reason <input name="reason"></label>', "Reject"),
            form(
                "modify",
                '<label>Key <input name="key" required></label>'
                '<label>Value (JSON) <textarea name="value" rows="2" required></textarea>'
                "</label>",
                "Modify",
            ),
            form("reroute", target, "Reroute"),
        ]
    )


def cancel_form(run_id: str) -> str:
    """The cancel control: asks the run's process to stop (``store.cancel``)."""
    return (
        f'<form class="cancel" method="post" action="/runs/{esc(run_id)}/cancel">'
        '<button type="submit" class="danger">Cancel run</button> '
        '<span class="hint">the run stops with status cancelled and is not resumed</span>'
        "</form>"
    )
