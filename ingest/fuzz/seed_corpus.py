#!/usr/bin/env python3
"""Writes the hand-made seed inputs under corpus/<target>/seed-*.

Standard library only, with its own protobuf, snappy and crc32c encoders: the seeds must not depend
on the code under test. Run from anywhere; rerunning rewrites the same bytes.
"""

from pathlib import Path
import struct

CORPUS = Path(__file__).resolve().parent / "corpus"


def varint(x):
    out = bytearray()
    while x >= 0x80:
        out.append((x & 0x7F) | 0x80)
        x >>= 7
    out.append(x)
    return bytes(out)


def field_bytes(num, payload):
    return varint(num << 3 | 2) + varint(len(payload)) + payload


def label(name, value):
    return field_bytes(1, name.encode()) + field_bytes(2, value.encode())


def sample(ts, value):
    # Sample: value = 1 (double), timestamp = 2 (int64 varint, two's complement for negatives).
    return varint(1 << 3 | 1) + struct.pack("<d", value) + varint(2 << 3 | 0) + varint(ts & (2**64 - 1))


def zigzag(x):
    return (x << 1) ^ (x >> 63) if x < 0 else x << 1


def exemplar_v1():
    # Exemplar: labels = 1 (Label messages), value = 2 (double), timestamp = 3 (varint).
    return field_bytes(1, label("trace_id", "abc")) + varint(2 << 3 | 1) + struct.pack("<d", 0.5) + varint(3 << 3) + varint(1)


def histogram(ts, schema=3, deltas=(1, 2, -1), count=None, zero=1):
    """An integer native histogram: spans {-1, 2}, {1, 1}; count = zero + the buckets' sum."""
    counts, c = [], 0
    for d in deltas:
        c += d
        counts.append(c)
    count = zero + sum(counts) if count is None else count
    span = lambda off, n: varint(1 << 3) + varint(zigzag(off) & 0xFFFFFFFF) + varint(2 << 3) + varint(n)
    out = varint(1 << 3) + varint(count)  # count_int
    out += varint(3 << 3 | 1) + struct.pack("<d", 12.5)  # sum
    out += varint(4 << 3) + varint(zigzag(schema))  # schema (sint32)
    out += varint(6 << 3) + varint(zero)  # zero_count_int
    out += field_bytes(11, span(-1, 2)) + field_bytes(11, span(1, 1))
    out += field_bytes(12, b"".join(varint(zigzag(d)) for d in deltas))  # positive_deltas, packed
    out += varint(15 << 3) + varint(ts)  # timestamp
    return out


def series(labels, samples, exemplars=0, histograms=()):
    out = b"".join(field_bytes(1, label(n, v)) for n, v in labels)
    out += b"".join(field_bytes(2, sample(t, v)) for t, v in samples)
    out += field_bytes(3, exemplar_v1()) * exemplars
    out += b"".join(field_bytes(4, h) for h in histograms)
    return out


def write_request(*ts, metadata=0):
    # MetricMetadata: type = 1, metric_family_name = 2, help = 4.
    md = varint(1 << 3) + varint(1) + field_bytes(2, b"http_requests_total") + field_bytes(4, b"Requests.")
    return b"".join(field_bytes(1, s) for s in ts) + field_bytes(3, md) * metadata


def request_v2(symbols, *ts):
    """io.prometheus.write.v2.Request: symbols = 4, timeseries = 5."""
    return b"".join(field_bytes(4, s.encode()) for s in symbols) + b"".join(field_bytes(5, t) for t in ts)


def series_v2(refs, samples=(), histograms=(), exemplars=(), metadata=None, created=0):
    """TimeSeries v2: labels_refs = 1 (packed), samples = 2, histograms = 3, exemplars = 4,
    metadata = 5 (type = 1, help_ref = 3, unit_ref = 4), created_timestamp = 6."""
    out = field_bytes(1, b"".join(varint(r) for r in refs))
    out += b"".join(field_bytes(2, sample(t, v)) for t, v in samples)
    out += b"".join(field_bytes(3, h) for h in histograms)
    for erefs, value, ts in exemplars:
        out += field_bytes(4, field_bytes(1, b"".join(varint(r) for r in erefs)) + varint(2 << 3 | 1) + struct.pack("<d", value) + varint(3 << 3) + varint(ts))
    if metadata is not None:
        kind, help_ref, unit_ref = metadata
        out += field_bytes(5, varint(1 << 3) + varint(kind) + varint(3 << 3) + varint(help_ref) + varint(4 << 3) + varint(unit_ref))
    if created:
        out += varint(6 << 3) + varint(created)
    return out


