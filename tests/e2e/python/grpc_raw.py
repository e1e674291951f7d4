#!/usr/bin/env python3
"""Makes one raw unary gRPC call with exactly the request bytes given, for the bad-input tests.

Usage:
  grpc_raw.py --endpoint HOST:PORT --method /opentelemetry.proto.collector.metrics.v1.MetricsService/Export
              (--body-file FILE | --zeros N) [--gzip] [--metadata KEY=VALUE]...

The bytes are sent as they are (no serializer), so truncated or otherwise invalid protobuf reaches
the server; --zeros sends N zero bytes (with --gzip, a decompression bomb). Prints one JSON
document: {"code": "OK" | "INVALID_ARGUMENT" | ..., "details": "...", "trailing": {...},
"partial_success": {"rejected": N, "error_message": "..."} | null}. Exits 0 whenever the server
answered, whatever the status; non-zero only when the call could not be made.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

import grpc
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceResponse
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceResponse
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse


def partial_success(method: str, body: bytes) -> dict[str, Any] | None:
    if "MetricsService" in method:
        msg: Any = ExportMetricsServiceResponse()
        msg.ParseFromString(body)
        if msg.HasField("partial_success"):
            ps = msg.partial_success
            return {"rejected": ps.rejected_data_points, "error_message": ps.error_message}
    elif "LogsService" in method:
        msg = ExportLogsServiceResponse()
        msg.ParseFromString(body)
        if msg.HasField("partial_success"):
            ps = msg.partial_success
            return {"rejected": ps.rejected_log_records, "error_message": ps.error_message}
    elif "TraceService" in method:
        msg = ExportTraceServiceResponse()
        msg.ParseFromString(body)
        if msg.HasField("partial_success"):
            ps = msg.partial_success
            return {"rejected": ps.rejected_spans, "error_message": ps.error_message}
    return None


def printable(v: Any) -> str:
    return v.hex() if isinstance(v, bytes) else str(v)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--endpoint", required=True)
    p.add_argument("--method", required=True)
    body = p.add_mutually_exclusive_group(required=True)
    body.add_argument("--body-file")
    body.add_argument("--zeros", type=int)
    p.add_argument("--gzip", action="store_true")
    p.add_argument("--metadata", action="append", default=[])
    p.add_argument("--timeout", type=float, default=120.0)
    args = p.parse_args()

    request = bytes(args.zeros) if args.zeros is not None else open(args.body_file, "rb").read()
    metadata = [tuple(m.split("=", 1)) for m in args.metadata]
    compression = grpc.Compression.Gzip if args.gzip else grpc.Compression.NoCompression
    options = [("grpc.max_send_message_length", -1), ("grpc.max_receive_message_length", -1)]
    with grpc.insecure_channel(args.endpoint, options=options, compression=compression) as channel:
        call = channel.unary_unary(args.method, request_serializer=None, response_deserializer=None)
        out: dict[str, Any]
        try:
            response, rpc = call.with_call(request, metadata=metadata, timeout=args.timeout)
            out = {
                "code": "OK",
                "details": "",
                "trailing": {k: printable(v) for k, v in (rpc.trailing_metadata() or [])},
                "partial_success": partial_success(args.method, response),
            }
        except grpc.RpcError as e:
            out = {
                "code": e.code().name,
                "details": e.details() or "",
                "trailing": {k: printable(v) for k, v in (e.trailing_metadata() or [])},
                "partial_success": None,
            }
    print(json.dumps(out))
    # UNAVAILABLE with no details is the client failing to connect, not an answer.
    return 1 if out["code"] == "UNAVAILABLE" and "connect" in out["details"].lower() else 0


if __name__ == "__main__":
    sys.exit(main())
