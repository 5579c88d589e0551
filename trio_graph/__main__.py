"""``python -m trio_graph`` and the ``trio-graph`` console script.

The command line lives in :mod:`trio_graph._cli` (entry point :func:`trio_graph._cli.main.main`).
"""

from __future__ import annotations

import sys

from ._cli.main import main

__all__ = ["main"]

if __name__ == "__main__":
    sys.exit(main())