def snappy(data):
    """Snappy block format: greedy 4-byte matches as 2-byte-offset copies, the rest as literals."""
    out = bytearray(varint(len(data)))
    lit_start = i = 0

    def literal(chunk):
        n = len(chunk) - 1
        if n < 60:
            out.append(n << 2)
        elif n < 256:
            out.extend([60 << 2, n])
        else:
            out.extend([61 << 2, n & 0xFF, n >> 8])
        out.extend(chunk)

    while i + 4 <= len(data):
        best_len = best_off = 0
        for j in range(max(0, i - 2048), i):
            n = 0
            while i + n < len(data) and n < 64 and data[j + n] == data[i + n]:
                n += 1
            if n > best_len:
                best_len, best_off = n, i - j
        if best_len >= 4:
            if lit_start < i:
                literal(data[lit_start:i])
            out.extend([(best_len - 1) << 2 | 2, best_off & 0xFF, best_off >> 8])
            i += best_len
            lit_start = i
        else:
            i += 1
    if lit_start < len(data):
        literal(data[lit_start:])
    return bytes(out)


def crc32c(data):
    crc = 0xFFFFFFFF
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 if crc & 1 else 0)
    return crc ^ 0xFFFFFFFF


def wal_record(body, token="", header="", kind=1):
    """Format version 1; kind 1 = remote-write 1.0, 2 = remote-write 2.0."""
    t, h = token.encode(), header.encode()
    return bytes([1, kind]) + struct.pack("<H", len(t)) + t + struct.pack("<H", len(h)) + h + body


def framed(payload):
    return struct.pack("<II", len(payload), crc32c(payload)) + payload


WAL_HEADER = b"TRIBWAL\x01"

STALE_NAN = struct.unpack("<d", struct.pack("<Q", 0x7FF0000000000002))[0]
GOOD = write_request(
    series([("__name__", "up"), ("instance", "node-1:9100"), ("job", "node")], [(1_700_000_000_000, 1.0), (1_700_000_015_000, STALE_NAN)]),
    series([("__name__", "http_requests_total"), ("cluster", "own"), ("code", "200"), ("job", "api")], [(1_700_000_000_000, 42.0)], exemplars=1),
    series([("__name__", "latency_seconds"), ("job", "api")], [], histograms=[histogram(1_700_000_000_000)]),
    metadata=1,
)
# Symbols: 0 "", 1 __name__, 2 http_requests_total, 3 job, 4 api, 5 trace_id, 6 abc, 7 Requests., 8 latency_seconds,
# 9 seconds, 10 up, 11 cluster, 12 own.
SYMBOLS = ["", "__name__", "http_requests_total", "job", "api", "trace_id", "abc", "Requests.", "latency_seconds", "seconds", "up", "cluster", "own"]
GOOD_V2 = request_v2(
    SYMBOLS,
    series_v2([1, 2, 3, 4], samples=[(1_700_000_000_000, 42.0)], exemplars=[([5, 6], 0.5, 1_700_000_000_000)], metadata=(1, 7, 0), created=1_699_999_000_000),
    series_v2([1, 8, 3, 4], histograms=[histogram(1_700_000_000_000)], metadata=(3, 0, 9), created=1_699_999_000_000),
    series_v2([1, 10, 11, 12], samples=[(1_700_000_000_000, 1.0), (1_700_000_015_000, STALE_NAN)], metadata=(2, 0, 0)),
)
MIXED_V2 = request_v2(
    SYMBOLS,
    series_v2([1, 10], samples=[(1, 1.0)]),
    series_v2([3, 4, 1, 10], samples=[(1, 1.0)]),  # unsorted
    series_v2([1, 10, 3], samples=[(1, 1.0)]),  # odd refs
    series_v2([1, 99], samples=[(1, 1.0)]),  # out of range
    series_v2([1, 8], histograms=[histogram(5, schema=9), histogram(6, deltas=(1, -2, 1))], exemplars=[([5], 1.0, 1), ([5, 99], 1.0, 1)]),
    series_v2([1, 2], samples=[(2**63 - 1, 1.0)], metadata=(1, 99, 0)),
)
MIXED = write_request(
    series([("__name__", "ok")], [(1, 1.0)]),
    series([("job", "b"), ("__name__", "unsorted")], [(1, 1.0)]),
    series([("__name__", "dup"), ("job", "a"), ("job", "b")], [(1, 1.0), (2, 2.0)]),
    series([("__name__", "bad-metric"), ("empty", "")], [(1, 1.0)]),
    series([("__name__", "hist")], [], histograms=[histogram(5), histogram(6, schema=9), histogram(7, count=99)]),
    series([("__name__", "far_future"), ("exported_cluster", "x")], [(2**63 - 1, 1.0), (-1, 0.5)]),
    series([("__name__", "many")] + [(f"l{i}", "v") for i in range(9)], [(3, 3.0)]),
)


