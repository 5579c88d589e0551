"""A row's values, as the save binds them, in the order of its columns."""

from __future__ import annotations

import attrs

from trio_graph.stores.rows import Row


def test_row_values_follow_the_columns() -> None:
    """``Row.values()`` gives every field once, in ``Row.COLUMNS`` order."""
    row = Row("cid", "trace", None, "prev", 3, "{}", "[]", "sum")
    names = [name.strip() for name in Row.COLUMNS.split(",")]
    assert names == [a.name for a in attrs.fields(Row)]
    assert row.values() == tuple(getattr(row, name) for name in names)
