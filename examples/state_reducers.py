"""State and reducers: how a node's updates merge into the shared state.

A node returns a mapping of updates; each update to a key without a reducer
overwrites it, and an update to a key with a reducer is merged: the built-ins are
``append``, ``extend``, ``add``, ``merge`` (dicts), ``union``, ``max`` and ``min``;
any ``(old, new) -> merged`` function works too. A reducer that fails is a terminal
``StateError`` naming the node and the key: nothing is dropped silently.

Run: python examples/state_reducers.py
"""

import trio

from trio_graph import Executor, GraphBuilder, StateError, reducers


def longest(old, new):
    """A custom reducer: keep the longer string."""
    return new if len(new) > len(old) else old


def observe(state):
    # Nodes get a read-only view of the state: they return updates instead of mutating.
    return {
        "log": "observed",  # append -> ["observed"]
        "tags": ["a", "b"],  # union (on lists: order kept, no duplicates)
        "cost": 1.5,  # add
        "meta": {"source": "sensor"},  # merge
        "best": 0.4,  # max
        "title": "short",  # custom: longest
        "status": "observing",  # no reducer: overwrite
    }


def refine(state):
    return {
        "log": "refined",
        "tags": ["b", "c"],
        "cost": 2.0,
        "meta": {"quality": "high"},
        "best": 0.9,
        "title": "a longer title",
        "status": "done",
    }


graph = (
    GraphBuilder("reducers")
    .task("observe", observe)
    .task("refine", refine)
    .edge("observe", "refine")
    .reducer("log", reducers.append)
    .reducer("tags", reducers.union)
    .reducer("cost", reducers.add)
    .reducer("meta", reducers.merge)
    .reducer("best", reducers.max)
    .reducer("title", longest)
    .start("observe")
    .end("refine")
    .build()
)


async def amain():
    result = await Executor().run(graph, {"cost": 0.0, "tags": []})
    for key, value in result.state.items():
        print(f"{key:7} = {value!r}")

    # A reducer that fails ends the run with StateError naming node and key.
    bad = (
        GraphBuilder("bad")
        .task("count", lambda s: {"total": "three"})
        .reducer("total", reducers.add)
        .start("count")
        .end("count")
        .build()
    )
    try:
        await Executor().run(bad, {"total": 0})
    except StateError as exc:
        print("StateError:", exc)
        print("  node:", exc.node, "key:", exc.key)
    return result.state


def main():
    return trio.run(amain)


if __name__ == "__main__":
    main()
