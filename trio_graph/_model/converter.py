"""The one cattrs converter, before anything is registered on it.

Model layer: no trio, no I/O. :mod:`trio_graph.serde` registers the hooks of our own
types (events, decisions, errors, checkpoints) on :data:`converter`; the typed state
(:mod:`trio_graph._model.schema`) checks values with a strict copy of it. It lives here,
below both, so that neither imports the other.
"""

from __future__ import annotations

from cattrs.preconf.json import make_converter

converter = make_converter()
"""JSON-ready: datetimes as ISO strings, sets and tuples as lists, enums as values."""
