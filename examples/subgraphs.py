"""Subgraphs: run a built graph as one node of another.

``.subgraph(name, graph, input=..., output=..., max_steps=...)`` runs ``graph`` as a
node with its own step budget. ``input(state)`` gives the child's initial state
(default: a copy of the parent's); ``output(child_state)`` gives the updates for the
parent (default: every update the child committed, merged by the parent's reducers).
Child events are forwarded with ``"parent/child"`` node paths, and a barrier inside
is answered from the parent as ``BarrierId("sub/node", n)``.

Run: python examples/subgraphs.py
"""

import trio

from trio_graph import Approve, Executor, GraphBuilder, reducers
from trio_graph import events as ev

# A reusable child graph: translate, then have a person check it.
translate = (
    GraphBuilder("translate")
    .task("draft", lambda s: {"translation": s["text"].upper()})
    .barrier("check", timeout=60, default="approve")
    .edge("draft", "check")
    .start("draft")
    .end("check")
    .build()
)

graph = (
    GraphBuilder("publish")
    .task("write", lambda s: {"text": "hello world", "log": "write"})
    .subgraph(
        "fr",
        translate,
        input=lambda s: {"text": s["text"]},  # the child sees only what it needs
        output=lambda child: {"fr": child["translation"], "log": "fr"},
    )
    .task("publish", lambda s: {"log": "publish"})
    .edge("write", "fr")
    .edge("fr", "publish")
    .reducer("log", reducers.append)
    .start("write")
    .end("publish")
    .build()
)


async def amain():
    nodes = []
    async with Executor().stream(graph, {}) as run:
        async for event in run:
            if isinstance(event, ev.NodeStart):
                nodes.append(event.node)
            elif isinstance(event, ev.BarrierWaiting):
                print("waiting at", event.barrier_id)
                run.decide(event.barrier_id, Approve())
    print("nodes:", " -> ".join(nodes))
    print("state:", run.result.state)
    return nodes, run.result.state


def main():
    return trio.run(amain)


if __name__ == "__main__":
    main()
