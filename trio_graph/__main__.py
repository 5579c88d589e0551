"""``python -m trio_graph`` and the ``trio-graph`` console script.

The commands live in :mod:`trio_graph._cli.commands`.
"""

from __future__ import annotations

import sys

from ._cli.commands import main

__all__ = ["main"]

if __name__ == "__main__":
    sys.exit(main())
