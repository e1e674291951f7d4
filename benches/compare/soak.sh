#!/usr/bin/env bash
# The soak of issue 16: four well-behaved clusters write samples (remote-write) and log lines
# (Loki push) at a steady rate, retrying every batch until it is acknowledged, first alone
# (ALONE seconds), then beside one misbehaving cluster (`bad-0`, DURATION seconds) that bursts
# BAD_FACTOR times over its rate limit with a new series in every sample (a cardinality
# explosion) and one garbage body in 20. Through both phases the server is killed with SIGKILL
# every KILL_MIN..KILL_MAX seconds and restarted on the same data directory (WAL replay).
#
# At the end: the head is flushed and a compaction round forced, then every acknowledged sample
# and log line of every well-behaved cluster must be read back exactly once through PromQL and
# LogQL, the bad cluster's acknowledged samples too (at least them, exactly once), and the
# stored Parquet files (read with pyarrow, following the manifest) must hold no duplicate row.
# Reports the well-behaved clusters' p50/p99 write latency and acked rate alone and with the bad
# cluster, the kills, and the server's peak RSS over all its lives. Exits non-zero on any loss,
# duplicate or a peak RSS above RSS_BOUND_MB.
#
#   benches/compare/soak.sh                          # 3 min alone + 10 min with the bad cluster
#   ALONE=60 DURATION=120 benches/compare/soak.sh     # quicker
#
# Knobs [defaults]: ALONE [180] s, DURATION [600] s, KILL_MIN [15] / KILL_MAX [30] s between
# kills, GOOD_SERIES [2000], GOOD_LOG_LINES [50] per second per cluster, BAD_CONNECTIONS [2],
# BAD_RATE [2000] samples/s (the bad cluster's limit), BAD_FACTOR [10], BAD_SERIES_CAP [20000],
# RSS_BOUND_MB [1024], KEEP_DATA [0]. Run under `flock /tmp/bench.lock` on a shared machine.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
TRIBUTARY_BIN=${TRIBUTARY_BIN:-$TARGET_DIR/release/tributary}
LOADGEN_BIN=${LOADGEN_BIN:-$TARGET_DIR/release/tributary-loadgen}
ALONE=${ALONE:-180}
DURATION=${DURATION:-600}
KILL_MIN=${KILL_MIN:-15}
KILL_MAX=${KILL_MAX:-30}
GOOD_SERIES=${GOOD_SERIES:-2000}
GOOD_LOG_LINES=${GOOD_LOG_LINES:-50}
BAD_CONNECTIONS=${BAD_CONNECTIONS:-2}
BAD_RATE=${BAD_RATE:-2000}
BAD_FACTOR=${BAD_FACTOR:-10}
BAD_REQUESTS=$((BAD_FACTOR * BAD_RATE / 2000 / BAD_CONNECTIONS))
BAD_SERIES_CAP=${BAD_SERIES_CAP:-20000}
RSS_BOUND_MB=${RSS_BOUND_MB:-1024}
KEEP_DATA=${KEEP_DATA:-0}

log() { echo "[$(date -u +%H:%M:%S)] $*" >&2; }

[[ -x $TRIBUTARY_BIN ]] || (cd "$ROOT" && cargo build --release -p tributary)
[[ -x $LOADGEN_BIN ]] || (cd "$ROOT" && cargo build --release -p tributary-loadgen)

