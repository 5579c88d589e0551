"""An agent's shape: plan N searches, run them in parallel over a run-time list, stream
their tokens, race two providers, all on a typed state.

- ``.map("search", search, over=...)``: one branch per query the plan produced (the width
  is only known at run time), merged in item order whatever order they finish in;
- ``ctx.emit(token)``: each search streams its tokens as ``NodeOutput`` events while it
  runs (a slow consumer slows it down: back-pressure);
- ``ctx.resource("http")``: one client per run, opened on first use, closed at the end;
- ``limiter="llm"``: at most two model calls at once, across every branch;
- ``.parallel(..., strategy="first_completed")``: hedging across two providers, the
  first answer wins and the other is cancelled at once;
- ``GraphBuilder(state=Research)``: a typo or a wrong type is refused before it is
  committed.

Run: python examples/research_agent.py
"""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any

import attrs
import trio

from trio_graph import Executor, GraphBuilder, NodeContext, events, reducers


@attrs.define
class Research:
    topic: str
    queries: list[str] = attrs.Factory(list)
    found: Annotated[list[str], reducers.extend] = attrs.Factory(list)
    summary: str = ""


class FakeClient:
    """Stands for an HTTP client (httpx.AsyncClient runs under Trio as it is)."""

    opened = 0

    async def complete(self, prompt: str) -> AsyncIterator[str]:
        for word in f"notes on {prompt}".split():
            await trio.sleep(0.01 * len(prompt) % 0.05)  # stands for the network
            yield word


@asynccontextmanager
async def make_client() -> AsyncIterator[FakeClient]:
    FakeClient.opened += 1
    yield FakeClient()


def plan(state: Research) -> dict[str, Any]:
    return {"queries": [f"{state.topic} {angle}" for angle in ("history", "design", "speed")]}


async def search(query: str, state: Research, ctx: NodeContext) -> dict[str, Any]:
    client = await ctx.resource("http")
    words = []
    async for word in client.complete(query):
        await ctx.emit(word)
        words.append(word)
    return {"found": [" ".join(words)]}


async def fast_provider(state: Research) -> dict[str, Any]:
    await trio.sleep(0.01)
    return {"summary": f"{len(state.found)} findings on {state.topic} (fast provider)"}


async def slow_provider(state: Research) -> dict[str, Any]:
    await trio.sleep(10)  # cancelled as soon as the fast one answers
    return {"summary": "never used"}


graph = (
    GraphBuilder("research_agent", state=Research)
    .task("plan", plan)
    .map("search", search, over=lambda s: s.queries, limiter="llm")
    .parallel(
        "summarise",
        {"fast": fast_provider, "slow": slow_provider},
        strategy="first_completed",
    )
    .edge("plan", "search")
    .edge("search", "summarise")
    .start("plan")
    .end("summarise")
    .build()
)


async def run() -> dict[str, Any]:
    executor = Executor(resources={"http": make_client}, limiters={"llm": 2})
    tokens = 0
    async with executor.stream(graph, Research("trio"), timeout=30) as agent:
        async for event in agent:
            if isinstance(event, events.NodeOutput):
                tokens += 1
            elif isinstance(event, events.BranchCompleted) and event.node == "summarise":
                print(f"  {event.branch}: {event.outcome}")
    assert agent.result is not None
    state = agent.result.state
    for line in state["found"]:
        print(f"  found: {line}")
    print(f"{tokens} tokens streamed, {FakeClient.opened} client opened")
    print(f"summary: {state['summary']}")
    return state


def main() -> dict[str, Any]:
    return trio.run(run)


if __name__ == "__main__":
    main()
