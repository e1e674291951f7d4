#!/usr/bin/env bash
# Scale-out figures (issue 15), on loopback, in one run (see benches/compare/README.md):
#
#  1. Ingest CPU: the remote-write workload into one ingester, then the same workload into two
#     (the load generator's connections spread over both, as a Service would): CPU seconds of
#     the ingester processes per million samples. On a 2-core machine wall throughput cannot
#     show scaling; CPU per sample unchanged with two ingesters is what makes throughput scale
#     with their cores.
#  2. Query latency: the fixed query set (`tributary-loadgen query run`) against an all-in-one
#     holding the workload in its head, and against a querier fanning out to the two ingesters
#     holding the same workload split between their heads; every answer compared with the
#     all-in-one's, latency as ratios.
#  3. Freshness: PROBES writes of one new sample, alternating between the ingesters, each
#     followed by polling the querier until the sample is visible: acknowledged -> visible
#     through a separate query process, p50 / p99 / max.
#
# Environment: CLUSTERS=2 SERIES=10000 SAMPLES=120 CONNECTIONS=4 SEED=1 RUNS=10 WARMUP=1 STEP=60
#   PROBES=200 TRIBUTARY_BIN=target/release/tributary LOADGEN_BIN=target/release/tributary-loadgen
#   RESULTS=target/compare/split-<time>.json KEEP_DATA=0
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$ROOT"
# shellcheck source=benches/compare/lib.sh
source benches/compare/lib.sh

CLUSTERS=${CLUSTERS:-2}
SERIES=${SERIES:-10000}
SAMPLES=${SAMPLES:-120}
CONNECTIONS=${CONNECTIONS:-4}
SEED=${SEED:-1}
RUNS=${RUNS:-10}
WARMUP=${WARMUP:-1}
STEP=${STEP:-60}
PROBES=${PROBES:-200}
INTERVAL_SECS=15
TRIBUTARY_BIN=${TRIBUTARY_BIN:-target/release/tributary}
LOADGEN_BIN=${LOADGEN_BIN:-target/release/tributary-loadgen}
RESULTS=${RESULTS:-target/compare/split-$(date -u +%Y%m%dT%H%M%SZ).json}
KEEP_DATA=${KEEP_DATA:-0}
READY_TIMEOUT=${READY_TIMEOUT:-120}
NOW_MS=$(date +%s%3N)
INTERVAL_MS=$((INTERVAL_SECS * 1000))
START_MS=$(((NOW_MS - (SAMPLES + 1) * INTERVAL_MS) / INTERVAL_MS * INTERVAL_MS))
WORK=$(mktemp -d "${TMPDIR:-/tmp}/tributary-split.XXXXXX")
TARGET=split
PIDS=()
trap 'for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null; cleanup' EXIT

# start NAME ARGS...: a tributary process on a free port; sets PORT_<NAME> and PID_<NAME>.
start() {
    local name=$1
    shift
    local port
    port=$(free_port)
    mkdir -p "$WORK/$name"
    DIR=$WORK/$name
    "$TRIBUTARY_BIN" --http-listen "127.0.0.1:$port" --grpc-listen "" --otlp-http-listen "" \
        --data-dir "$WORK/$name/data" --config "$WORK/config.toml" "$@" >"$WORK/$name/server.log" 2>&1 &
    local pid=$!
    SERVER_PID=$pid
    PIDS+=("$pid")
    printf -v "PORT_$name" '%s' "$port"
    printf -v "PID_$name" '%s' "$pid"
    wait_ready "http://127.0.0.1:$port/-/ready"
}

cpu_seconds() {
    awk -v t="$(getconf CLK_TCK)" '{ sub(/^.*\) /, ""); print ($12 + $13) / t }' "/proc/$1/stat"
}

loadgen() {
    "$LOADGEN_BIN" --url "$1" --clusters "$CLUSTERS" --series "$SERIES" --samples "$SAMPLES" \
        --interval-secs "$INTERVAL_SECS" --connections "$CONNECTIONS" --seed "$SEED" --start-ms "$START_MS" \
        --pregenerate --output "$2" >/dev/null
}

# ingest_cpu LABEL PID...: sends the workload to the given ingesters, echoes CPU-s per 1M samples.
ingest_cpu() {
    local label=$1 urls=$2
    shift 2
    local before=0 after=0 p
    for p in "$@"; do before=$(echo "$before + $(cpu_seconds "$p")" | bc -l); done
    loadgen "$urls" "$WORK/$label.loadgen.json"
    for p in "$@"; do after=$(echo "$after + $(cpu_seconds "$p")" | bc -l); done
    local acked
    acked=$(jq .samples_acked "$WORK/$label.loadgen.json")
    echo "($after - $before) / $acked * 1000000" | bc -l
}

printf '[storage]\nrefresh_interval = "1s"\n' >"$WORK/config.toml"
STORE="file://$WORK/store"
log "workload: $CLUSTERS clusters x $SERIES series x $SAMPLES samples; load $(cut -d' ' -f1-3 /proc/loadavg)"

