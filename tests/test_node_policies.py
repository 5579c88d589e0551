"""Per-node timeouts, retries with back-off, blocking tasks (issue 7), on MockClock."""

from __future__ import annotations

import threading
from typing import Any

import pytest
import trio
import trio.testing
from hypothesis import given
from hypothesis import strategies as st

from trio_graph import (
    Executor,
    GraphBuilder,
    NodeExecutionFailed,
    NodeTimeout,
    RetryPolicy,
)
from trio_graph import events as ev


def one_node(fn: Any, **kw: Any) -> Any:
    return GraphBuilder("g").task("n", fn, **kw).start("n").end("n").build()


async def test_timeout_fires_at_exactly_the_limit(autojump_clock: trio.testing.MockClock) -> None:
    """A node sleeping past its timeout fails with NodeTimeout at exactly the limit."""

    async def slow(state: Any) -> None:
        await trio.sleep(3600)

    t0 = trio.current_time()
    with pytest.raises(NodeTimeout) as info:
        await Executor().run(one_node(slow, timeout=5), {})
    assert trio.current_time() - t0 == pytest.approx(5)
    assert info.value.node == "n"
    assert info.value.limit == 5
    assert isinstance(info.value, NodeExecutionFailed)
    assert str(info.value) == "node 'n' timed out after 5s"


async def test_node_within_its_timeout_succeeds(autojump_clock: trio.testing.MockClock) -> None:
    """A node finishing before its limit is unaffected by the timeout."""

    async def quick(state: Any) -> dict[str, int]:
        await trio.sleep(4.999)
        return {"x": 1}

    result = await Executor().run(one_node(quick, timeout=5), {})
    assert result.state == {"x": 1}


async def test_timeout_caught_by_fallback_edge(autojump_clock: trio.testing.MockClock) -> None:
    """With fallback_on=(NodeTimeout,), expiry takes the fallback edge with a Degraded event."""

    async def slow(state: Any) -> None:
        await trio.sleep(60)

    graph = (
        GraphBuilder("g")
        .task("slow", slow, timeout=2, fallback_on=(NodeTimeout,))
        .task("normal", lambda s: {"path": "normal"})
        .task("rescue", lambda s: {"path": "rescue"})
        .task("end", lambda s: None)
        .edge("slow", "normal")
        .edge_fallback("slow", "rescue")
        .edge("normal", "end")
        .edge("rescue", "end")
        .start("slow")
        .end("end")
        .build()
    )
    events = []
    async with Executor().stream(graph, {}) as run:
        async for event in run:
            events.append(event)
    assert run.result is not None
    assert run.result.state == {"path": "rescue"}
    degraded = [e for e in events if isinstance(e, ev.ObservedError)]
    assert [d.error.kind for d in degraded] == ["Degraded"]
    assert "timed out after 2s" in degraded[0].error.message


async def test_blocking_sync_function_times_out(autojump_clock: trio.testing.MockClock) -> None:
    """A blocking plain function runs in a thread; its timeout still fires (thread abandoned)."""
    release = threading.Event()

    def stuck(state: Any) -> None:
        release.wait(30)

    try:
        t0 = trio.current_time()
        with pytest.raises(NodeTimeout):
            await Executor().run(one_node(stuck, timeout=3, blocking=True), {})
        assert trio.current_time() - t0 == pytest.approx(3)
    finally:
        release.set()


async def test_blocking_sync_function_returns_updates() -> None:
    """A blocking plain function's updates are applied like any other node's."""

    def work(state: Any) -> dict[str, str]:
        return {"thread": threading.current_thread().name}

    result = await Executor().run(one_node(work, blocking=True), {})
    assert result.state["thread"] != threading.main_thread().name


def flaky(failures: int, exc: type[Exception] = ValueError) -> Any:
    calls = {"n": 0}

    async def node(state: Any) -> dict[str, Any]:
        calls["n"] += 1
        if calls["n"] <= failures:
            raise exc(f"failure {calls['n']}")
        return {"count": state.get("count", 0) + 1, "calls": calls["n"]}

    return node