# --- OTLP (opentelemetry-proto v1) ------------------------------------------------------------

def fixed64(num, x):
    return varint(num << 3 | 1) + struct.pack("<Q", x)


def double(num, x):
    return varint(num << 3 | 1) + struct.pack("<d", x)


def vint(num, x):
    return varint(num << 3) + varint(x & (2**64 - 1))


def string(num, s):
    return field_bytes(num, s.encode() if isinstance(s, str) else s)


def any_value(v):
    """AnyValue: string 1, bool 2, int 3, double 4, array 5, kvlist 6, bytes 7."""
    if isinstance(v, bool):
        return vint(2, int(v))
    if isinstance(v, int):
        return vint(3, v)
    if isinstance(v, float):
        return double(4, v)
    if isinstance(v, bytes):
        return string(7, v)
    if isinstance(v, list):
        return field_bytes(5, b"".join(field_bytes(1, any_value(x)) for x in v))
    if isinstance(v, dict):
        return field_bytes(6, b"".join(field_bytes(1, key_value(k, x)) for k, x in v.items()))
    return string(1, v)


def key_value(k, v):
    return string(1, k) + field_bytes(2, any_value(v))


def attrs(num, d):
    return b"".join(field_bytes(num, key_value(k, v)) for k, v in d.items())


def scope(name, version, attributes=None):
    return string(1, name) + string(2, version) + attrs(3, attributes or {})


T0 = 1_700_000_000_000_000_000
TRACE = bytes.fromhex("5b8efff798038103d269b633813fc60c")
SPAN = bytes.fromhex("eee19b7ec3c1b174")


def exemplar(value, ts=0, attributes=None, trace=TRACE, span=SPAN):
    """Exemplar: filtered_attributes 7, time 2, as_double 3, span_id 4, trace_id 5."""
    return attrs(7, attributes or {}) + (fixed64(2, ts) if ts else b"") + double(3, value) + string(4, span) + string(5, trace)


def number_point(ts, value, attributes=None, exemplars=(), flags=0):
    """NumberDataPoint: attributes 7, start 2, time 3, as_double 4, exemplars 5, as_int 6 (sfixed64), flags 8."""
    out = attrs(7, attributes or {}) + fixed64(2, T0 - 10**10) + (fixed64(3, ts) if ts else b"")
    if isinstance(value, float):
        out += double(4, value)
    elif value is not None:
        out += fixed64(6, value & (2**64 - 1))
    out += b"".join(field_bytes(5, e) for e in exemplars)
    return out + (vint(8, flags) if flags else b"")


def histogram_point(ts, bounds, counts, total, sum_=None, attributes=None, exemplars=(), flags=0):
    """HistogramDataPoint: attributes 9, time 3, count 4, sum 5, bucket_counts 6 (packed fixed64),
    explicit_bounds 7 (packed double), exemplars 8, flags 10."""
    out = attrs(9, attributes or {}) + fixed64(3, ts) + fixed64(4, total)
    if sum_ is not None:
        out += double(5, sum_)
    if counts:
        out += field_bytes(6, b"".join(struct.pack("<Q", c) for c in counts))
    if bounds:
        out += field_bytes(7, b"".join(struct.pack("<d", b) for b in bounds))
    out += b"".join(field_bytes(8, e) for e in exemplars)
    return out + (vint(10, flags) if flags else b"")


