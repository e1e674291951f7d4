#!/usr/bin/env python3
"""Sends a known set of OTLP metrics and logs to Tributary through the real OpenTelemetry Python SDK.

Driven by tests/e2e/otlp.rs. The data goes through the SDK's own pipeline (MeterProvider with a
PeriodicExportingMetricReader, LoggerProvider with a BatchLogRecordProcessor) into the SDK's real
OTLP exporters:

  --protocol grpc           opentelemetry-exporter-otlp-proto-grpc
  --protocol http/protobuf  opentelemetry-exporter-otlp-proto-http
  --protocol http/json      the SDK has no JSON exporter: the SDK's own encoder
                            (opentelemetry.exporter.otlp.proto.common) builds the protobuf request,
                            google.protobuf.json_format turns it into OTLP/JSON (integer enums,
                            trace/span ids as hex as the OTLP spec requires) and it is POSTed

Prints one JSON document on stdout (the "manifest"): what was sent (timestamps, the span's trace
and span ids, every log record) and how each export went, partial_success included. Exits non-zero
when any export failed, so a rejected request fails the test that ran it.
"""

from __future__ import annotations

import argparse
import base64
import gzip
import json
import os
import sys
import time
from typing import Any

import grpc
import requests
from google.protobuf import json_format
from opentelemetry.context import attach, detach
from opentelemetry.exporter.otlp.proto.common._log_encoder import encode_logs
from opentelemetry.exporter.otlp.proto.common.metrics_encoder import encode_metrics
from opentelemetry.exporter.otlp.proto.grpc._log_exporter import OTLPLogExporter as GrpcLogExporter
from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter as GrpcMetricExporter
from opentelemetry.exporter.otlp.proto.http import Compression as HttpCompression
from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter as HttpLogExporter
from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter as HttpMetricExporter
from opentelemetry.metrics import CallbackOptions, Observation
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceResponse
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceResponse
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import BatchLogRecordProcessor, LogRecordExporter, LogRecordExportResult
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import MetricExporter, MetricExportResult, PeriodicExportingMetricReader
from opentelemetry.sdk.metrics.view import (
    ExplicitBucketHistogramAggregation,
    ExponentialBucketHistogramAggregation,
    View,
)
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry._logs import SeverityNumber
from opentelemetry.trace import set_span_in_context

SCOPE_NAME = "tributary.e2e"
SCOPE_VERSION = "1.2.3"
HISTOGRAM_BOUNDS = [0.1, 0.5, 1.0, 5.0]
DURATIONS = [0.05, 0.2, 0.3, 0.7, 2.0, 10.0]
PAYLOAD_SIZES = [100, 200, 400, 800, 1600]


# ---------------------------------------------------------------------------------------------
# What each export answered. The SDK's exporters only say success/failure; the tests also need
# partial_success, so HTTP responses are read through a requests hook and gRPC responses through a
# client interceptor.


class Outcomes:
    def __init__(self) -> None:
        self.exports: list[dict[str, Any]] = []
        self.responses: list[dict[str, Any]] = []

    def failed(self) -> bool:
        return any(not e["ok"] for e in self.exports)


def partial_success_of(signal: str, body: bytes, content_type: str) -> dict[str, Any] | None:
    """The partial_success of an Export*ServiceResponse body, or None when it is absent."""
    if not body:
        return None
    if content_type.startswith("application/json"):
        doc = json.loads(body)
        ps = doc.get("partialSuccess") or doc.get("partial_success")
        if not ps:
            return None
        rejected = ps.get("rejectedDataPoints", ps.get("rejectedLogRecords", 0))
        return {"rejected": int(rejected or 0), "error_message": ps.get("errorMessage", "")}
    msg = ExportMetricsServiceResponse() if signal == "metrics" else ExportLogsServiceResponse()
    msg.ParseFromString(body)
    if not msg.HasField("partial_success"):
        return None
    ps = msg.partial_success
    rejected = ps.rejected_data_points if signal == "metrics" else ps.rejected_log_records
    return {"rejected": int(rejected), "error_message": ps.error_message}


