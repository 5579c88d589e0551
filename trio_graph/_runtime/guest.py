"""Running trio_graph inside an asyncio program, through Trio's guest mode.

Runtime layer. Trio can run *as a guest* of another event loop
(``trio.lowlevel.start_guest_run``): its tasks are scheduled by callbacks on the host
loop's thread, and only its I/O wait happens in a helper thread. :func:`asyncio_run`
starts one such guest run on the running asyncio loop and hands back an
``asyncio.Future`` for its result, so an asyncio program (a FastAPI handler) can
``await trio_graph.asyncio_run(executor.run, graph, state)``. Cancelling the future
cancels the Trio run. :func:`require_trio` is the clear error when a trio_graph entry
point is awaited under asyncio directly (instead of a traceback from Trio's internals).

Trio allows one run per thread at a time: a second ``asyncio_run`` while one is running
is refused. To run many graphs, run one Trio function that runs them all (a nursery, or
a task reading requests from a channel): see docs/nodes.md.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeVar

import trio

from ..errors import TrioRequired

if TYPE_CHECKING:
    import asyncio

    import outcome

T = TypeVar("T")


def require_trio(what: str) -> None:
    """Raise ``TrioRequired`` naming ``what`` and the async library in use unless this
    runs under Trio (a guest run counts)."""
    try:
        trio.lowlevel.current_trio_token()
    except RuntimeError:
        raise TrioRequired(what, _library()) from None


def _library() -> str:
    try:
        import sniffio

        return sniffio.current_async_library()
    except Exception:  # sniffio missing, or no async library it knows
        return "no Trio run"


def asyncio_run(async_fn: Callable[..., Awaitable[T]], *args: Any) -> asyncio.Future[T]:
    """Run ``async_fn(*args)`` under Trio, as a guest of the running asyncio loop; the
    returned future resolves with its result (or its exception). Cancelling the future
    cancels the Trio run (the future stays cancelled). Call it from asyncio code: the
    loop must be running. ``RuntimeError`` when a Trio run is already active in this
    thread (Trio allows one at a time)."""
    import asyncio

    loop = asyncio.get_running_loop()
    future: asyncio.Future[T] = loop.create_future()
    scope = trio.CancelScope()
    token: list[trio.lowlevel.TrioToken] = []

    async def main() -> T | None:
        token.append(trio.lowlevel.current_trio_token())
        if future.cancelled():
            scope.cancel()
        with scope:
            return await async_fn(*args)
        return None  # cancelled through the future

    def done(result: outcome.Outcome[T | None]) -> None:
        if future.done():
            return
        try:
            value = result.unwrap()
        except BaseException as exc:  # the run's own error, for the awaiting side
            future.set_exception(exc)
        else:
            future.set_result(value)  # type: ignore[arg-type]  # None only when cancelled

    def cancelled(f: asyncio.Future[T]) -> None:
        if f.cancelled() and token:
            token[0].run_sync_soon(scope.cancel)

    future.add_done_callback(cancelled)
    try:
        trio.lowlevel.start_guest_run(
            main,
            run_sync_soon_threadsafe=loop.call_soon_threadsafe,
            done_callback=done,
            host_uses_signal_set_wakeup_fd=True,
        )
    except RuntimeError as exc:
        raise RuntimeError(
            f"cannot start a Trio guest run here: {exc} (Trio allows one run per thread; "
            "run several graphs from one Trio function instead)"
        ) from exc
    return future