def exp_point(ts, scale, offset, counts, zero=1, neg=(), attributes=None, exemplars=()):
    """ExponentialHistogramDataPoint: attributes 1, time 3, count 4, sum 5, scale 6 (sint32),
    zero_count 7, positive 8, negative 9 (Buckets: offset 1 sint32, bucket_counts 2 packed)."""
    buckets = lambda off, cs: vint(1, zigzag(off)) + field_bytes(2, b"".join(varint(c) for c in cs))
    out = attrs(1, attributes or {}) + fixed64(3, ts) + fixed64(4, zero + sum(counts) + sum(neg)) + double(5, 12.5)
    out += vint(6, zigzag(scale)) + fixed64(7, zero) + field_bytes(8, buckets(offset, counts))
    if neg:
        out += field_bytes(9, buckets(0, neg))
    return out + b"".join(field_bytes(11, e) for e in exemplars)


def summary_point(ts, count, sum_, quantiles, attributes=None):
    """SummaryDataPoint: attributes 7, time 3, count 4, sum 5, quantile_values 6 (quantile 1, value 2)."""
    out = attrs(7, attributes or {}) + fixed64(3, ts) + fixed64(4, count) + double(5, sum_)
    return out + b"".join(field_bytes(6, double(1, q) + double(2, v)) for q, v in quantiles)


CUMULATIVE, DELTA = 2, 1


def metric(name, unit, kind, points, description="", temporality=CUMULATIVE, monotonic=True):
    """Metric: name 1, description 2, unit 3, gauge 5, sum 7, histogram 9, exponential_histogram 10, summary 11."""
    body = b"".join(field_bytes(1, p) for p in points)
    num = {"gauge": 5, "sum": 7, "histogram": 9, "exp": 10, "summary": 11}[kind]
    if kind in ("sum", "histogram", "exp"):
        body += vint(2, temporality)
    if kind == "sum" and monotonic:
        body += vint(3, 1)
    return string(1, name) + string(2, description) + string(3, unit) + field_bytes(num, body)


def resource_metrics(resource_attrs, scopes):
    """ResourceMetrics: resource 1 (attributes 1), scope_metrics 2 (scope 1, metrics 2)."""
    out = field_bytes(1, attrs(1, resource_attrs))
    for sc, metrics in scopes:
        out += field_bytes(2, field_bytes(1, sc) + b"".join(field_bytes(2, m) for m in metrics))
    return out


def metrics_request(*resources):
    return b"".join(field_bytes(1, r) for r in resources)