def http_session(outcomes: Outcomes, signal: str) -> requests.Session:
    session = requests.Session()

    def hook(r: requests.Response, *args: Any, **kwargs: Any) -> None:
        entry: dict[str, Any] = {"signal": signal, "status": r.status_code}
        if r.status_code == 200:
            entry["partial_success"] = partial_success_of(signal, r.content, r.headers.get("Content-Type", ""))
        else:
            entry["body"] = r.text[:2000]
        outcomes.responses.append(entry)

    session.hooks["response"].append(hook)
    return session


class ResponseRecorder(grpc.UnaryUnaryClientInterceptor):
    def __init__(self, outcomes: Outcomes, signal: str) -> None:
        self.outcomes = outcomes
        self.signal = signal

    def intercept_unary_unary(self, continuation, client_call_details, request):  # type: ignore[no-untyped-def]
        call = continuation(client_call_details, request)
        entry: dict[str, Any] = {"signal": self.signal}
        try:
            response = call.result()
            entry["status"] = "OK"
            ps = response.partial_success if response.HasField("partial_success") else None
            if ps is not None:
                rejected = ps.rejected_data_points if self.signal == "metrics" else ps.rejected_log_records
                entry["partial_success"] = {"rejected": int(rejected), "error_message": ps.error_message}
            else:
                entry["partial_success"] = None
        except grpc.RpcError as e:
            entry["status"] = e.code().name
            entry["body"] = e.details()
        self.outcomes.responses.append(entry)
        return call


def recording(cls: type, outcomes: Outcomes, signal: str) -> type:
    """A subclass of an SDK exporter that notes every export's result (and, for gRPC, wraps the
    channel the SDK builds so responses are seen)."""

    class Recording(cls):  # type: ignore[valid-type, misc]
        def export(self, data: Any, *args: Any, **kwargs: Any) -> Any:
            result = super().export(data, *args, **kwargs)
            ok = result in (MetricExportResult.SUCCESS, LogRecordExportResult.SUCCESS)
            outcomes.exports.append({"signal": signal, "ok": ok, "result": str(result)})
            return result

        def _initialize_channel_and_stub(self) -> None:
            super()._initialize_channel_and_stub()  # type: ignore[misc]
            self._channel = grpc.intercept_channel(self._channel, ResponseRecorder(outcomes, signal))
            self._client = self._stub(self._channel)

    return Recording


# ---------------------------------------------------------------------------------------------
# OTLP/JSON: the SDK's protobuf encoder, then the OTLP/JSON mapping.


def otlp_json(message: Any) -> dict[str, Any]:
    """Proto3 JSON as OTLP/JSON wants it: lowerCamelCase names, integer enums, and trace/span ids
    as lower-case hex instead of proto3 JSON's base64."""
    doc = json_format.MessageToDict(message, use_integers_for_enums=True)

    def fix(node: Any) -> Any:
        if isinstance(node, dict):
            for k, v in node.items():
                if k in ("traceId", "spanId") and isinstance(v, str):
                    node[k] = base64.b64decode(v).hex()
                else:
                    fix(v)
        elif isinstance(node, list):
            for v in node:
                fix(v)
        return node

    return fix(doc)


def post_json(url: str, doc: dict[str, Any], headers: dict[str, str], use_gzip: bool, session: requests.Session) -> bool:
    body = json.dumps(doc).encode()
    h = {"Content-Type": "application/json", **headers}
    if use_gzip:
        body = gzip.compress(body)
        h["Content-Encoding"] = "gzip"
    r = session.post(url, data=body, headers=h, timeout=30)
    return 200 <= r.status_code < 300


