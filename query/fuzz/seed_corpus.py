#!/usr/bin/env python3
"""Writes the hand-made seed inputs under corpus/<target>/seed-*.

The queries are taken from the query crate's own tests (src/promql/tests/, src/logql/tests.rs,
src/logql/parser/tests.rs, src/http/params/tests.rs): every construct each parser knows, once.
Standard library only; run from anywhere; rerunning rewrites the same bytes.
"""

from pathlib import Path
from urllib.parse import urlencode

CORPUS = Path(__file__).resolve().parent / "corpus"

PROMQL = [
    'up',
    'http_requests_total{code=~"5..", job!="x", instance!~"b|c"}',
    '{__name__="up", job="api"}',
    'rate(http_requests_total[5m])',
    'sum by (code) (rate(http_requests_total[5m])) / ignoring(code) group_left sum(rate(http_requests_total[5m]))',
    'histogram_quantile(0.99, sum by (le) (rate(latency_seconds_bucket[5m])))',
    'topk(2, up) or bottomk(1e12, up) unless on(job) absent(nope)',
    'count_over_time(temperature[10m:1m] offset -1m)',
    'max_over_time(rate(http_requests_total[1m])[5m:30s] @ end())',
    'up @ 300 offset 1m',
    '-(-temperature) ^ 2 % 3 != bool 1',
    'atan2(temperature, 2) > 0 and up == 1',
    'label_replace(up, "x", "$1", "instance", "(.*)")',
    'label_join(up, "y", ",", "job", "instance")',
    'sort_by_label_desc(count_values("v", up), "v")',
    'quantile(0.5, temperature) + scalar(sum(up)) * time()',
    'clamp(temperature, -1, 1) - vector(pi())',
    'predict_linear(temperature[5m], 60) - deriv(temperature[5m])',
    'day_of_week(vector(time())) + minute() + days_in_month()',
    'stddev without (instance) (temperature)',
    'sum(http_requests_total) by (job)',
    'absent_over_time(nope[1m])',
    'changes(temperature[5m]) + resets(http_requests_total[5m])',
    'irate(http_requests_total[1m]) / idelta(http_requests_total[1m])',
    'last_over_time(temperature[1m]) # a comment',
    '"a string"',
    '1e3 + 0x1F - Inf + NaN',
    'sum(rate(http_requests_total[5m])) by (job) > 0.5 * on(job) group_right(instance) sum(up) by (job)',
    '((((up))))',
    'abs(abs(abs(abs(temperature))))',
]

LOGQL = [
    '{cluster="prod-1"}',
    '{cluster=~"prod-.*", service_name="checkout"} |= "timeout" | json | status >= 500',
    '{service_name="checkout"} |= "timeout" != "db"',
    '{cluster="prod-1"} |~ "time.*(db|up)" !~ "timeout|ok"',
    '{cluster="prod-1"} |= "db" or "upstream"',
    '{service_name="cart"} |> "<_> \\"POST <_>"',
    '{cluster="prod-2"} | logfmt | duration > 100ms',
    '{cluster="prod-2"} | logfmt lvl="level" | lvl="error"',
    '{service_name="cart"} | regexp `(?P<ip>\\S+) .* (?P<status>\\d+) (?P<size>\\d+)$` | status == 500',
    '{service_name="cart"} | pattern `<ip> - - [<_>] "<method> <path> <_>" <status> <size>` | method="POST"',
    '{cluster="prod-1"} | json level="level" | __error__=""',
    '{a="b"} | (status == 200 or level="error") and latency < 1s',
    '{a="b"} | status >= 500, latency > 1s | size > 2KB',
    '{a="b"} | line_format "{{.a}} {{ .b | ToUpper }} {{ printf \\"%s\\" .c }}"',
    '{a="b"} | label_format x="{{.a}}-{{.b}}", y=z',
    '{a="b"} | unpack | decolorize | drop x, y="1" | keep a',
    'count_over_time({a="b"}[5m])',
    'sum by (level) (rate({a="b"} | json [1m]))',
    'quantile_over_time(0.99, {a="b"} | logfmt | unwrap duration(latency) | __error__="" [5m]) by (service)',
    'sum_over_time({a="b"} | json | unwrap bytes(size) [1h] offset 5m)',
    'topk(3, sum by (x) (bytes_rate({a="b"}[5m])))',
    'sum(count_over_time({a="b"}[1m])) / on(x) group_left sum(count_over_time({c="d"}[1m])) > bool 2',
    'vector(1) + 2 * -3',
    'absent_over_time({a="b"}[1m])',
    '(((count_over_time({a="b"}[1m]))))',
    'sum(sum(sum(count_over_time({a="b"}[1m]))))',
    '{a="b"} # comment',
]

# Values every parameter of both APIs is given (the "one value" mode, first byte odd).
PARAM_VALUES = [
    '', '0', '1', '-1', '1.5', '-1.5', '1700000000', '1700000000.123', '1700000000123456789',
    '2024-01-02T03:04:05Z', '2024-01-02T03:04:05.123456789+02:00',
    '-292273086-05-16T16:47:06Z', '292277025-08-18T07:12:54.999999999Z',
    '1h30m', '90s', '1y2w3d', '5ms', '250ms', '1.5h', '1e12', 'NaN', 'Inf', 'forward', 'BACKWARD', '100',
]

# Whole URL queries (first byte even).
PARAM_QUERIES = [
    urlencode({'start': '1700000000', 'end': '1700003600', 'step': '60', 'limit': '10'}),
    urlencode({'time': '2024-01-02T03:04:05Z', 'timeout': '30s'}),
    urlencode({'start': '1700000000000000000', 'since': '1h', 'direction': 'forward', 'limit': '5000'}),
    urlencode({'delay_for': '5', 'limit_per_metric': '-1', 'step': '15s'}),
    'start=1&start=2&end=%31%30&step=1m&limit=0',
]


def write(target, items, encode):
    d = CORPUS / target
    d.mkdir(parents=True, exist_ok=True)
    for old in d.glob("seed-*"):
        old.unlink()
    for i, item in enumerate(items):
        (d / f"seed-{i:02}").write_bytes(encode(item))


def main():
    write("promql", PROMQL, str.encode)
    write("logql", LOGQL, str.encode)
    # promql_eval: the first byte picks the evaluation window (see the target).
    write("promql_eval", PROMQL, lambda q: bytes([len(q) % 3]) + q.encode())
    write("params", [(1, v) for v in PARAM_VALUES] + [(0, q) for q in PARAM_QUERIES],
          lambda mv: bytes([mv[0]]) + mv[1].encode())


if __name__ == "__main__":
    main()
