"""Serving the inspector with Hypercorn's Trio worker (``hypercorn.trio.serve``).

Runtime layer (Trio). :func:`serve` binds ``host:port`` (port 0: a free one), reports
the URLs it listens on through ``task_status`` and ``on_ready``, and stops gracefully
on SIGTERM (and on Ctrl+C, through Trio's ``KeyboardInterrupt``).
"""

from __future__ import annotations

import ipaddress
import signal
import socket
from collections.abc import AsyncIterator, Callable

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


def probe(host: str, port: int) -> None:
    """Bind ``host:port`` once and let go: an address that cannot be had is a plain
    ``OSError`` here, before Hypercorn (which leaves the socket of a failed bind open)."""
    family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    with socket.socket(family, kind, proto) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)


async def _set_on_sigterm(signals: AsyncIterator[int], stop: trio.Event) -> None:
    async for _ in signals:
        stop.set()
        return


async def serve(
    app: Starlette, host: str, port: int, *, on_ready: Callable[[list[str]], None]
) -> None:
    """Serve ``app`` until SIGTERM; ``on_ready(urls)`` once listening. An address that
    cannot be bound is a bare ``OSError``."""
    probe(host, port)
    stop = trio.Event()

    async def run(task_status: trio.TaskStatus[list[str]]) -> None:
        await hypercorn_serve(
            app,  # type: ignore[arg-type]
            config(host, port),
            shutdown_trigger=stop.wait,
            task_status=task_status,
        )
        nursery.cancel_scope.cancel()  # served: stop watching for the signal

    try:
        with trio.open_signal_receiver(signal.SIGTERM) as signals:  # before serving starts
            async with trio.open_nursery() as nursery:
                nursery.start_soon(_set_on_sigterm, signals, stop)
                on_ready(await nursery.start(run))
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