async def test_retry_delays_exact_without_jitter(autojump_clock: trio.testing.MockClock) -> None:
    """Retry delays follow backoff * multiplier**(n-1), capped, each announced by Retrying."""
    policy = RetryPolicy(max_attempts=5, backoff=0.5, multiplier=2.0, max_backoff=1.5, jitter=False)
    graph = one_node(flaky(4), retry=policy)
    seen: list[tuple[int, float, float]] = []
    async with Executor().stream(graph, {}) as run:
        async for event in run:
            if isinstance(event, ev.ObservedError):
                assert event.error.kind == "Retrying"
                seen.append((event.error.attempt, event.error.delay, trio.current_time()))
    assert [(a, d) for a, d, _ in seen] == [(1, 0.5), (2, 1.0), (3, 1.5), (4, 1.5)]
    times = [t - seen[0][2] for _, _, t in seen]
    assert times == pytest.approx([0, 0.5, 1.5, 3.0])
    assert run.result is not None
    assert run.result.state == {"count": 1, "calls": 5}


def test_jittered_delay_bounds() -> None:
    """With jitter the delay lies in [base/2, base] of the un-jittered delay."""
    policy = RetryPolicy(backoff=1.0, multiplier=3.0, max_backoff=100.0, jitter=True)
    for attempt in range(1, 6):
        base = min(3.0 ** (attempt - 1), 100.0)
        assert policy.delay(attempt, lambda: 0.0) == base / 2
        assert policy.delay(attempt, lambda: 1.0) == base
        assert base / 2 <= policy.delay(attempt) <= base


async def test_attempts_exhausted_raise_last_error_with_earlier_attached(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """When attempts run out the last error is raised, the earlier ones attached."""
    graph = one_node(flaky(10), retry=RetryPolicy(max_attempts=3, jitter=False))
    with pytest.raises(NodeExecutionFailed) as info:
        await Executor().run(graph, {})
    err = info.value
    assert err.attempts == 3
    assert err.message == "failure 3"
    assert err.previous == ["ValueError: failure 1", "ValueError: failure 2"]
    assert isinstance(err.__cause__, ValueError)
    assert "attempt 1 failed: ValueError: failure 1" in (err.__cause__.__notes__ or [])


async def test_retry_on_filters_exceptions(autojump_clock: trio.testing.MockClock) -> None:
    """An exception outside retry_on is not retried."""
    graph = one_node(flaky(1, KeyError), retry=RetryPolicy(retry_on=(ValueError,)))
    with pytest.raises(NodeExecutionFailed) as info:
        await Executor().run(graph, {})
    assert info.value.attempts == 1
    assert info.value.error_type == "KeyError"


async def test_cancel_during_backoff(autojump_clock: trio.testing.MockClock) -> None:
    """Cancelling during a retry back-off stops the run at once with Cancelled."""
    graph = one_node(flaky(10), retry=RetryPolicy(backoff=1000, jitter=False))
    async with Executor().stream(graph, {}) as run:
        async for event in run:
            if isinstance(event, ev.ObservedError):
                t0 = trio.current_time()
                run.cancel()
    assert trio.current_time() == t0
    assert type(run.error).__name__ == "Cancelled"
    assert run.error is not None and run.error.node == "n"  # type: ignore[attr-defined]


@given(k=st.integers(0, 4), extra=st.integers(1, 3), start=st.integers(-5, 5))
def test_retried_node_state_equals_never_failed(k: int, extra: int, start: int) -> None:
    """A node failing k < max_attempts times ends with the same state as one that never failed."""

    def build(failures: int) -> Any:
        calls = {"n": 0}

        async def step(state: Any) -> dict[str, Any]:
            calls["n"] += 1
            if calls["n"] <= failures:
                raise RuntimeError("transient")
            return {"count": 1, "log": f"ok{state['count']}"}

        from trio_graph import reducers

        return (
            GraphBuilder("g")
            .task("n", step, retry=RetryPolicy(max_attempts=k + extra, jitter=False))
            .reducer("count", reducers.add)
            .start("n")
            .end("n")
            .build()
        )

    async def main(failures: int) -> dict[str, Any]:
        result = await Executor().run(build(failures), {"count": start})
        return result.state

    clock = trio.testing.MockClock(autojump_threshold=0)
    flaky_state = trio.run(main, k, clock=clock)
    clean_state = trio.run(main, 0, clock=trio.testing.MockClock(autojump_threshold=0))
    assert flaky_state == clean_state == {"count": start + 1, "log": f"ok{start}"}


def test_retry_policy_rejects_bad_arguments() -> None:
    """RetryPolicy validates its numbers with a message naming the field."""
    with pytest.raises(ValueError, match=r"^RetryPolicy\.max_attempts must be a positive int"):
        RetryPolicy(max_attempts=0)
    with pytest.raises(ValueError, match=r"^RetryPolicy\.backoff must be a number >= 0"):
        RetryPolicy(backoff=-1)
