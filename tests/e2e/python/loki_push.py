#!/usr/bin/env python3
"""Pushes log lines to Tributary through a real Loki client: PyPI `python-logging-loki`'s
`LokiHandler` (JSON push, its "v1" emitter), driven through the standard `logging` module.

Driven by tests/e2e/loki.rs. Usage:

  loki_push.py --url http://host:port/loki/api/v1/push --entries '<json list>'

Each entry is {"ts_s": <whole unix seconds>, "cluster": ..., "service": ..., "level": "info" |
"warning" | "error", "line": ...}. The handler sends labels `cluster` and `service_name` (its
tags), plus its own `severity` (the level) and `logger` ("e2e"). The emitter stamps each entry with
`time.time()`; the test pins that clock to the entry's `ts_s` so the timestamps are known (whole
seconds times 1e9 are exact in a float).

Prints one JSON document on stdout: every request body the client sent and the status it got.
Exits non-zero when any push was not answered 204 (the handler itself only logs its failures).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import types
from typing import Any

import logging_loki
import logging_loki.emitter
import requests

LEVELS = {"info": logging.INFO, "warning": logging.WARNING, "error": logging.ERROR}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--url", required=True)
    p.add_argument("--entries", required=True, help="JSON list of entries (see the module doc)")
    args = p.parse_args()
    entries = json.loads(args.entries)

    clock = [0.0]
    # The emitter reads only `time.time()` from its `time` module.
    logging_loki.emitter.time = types.SimpleNamespace(time=lambda: clock[0])  # type: ignore[attr-defined]

    sent: list[dict[str, Any]] = []

    def hook(r: requests.Response, *_: Any, **__: Any) -> None:
        body = r.request.body
        sent.append({"status": r.status_code, "body": json.loads(body) if body else None, "answer": r.text})

    failures: list[str] = []

    class Handler(logging_loki.LokiHandler):
        def handleError(self, record: logging.LogRecord) -> None:  # noqa: N802
            failures.append(f"{record.getMessage()!r}: {sys.exc_info()[1]!r}")
            super().handleError(record)

    logger = logging.getLogger("e2e")
    logger.propagate = False
    logger.setLevel(logging.DEBUG)
    handlers: dict[str, Handler] = {}
    for e in entries:
        cluster = e["cluster"]
        if cluster not in handlers:
            h = Handler(url=args.url, tags={"cluster": cluster}, version="1")
            h.setFormatter(logging.Formatter("%(message)s"))
            h.emitter.session.hooks["response"].append(hook)
            handlers[cluster] = h
        h = handlers[cluster]
        logger.addHandler(h)
        try:
            clock[0] = float(e["ts_s"])
            logger.log(LEVELS[e["level"]], e["line"], extra={"tags": {"service_name": e["service"]}})
        finally:
            logger.removeHandler(h)

    print(json.dumps({"pushes": sent, "failures": failures}))
    bad = [s for s in sent if s["status"] != 204]
    if failures or bad or len(sent) != len(entries):
        print(f"push failed: {failures} {bad}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
