"""The bundled demo graph: an article that is researched, drafted, scored, reviewed.

It shows each feature once, deterministically and without any network:

- a **fallback**: ``research`` asks a (simulated) search service that is offline and
  returns ``Fallback(...)``, so the run takes the fallback edge to ``use_notes``;
- a **loop** and a **condition**: ``draft -> score -> check -> draft`` goes round until
  both scores reach 0.8 (the second round does);
- a **parallel** node: ``score`` runs the ``style`` and ``facts`` branches at once and
  merges their updates into ``scores`` with the ``merge`` reducer;
- a **barrier**: ``review`` waits for a person (30 s, then the default: approve); a
  rejection loops back to ``draft`` with the reason in the state.

Run it with ``python -m trio_graph demo``; the graph is importable as
``trio_graph.demo:graph`` (``python -m trio_graph mermaid trio_graph.demo:graph``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import trio

from . import reducers
from ._model.builder import GraphBuilder
from ._model.graph import Graph
from ._model.results import Fallback

PASS_MARK = 0.8
"""Both scores must reach this for the draft to go to review."""

REVIEW_TIMEOUT = 30.0
"""Seconds the ``review`` barrier waits for a person before its default (approve)."""


def initial_state() -> dict[str, Any]:
    """The state the demo starts from."""
    return {"topic": "structured concurrency", "round": 0, "drafts": []}


async def research(state: Mapping[str, Any]) -> Fallback:
    """Ask the search service; it is offline in the demo, so take the fallback edge."""
    await trio.sleep(0.02)
    return Fallback("search service offline (simulated)", updates={"sources": []})


def use_notes(state: Mapping[str, Any]) -> dict[str, Any]:
    """The fallback: work from local notes instead of search results."""
    return {"sources": ["notes/nurseries.md", "notes/cancel-scopes.md"]}


async def draft(state: Mapping[str, Any]) -> dict[str, Any]:
    """Write the next version; a reviewer's rejection reason is taken into account."""
    await trio.sleep(0.05)
    version = state["round"] + 1
    text = f"{state['topic']}: draft v{version} from {len(state['sources'])} sources"
    reason = state.get("review.reject_reason")
    if reason:
        text += f" (revised: {reason})"
    return {"round": 1, "text": text, "drafts": text}


def _score(base: float, per_round: float, state: Mapping[str, Any]) -> float:
    value: float = min(1.0, base + per_round * state["round"])
    return round(value, 2)


async def style(state: Mapping[str, Any]) -> dict[str, Any]:
    """Branch: score the writing style (improves each round)."""
    await trio.sleep(0.06)
    return {"scores": {"style": _score(0.5, 0.2, state)}}


async def facts(state: Mapping[str, Any]) -> dict[str, Any]:
    """Branch: check the facts against the sources (improves each round)."""
    await trio.sleep(0.03)
    return {"scores": {"facts": _score(0.45, 0.25, state)}}


def needs_work(state: Mapping[str, Any]) -> bool:
    """Condition: loop back to ``draft`` while a score is below the pass mark."""
    lowest: float = min(state["scores"].values())
    return lowest < PASS_MARK


def rejected(state: Mapping[str, Any]) -> bool:
    """Condition: the reviewer rejected the draft."""
    return state.get("review.approved") is False


def for_review(state: Mapping[str, Any]) -> dict[str, Any]:
    """What the reviewer sees at ``review``: the draft, its round and its scores."""
    return {"text": state["text"], "round": state["round"], "scores": state["scores"]}


def publish(state: Mapping[str, Any]) -> dict[str, Any]:
    """The end node: publish the approved text."""
    return {"published": state["text"]}


def build() -> Graph:
    """Build the demo graph (a new :class:`~trio_graph._model.graph.Graph` each call)."""
    return (
        GraphBuilder("demo")
        .task("research", research)
        .task("use_notes", use_notes)
        .task("draft", draft)
        .parallel("score", {"style": style, "facts": facts})
        .condition("check", [("draft", needs_work)])
        .barrier("review", timeout=REVIEW_TIMEOUT, default="approve", show=for_review)
        .task("publish", publish)
        .edge("research", "draft")
        .edge_fallback("research", "use_notes")
        .edge("use_notes", "draft")
        .edge("draft", "score")
        .edge("score", "check")
        .edge("check", "review")
        .edge_if("review", "draft", rejected, max_visits=3)
        .edge("review", "publish")
        .reducer("round", reducers.add)
        .reducer("drafts", reducers.append)
        .reducer("scores", reducers.merge)
        .start("research")
        .end("publish")
        .build()
    )


graph = build()
"""The demo graph, for ``module:attr`` arguments: ``trio_graph.demo:graph``."""