RESOURCE = {
    "service.name": "api",
    "service.namespace": "shop",
    "service.instance.id": "api-0",
    "k8s.cluster.name": "prod",
    "k8s.namespace.name": "default",
    "k8s.pod.name": "api-0",
    "host.name": "node-1",
}
HTTP_SCOPE = scope("io.opentelemetry.http", "1.2.0")
OTLP_METRICS_GOOD = metrics_request(
    resource_metrics(
        RESOURCE,
        [
            (
                HTTP_SCOPE,
                [
                    metric("system.memory.usage", "By", "gauge", [number_point(T0, 1 << 20, {"state": "used"})], "Memory in use."),
                    metric(
                        "http.server.requests",
                        "{request}",
                        "sum",
                        [number_point(T0, 42.0, {"http.method": "GET", "http.status_code": 200}, [exemplar(1.0, T0 - 1, {"user": "u1"})])],
                    ),
                    metric(
                        "http.server.request.duration",
                        "s",
                        "histogram",
                        [histogram_point(T0, [0.005, 0.1, 1.0], [1, 2, 3, 4], 10, 3.5, {"http.route": "/"}, [exemplar(0.05)])],
                    ),
                    metric("rpc.duration", "ms", "exp", [exp_point(T0, 3, -2, [1, 2, 0, 4], neg=[1], exemplars=[exemplar(2.0)])]),
                    metric("gc.pause", "ms", "summary", [summary_point(T0, 5, 12.0, [(0.5, 1.0), (0.99, 7.5)])]),
                    metric("cpu.utilization", "1", "gauge", [number_point(T0 + 15 * 10**9, 0.25)]),
                ],
            )
        ],
    )
)
OTLP_METRICS_MIXED = metrics_request(
    resource_metrics(
        {"service.name": "batch", "k8s.cluster.name": "other", "1st.attr": "x", "exported_cluster": "e"},
        [
            (
                scope("", ""),
                [
                    metric("queue.depth", "", "sum", [number_point(T0, 3)], temporality=DELTA),
                    metric("no.time", "", "gauge", [number_point(0, 1.0)]),
                    metric("no.value", "", "gauge", [number_point(T0, None)]),
                    metric("stale", "", "gauge", [number_point(T0, 1.0, flags=1)]),
                    metric("bad.bounds", "s", "histogram", [histogram_point(T0, [1.0, 0.5], [1, 1, 1], 3)]),
                    metric("coarse", "", "exp", [exp_point(T0, -5, 0, [1])]),
                    metric("fine", "", "exp", [exp_point(T0, 12, 2**31 - 2, [1, 1, 1])]),
                    metric("ようこそ", "", "gauge", [number_point(T0, 1.0, {"ようこそ": "x"})]),
                    metric("many", "", "gauge", [number_point(T0, 1.0, {f"l{i}": "v" for i in range(9)})]),
                    metric("long", "", "gauge", [number_point(T0, 1.0, {"v": "x" * 40, "cluster": "mine"})]),
                    metric("far", "", "gauge", [number_point(2**64 - 1, 1.0), number_point(T0, 2.0), number_point(T0, 3.0)], monotonic=False),
                    metric("up_down", "", "sum", [number_point(T0, -1.0)], monotonic=False),
                ],
            )
        ],
    ),
    resource_metrics({"host.name": "no-cluster"}, [(scope("s", "1"), [metric("orphan", "", "gauge", [number_point(T0, 1.0)])])]),
)

OTLP_METRICS_JSON_GOOD = b"""{"resourceMetrics":[{"resource":{"attributes":[
 {"key":"service.name","value":{"stringValue":"my.service"}},
 {"key":"k8s.cluster.name","value":{"stringValue":"prod"}},
 {"key":"k8s.pod.name","value":{"stringValue":"my-pod"}}]},
 "scopeMetrics":[{"scope":{"name":"my.library","version":"1.0.0","attributes":[{"key":"my.scope.attribute","value":{"stringValue":"some scope attribute"}}]},
 "metrics":[
  {"name":"my.counter","unit":"1","description":"I am a Counter","sum":{"aggregationTemporality":2,"isMonotonic":true,
   "dataPoints":[{"asDouble":5,"startTimeUnixNano":"1544712660300000000","timeUnixNano":"1544712660300000000",
    "attributes":[{"key":"my.counter.attr","value":{"stringValue":"some value"}}],
    "exemplars":[{"timeUnixNano":"1544712660300000000","asDouble":1,"traceId":"5b8efff798038103d269b633813fc60c","spanId":"eee19b7ec3c1b174"}]}]}},
  {"name":"my.gauge","unit":"1","description":"I am a Gauge","gauge":{"dataPoints":[{"asInt":"10","timeUnixNano":"1544712660300000000"}]}},
  {"name":"my.histogram","unit":"ms","description":"I am a Histogram","histogram":{"aggregationTemporality":2,
   "dataPoints":[{"startTimeUnixNano":"1544712660300000000","timeUnixNano":"1544712660300000000","count":"3","sum":3,
    "bucketCounts":["1","1","1"],"explicitBounds":[1,2],"min":0,"max":2}]}},
  {"name":"my.exponential.histogram","unit":"s","exponentialHistogram":{"aggregationTemporality":2,
   "dataPoints":[{"timeUnixNano":"1544712660300000000","count":"3","sum":10,"scale":0,"zeroCount":"1",
    "positive":{"offset":1,"bucketCounts":["0","2"]},"min":0,"max":5,"zeroThreshold":0}]}},
  {"name":"my.summary","summary":{"dataPoints":[{"timeUnixNano":"1544712660300000000","count":"2","sum":4,
   "quantileValues":[{"quantile":0.5,"value":1},{"quantile":1,"value":"Infinity"}]}]}}
 ]}]}]}"""
