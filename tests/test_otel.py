"""The optional OpenTelemetry adapter (trio_graph.otel): run -> node -> branch spans."""

from __future__ import annotations

import sys
from collections.abc import Mapping
from typing import Any

import pytest

from trio_graph import Approve, Executor, GraphBuilder
from trio_graph.demo import graph as demo_graph
from trio_graph.demo import initial_state


def test_clear_import_error_without_opentelemetry(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without the OpenTelemetry API, creating the adapter says what to install."""
    monkeypatch.setitem(sys.modules, "opentelemetry", None)
    from trio_graph.otel import OtelSpans

    with pytest.raises(
        ImportError, match=r"^trio_graph\.otel needs the OpenTelemetry API: pip install "
    ):
        OtelSpans()


def _exporter() -> tuple[Any, Any]:
    sdk_trace = pytest.importorskip("opentelemetry.sdk.trace")
    export = pytest.importorskip("opentelemetry.sdk.trace.export")
    memory = pytest.importorskip("opentelemetry.sdk.trace.export.in_memory_span_exporter")
    exporter = memory.InMemorySpanExporter()
    provider = sdk_trace.TracerProvider()
    provider.add_span_processor(export.SimpleSpanProcessor(exporter))
    return provider, exporter


async def test_spans_nest_run_node_branch(autojump_clock: Any) -> None:
    """One run span; node spans under it; branch spans under their parallel node's span."""
    provider, exporter = _exporter()
    from trio_graph.otel import OtelSpans

    spans = OtelSpans(tracer_provider=provider)
    async with Executor().stream(demo_graph, initial_state()) as run:
        run.decide_all("review", Approve())
        async for _ in spans.watch(run):
            pass
    finished = exporter.get_finished_spans()
    runs = [s for s in finished if s.name == "trio_graph.run demo"]
    assert len(runs) == 1
    root = runs[0]
    assert root.parent is None
    assert root.attributes["trio_graph.trace_id"] == run.trace_id
    assert root.attributes["trio_graph.steps"] == 10
    assert root.status.status_code.name == "OK"
    nodes = [s for s in finished if s.name.startswith("trio_graph.node ")]
    assert [s.attributes["trio_graph.span_id"] for s in nodes] == list(range(1, 11))
    assert all(s.parent.span_id == root.context.span_id for s in nodes)
    assert all(s.context.trace_id == root.context.trace_id for s in finished)
    draft = next(s for s in nodes if s.attributes["trio_graph.node"] == "draft")
    assert tuple(draft.attributes["trio_graph.keys_changed"]) == ("round", "text", "drafts")
    scores = {s.context.span_id: s for s in nodes if s.attributes["trio_graph.node"] == "score"}
    branches = [s for s in finished if s.name.startswith("trio_graph.branch ")]
    assert sorted(s.name for s in branches) == [
        "trio_graph.branch score.facts",
        "trio_graph.branch score.facts",
        "trio_graph.branch score.style",
        "trio_graph.branch score.style",
    ]
    for branch in branches:
        parent = scores[branch.parent.span_id]
        assert branch.attributes["trio_graph.span_id"] == parent.attributes["trio_graph.span_id"]
    review = next(s for s in nodes if s.attributes["trio_graph.node"] == "review")
    assert [e.name for e in review.events] == ["barrier waiting", "barrier resolved"]
    assert review.events[1].attributes["trio_graph.decision"] == "approve"
    assert [e.name for e in root.events] == ["observed degraded"]


async def test_failed_run_marks_spans_as_errors() -> None:
    """A failing node's span and the run span have status ERROR with the error."""
    provider, exporter = _exporter()
    from trio_graph.otel import OtelSpans

    def boom(state: Mapping[str, Any]) -> None:
        raise ValueError("boom")

    graph = GraphBuilder("g").task("a", boom).start("a").end("a").build()
    spans = OtelSpans(tracer_provider=provider)
    async with Executor().stream(graph, {}) as run:
        async for event in run:
            spans.on_event(event)
    by_name = {s.name: s for s in exporter.get_finished_spans()}
    assert by_name["trio_graph.node a"].status.status_code.name == "ERROR"
    root = by_name["trio_graph.run g"]
    assert root.status.status_code.name == "ERROR"
    assert root.status.description == "node 'a' failed: ValueError: boom"
    assert root.attributes["trio_graph.error"] == "NodeExecutionFailed"


async def test_checkpoints_are_run_span_events_and_the_run_span_names_its_graph() -> None:
    """Each saved checkpoint is a `checkpoint` event on the run span; the run span is
    `trio_graph.run <graph>` with a `trio_graph.graph` attribute."""
    provider, exporter = _exporter()
    from trio_graph import CheckpointPolicy
    from trio_graph import events as ev
    from trio_graph.otel import OtelSpans
    from trio_graph.stores import MemoryStore

    graph = (
        GraphBuilder("g")
        .task("a", lambda s: {"x": 1})
        .task("b", lambda s: {"y": 2})
        .edge("a", "b")
        .start("a")
        .end("b")
        .build()
    )
    spans = OtelSpans(tracer_provider=provider)
    executor = Executor(store=MemoryStore(), policy=CheckpointPolicy(every_step=True))
    saved = []
    async with executor.stream(graph, {}) as run:
        async for event in spans.watch(run):
            if isinstance(event, ev.CheckpointSaved):
                saved.append(event.checkpoint_id)
    root = next(s for s in exporter.get_finished_spans() if s.name == "trio_graph.run g")
    assert root.attributes["trio_graph.graph"] == "g"
    recorded = [e.attributes["trio_graph.checkpoint_id"] for e in root.events]
    assert saved and recorded == saved


async def test_an_event_of_an_unseen_run_is_ignored_with_a_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """An event whose run's GraphStart was not recorded makes no span, only a warning."""
    provider, exporter = _exporter()
    from trio_graph import events as ev
    from trio_graph.otel import OtelSpans

    spans = OtelSpans(tracer_provider=provider)
    spans.on_event(ev.NodeStart(trace_id="t1", node="a", span_id=1, step=1))
    assert exporter.get_finished_spans() == ()
    assert spans._nodes == {}
    assert [r.getMessage() for r in caplog.records] == [
        "event for a run whose GraphStart was not seen; ignored"
    ]
