"""Map nodes with a store (DESIGN §15): each finished item is recorded like a branch, the
item list is recorded as the fork starts, and a resume or fork runs only the unfinished
items, over the very same list. Items wait on gates (``trio.Event``), so which items have
finished when the run is cancelled does not depend on how long a store's writes take."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pytest
import trio
from test_store_conformance import STORE_FACTORIES

from trio_graph import CheckpointPolicy, Executor, GraphBuilder, reducers
from trio_graph import events as ev
from trio_graph._model.graph import Graph
from trio_graph.stores import Store

N = 6


def map_graph(
    calls: Counter[int], gates: dict[int, trio.Event] | None, over: Callable[..., Any]
) -> Graph:
    """prep (a no-op) -> m (map: item i waits for gates[i] if any, appends i*10 to out)
    -> done."""

    async def item_fn(item: int, state: Mapping[str, Any]) -> Any:
        calls[item] += 1
        if gates is not None and item in gates:
            await gates[item].wait()
        return {"out": item * 10, "total": 1}

    return (
        GraphBuilder("mapped")
        .task("prep", lambda s: None)
        .map("m", item_fn, over=over)
        .task("done", lambda s: {"finished": True})
        .edge("prep", "m")
        .edge("m", "done")
        .reducer("out", reducers.append)
        .reducer("total", reducers.add)
        .start("prep")
        .end("done")
        .build()
    )


def from_state(state: Mapping[str, Any]) -> Any:
    return state["items"]


async def cancel_after_records(run: Any, gates: dict[int, trio.Event], records: int) -> None:
    """Open the gates one by one, in item order, each after the previous item's record;
    cancel the run once ``records`` items are recorded."""
    saved = 0
    async for event in run:
        if isinstance(event, ev.CheckpointSaved) and event.node == "m":
            if saved == records:  # the item list, then one record per item
                run.cancel()
            else:
                gates[saved].set()
            saved += 1


def expected(items: list[int]) -> dict[str, Any]:
    return {"items": ITEMS, "out": [i * 10 for i in items], "total": len(items), "finished": True}


ITEMS = list(range(N))


@pytest.mark.parametrize("store_factory", STORE_FACTORIES)
async def test_resume_after_cancel_mid_map_runs_only_unfinished_items(
    store_factory: Callable[[Path], Store], tmp_path: Path
) -> None:
    """Cancelled after 3 of 6 items were recorded: the checkpoint carries the item list and
    those 3 records; the resume runs only the other 3 (once more each: they were running)
    and reaches the state an uninterrupted run reaches."""
    calls: Counter[int] = Counter()
    gates = {i: trio.Event() for i in range(N)}
    graph = map_graph(calls, gates, from_state)
    async with store_factory(tmp_path) as store:
        executor = Executor(store=store)
        async with executor.stream(graph, {"items": ITEMS, "total": 0}) as run:
            await cancel_after_records(run, gates, 3)
        latest = await store.latest(run.run_id)
        assert latest is not None and latest.next_node == "m"
        assert [b.branch for b in latest.branches] == ["m[*]", "m[0]", "m[1]", "m[2]"]
        assert latest.branches[0].updates == {"items": ITEMS}
        assert calls == Counter(dict.fromkeys(range(N), 1))

        for gate in gates.values():
            gate.set()
        async with executor.resume(graph, run.run_id) as resumed:
            result = await resumed.wait()
    assert result.state == expected(ITEMS)
    assert calls == Counter({0: 1, 1: 1, 2: 1, 3: 2, 4: 2, 5: 2})

    uninterrupted = await Executor().run(
        map_graph(Counter(), None, from_state), {"total": 0, "items": ITEMS}
    )
    assert result.state == uninterrupted.state


@pytest.mark.parametrize("store_factory", STORE_FACTORIES[:2])
async def test_a_resume_maps_the_recorded_items_not_what_over_gives_now(
    store_factory: Callable[[Path], Store], tmp_path: Path
) -> None:
    """``over`` reads a list outside the state that changes after the fork started: the
    resume still maps the list recorded at the fork's start."""
    calls: Counter[int] = Counter()
    gates = {i: trio.Event() for i in range(N)}
    source = list(ITEMS)
    graph = map_graph(calls, gates, lambda s: list(source))
    async with store_factory(tmp_path) as store:
        executor = Executor(store=store)
        async with executor.stream(graph, {"items": ITEMS, "total": 0}) as run:
            await cancel_after_records(run, gates, 1)
        source[:] = [99]  # over would now give another list
        for gate in gates.values():
            gate.set()
        async with executor.resume(graph, run.run_id) as resumed:
            result = await resumed.wait()
    assert result.state == expected(ITEMS)
    assert 99 not in calls


async def test_a_fork_patch_changes_the_items_only_before_the_map_started() -> None:
    """A fork from the checkpoint before the map (``prep``'s) with a patched list maps the
    patched list; a fork from a checkpoint of the map in progress keeps its recorded list
    (the patch changes the state, not the items)."""
    calls: Counter[int] = Counter()
    gates = {i: trio.Event() for i in range(N)}
    graph = map_graph(calls, gates, from_state)
    executor = Executor(store=_memory(), policy=CheckpointPolicy(every_step=True))
    async with executor.stream(graph, {"items": ITEMS, "total": 0}) as run:
        await cancel_after_records(run, gates, 2)
    for gate in gates.values():
        gate.set()
    checkpoints = await executor.store.list(run.run_id)  # type: ignore[union-attr]
    before = next(c for c in checkpoints if c.next_node == "m" and not c.branches)
    during = checkpoints[-1]
    assert [b.branch for b in during.branches] == ["m[*]", "m[0]", "m[1]"]

    async with executor.fork(graph, before.checkpoint_id, patch={"items": [7, 8]}) as forked:
        early = await forked.wait()
    assert early.state["out"] == [70, 80]

    async with executor.fork(graph, during.checkpoint_id, patch={"items": [7, 8]}) as forked:
        late = await forked.wait()
    assert late.state["out"] == [i * 10 for i in ITEMS]
    assert late.state["items"] == [7, 8]  # the patch is in the state all the same


async def test_with_no_store_nothing_is_recorded_and_items_run_once(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """Without a store no CheckpointSaved is sent (the list is kept in memory only)."""
    calls: Counter[int] = Counter()
    graph = map_graph(calls, None, from_state)
    async with Executor().stream(graph, {"items": ITEMS, "total": 0}) as run:
        events = [e async for e in run]
    assert not [e for e in events if isinstance(e, ev.CheckpointSaved)]
    assert run.result.state == expected(ITEMS)


def _memory() -> Store:
    from trio_graph.stores import MemoryStore

    return MemoryStore()
