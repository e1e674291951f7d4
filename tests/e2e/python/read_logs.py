#!/usr/bin/env python3
"""Reads Tributary's stored logs table straight from its Parquet files, as any Parquet reader would.

Usage: read_logs.py ROOT

ROOT is the object-store root (the server's data dir when it stores locally). Every file under
ROOT/logs/ is read with pyarrow, and one JSON document goes to stdout:

  {"files": [{"key": "logs/2026-11-21/14/east/...parquet", "rows": 5,
              "schema": {"cluster": "string", ...}}],
   "rows": [{"_key": "logs/...parquet", "cluster": "east", "timestamp": 179..., ...}]}

Timestamp columns become integer nanoseconds since the epoch, whatever Arrow type they are stored
as; every other value is passed through as JSON (strings stay strings: the JSON-text columns such
as `attributes` are parsed by the test, which must see exactly what was stored).
"""

from __future__ import annotations

import json
import os
import pathlib
import sys
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq


def column_values(col: pa.ChunkedArray) -> list[Any]:
    t = col.type
    if pa.types.is_timestamp(t):
        # To integer nanoseconds without going through Python datetimes (which hold microseconds).
        unit_ns = {"s": 1_000_000_000, "ms": 1_000_000, "us": 1_000, "ns": 1}[t.unit]
        return [None if v is None else v * unit_ns for v in col.cast(pa.int64()).to_pylist()]
    if pa.types.is_dictionary(t):
        return col.cast(t.value_type).to_pylist()
    if pa.types.is_binary(t) or pa.types.is_large_binary(t) or pa.types.is_fixed_size_binary(t):
        return [None if v is None else v.hex() for v in col.to_pylist()]
    return col.to_pylist()


def main() -> int:
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    root = pathlib.Path(sys.argv[1])
    files: list[dict[str, Any]] = []
    rows: list[dict[str, Any]] = []
    for path in sorted((root / "logs").rglob("*.parquet")):
        key = path.relative_to(root).as_posix()
        table = pq.read_table(path)
        files.append(
            {"key": key, "rows": table.num_rows, "schema": {f.name: str(f.type) for f in table.schema}}
        )
        columns = {name: column_values(table.column(name)) for name in table.column_names}
        for i in range(table.num_rows):
            row = {name: values[i] for name, values in columns.items()}
            row["_key"] = key
            rows.append(row)
    json.dump({"files": files, "rows": rows}, sys.stdout)
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
