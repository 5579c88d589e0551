"""Serving the inspector with Hypercorn's Trio worker (``hypercorn.trio.serve``).

Runtime layer (Trio). :func:`serve` binds ``host:port`` (port 0: a free one), reports
the URLs it listens on through ``task_status`` and ``on_ready``, and stops gracefully
on SIGTERM (and on Ctrl+C, through Trio's ``KeyboardInterrupt``).
"""

from __future__ import annotations

import ipaddress
import signal
from collections.abc import Callable

import trio
from hypercorn.config import Config
from hypercorn.trio import serve as hypercorn_serve
from starlette.applications import Starlette

GRACE = 1.0
"""Seconds open requests (event streams) get to end at shutdown."""


def is_loopback(host: str) -> bool:
    """Whether ``host`` only accepts connections from this machine."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def config(host: str, port: int) -> Config:
    """Hypercorn's config: one bind, no access log, a short graceful shutdown."""
    cfg = Config()
    cfg.bind = [f"[{host}]:{port}" if ":" in host else f"{host}:{port}"]
    cfg.accesslog = None
    cfg.errorlog = "-"
    cfg.graceful_timeout = GRACE
    cfg.loglevel = "WARNING"
    return cfg


async def _until_sigterm() -> None:
    with trio.open_signal_receiver(signal.SIGTERM) as signals:
        async for _ in signals:
            return


async def serve(
    app: Starlette, host: str, port: int, *, on_ready: Callable[[list[str]], None]
) -> None:
    """Serve ``app`` until SIGTERM; ``on_ready(urls)`` once listening. An address that
    cannot be bound is a bare ``OSError``."""
    try:
        async with trio.open_nursery() as nursery:
            urls: list[str] = await nursery.start(
                lambda task_status: hypercorn_serve(
                    app,  # type: ignore[arg-type]
                    config(host, port),
                    shutdown_trigger=_until_sigterm,
                    task_status=task_status,
                )
            )
            on_ready(urls)
    except BaseExceptionGroup as group:
        matched, _ = group.split(OSError)
        leaves = _leaves(matched) if matched is not None else []
        if len(leaves) == 1 and len(_leaves(group)) == 1:
            raise leaves[0] from None
        raise


def _leaves(group: BaseExceptionGroup[BaseException]) -> list[BaseException]:
    out: list[BaseException] = []
    for exc in group.exceptions:
        out += _leaves(exc) if isinstance(exc, BaseExceptionGroup) else [exc]
    return out
