"""OpenTelemetry: turn a run's events into spans (run -> node -> branch).

Needs ``pip install opentelemetry-api opentelemetry-sdk`` (the adapter itself needs
only the API; the SDK here collects the spans in memory to print them). In your
application, configure a TracerProvider with the exporter of your choice instead.

Run: python examples/otel_spans.py
"""

import trio

from trio_graph import Approve, Executor
from trio_graph.demo import graph, initial_state


def make_provider():
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return provider, exporter


async def amain(provider):
    from trio_graph.otel import OtelSpans

    spans = OtelSpans(tracer_provider=provider)
    async with Executor().stream(graph, initial_state()) as run:
        run.decide_all("review", Approve())
        async for _event in spans.watch(run):  # events pass through unchanged
            pass
    return run.trace_id


def print_tree(spans):
    children = {}
    for span in spans:
        parent = span.parent.span_id if span.parent else None
        children.setdefault(parent, []).append(span)

    def show(parent, depth):
        for span in sorted(children.get(parent, []), key=lambda s: s.start_time):
            took = (span.end_time - span.start_time) / 1e6
            ours = span.attributes.get("trio_graph.span_id", "-")
            print(f"{'  ' * depth}{span.name}  [span_id {ours}]  {took:.1f} ms")
            show(span.context.span_id, depth + 1)

    show(None, 0)


def main():
    try:
        provider, exporter = make_provider()
    except ImportError:
        from trio_graph.otel import INSTALL_HINT

        print(INSTALL_HINT)
        return None
    trace_id = trio.run(amain, provider)
    spans = exporter.get_finished_spans()
    print(f"trace {trace_id}: {len(spans)} spans")
    print_tree(spans)
    return spans


if __name__ == "__main__":
    main()