class JsonMetricExporter(MetricExporter):
    def __init__(self, url: str, headers: dict[str, str], use_gzip: bool, session: requests.Session) -> None:
        super().__init__()
        self.url, self.headers, self.use_gzip, self.session = url, headers, use_gzip, session

    def export(self, metrics_data: Any, timeout_millis: float = 10_000, **kwargs: Any) -> MetricExportResult:
        ok = post_json(self.url, otlp_json(encode_metrics(metrics_data)), self.headers, self.use_gzip, self.session)
        return MetricExportResult.SUCCESS if ok else MetricExportResult.FAILURE

    def force_flush(self, timeout_millis: float = 10_000) -> bool:
        return True

    def shutdown(self, timeout_millis: float = 30_000, **kwargs: Any) -> None:
        self.session.close()


class JsonLogExporter(LogRecordExporter):
    def __init__(self, url: str, headers: dict[str, str], use_gzip: bool, session: requests.Session) -> None:
        self.url, self.headers, self.use_gzip, self.session = url, headers, use_gzip, session

    def export(self, batch: Any) -> LogRecordExportResult:
        ok = post_json(self.url, otlp_json(encode_logs(batch)), self.headers, self.use_gzip, self.session)
        return LogRecordExportResult.SUCCESS if ok else LogRecordExportResult.FAILURE

    def force_flush(self, timeout_millis: int = 10_000) -> bool:
        return True

    def shutdown(self) -> None:
        self.session.close()


# ---------------------------------------------------------------------------------------------


def exporters(args: argparse.Namespace, outcomes: Outcomes) -> tuple[Any, Any]:
    headers = dict(h.split("=", 1) for h in args.header)
    if args.protocol == "grpc":
        endpoint = args.endpoint.removeprefix("http://")
        compression = grpc.Compression.Gzip if args.gzip else grpc.Compression.NoCompression
        meta = {k.lower(): v for k, v in headers.items()}
        # TLS: the SDK's secure channel with the test CA as its only root.
        tls: dict[str, Any] = {"insecure": True}
        if args.ca_file:
            with open(args.ca_file, "rb") as f:
                tls = {"insecure": False, "credentials": grpc.ssl_channel_credentials(root_certificates=f.read())}
        m = recording(GrpcMetricExporter, outcomes, "metrics")(
            endpoint=endpoint, headers=meta, compression=compression, timeout=30, **tls
        )
        lg = recording(GrpcLogExporter, outcomes, "logs")(
            endpoint=endpoint, headers=meta, compression=compression, timeout=30, **tls
        )
        return m, lg
    base = args.endpoint.rstrip("/")
    if args.protocol == "http/protobuf":
        compression = HttpCompression.Gzip if args.gzip else HttpCompression.NoCompression
        m = recording(HttpMetricExporter, outcomes, "metrics")(
            endpoint=f"{base}/v1/metrics",
            headers=headers,
            compression=compression,
            timeout=30,
            session=http_session(outcomes, "metrics"),
            certificate_file=args.ca_file or None,
        )
        lg = recording(HttpLogExporter, outcomes, "logs")(
            endpoint=f"{base}/v1/logs",
            headers=headers,
            compression=compression,
            timeout=30,
            session=http_session(outcomes, "logs"),
            certificate_file=args.ca_file or None,
        )
        return m, lg
    if args.protocol == "http/json":
        m = recording(JsonMetricExporter, outcomes, "metrics")(
            f"{base}/v1/metrics", headers, args.gzip, http_session(outcomes, "metrics")
        )
        lg = recording(JsonLogExporter, outcomes, "logs")(
            f"{base}/v1/logs", headers, args.gzip, http_session(outcomes, "logs")
        )
        return m, lg
    raise SystemExit(f"unknown protocol {args.protocol!r}")


def resource(args: argparse.Namespace) -> Resource:
    attrs: dict[str, Any] = {
        "service.name": "checkout",
        "service.namespace": "shop",
        "service.instance.id": args.instance,
        "k8s.namespace.name": "payments",
        "deployment.environment.name": "e2e",
    }
    if args.cluster:
        attrs["k8s.cluster.name"] = args.cluster
    # Resource.create adds the SDK's own telemetry.sdk.* attributes, as every real SDK user sends.
    return Resource.create(attrs)


