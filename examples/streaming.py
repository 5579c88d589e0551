"""Streaming a (fake) LLM's tokens to the terminal, with a shared limiter and a
run-scoped HTTP client.

A node that takes a second parameter gets a ``NodeContext``: ``await ctx.emit(token)``
streams each token to the consumer as a ``NodeOutput`` event while the node runs (with
the run's back-pressure), ``await ctx.resource("http")`` is the run's own client (opened
on first use, closed when the run ends), and ``limiter="llm"`` makes every call, in
every run and branch of the executor, share ``Executor(limiters={"llm": 1})``'s slot.
Two runs go at once here; with one slot their calls take turns, so the terminal shows
one clean line per call. No network: the client is a fake.

Run: python examples/streaming.py
"""

import trio

from trio_graph import Executor, GraphBuilder, reducers
from trio_graph import events as ev


class FakeHTTPClient:
    """Stands in for ``httpx.AsyncClient``: an async context manager with a streaming call."""

    opened = closed = 0
    inside = most_inside = 0  # LLM calls in progress, across every client

    async def __aenter__(self):
        FakeHTTPClient.opened += 1
        return self

    async def __aexit__(self, *exc_info):
        await trio.sleep(0.001)  # closing a connection pool awaits
        FakeHTTPClient.closed += 1

    async def complete(self, prompt):
        """Yield the completion of ``prompt`` token by token, like an SSE stream."""
        FakeHTTPClient.inside += 1
        FakeHTTPClient.most_inside = max(FakeHTTPClient.most_inside, FakeHTTPClient.inside)
        try:
            for token in f"A short answer about {prompt}.".split(" "):
                await trio.sleep(0.002)  # the network
                yield token + " "
        finally:
            FakeHTTPClient.inside -= 1


def writer(language):
    async def write(state, ctx):
        http = await ctx.resource("http")
        text = ""
        async for token in http.complete(f"{state['topic']} in {language}"):
            await ctx.emit(token)  # to the terminal, now
            text += token
        return {"drafts": {language: text.strip()}}

    return write


async def summarise(state, ctx):
    http = await ctx.resource("http")
    async for token in http.complete(f"the {len(state['drafts'])} drafts"):
        await ctx.emit(token)
    return {"done": True}


def build():
    return (
        GraphBuilder("streaming")
        .parallel("draft", {"en": writer("English"), "fr": writer("French")}, limiter="llm")
        .task("summarise", summarise, limiter="llm", timeout=5)
        .edge("draft", "summarise")
        .reducer("drafts", reducers.merge)  # both branches write "drafts"
        .start("draft")
        .end("summarise")
        .build()
    )


async def show(executor, graph, topic, results):
    """Run one graph, printing each call's tokens on a line of its own as they come."""
    async with executor.stream(graph, {"topic": topic, "drafts": {}}) as run:
        async for event in run:
            if isinstance(event, ev.NodeOutput):
                where = event.node + (f".{event.branch}" if event.branch else "")
                print(f"[{topic}] {where}: " if event.data.startswith("A ") else "", end="")
                print(event.data, end="\n" if event.data.endswith(". ") else "", flush=True)
    results.append(await run.wait())  # the result, or the run's error raised


async def amain():
    executor = Executor(resources={"http": FakeHTTPClient}, limiters={"llm": 1})
    graph, results = build(), []
    async with trio.open_nursery() as nursery:  # two runs at once, one LLM slot
        nursery.start_soon(show, executor, graph, "trio", results)
        nursery.start_soon(show, executor, graph, "graphs", results)
    c, done = FakeHTTPClient, sum(r.state["done"] for r in results)
    print(
        f"{done} runs done, {c.opened} clients opened and {c.closed} closed, "
        f"at most {c.most_inside} LLM call at once"
    )
    return results


def main():
    return trio.run(amain)


if __name__ == "__main__":
    main()