WORK=$(mktemp -d -t tributary-soak.XXXXXX)
SERVER_PID=
KILLER_PID=
cleanup() {
    [[ -n $KILLER_PID ]] && kill "$KILLER_PID" 2>/dev/null || true
    if [[ -f $WORK/server.pid ]]; then kill -TERM "$(cat "$WORK/server.pid")" 2>/dev/null || true; fi
    sleep 1
    if [[ $KEEP_DATA == 1 ]]; then log "kept $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT

PORT=
for _ in $(seq 200); do
    p=$((20000 + RANDOM % 40000))
    [[ -z $(ss -Htan "( sport = :$p )") ]] && { PORT=$p; break; }
done
URL="http://127.0.0.1:$PORT"

cat >"$WORK/tributary.toml" <<TOML
[server]
grpc_listen = ""
otlp_http_listen = ""
log = "warn"

[ingest.head]
# Flushes (and their manifest commits) happen often, so kills land in them too.
flush_interval = "1m"

[storage.compaction]
interval = "2m"
settle = "0s"
deletion_delay = "1m"

# The well-behaved clusters are far below these; only bad-* is held to its limits.
[[ingest.limits.overrides]]
clusters = "bad-*"
ingestion_rate = $BAD_RATE.0
max_series_per_cluster = $BAD_SERIES_CAP
TOML

# start: a server on the data directory; its pid in $WORK/server.pid. Peak RSS of every life is
# appended to $WORK/rss.txt (read just before it is killed).
start() {
    "$TRIBUTARY_BIN" --config "$WORK/tributary.toml" --http-listen "127.0.0.1:$PORT" --data-dir "$WORK/data" \
        >>"$WORK/server.log" 2>&1 &
    echo $! >"$WORK/server.pid"
}
hwm() { awk '/VmHWM/ { print int($2 / 1024) }' "/proc/$1/status" 2>/dev/null || true; }
wait_ready() {
    for _ in $(seq 600); do
        curl -sf -o /dev/null "$URL/-/ready" && return 0
        sleep 0.2
    done
    log "server not ready after 120 s"; tail -20 "$WORK/server.log" >&2; return 1
}

# The killer: SIGKILL every KILL_MIN..KILL_MAX seconds, restart at once.
killer() {
    while true; do
        sleep $((KILL_MIN + RANDOM % (KILL_MAX - KILL_MIN + 1)))
        local pid
        pid=$(cat "$WORK/server.pid")
        hwm "$pid" >>"$WORK/rss.txt"
        kill -KILL "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
        echo kill >>"$WORK/kills.txt"
        start
    done
}

start
wait_ready
touch "$WORK/kills.txt" "$WORK/rss.txt"
killer &
KILLER_PID=$!

log "alone: ${ALONE}s (kills every ${KILL_MIN}-${KILL_MAX}s)"
"$LOADGEN_BIN" soak --url "$URL" --good-series "$GOOD_SERIES" --good-log-lines "$GOOD_LOG_LINES" \
    --duration-secs "$ALONE" >"$WORK/alone.json"
log "with the bad cluster: ${DURATION}s"
"$LOADGEN_BIN" soak --url "$URL" --good-series "$GOOD_SERIES" --good-log-lines "$GOOD_LOG_LINES" \
    --bad-connections "$BAD_CONNECTIONS" --bad-batch 2000 --bad-rate "$BAD_REQUESTS" \
    --duration-secs "$DURATION" >"$WORK/with-bad.json"

kill "$KILLER_PID" 2>/dev/null || true
wait "$KILLER_PID" 2>/dev/null || true
KILLER_PID=
log "traffic done after $(wc -l <"$WORK/kills.txt") kills; flushing and compacting"
wait_ready
SERVER_PID=$(cat "$WORK/server.pid")
curl -sf -X POST "$URL/api/v1/admin/flush" >/dev/null
curl -sf -X POST "$URL/api/v1/admin/compact?force=true" >"$WORK/compact.json"
hwm "$SERVER_PID" >>"$WORK/rss.txt"

python3 "$ROOT/tests/e2e/python/stored_rows.py" --root "$WORK/data" --manifest >"$WORK/stored.json"

python3 - "$WORK" "$URL" "$RSS_BOUND_MB" <<'PY'
import json, sys, time, urllib.parse, urllib.request
work, url, bound = sys.argv[1], sys.argv[2], int(sys.argv[3])
alone, bad = json.load(open(f"{work}/alone.json")), json.load(open(f"{work}/with-bad.json"))
stored = json.load(open(f"{work}/stored.json"))
kills = len(open(f"{work}/kills.txt").read().split())
rss = [int(x) for x in open(f"{work}/rss.txt").read().split()]
now = time.time()

def get(path, **params):
    q = urllib.parse.urlencode(params)
    with urllib.request.urlopen(f"{url}{path}?{q}", timeout=300) as r:
        return json.load(r)["data"]["result"]

def by_cluster(result):
    return {r["metric"].get("cluster", ""): int(float(r["value"][1])) for r in result}

window = "2h"
samples = by_cluster(get("/api/v1/query", query=f"sum by (cluster) (count_over_time({{__name__=~\"soak_metric|explosion\"}}[{window}]))", time=now))
lines = by_cluster(get("/loki/api/v1/query", query=f"sum by (cluster) (count_over_time({{app=\"soak\"}}[{window}]))", time=int(now * 1e9)))

failures = []
print("| cluster | acked samples | read back | acked log lines | read back |")
print("|---|---:|---:|---:|---:|")
for c in sorted(alone["clusters"]):
    s = alone["clusters"][c]["acked_samples"] + bad["clusters"][c]["acked_samples"]
    l = alone["clusters"][c]["acked_log_lines"] + bad["clusters"][c]["acked_log_lines"]
    print(f"| {c} | {s:,} | {samples.get(c, 0):,} | {l:,} | {lines.get(c, 0):,} |")
    if samples.get(c, 0) != s:
        failures.append(f"{c}: {s} samples acked, {samples.get(c, 0)} read back")
    if lines.get(c, 0) != l:
        failures.append(f"{c}: {l} log lines acked, {lines.get(c, 0)} read back")
    for side in (alone, bad):
        r = side["clusters"][c]
        if r["refused_batches"] or r["given_up_batches"]:
            failures.append(f"{c}: {r['refused_batches']} refused, {r['given_up_batches']} given-up batches")
b = samples.get("bad-0", 0)
print(f"| bad-0 | {bad['bad_acked_samples']:,} (2xx batches) | {b:,} | | |")
if b < bad["bad_acked_samples"]:
    failures.append(f"bad-0: {bad['bad_acked_samples']} samples acked, only {b} read back")
print()
total = sum(samples.values())
print(f"metrics rows in the files {stored['metrics']['rows']:,} (duplicates {stored['metrics']['duplicates']}), "
      f"samples read back {total:,}; logs rows {stored['logs']['rows']:,} (duplicates {stored['logs']['duplicates']}), "
      f"log lines read back {sum(lines.values()):,}")
if stored["metrics"]["rows"] != total or stored["metrics"]["duplicates"]:
    failures.append("metrics files do not hold every sample exactly once")
if stored["logs"]["rows"] != sum(lines.values()) or stored["logs"]["duplicates"]:
    failures.append("logs files do not hold every line exactly once")
print()
print("| well-behaved clusters | alone | with the bad cluster | ratio |")
print("|---|---:|---:|---:|")
for k, label in [("good_p50_ms", "p50 write latency (ms)"), ("good_p99_ms", "p99 write latency (ms)"),
                 ("good_max_ms", "max write latency (ms)"), ("good_acked_samples_per_s", "acked samples/s")]:
    x, y = alone[k], bad[k]
    print(f"| {label} | {x:.1f} | {y:.1f} | {y / x:.2f}x |")
retries = sum(side["clusters"][c]["retries"] for side in (alone, bad) for c in side["clusters"])
print()
print(f"kills: {kills}; retried attempts of the well-behaved clusters: {retries}; "
      f"bad cluster answers: {bad['bad_statuses']}; new series it sent: {bad['bad_series_sent']:,}")
print(f"server peak RSS over {len(rss)} lives: max {max(rss)} MiB (bound {bound} MiB)")
if max(rss) > bound:
    failures.append(f"peak RSS {max(rss)} MiB above {bound} MiB")
if failures:
    print("FAILED:\n  " + "\n  ".join(failures))
    sys.exit(1)
print("OK: every acknowledged sample and log line read back exactly once")
PY