OTLP_METRICS_JSON_MIXED = b"""{"resourceMetrics":[{"resource":{"attributes":[{"key":"service.instance.id","value":{"intValue":"7"}},
 {"key":"k8s.cluster.name","value":{"boolValue":true}}]},
 "scopeMetrics":[{"metrics":[
  {"name":"delta","sum":{"aggregationTemporality":1,"dataPoints":[{"asInt":"1","timeUnixNano":"1"}]}},
  {"name":"nan","gauge":{"dataPoints":[{"asDouble":"NaN","timeUnixNano":"1544712660300000000","flags":1},
   {"asDouble":"-Infinity","timeUnixNano":1544712660300000000}]}},
  {"name":"weird temporality","histogram":{"aggregationTemporality":7,"dataPoints":[{"timeUnixNano":"1"}]}},
  {"name":"_sum","unit":"%","gauge":{"dataPoints":[{"asDouble":1e308,"timeUnixNano":"253402300800000000000",
   "attributes":[{"key":"_x","value":{"arrayValue":{"values":[{"intValue":1},{"kvlistValue":{"values":[{"key":"a","value":{}}]}}]}}}]}]}}
 ]}]},
 {"scopeMetrics":[{"metrics":[{"name":"headerless","gauge":{"dataPoints":[{"asDouble":1,"timeUnixNano":"1700000000000000000"}]}}]}]}]}
"""


def log_record(ts, body, attributes=None, observed=0, severity=(9, "INFO"), trace=b"", span=b"", flags=0, event=""):
    """LogRecord: time 1 (fixed64), severity_number 2, severity_text 3, body 5, attributes 6,
    flags 8 (fixed32), trace_id 9, span_id 10, observed_time 11 (fixed64), event_name 12."""
    out = (fixed64(1, ts) if ts else b"") + vint(2, severity[0]) + string(3, severity[1])
    if body is not None:
        out += field_bytes(5, any_value(body))
    out += attrs(6, attributes or {})
    if flags:
        out += varint(8 << 3 | 5) + struct.pack("<I", flags)
    out += (string(9, trace) if trace else b"") + (string(10, span) if span else b"")
    out += fixed64(11, observed) if observed else b""
    return out + (string(12, event) if event else b"")


def resource_logs(resource_attrs, scopes):
    """ResourceLogs: resource 1, scope_logs 2 (scope 1, log_records 2)."""
    out = field_bytes(1, attrs(1, resource_attrs))
    for sc, records in scopes:
        out += field_bytes(2, field_bytes(1, sc) + b"".join(field_bytes(2, r) for r in records))
    return out


def logs_request(*resources):
    return b"".join(field_bytes(1, r) for r in resources)


def nested(depth):
    v = "leaf"
    for _ in range(depth):
        v = [v]
    return v


