#!/usr/bin/env python3
"""Runs every ```sql block of a Markdown file with DuckDB, as a reader of the docs would.

Usage: readme_sql.py MARKDOWN DATA_DIR

The examples name the data directory `data/`; they run in a scratch directory where `data` links
to DATA_DIR. Each statement (a block may hold several, each ending in `;` at the end of a line)
runs on its own. One JSON document goes to stdout:

  {"statements": [{"block": 1, "first_line": "SELECT ...", "rows": 3}], "errors": []}

A statement that fails is listed in `errors` with DuckDB's message; the test decides what is a
failure (no rows is one too).
"""

from __future__ import annotations

import json
import os
import pathlib
import re
import sys
import tempfile

import duckdb


def statements(markdown: str) -> list[tuple[int, str]]:
    out = []
    blocks = re.findall(r"^```sql\n(.*?)^```", markdown, flags=re.S | re.M)
    for n, block in enumerate(blocks, start=1):
        for stmt in re.split(r";[ \t]*$", block, flags=re.M):
            code = "\n".join(l for l in stmt.splitlines() if not l.strip().startswith("--")).strip()
            if code:
                out.append((n, stmt.strip()))
    return out


def main() -> int:
    markdown, data = pathlib.Path(sys.argv[1]).read_text(), pathlib.Path(sys.argv[2]).resolve()
    report = {"statements": [], "errors": []}
    with tempfile.TemporaryDirectory() as scratch:
        os.symlink(data, pathlib.Path(scratch) / "data")
        os.chdir(scratch)
        con = duckdb.connect()
        for block, stmt in statements(markdown):
            first = next(l for l in stmt.splitlines() if not l.strip().startswith("--")).strip()
            try:
                rows = con.execute(stmt).fetchall()
            except duckdb.Error as e:
                report["errors"].append({"block": block, "first_line": first, "error": str(e)})
                continue
            report["statements"].append({"block": block, "first_line": first, "rows": len(rows)})
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
