"""``trio-graph ui``: the inspector page over the store (DESIGN §17).

Needs the ``ui`` extra (Starlette and Hypercorn); without it, one line says what to
install (exit 2). It binds to loopback by default and says so; any other address gets a
warning, since the page has no authentication and can decide and cancel runs.
"""

from __future__ import annotations

import sys
from typing import Any

from .graphs import load_graph
from .store_options import open_store
from .usage import EXIT_OK, UsageError

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8765


def _needs_extra() -> None:
    try:
        import hypercorn  # noqa: F401
        import starlette  # noqa: F401
    except ImportError as exc:
        raise UsageError(
            f"the inspector needs the ui extra: pip install 'trio_graph[ui]' ({exc})"
        ) from None


async def cmd_ui(args: Any) -> int:
    """Serve the inspector page until Ctrl+C or SIGTERM."""
    _needs_extra()
    from ..ui.app import create_app
    from ..ui.server import is_loopback, serve

    if not 0 <= args.port <= 65535:
        raise UsageError(f"--port must be 0..65535, got {args.port}")
    graphs = [load_graph(spec) for spec in args.graph or ()]

    def ready(urls: list[str]) -> None:
        where = ", ".join(urls)
        if is_loopback(args.host):
            print(f"inspector on {where} (loopback only: this machine can open it)", flush=True)
        else:
            print(f"inspector on {where}", flush=True)
            print(
                f"warning: listening on {args.host}, not loopback: anyone who can reach this "
                "port can decide and cancel runs (the page has no authentication)",
                file=sys.stderr,
                flush=True,
            )

    async with open_store(args) as store:
        app = create_app(store, graphs=graphs)
        try:
            await serve(app, args.host, args.port, on_ready=ready)
        except OSError as exc:
            raise UsageError(f"cannot listen on {args.host}:{args.port}: {exc}") from None
    return EXIT_OK