OTLP_LOGS_GOOD = logs_request(
    resource_logs(
        {**RESOURCE, "deployment.environment.name": "prod-eu", "process.pid": 4242},
        [
            (
                scope("my.library", "1.0.0", {"my.scope.attribute": "some scope attribute"}),
                [
                    log_record(T0, "GET /api 200", {"http.method": "GET", "http.status_code": 200}, observed=T0 + 5, trace=TRACE, span=SPAN, flags=1),
                    log_record(0, {"msg": "structured", "n": 1, "ok": True, "ratio": 0.5, "tags": ["a", "b"]}, observed=T0 + 7, severity=(17, "ERROR")),
                    log_record(T0 + 1, b"\x00\x01binary", {"nan": float("nan"), "inf": float("inf"), "nested": {"k": [1, 2.5, "x"]}}, event="my.event"),
                    log_record(T0 + 2, None),
                ],
            )
        ],
    )
)
OTLP_LOGS_MIXED = logs_request(
    resource_logs(
        {"k8s.cluster.name": "other", "service.name": "", "1st.attr": "one", "cluster": "c"},
        [
            (
                scope("", ""),
                [
                    log_record(T0, "short trace id", trace=b"\x01" * 15),
                    log_record(T0, "zero ids", trace=bytes(16), span=bytes(8)),
                    log_record(0, "no time"),
                    log_record(2**63, "after 2262"),
                    log_record(T0, "many attributes", {f"a{i}": i for i in range(10)}),
                    log_record(T0, "x" * 300),
                    log_record(T0, nested(33)),
                    log_record(T0, "repeated keys", {"k": 1}),
                    log_record(T0, "ok"),
                ],
            )
        ],
    ),
    resource_logs({"host.name": "no-cluster"}, [(scope("s", "1"), [log_record(T0, "refused without a header")])]),
)
OTLP_LOGS_JSON_GOOD = b"""{"resourceLogs":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"my.service"}},
 {"key":"k8s.cluster.name","value":{"stringValue":"prod"}},{"key":"k8s.namespace.name","value":{"stringValue":"default"}}]},
 "scopeLogs":[{"scope":{"name":"my.library","version":"1.0.0","attributes":[{"key":"my.scope.attribute","value":{"stringValue":"some scope attribute"}}]},
 "logRecords":[{"timeUnixNano":"1544712660300000000","observedTimeUnixNano":"1544712660300000000","severityNumber":10,"severityText":"Information",
  "traceId":"5b8efff798038103d269b633813fc60c","spanId":"eee19b7ec3c1b174","body":{"stringValue":"Example log record"},
  "attributes":[{"key":"string.attribute","value":{"stringValue":"some string"}},{"key":"boolean.attribute","value":{"boolValue":true}},
   {"key":"int.attribute","value":{"intValue":"10"}},{"key":"double.attribute","value":{"doubleValue":637.704}},
   {"key":"array.attribute","value":{"arrayValue":{"values":[{"stringValue":"many"},{"stringValue":"values"}]}}},
   {"key":"map.attribute","value":{"kvlistValue":{"values":[{"key":"some.map.key","value":{"stringValue":"some value"}}]}}}]}]}]}]}"""
OTLP_LOGS_JSON_MIXED = b"""{"resourceLogs":[{"resource":{"attributes":[{"key":"k8s.cluster.name","value":{"intValue":12}}]},
 "scopeLogs":[{"logRecords":[
  {"observedTimeUnixNano":"1700000000000000000","body":{"bytesValue":"aGVsbG8="},"flags":1,"eventName":"e"},
  {"timeUnixNano":1700000000000000000,"traceId":"5B8EFFF798038103D269B633813FC60C","body":{"doubleValue":-0.0}},
  {"timeUnixNano":"1700000000000000000","spanId":"00","body":{"kvlistValue":{"values":[{"key":"k","value":{"arrayValue":{"values":[]}}}]}}},
  {"timeUnixNano":"1700000000000000000","attributes":[{"key":"dup","value":{"intValue":"1"}},{"key":"dup","value":{}}]}]}]},
 {"scopeLogs":[{"logRecords":[{"timeUnixNano":"1"}]}]}]}
"""


def gzip_bytes(data):
    import gzip

    return gzip.compress(data, mtime=0)


def loki_stream(labels, entries):
    """StreamAdapter: labels 1, entries 2 (timestamp 1 {seconds 1, nanos 2}, line 2,
    structured_metadata 3 {name 1, value 2})."""
    out = string(1, labels)
    for (sec, nanos), line, meta in entries:
        e = field_bytes(1, vint(1, sec) + vint(2, nanos)) + string(2, line)
        e += b"".join(field_bytes(3, string(1, k) + string(2, v)) for k, v in meta.items())
        out += field_bytes(2, e)
    return out


