#!/usr/bin/env bash
# Fair sharing under per-cluster limits (issue 16): four well-behaved clusters write steadily
# (GOOD_SERIES series each, one sample of each per second) against a fresh Tributary, first
# alone, then beside one misbehaving cluster (`bad-0`) that sends from BAD_CONNECTIONS
# connections at BAD_FACTOR times its rate limit (FLOOD=1: as fast as it is answered) with a new
# series in every sample and one garbage body in 20, never honouring Retry-After. Reports the well-behaved
# clusters' p50/p99/max write latency and acked samples/s in both runs, their ratios, what the
# bad cluster was answered, and the server's peak RSS.
#
#   benches/compare/fairness.sh                 # 60 s per side
#   DURATION=20 benches/compare/fairness.sh     # quicker
#
# Knobs [defaults]: DURATION [60] s per side, GOOD_SERIES [2000], BAD_CONNECTIONS [2],
# BAD_RATE [2000] samples/s (the bad cluster's limit), BAD_FACTOR [10], FLOOD [0],
# BAD_SERIES_CAP [20000],
# KEEP_DATA [0]. Run on a quiet machine, or under `flock /tmp/bench.lock` on a shared one, and
# compare the ratios rather than the absolute figures.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
TRIBUTARY_BIN=${TRIBUTARY_BIN:-$TARGET_DIR/release/tributary}
LOADGEN_BIN=${LOADGEN_BIN:-$TARGET_DIR/release/tributary-loadgen}
DURATION=${DURATION:-60}
GOOD_SERIES=${GOOD_SERIES:-2000}
BAD_CONNECTIONS=${BAD_CONNECTIONS:-2}
BAD_RATE=${BAD_RATE:-2000}
BAD_FACTOR=${BAD_FACTOR:-10}
FLOOD=${FLOOD:-0}
# Requests of 2000 samples per second per bad connection (0 = flood).
BAD_REQUESTS=$((FLOOD == 1 ? 0 : BAD_FACTOR * BAD_RATE / 2000 / BAD_CONNECTIONS))
BAD_SERIES_CAP=${BAD_SERIES_CAP:-20000}
KEEP_DATA=${KEEP_DATA:-0}

log() { echo "[$(date -u +%H:%M:%S)] $*" >&2; }

[[ -x $TRIBUTARY_BIN ]] || (cd "$ROOT" && cargo build --release -p tributary)
[[ -x $LOADGEN_BIN ]] || (cd "$ROOT" && cargo build --release -p tributary-loadgen)

WORK=$(mktemp -d -t tributary-fairness.XXXXXX)
SERVER_PID=
cleanup() {
    [[ -n $SERVER_PID ]] && kill -TERM "$SERVER_PID" 2>/dev/null && wait "$SERVER_PID" 2>/dev/null || true
    if [[ $KEEP_DATA == 1 ]]; then log "kept $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT

free_port() {
    local p
    for _ in $(seq 200); do
        p=$((20000 + RANDOM % 40000))
        [[ -z $(ss -Htan "( sport = :$p )") ]] && { echo "$p"; return 0; }
    done
    return 1
}

cat >"$WORK/tributary.toml" <<TOML
[server]
grpc_listen = ""
otlp_http_listen = ""
log = "warn"

# The well-behaved clusters are far below these; only bad-* is held to its limits.
[[ingest.limits.overrides]]
clusters = "bad-*"
ingestion_rate = $BAD_RATE.0
max_series_per_cluster = $BAD_SERIES_CAP
TOML

# run SIDE BAD_CONNECTIONS: a fresh server, one loadgen run, its JSON plus the server's peak RSS.
run() {
    local side=$1 bad=$2 port dir
    port=$(free_port)
    dir="$WORK/$side"
    mkdir -p "$dir"
    "$TRIBUTARY_BIN" --config "$WORK/tributary.toml" --http-listen "127.0.0.1:$port" --data-dir "$dir/data" \
        >"$dir/server.log" 2>&1 &
    SERVER_PID=$!
    for _ in $(seq 150); do
        curl -sf -o /dev/null "http://127.0.0.1:$port/-/ready" && break
        sleep 0.2
    done
    log "$side: ${DURATION}s, bad connections: $bad"
    "$LOADGEN_BIN" fairness --url "http://127.0.0.1:$port/api/v1/write" --good-series "$GOOD_SERIES" \
        --bad-connections "$bad" --bad-batch 2000 --bad-rate "$BAD_REQUESTS" --duration-secs "$DURATION" \
        >"$dir/result.json"
    local hwm
    hwm=$(awk '/VmHWM/ { print $2 * 1024 }' "/proc/$SERVER_PID/status")
    curl -s "http://127.0.0.1:$port/metrics" | grep '^tributary_ingest_limited_total' >"$dir/limited.txt" || true
    kill -TERM "$SERVER_PID"
    wait "$SERVER_PID" 2>/dev/null || true
    SERVER_PID=
    python3 - "$dir/result.json" "$hwm" <<'PY'
import json, sys
p, hwm = sys.argv[1], int(sys.argv[2])
r = json.load(open(p)); r["server_peak_rss_mb"] = round(hwm / 2**20, 1)
json.dump(r, open(p, "w"), indent=2)
PY
}

run alone 0
run with-bad "$BAD_CONNECTIONS"

python3 - "$WORK/alone/result.json" "$WORK/with-bad/result.json" "$WORK/with-bad/limited.txt" <<'PY'
import json, sys
a, b = json.load(open(sys.argv[1])), json.load(open(sys.argv[2]))
limited = open(sys.argv[3]).read().strip()
print(json.dumps({"alone": a, "with_bad": b}, indent=2))
print()
print("| well-behaved clusters | alone | with the bad cluster | ratio |")
print("|---|---|---|---|")
for k, label in [("good_p50_ms", "p50 write latency (ms)"), ("good_p99_ms", "p99 write latency (ms)"),
                 ("good_max_ms", "max write latency (ms)"), ("good_acked_samples_per_s", "acked samples/s"),
                 ("good_failed_requests", "failed requests"), ("server_peak_rss_mb", "server peak RSS (MB)")]:
    x, y = a[k], b[k]
    ratio = f"{y / x:.2f}x" if x else "-"
    print(f"| {label} | {x:.1f} | {y:.1f} | {ratio} |")
print()
print("bad cluster answers:", b["bad_statuses"], "| new series it sent:", b["bad_series_sent"])
print(limited)
PY
