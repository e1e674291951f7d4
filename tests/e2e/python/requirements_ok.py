#!/usr/bin/env python3
"""Exits 0 when every package pinned in requirements.txt (beside this file) is installed at its
pinned version, else prints what is missing and exits 1. scripts/test.sh and the end-to-end tests
run it before deciding to `pip install -r requirements.txt`."""

import importlib.metadata
import pathlib
import sys


def main() -> int:
    wrong = []
    for line in (pathlib.Path(__file__).parent / "requirements.txt").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        name, _, want = line.partition("==")
        try:
            have = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            have = None
        if want and have != want:
            wrong.append(f"{name}: want {want}, have {have or 'nothing'}")
    for w in wrong:
        print(w, file=sys.stderr)
    return 1 if wrong else 0


if __name__ == "__main__":
    sys.exit(main())