# 1 + 2: an all-in-one, then two ingesters and a querier over one store.
start aio --storage "file://$WORK/aio-store"
start one --role ingest --storage "file://$WORK/one-store"
CPU_ONE=$(ingest_cpu one "http://127.0.0.1:$PORT_one/api/v1/write" "$PID_one")
kill "$PID_one"
loadgen "http://127.0.0.1:$PORT_aio/api/v1/write" "$WORK/aio.loadgen.json"
start a --role ingest --storage "$STORE"
start b --role ingest --storage "$STORE"
CPU_TWO=$(ingest_cpu two "http://127.0.0.1:$PORT_a/api/v1/write,http://127.0.0.1:$PORT_b/api/v1/write" "$PID_a" "$PID_b")
start q --role query --storage "$STORE" --ingesters "http://127.0.0.1:$PORT_a,http://127.0.0.1:$PORT_b"
log "ingest CPU-s per 1M samples: one ingester $CPU_ONE, two ingesters $CPU_TWO"

query_run() {
    "$LOADGEN_BIN" query run --url "http://127.0.0.1:$2" --target "$1" --label "$1" --state head \
        --clusters "$CLUSTERS" --series "$SERIES" --samples "$SAMPLES" --interval-secs "$INTERVAL_SECS" \
        --seed "$SEED" --start-ms "$START_MS" --step-secs "$STEP" --warmup "$WARMUP" --runs "$RUNS" \
        --output "$WORK/$1.query.json"
}
query_run all-in-one "$PORT_aio"
query_run querier "$PORT_q"
REPORT_RC=0
"$LOADGEN_BIN" query report "$WORK/all-in-one.query.json" "$WORK/querier.query.json" \
    --reference all-in-one --subject querier --json "$WORK/report.json" >"$WORK/report.md" || REPORT_RC=$?
cat "$WORK/report.md"

# 3: freshness, one probe series per ingester.
: >"$WORK/fresh.ms"
for i in $(seq "$PROBES"); do
    port=$PORT_a
    ((i % 2 == 0)) && port=$PORT_b
    ts=$(date +%s%3N)
    # One gauge sample over OTLP/HTTP JSON (plain text, so curl can send it).
    body='{"resourceMetrics":[{"resource":{"attributes":[{"key":"k8s.cluster.name","value":{"stringValue":"fresh"}}]},"scopeMetrics":[{"metrics":[{"name":"fresh_probe","gauge":{"dataPoints":[{"asDouble":'$i',"timeUnixNano":"'$ts'000000","attributes":[{"key":"probe","value":{"stringValue":"'$i'"}}]}]}}]}]}]}'
    curl -fsS -o /dev/null -H 'Content-Type: application/json' --data-binary "$body" \
        "http://127.0.0.1:$port/v1/metrics" || fail "probe $i was not acknowledged"
    acked=$(date +%s%N)
    at="$((ts / 1000)).$(printf %03d $((ts % 1000)))"
    until curl -fsS -G "http://127.0.0.1:$PORT_q/api/v1/query" --data-urlencode "query=fresh_probe{probe=\"$i\"}" \
        --data-urlencode "time=$at" | jq -e '.data.result | length == 1' >/dev/null; do
        (($(date +%s%N) - acked < 30000000000)) || fail "probe $i not visible through the querier after 30 s"
    done
    echo "$((($(date +%s%N) - acked) / 1000000))" >>"$WORK/fresh.ms"
done
sort -n "$WORK/fresh.ms" >"$WORK/fresh.sorted"
pct() { awk -v p="$1" '{ a[NR] = $1 } END { i = int(NR * p + 0.999999); if (i < 1) i = 1; print a[i] }' "$WORK/fresh.sorted"; }
P50=$(pct 0.5)
P99=$(pct 0.99)
MAX=$(tail -n1 "$WORK/fresh.sorted")
log "acknowledged -> visible through the querier (ms): p50 $P50, p99 $P99, max $MAX over $PROBES probes"

mkdir -p "$(dirname "$RESULTS")"
jq -n --arg date "$(date -u +%Y-%m-%dT%H:%M:%SZ)" --arg load "$(cut -d' ' -f1-3 /proc/loadavg)" \
    --argjson cpu_one "$CPU_ONE" --argjson cpu_two "$CPU_TWO" --argjson p50 "$P50" --argjson p99 "$P99" \
    --argjson max "$MAX" --argjson probes "$PROBES" --slurpfile report "$WORK/report.json" \
    '{date: $date, loadavg_after: $load,
      ingest_cpu_seconds_per_million_samples: {one_ingester: $cpu_one, two_ingesters: $cpu_two},
      freshness_ms: {p50: $p50, p99: $p99, max: $max, probes: $probes},
      query_report: $report[0]}' >"$RESULTS"
log "results: $RESULTS"
exit "$REPORT_RC"
