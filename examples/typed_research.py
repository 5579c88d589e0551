"""Typed state: the state is an attrs class, every update is checked before it is
committed, and a resumed run gets its values back with their types.

``GraphBuilder("research", state=Research)`` makes the fields of ``Research`` the state's
keys: a node returning ``{"sumary": ...}`` (a typo) or ``{"sources": 3}`` (a wrong type)
fails with a ``StateError`` naming the node, the key, the type and the value, and nothing
is committed. Reducers are declared on the fields with ``Annotated``. Nodes may take the
typed state (read-only: ``state.topic``), so mypy checks the fields they read. The SQLite
store keeps JSON rows (no pickle); a resume structures them again: the tuple of tags is
a tuple, the dates are dates, the sources are ``Source`` values.

Run: python examples/typed_research.py
"""

import datetime
import enum
import tempfile
from pathlib import Path
from typing import Annotated, Any

import attrs
import trio

from trio_graph import Approve, BarrierId, Executor, GraphBuilder, StateError, events, reducers
from trio_graph.stores import SQLiteStore


class Stage(enum.Enum):
    PLANNING = "planning"
    WRITING = "writing"
    DONE = "done"


@attrs.frozen
class Source:
    url: str
    seen: datetime.date


@attrs.define
class Research:
    topic: str
    tags: tuple[str, ...] = ()
    sources: Annotated[list[Source], reducers.append] = attrs.Factory(list)
    stage: Stage = Stage.PLANNING
    summary: str = ""
    approved: bool = False
    reason: str | None = None


def plan(state: Research) -> dict[str, Any]:
    return {"tags": ("trio", state.topic), "stage": Stage.WRITING}


def search(state: Research) -> dict[str, Any]:
    return {"sources": Source(f"https://example.org/{state.topic}", datetime.date(2026, 12, 1))}


def write(state: Research) -> dict[str, Any]:
    first = state.sources[0]
    summary = f"{state.topic}: {len(state.sources)} source, seen {first.seen:%d %b}"
    return {"summary": summary, "stage": Stage.DONE}


def build(search_fn: Any = search) -> Any:
    return (
        GraphBuilder("research", state=Research)
        .task("plan", plan)
        .task("search", search_fn)
        .barrier("review", approved_key="approved", reason_key="reason")
        .task("write", write)
        .edge("plan", "search")
        .edge("search", "review")
        .edge("review", "write")
        .start("plan")
        .end("write")
        .build()
    )


async def run(db: Path) -> dict[str, Any]:
    graph = build()
    async with SQLiteStore(db) as store:
        async with Executor(store=store).stream(graph, Research("graphs")) as first:
            async for event in first:
                if isinstance(event, events.BarrierWaiting):
                    first.cancel()  # this process stops; the run stays waiting, stored
        print(f"left waiting: {first.run_id[:8]} at 'review'")
    async with SQLiteStore(db) as store:  # another process could do this part
        resumed = Executor(store=store).resume(
            graph, first.run_id, decisions={BarrierId("review", 1): Approve()}
        )
        async with resumed as second:
            async for _ in second:
                pass
    assert second.result is not None
    state = second.result.state
    print(f"tags    = {state['tags']!r}")
    print(f"sources = {state['sources']!r}")
    print(f"stage   = {state['stage']!r}")
    print(f"summary = {state['summary']}")
    try:  # a typo or a wrong type is refused before anything is committed
        bad = build(lambda s: {"sources": 3})
        await Executor().run(bad, Research("oops"), decisions={"review": Approve()})
    except StateError as exc:
        print(f"refused: {exc}")
    return state


def main() -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        return trio.run(run, Path(tmp) / "research.db")


if __name__ == "__main__":
    main()
