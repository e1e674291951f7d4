#!/usr/bin/env python3
"""Reads Tributary's metrics table straight from the S3 server, as any Parquet reader would.

Usage: read_s3_metrics.py ENDPOINT BUCKET PREFIX

Every object under BUCKET/PREFIX/metrics/ ending in .parquet is fetched with boto3 (moto's own
dependency; credentials "test"/"test") and read with pyarrow. One JSON document goes to stdout:

  {"files": ["fleet/metrics/...parquet", ...], "rows": 120, "duplicate_rows": 0,
   "series": {"east|faulty|{\"i\":\"0\"}": [1700000000000, ...]}}

`duplicate_rows` counts rows whose (series_id, timestamp) another row already had; `series` maps
cluster|metric|labels to the sorted distinct timestamps (ms).
"""

from __future__ import annotations

import io
import json
import sys

import boto3
import pyarrow as pa
import pyarrow.parquet as pq


def main() -> int:
    if len(sys.argv) != 4:
        print(__doc__, file=sys.stderr)
        return 2
    endpoint, bucket, prefix = sys.argv[1].rstrip("/"), sys.argv[2], sys.argv[3].strip("/")
    s3 = boto3.client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id="test",
        aws_secret_access_key="test",
        region_name="us-east-1",
    )
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=f"{prefix}/metrics/")
    keys = sorted(o["Key"] for page in pages for o in page.get("Contents", []) if o["Key"].endswith(".parquet"))
    rows = 0
    duplicates = 0
    seen: set[tuple[int, int]] = set()
    series: dict[str, set[int]] = {}
    for key in keys:
        body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        table = pq.read_table(io.BytesIO(body))
        cols = {
            name: (table[name].cast(table[name].type.value_type) if pa.types.is_dictionary(table[name].type) else table[name])
            for name in ["cluster", "metric", "labels", "series_id"]
        }
        ts = table["timestamp"].cast(pa.int64()).to_pylist()
        cluster, metric, labels, sid = (cols[n].to_pylist() for n in ["cluster", "metric", "labels", "series_id"])
        for i, t in enumerate(ts):
            rows += 1
            if (sid[i], t) in seen:
                duplicates += 1
            seen.add((sid[i], t))
            series.setdefault(f"{cluster[i]}|{metric[i]}|{labels[i]}", set()).add(t)
    json.dump(
        {
            "files": keys,
            "rows": rows,
            "duplicate_rows": duplicates,
            "series": {k: sorted(v) for k, v in series.items()},
        },
        sys.stdout,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