def send_metrics(args: argparse.Namespace, res: Resource, exporter: Any, tracer: Any) -> dict[str, Any]:
    """Records the known measurements and exports them once. Returns when the points were taken
    (ns, a lower bound) and the trace context their exemplars carry."""
    reader = PeriodicExportingMetricReader(exporter, export_interval_millis=3_600_000)
    views = [
        View(instrument_name="e2e.request.duration", aggregation=ExplicitBucketHistogramAggregation(HISTOGRAM_BOUNDS)),
        View(instrument_name="e2e.payload.size", aggregation=ExponentialBucketHistogramAggregation(max_size=160)),
    ]
    provider = MeterProvider(resource=res, metric_readers=[reader], views=views, shutdown_on_exit=False)
    meter = provider.get_meter(SCOPE_NAME, SCOPE_VERSION)

    requests_counter = meter.create_counter("e2e.requests", unit="{request}", description="Requests handled")
    requests_counter.add(5, {"http.route": "/a", "http.request.method": "GET"})
    requests_counter.add(2, {"http.route": "/a", "http.request.method": "GET"})
    requests_counter.add(11, {"http.route": "/b", "http.request.method": "POST"})

    queue = meter.create_up_down_counter("e2e.queue.size", unit="{item}", description="Items queued")
    queue.add(10, {"queue": "q1"})
    queue.add(-3, {"queue": "q1"})

    temperature = meter.create_gauge("e2e.temperature", unit="Cel", description="Room temperature")
    temperature.set(21.5, {"room": "r1"})

    utilization = meter.create_gauge("e2e.cpu.utilization", unit="1", description="CPU busy fraction")
    utilization.set(0.25)

    def memory(_: CallbackOptions) -> list[Observation]:
        return [Observation(1_048_576, {"area": "heap"})]

    meter.create_observable_gauge("e2e.memory.usage", callbacks=[memory], unit="By", description="Memory in use")

    duration = meter.create_histogram("e2e.request.duration", unit="s", description="Request latency")
    payload = meter.create_histogram("e2e.payload.size", unit="By", description="Payload size")
    # Inside a span, so the SDK's trace-based exemplar filter attaches exemplars.
    with tracer.start_as_current_span("measure") as span:
        measured_in = span.get_span_context()
        for d in DURATIONS:
            duration.record(d, {"http.route": "/a"})
        for p in PAYLOAD_SIZES:
            payload.record(p, {"http.route": "/a"})

    before = time.time_ns()
    if not provider.force_flush(timeout_millis=60_000):
        print("metrics force_flush failed", file=sys.stderr)
    # No provider.shutdown(): it would collect and export the same cumulative points once more.
    return {
        "time_ns": before,
        "exemplar_trace_id": format(measured_in.trace_id, "032x"),
        "exemplar_span_id": format(measured_in.span_id, "016x"),
    }


