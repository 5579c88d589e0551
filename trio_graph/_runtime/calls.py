"""Calling node functions: timeouts, retries with back-off, blocking functions in threads.

Runtime layer. A node function's exception becomes ``NodeExecutionFailed`` here,
once; a timeout is a ``NodeTimeout`` naming the node (and branch) and the limit.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import trio

from .. import events as ev
from .._model.graph import TaskNode
from ..errors import NodeExecutionFailed, NodeTimeout

OnRetry = Callable[[ev.Observed], Awaitable[None]]


def failure(node: str, exc: BaseException, *, branch: str | None = None) -> NodeExecutionFailed:
    """Wrap a node's exception as ``NodeExecutionFailed`` (its cause kept as ``__cause__``)."""
    err = NodeExecutionFailed(node, type(exc).__name__, str(exc), branch=branch)
    err.__cause__ = exc
    return err


async def call_node(
    node: str,
    fn: Any,
    is_async: bool,
    view: Mapping[str, Any],
    limit: float | None,
    *,
    branch: str | None = None,
) -> Any:
    """Call a task or branch function, under ``trio.fail_after`` when it has a timeout."""
    if limit is None:
        return (await fn(view)) if is_async else fn(view)
    try:
        with trio.fail_after(limit):
            if is_async:
                return await fn(view)
            result = fn(view)
            await trio.lowlevel.checkpoint()
            return result
    except trio.TooSlowError as exc:
        err = NodeTimeout(
            node, "TooSlowError", f"no result within {limit}s", branch=branch, limit=limit
        )
        raise err from exc


def own_timeout(exc: BaseException, node: str) -> bool:
    """A ``NodeTimeout`` raised for this very node (others, e.g. from a nested run, are
    the node's own failure like any exception)."""
    return isinstance(exc, NodeTimeout) and exc.node == node


async def in_thread(node: str, fn: Any, view: Mapping[str, Any], limit: float | None) -> Any:
    """Run a blocking plain function in a worker thread, abandoned if cancelled."""
    if limit is None:
        return await trio.to_thread.run_sync(fn, view, abandon_on_cancel=True)
    try:
        with trio.fail_after(limit):
            return await trio.to_thread.run_sync(fn, view, abandon_on_cancel=True)
    except trio.TooSlowError as exc:
        raise NodeTimeout(node, "TooSlowError", f"no result within {limit}s", limit=limit) from exc


async def call_task(node: TaskNode, view: Mapping[str, Any], on_retry: OnRetry) -> Any:
    """Call a task under its retry policy and/or in a worker thread.

    Each failed attempt that earns another is announced through ``on_retry`` (an
    ``Observed("Retrying")``) before a ``trio.sleep`` of the policy's delay; when the
    attempts run out, the last error is raised with the earlier ones attached.
    """
    name, policy = node.name, node.retry
    earlier: list[BaseException] = []
    attempt = 1
    while True:
        try:
            if node.blocking:
                return await in_thread(name, node.fn, view, node.timeout)
            return await call_node(name, node.fn, node.is_async, view, node.timeout)
        except Exception as exc:
            if policy is None or not policy.retries(exc, attempt):
                err = (
                    exc if isinstance(exc, NodeTimeout) and exc.node == name else failure(name, exc)
                )
                err.attempts = attempt
                err.previous = [f"{type(e).__name__}: {e}" for e in earlier]
                for i, e in enumerate(earlier, 1):
                    exc.add_note(f"attempt {i} failed: {type(e).__name__}: {e}")
                raise err from exc
            earlier.append(exc)
        delay = policy.delay(attempt)
        last = earlier[-1]
        message = f"attempt {attempt} failed: {type(last).__name__}: {last}"
        await on_retry(ev.Observed("Retrying", message, attempt, delay))
        await trio.sleep(delay)
        attempt += 1
