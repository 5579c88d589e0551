"""Calling node functions: timeouts, retries with back-off, blocking functions in threads.

Runtime layer. :func:`call` is the **one funnel** of a node's exceptions: whatever a
task or branch function raises leaves it as ``NodeExecutionFailed`` naming the node (and
branch), the live exception as ``__cause__``; running past the node's own ``timeout`` is a
``NodeTimeout`` (its cause the ``trio.TooSlowError``). Nothing else wraps a node's
exception, so nothing can wrap it twice: a ``NodeTimeout`` raised *inside* the function
(by a nested run, say) is that function's failure like any exception.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import trio

from .. import events as ev
from .._model.graph import TaskNode
from ..errors import NodeExecutionFailed, NodeTimeout
from .context import NodeContext

OnRetry = Callable[[ev.Observed], Awaitable[None]]


def failure(node: str, exc: BaseException, *, branch: str | None = None) -> NodeExecutionFailed:
    """Wrap a node's exception as ``NodeExecutionFailed`` (its cause kept as ``__cause__``)."""
    err = NodeExecutionFailed(node, type(exc).__name__, str(exc), branch=branch)
    err.__cause__ = exc
    return err


def raised(err: Exception) -> Exception:
    """What the node function itself raised, for an error :func:`call` produced: the cause
    of a wrapped failure; a timeout (or any other error) is itself."""
    cause = err.__cause__
    if type(err) is NodeExecutionFailed and isinstance(cause, Exception):
        return cause
    return err


async def call(
    node: str,
    fn: Any,
    is_async: bool,
    view: Mapping[str, Any],
    limit: float | None,
    blocking: bool = False,
    *,
    branch: str | None = None,
    ctx: NodeContext | None = None,
) -> Any:
    """Call a task or branch function once, under ``trio.fail_after`` when it has a limit;
    a ``blocking`` plain function runs in a worker thread (abandoned if cancelled); a
    function that takes a ``NodeContext`` gets ``ctx``."""
    scope: trio.CancelScope | None = None
    if ctx is not None:  # fn(view, ctx), as a function of the view like any other
        fn = functools.partial(_with_context, fn, ctx)
    try:
        if limit is None and not blocking:
            return (await fn(view)) if is_async else fn(view)
        if limit is None:
            return await trio.to_thread.run_sync(fn, view, abandon_on_cancel=True)
        with trio.fail_after(limit) as scope:
            if blocking:
                return await trio.to_thread.run_sync(fn, view, abandon_on_cancel=True)
            if is_async:
                return await fn(view)
            result = fn(view)
            await trio.lowlevel.checkpoint()  # a plain function's overrun is noticed here
            return result
    except Exception as exc:
        timed_out = scope is not None and scope.cancelled_caught
        if isinstance(exc, trio.TooSlowError) and timed_out and limit is not None:
            raise NodeTimeout(
                node, "TooSlowError", f"no result within {limit}s", branch=branch, limit=limit
            ) from exc
        raise failure(node, exc, branch=branch) from exc


def _with_context(fn: Any, ctx: NodeContext, view: Mapping[str, Any]) -> Any:
    return fn(view, ctx)


async def call_task(
    node: TaskNode, view: Mapping[str, Any], on_retry: OnRetry, ctx: NodeContext | None = None
) -> Any:
    """Call a task under its retry policy (see :func:`call` for one attempt).

    Each failed attempt that earns another is announced through ``on_retry`` (an
    ``Observed("Retrying")``) before a ``trio.sleep`` of the policy's delay; when the
    attempts run out, the last error is raised with the earlier ones attached.
    """
    name, policy = node.name, node.retry
    earlier: list[BaseException] = []
    attempt = 1
    while True:
        if ctx is not None:
            ctx.attempt = attempt
        try:
            return await call(
                name, node.fn, node.is_async, view, node.timeout, blocking=node.blocking, ctx=ctx
            )
        except NodeExecutionFailed as err:
            exc = raised(err)
            if policy is None or not policy.retries(exc, attempt):
                err.attempts = attempt
                err.previous = [f"{type(e).__name__}: {e}" for e in earlier]
                for i, e in enumerate(earlier, 1):
                    exc.add_note(f"attempt {i} failed: {type(e).__name__}: {e}")
                raise
            earlier.append(exc)
        delay = policy.delay(attempt)
        last = earlier[-1]
        message = f"attempt {attempt} failed: {type(last).__name__}: {last}"
        await on_retry(ev.Observed("Retrying", message, attempt, delay))
        await trio.sleep(delay)
        attempt += 1