LOKI_PUSH = b"".join(
    field_bytes(1, s)
    for s in [
        loki_stream('{app="api", cluster="prod", env="dev"}', [((1_700_000_000, 5), "GET / 200", {"trace_id": "5b8efff798038103d269b633813fc60c"})]),
        loki_stream('{job="batch", msg="a \\"quoted\\" value\\n"}', [((1_700_000_001, 0), "x" * 300, {}), ((0, 0), "no time", {})]),
        loki_stream("{bad labels", [((1_700_000_002, 0), "refused", {})]),
    ]
)
LOKI_JSON = b"""{"streams":[{"stream":{"app":"api","cluster":"prod"},"values":[["1700000000000000005","GET / 200",{"trace_id":"5b8efff798038103d269b633813fc60c"}],
 ["1700000000000000006","second"]]},{"stream":{"__bad":"x","job":""},"values":[["nope","line"]]}]}"""

SEEDS = {
    "remote_write": {
        "seed-raw-good": GOOD,
        "seed-raw-mixed": MIXED,
        "seed-snappy-good": snappy(GOOD),
        "seed-snappy-mixed": snappy(MIXED),
    },
    "remote_write_v2": {
        "seed-raw-good": GOOD_V2,
        "seed-raw-mixed": MIXED_V2,
        "seed-snappy-good": snappy(GOOD_V2),
        "seed-snappy-mixed": snappy(MIXED_V2),
        "seed-raw-v1-as-v2": GOOD,
    },
    "wire": {
        "seed-every-wire-type": bytes([0x08, 0x96, 0x01, 0x12, 0x02]) + b"hi" + bytes([0x19, 1, 0, 0, 0, 0, 0, 0, 0, 0x25, 2, 0, 0, 0]),
        "seed-write-request": GOOD,
    },
    "wal_record": {
        "seed-header-cluster": wal_record(snappy(GOOD), header="hdr"),
        "seed-token-and-header": wal_record(snappy(MIXED), token="prod", header="hdr"),
        "seed-no-cluster": wal_record(snappy(GOOD)),
        "seed-v2-token": wal_record(snappy(GOOD_V2), token="prod", kind=2),
    },
    "otlp_metrics": {
        "seed-pb-good": OTLP_METRICS_GOOD,
        "seed-pb-mixed": OTLP_METRICS_MIXED,
        "seed-json-good": OTLP_METRICS_JSON_GOOD,
        "seed-json-good-header": OTLP_METRICS_JSON_GOOD + b"\n",
        "seed-json-mixed": OTLP_METRICS_JSON_MIXED,
        "seed-gzip-pb-good": gzip_bytes(OTLP_METRICS_GOOD),
        "seed-gzip-json-mixed": gzip_bytes(OTLP_METRICS_JSON_MIXED),
    },
    "otlp_logs": {
        "seed-pb-good": OTLP_LOGS_GOOD,
        "seed-pb-mixed": OTLP_LOGS_MIXED,
        "seed-json-good": OTLP_LOGS_JSON_GOOD,
        "seed-json-good-header": OTLP_LOGS_JSON_GOOD + b"\n",
        "seed-json-mixed": OTLP_LOGS_JSON_MIXED,
        "seed-gzip-pb-good": gzip_bytes(OTLP_LOGS_GOOD),
        "seed-gzip-json-good": gzip_bytes(OTLP_LOGS_JSON_GOOD),
    },
    "loki_push": {
        "seed-snappy-protobuf": snappy(LOKI_PUSH),
        "seed-raw-protobuf": LOKI_PUSH,
        "seed-json": LOKI_JSON,
        "seed-label-set": b'{app="api", msg="a \\"quoted\\" value"}',
    },
    "wal_segment": {
        # mode 0: a whole valid segment, then mode 1: header + one record + a zero-filled torn tail.
        "seed-valid-file": b"\x00" + WAL_HEADER + framed(wal_record(snappy(GOOD), header="h")) + framed(b"second"),
        "seed-torn-tail": b"\x01" + framed(b"kept") + bytes(13),
        # mode 2: the harness frames these; after the 0, a raw tail that is not zeros is corruption.
        "seed-framed-then-rot": b"\x02" + bytes([3]) + b"one" + bytes([5]) + b"three" + b"\x00" + b"\xa5" * 12,
    },
}

for target, seeds in SEEDS.items():
    (CORPUS / target).mkdir(parents=True, exist_ok=True)
    for name, data in seeds.items():
        (CORPUS / target / name).write_bytes(data)
        print(f"corpus/{target}/{name}: {len(data)} bytes")
