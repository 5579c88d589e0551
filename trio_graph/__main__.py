"""``python -m trio_graph`` and the ``trio-graph`` console script: see :mod:`trio_graph.cli`."""

from __future__ import annotations

import sys

from .cli import main

__all__ = ["main"]

if __name__ == "__main__":
    sys.exit(main())
