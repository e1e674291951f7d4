"""Sends one trace through the real OpenTelemetry Python SDK (tests/e2e/traces.rs).

A root span (server, error status, an event, a link, HTTP attributes) with two children, from a
resource naming its cluster, over OTLP/gRPC or OTLP/HTTP protobuf. Prints what was sent as JSON:
the trace id, and per span its id, parent, name, kind and attributes.
"""

import argparse
import json
import sys

from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcSpanExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult
from opentelemetry.trace import Link, SpanKind, Status, StatusCode


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--protocol", choices=["grpc", "http/protobuf"], required=True)
    p.add_argument("--endpoint", required=True)
    p.add_argument("--cluster", required=True)
    p.add_argument("--service", default="checkout")
    args = p.parse_args()

    if args.protocol == "grpc":
        exporter = GrpcSpanExporter(endpoint=args.endpoint.removeprefix("http://"), insecure=True, timeout=30)
    else:
        exporter = HttpSpanExporter(endpoint=args.endpoint.rstrip("/") + "/v1/traces", timeout=30)
    results = []
    original = exporter.export

    def export(spans):  # type: ignore[no-untyped-def]
        r = original(spans)
        results.append(r)
        return r

    exporter.export = export  # type: ignore[method-assign]
    provider = TracerProvider(
        resource=Resource.create({"service.name": args.service, "k8s.cluster.name": args.cluster})
    )
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("e2e.traces", "1.0")
    sent = []
    with tracer.start_as_current_span("warmup") as other:
        link_ctx = other.get_span_context()
        sent.append(other)
    with tracer.start_as_current_span(
        "GET /cart",
        kind=SpanKind.SERVER,
        links=[Link(link_ctx, {"link.reason": "retry"})],
        attributes={"http.request.method": "GET", "http.route": "/cart", "http.response.status_code": 503},
    ) as root:
        root.add_event("cache miss", {"key": "cart:42"})
        for name in ("SELECT carts", "GET inventory"):
            with tracer.start_as_current_span(name, kind=SpanKind.CLIENT, attributes={"peer.service": "db"}) as child:
                sent.append(child)
        root.set_status(Status(StatusCode.ERROR, "inventory down"))
        sent.append(root)
    provider.shutdown()
    ok = all(r == SpanExportResult.SUCCESS for r in results)
    hexid = lambda n, w: format(n, f"0{w}x")  # noqa: E731
    out = {
        "trace_id": hexid(root.get_span_context().trace_id, 32),
        "spans": [
            {
                "trace_id": hexid(s.get_span_context().trace_id, 32),
                "span_id": hexid(s.get_span_context().span_id, 16),
                "parent": hexid(s.parent.span_id, 16) if s.parent else "",
                "name": s.name,
                "start": s.start_time,
                "end": s.end_time,
            }
            for s in sent
        ],
    }
    print(json.dumps(out))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
