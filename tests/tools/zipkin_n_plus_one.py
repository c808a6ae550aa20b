"""Sends one N+1 trace through the real OpenTelemetry Python SDK and its
Zipkin JSON exporter (Zipkin v2 JSON over HTTP).

Usage: zipkin_n_plus_one.py ENDPOINT SERVICE
  ENDPOINT  e.g. http://127.0.0.1:4318/api/v2/spans
  SERVICE   the service.name of the spans

The trace: a SERVER root span `GET /orders/{id}` (http.method, http.route)
with 6 CLIENT children, each a SELECT of a distinct literal id (db.system,
db.statement). Prints the trace id (32 hex digits). Exits non-zero when an
export was not answered with success.
"""
import sys

from opentelemetry.exporter.zipkin.json import ZipkinExporter
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import (
    SimpleSpanProcessor,
    SpanExporter,
    SpanExportResult,
)
from opentelemetry.trace import SpanKind, set_span_in_context

LOOPS = 6


class Checked(SpanExporter):
    """Wraps an exporter and remembers every failed export."""

    def __init__(self, inner: SpanExporter):
        self.inner = inner
        self.failures = []

    def export(self, spans):
        try:
            result = self.inner.export(spans)
        except Exception as e:  # the processor would only log it
            self.failures.append(repr(e))
            return SpanExportResult.FAILURE
        if result is not SpanExportResult.SUCCESS:
            self.failures.append(f"export of {len(spans)} spans: {result}")
        return result

    def shutdown(self):
        self.inner.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return self.inner.force_flush(timeout_millis)


def main() -> int:
    endpoint, service = sys.argv[1], sys.argv[2]
    exporter = Checked(ZipkinExporter(endpoint=endpoint, timeout=10))
    provider = TracerProvider(resource=Resource.create({SERVICE_NAME: service}))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("perf-sentinel-e2e")

    root = tracer.start_span(
        "GET /orders/{id}",
        kind=SpanKind.SERVER,
        attributes={"http.method": "GET", "http.route": "/orders/{id}"},
    )
    ctx = set_span_in_context(root)
    for i in range(LOOPS):
        child = tracer.start_span(
            "SELECT order_items",
            context=ctx,
            kind=SpanKind.CLIENT,
            attributes={
                "db.system": "postgresql",
                "db.statement": f"SELECT * FROM order_items WHERE order_id = {1000 + i}",
            },
        )
        child.end()
    root.end()
    trace_id = format(root.get_span_context().trace_id, "032x")

    provider.force_flush()
    provider.shutdown()
    if exporter.failures:
        print("\n".join(exporter.failures), file=sys.stderr)
        return 1
    print(trace_id)
    return 0


if __name__ == "__main__":
    sys.exit(main())
