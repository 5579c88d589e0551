"""Checkpoint rows: the codec, the full/delta planner and the one chain check.

Pure (no trio, no I/O); shared by every store, so MemoryStore, SQLiteStore and
PostgresStore write, check and read the same rows. Layout: :mod:`.codec` (the row and
its JSON), :mod:`.planner` (base or delta row), :mod:`.chain` (the one chain check and
the restoring of states); this package re-exports what the stores use.

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

from .chain import chain as chain
from .chain import load as load
from .chain import load_trace as load_trace
from .chain import restore as restore
from .codec import LazyRows as LazyRows
from .codec import Row as Row
from .codec import check_text as check_text
from .codec import decode_deltas as decode_deltas
from .codec import decode_header as decode_header
from .codec import decode_state as decode_state
from .codec import encode_deltas as encode_deltas
from .codec import encode_header as encode_header
from .codec import encode_state as encode_state
from .codec import is_text as is_text
from .codec import migrate_v1 as migrate_v1
from .codec import row_checksum as row_checksum
from .planner import Plan as Plan
from .planner import Planner as Planner
from .planner import make_row as make_row
from .run_ids import first_segment as first_segment
from .run_ids import migrate_rows as migrate_rows
from .run_ids import migrate_runs as migrate_runs