def send_logs(args: argparse.Namespace, res: Resource, exporter: Any, tracer: Any) -> dict[str, Any]:
    provider = LoggerProvider(resource=res, shutdown_on_exit=False)
    provider.add_log_record_processor(
        BatchLogRecordProcessor(exporter, schedule_delay_millis=3_600_000, max_export_batch_size=512)
    )
    logger = provider.get_logger(SCOPE_NAME, SCOPE_VERSION)

    t0 = args.log_time_ns or time.time_ns()
    sent: list[dict[str, Any]] = []
    # A real span gives the records their trace context; records emitted outside it have none.
    span = tracer.start_span("checkout")
    sc = span.get_span_context()
    trace_id, span_id, flags = format(sc.trace_id, "032x"), format(sc.span_id, "016x"), int(sc.trace_flags)

    def emit(i: int, sev: SeverityNumber, text: str, body: Any, attrs: dict[str, Any], traced: bool, event: str = "") -> None:
        ts = t0 + i * 1_000_000
        # The SDK falls back to the current context when given an empty one, so untraced records
        # are emitted while no span is current rather than with `Context()`.
        if traced:
            token = attach(set_span_in_context(span))
        try:
            logger.emit(
                timestamp=ts,
                observed_timestamp=ts + 500,
                severity_number=sev,
                severity_text=text,
                body=body,
                attributes=attrs,
                event_name=event or None,
            )
        finally:
            if traced:
                detach(token)
        sent.append(
            {
                "timestamp": ts,
                "observed_timestamp": ts + 500,
                "severity_number": sev.value,
                "severity_text": text,
                "body": body,
                "attributes": attrs,
                "trace_id": trace_id if traced else "",
                "span_id": span_id if traced else "",
                "flags": flags if traced else 0,
                "event_name": event,
            }
        )

    emit(0, SeverityNumber.DEBUG, "DEBUG", "cache warmed", {"cache.entries": 42}, traced=False)
    emit(
        1,
        SeverityNumber.INFO,
        "INFO",
        "user logged in",
        {"user.id": "u-42", "http.response.status_code": 200, "retry": False, "ratio": 0.5, "tags": ["a", "b"]},
        traced=True,
        event="user.login",
    )
    emit(
        2,
        SeverityNumber.WARN,
        "WARN",
        {"order": {"id": 17, "items": ["apple", "pear"]}, "paid": True, "total": 12.5},
        {"order.source": "web"},
        traced=True,
    )
    emit(3, SeverityNumber.ERROR, "ERROR", 'größe ✓ 日本 "quoted"\nsecond line', {"exception.type": "ValueError"}, traced=True)
    emit(4, SeverityNumber.FATAL, "FATAL", ["disk", 3, True], {}, traced=True)
    span.end()

    if not provider.force_flush(timeout_millis=60_000):
        print("logs force_flush failed", file=sys.stderr)
    provider.shutdown()
    return {"trace_id": trace_id, "span_id": span_id, "records": sent}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--protocol", required=True, choices=["grpc", "http/protobuf", "http/json"])
    p.add_argument("--endpoint", required=True, help="grpc: host:port; http: base URL (http://host:port)")
    p.add_argument("--cluster", default="", help="resource attribute k8s.cluster.name (omitted when empty)")
    p.add_argument("--instance", default="checkout-0", help="resource attribute service.instance.id")
    p.add_argument("--header", action="append", default=[], help="KEY=VALUE sent with every export")
    p.add_argument("--gzip", action="store_true", help="gzip-compress the requests")
    p.add_argument("--log-time-ns", type=int, default=0, help="first log record's timestamp (default: now)")
    p.add_argument("--signals", default="metrics,logs", help="comma-separated: metrics, logs")
    p.add_argument("--ca-file", default="", help="TLS: the CA (PEM) that signed the server's certificate")
    args = p.parse_args()
    if args.ca_file:
        # requests lets REQUESTS_CA_BUNDLE / CURL_CA_BUNDLE override a session's `verify` (which
        # is where the SDK's HTTP exporter puts certificate_file): the CA given here must win.
        for var in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):
            os.environ.pop(var, None)

    outcomes = Outcomes()
    res = resource(args)
    tracer = TracerProvider(resource=res, shutdown_on_exit=False).get_tracer(SCOPE_NAME, SCOPE_VERSION)
    metric_exporter, log_exporter = exporters(args, outcomes)
    signals = set(args.signals.split(","))

    manifest: dict[str, Any] = {
        "protocol": args.protocol,
        "cluster": args.cluster,
        "instance": args.instance,
        "resource": dict(res.attributes),
        "scope": {"name": SCOPE_NAME, "version": SCOPE_VERSION},
    }
    if "metrics" in signals:
        manifest["metrics"] = send_metrics(args, res, metric_exporter, tracer)
    if "logs" in signals:
        manifest["logs"] = send_logs(args, res, log_exporter, tracer)
    manifest["exports"] = outcomes.exports
    manifest["responses"] = outcomes.responses
    print(json.dumps(manifest))
    want = len(signals & {"metrics", "logs"})
    if outcomes.failed() or len(outcomes.exports) < want:
        print(f"export failed: {json.dumps(outcomes.exports)} {json.dumps(outcomes.responses)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
