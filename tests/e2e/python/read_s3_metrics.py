#!/usr/bin/env python3
"""Reads Tributary's metrics table straight from the S3 server, as any Parquet reader would.

Usage: read_s3_metrics.py ENDPOINT BUCKET PREFIX

Every metrics file the newest manifest lists (stored_rows.manifest_keys) is fetched with boto3
(moto's own dependency; credentials "test"/"test") and read with pyarrow. Objects no manifest
lists (uploads of a flush that failed before its commit) are not data and are not read. One JSON document goes to stdout:

  {"files": ["fleet/metrics/...parquet", ...], "rows": 120, "duplicate_rows": 0,
   "series": {"east|faulty|{\"i\":\"0\"}": [1700000000000, ...]}}

`duplicate_rows` counts rows whose (series_id, timestamp) another row already had; `series` maps
cluster|metric|labels to the sorted distinct timestamps (ms).
"""

from __future__ import annotations

import io
import json
import os
import sys

import pyarrow as pa
import pyarrow.parquet as pq

from stored_rows import S3, manifest_keys


def main() -> int:
    if len(sys.argv) != 4:
        print(__doc__, file=sys.stderr)
        return 2
    endpoint, bucket, prefix = sys.argv[1].rstrip("/"), sys.argv[2], sys.argv[3].strip("/")
    store = S3(endpoint, bucket, prefix)
    keys = sorted(k for k in manifest_keys(store) if k.startswith("metrics/"))
    rows = 0
    duplicates = 0
    seen: set[tuple[int, int]] = set()
    series: dict[str, set[int]] = {}
    for key in keys:
        body = store.get(key)
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


def _exit_now(code: int | None) -> None:
    """Ends the process without interpreter teardown. pyarrow's thread pools are torn down by
    static destructors at exit, and under heavy load that has aborted the process ("terminate
    called without an active exception") after the answer was printed; the answer is complete
    by now, so skip the teardown."""
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code or 0)


if __name__ == "__main__":
    _exit_now(main())
