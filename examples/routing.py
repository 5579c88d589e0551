"""Routing: conditional, normal and fallback edges; Goto and Fallback results; errors.

After a node, the next one is chosen among its outgoing edges, in this order:
1. conditional edges in the order they were added: the first whose condition holds;
2. otherwise the first normal edge;
3. otherwise the first fallback edge;
4. otherwise ``Unrouted``, listing every condition tried.
A node can also name its target (``Goto``) or ask for its fallback edge (``Fallback``).

Run: python examples/routing.py
"""

import trio

from trio_graph import Executor, Fallback, Goto, GraphBuilder, MissingEdge, Unrouted


def classify(state):
    return {"size": len(state["text"])}


def lookup(state):
    if state["text"] == "offline":
        return Fallback("lookup service unavailable")  # take the fallback edge
    if state["text"].startswith("!"):
        return Goto("urgent", updates={"flag": "urgent"})  # name the next node
    return {"found": True}  # "go to next": routed by the edges


def record(name):
    return lambda state: {"path": [*state.get("path", []), name]}


graph = (
    GraphBuilder("routing")
    .task("classify", classify)
    .task("lookup", lookup)
    .task("short", record("short"))
    .task("long", record("long"))
    .task("urgent", record("urgent"))
    .task("cached", record("cached"))
    .task("done", lambda state: None)
    .edge("classify", "lookup")
    .edge_if("lookup", "short", lambda s: s["size"] <= 5)  # tried first
    .edge_if("lookup", "long", lambda s: s["size"] > 40)  # tried second
    .edge("lookup", "done")  # no condition held
    .edge("lookup", "urgent")  # a second normal edge: only reachable by Goto
    .edge_fallback("lookup", "cached")  # taken by Fallback(...)
    .edge("short", "done")
    .edge("long", "done")
    .edge("urgent", "done")
    .edge("cached", "done")
    .start("classify")
    .end("done")
    .build()
)


async def route(text):
    result = await Executor().run(graph, {"text": text})
    return [entry.node for entry in result.execution_log]


async def amain():
    paths = {}
    for text in ["hi", "a medium sized sentence", "!fire", "offline", "x" * 50]:
        paths[text[:12]] = await route(text)
        print(f"{text[:12]!r:15} -> {' -> '.join(paths[text[:12]])}")

    # Routing errors are typed and name what went wrong.
    stuck = (
        GraphBuilder("stuck")
        .task("a", lambda s: None)
        .task("b", lambda s: None)
        .edge_if("a", "b", lambda s: s.get("ready", False))
        .start("a")
        .end("b")
        .build()
    )
    try:
        await Executor().run(stuck, {})
    except Unrouted as exc:
        print("Unrouted:", exc)
    jump = (
        GraphBuilder("jump")
        .task("a", lambda s: Goto("c"))
        .task("b", lambda s: None)
        .task("c", lambda s: None)
        .edge("a", "b")
        .edge("b", "c")
        .start("a")
        .end("c")
        .build()
    )
    try:
        await Executor().run(jump, {})
    except MissingEdge as exc:
        print("MissingEdge:", exc)
    return paths


def main():
    return trio.run(amain)


if __name__ == "__main__":
    main()
