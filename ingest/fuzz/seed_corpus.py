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


def series(labels, samples, exemplars=0, histograms=0):
    out = b"".join(field_bytes(1, label(n, v)) for n, v in labels)
    out += b"".join(field_bytes(2, sample(t, v)) for t, v in samples)
    out += field_bytes(3, label("trace_id", "abc") + sample(1, 1.0)) * exemplars
    out += field_bytes(4, varint(1 << 3 | 0) + varint(5)) * histograms
    return out


def write_request(*ts, metadata=0):
    return b"".join(field_bytes(1, s) for s in ts) + field_bytes(3, varint(1 << 3) + varint(1)) * metadata


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


def wal_record(body, token="", header=""):
    t, h = token.encode(), header.encode()
    return bytes([1, 1]) + struct.pack("<H", len(t)) + t + struct.pack("<H", len(h)) + h + body


def framed(payload):
    return struct.pack("<II", len(payload), crc32c(payload)) + payload


WAL_HEADER = b"TRIBWAL\x01"

STALE_NAN = struct.unpack("<d", struct.pack("<Q", 0x7FF0000000000002))[0]
GOOD = write_request(
    series([("__name__", "up"), ("instance", "node-1:9100"), ("job", "node")], [(1_700_000_000_000, 1.0), (1_700_000_015_000, STALE_NAN)]),
    series([("__name__", "http_requests_total"), ("cluster", "own"), ("code", "200"), ("job", "api")], [(1_700_000_000_000, 42.0)], exemplars=1),
    metadata=1,
)
MIXED = write_request(
    series([("__name__", "ok")], [(1, 1.0)]),
    series([("job", "b"), ("__name__", "unsorted")], [(1, 1.0)]),
    series([("__name__", "dup"), ("job", "a"), ("job", "b")], [(1, 1.0), (2, 2.0)]),
    series([("__name__", "bad-metric"), ("empty", "")], [(1, 1.0)]),
    series([("__name__", "hist")], [], histograms=2),
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
    "wire": {
        "seed-every-wire-type": bytes([0x08, 0x96, 0x01, 0x12, 0x02]) + b"hi" + bytes([0x19, 1, 0, 0, 0, 0, 0, 0, 0, 0x25, 2, 0, 0, 0]),
        "seed-write-request": GOOD,
    },
    "wal_record": {
        "seed-header-cluster": wal_record(snappy(GOOD), header="hdr"),
        "seed-token-and-header": wal_record(snappy(MIXED), token="prod", header="hdr"),
        "seed-no-cluster": wal_record(snappy(GOOD)),
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
