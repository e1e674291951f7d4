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
