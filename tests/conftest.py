"""Shared test settings. Area-specific fixtures live in the test modules themselves; the
queue-store fixtures, shared by several modules, in `_queue_fixtures.py`."""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

pytest_plugins = ["_queue_fixtures"]  # the queue-store fixtures, shared by their modules

settings.register_profile(
    "default",
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile(
    "ci",
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    derandomize=True,
)
settings.load_profile("ci" if os.environ.get("CI") else "default")
