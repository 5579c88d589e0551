"""The run queue shared by workers: jobs, their transitions, claims with leases and
epochs, the fenced store view, and the rules every SQL queue store follows.

Layout: :mod:`.jobs` (the values and the transition table, pure), :mod:`.fenced` (the
``QueueStore`` protocol and ``FencedStore``), :mod:`.rules` (the queue operations once,
as templated SQL), :mod:`.dialect` with :mod:`.sqlite` and :mod:`.postgres` (what each
database says differently). The package re-exports the public names.
"""

from __future__ import annotations

from .fenced import FencedStore as FencedStore
from .fenced import QueueStore as QueueStore
from .jobs import HOLD_PREFIX as HOLD_PREFIX
from .jobs import TRANSITIONS as TRANSITIONS
from .jobs import Claim as Claim
from .jobs import Hold as Hold
from .jobs import Job as Job
from .jobs import JobStatus as JobStatus
from .jobs import Op as Op

__all__ = [
    "HOLD_PREFIX",
    "TRANSITIONS",
    "Claim",
    "FencedStore",
    "Hold",
    "Job",
    "JobStatus",
    "Op",
    "QueueStore",
]
