#!/usr/bin/env bash
# Query-latency comparison: Tributary vs Prometheus 2.42 vs VictoriaMetrics holding the same
# remote-write workload, one receiver at a time, on loopback, each with a fresh data directory.
# Every answer is compared with Prometheus'. See benches/compare/README.md. Configured through
# the environment:
#
#   TARGETS="prometheus victoria-metrics tributary"   receivers to run, in this order
#   CLUSTERS=3 SERIES=30000 SAMPLES=240 CONNECTIONS=4 SEED=1   workload (SERIES is per cluster)
#   RUNS=10 WARMUP=1 STEP=60          timed runs, warm-up runs, range-query step in seconds
#   TRIBUTARY_HEAD=1                  also query Tributary before the flush (data in its head)
#   VM_CACHE=0                        1 keeps VictoriaMetrics' rollup result cache on
#   TOLERANCE=1e-6 METRICSQL_TOLERANCE=0.05   relative float tolerances (see README)
#   START_MS=<derived>                first sample time, same for every receiver
#   TRIBUTARY_BIN=target/release/tributary   PROMETHEUS_BIN=/usr/bin/prometheus
#   VICTORIA_METRICS_BIN=/usr/bin/victoria-metrics   LOADGEN_BIN=target/release/tributary-loadgen
#   TRIBUTARY_READY_PATH=/-/ready   READY_TIMEOUT=120   PERSIST_TIMEOUT=900   STOP_TIMEOUT=120
#   RESULTS=target/compare/query-<time>.json   KEEP_DATA=0 (1 keeps data dirs and logs)
#
# Exit status: 0 all ran and every answer agreed; 1 a target or a query failed (its row says
# FAILED and why); 3 everything ran but some answers differ from the reference's.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$ROOT"

CLUSTERS=${CLUSTERS:-3}
SERIES=${SERIES:-30000}
SAMPLES=${SAMPLES:-240}
CONNECTIONS=${CONNECTIONS:-4}
SEED=${SEED:-1}
INTERVAL_SECS=15
RUNS=${RUNS:-10}
WARMUP=${WARMUP:-1}
STEP=${STEP:-60}
TRIBUTARY_HEAD=${TRIBUTARY_HEAD:-1}
VM_CACHE=${VM_CACHE:-0}
TOLERANCE=${TOLERANCE:-1e-6}
METRICSQL_TOLERANCE=${METRICSQL_TOLERANCE:-0.05}
TARGETS=${TARGETS:-"prometheus victoria-metrics tributary"}
PROMETHEUS_BIN=${PROMETHEUS_BIN:-/usr/bin/prometheus}
VICTORIA_METRICS_BIN=${VICTORIA_METRICS_BIN:-/usr/bin/victoria-metrics}
TRIBUTARY_BIN=${TRIBUTARY_BIN:-target/release/tributary}
TRIBUTARY_READY_PATH=${TRIBUTARY_READY_PATH:-/-/ready}
LOADGEN_BIN_SET=${LOADGEN_BIN:+1}
LOADGEN_BIN=${LOADGEN_BIN:-target/release/tributary-loadgen}
READY_TIMEOUT=${READY_TIMEOUT:-120}
PERSIST_TIMEOUT=${PERSIST_TIMEOUT:-900}
STOP_TIMEOUT=${STOP_TIMEOUT:-120}
RESULTS=${RESULTS:-target/compare/query-$(date -u +%Y%m%dT%H%M%SZ).json}
KEEP_DATA=${KEEP_DATA:-0}
# One start for every receiver, so they hold byte-identical data: the interval-aligned start
# whose last round falls just before now (what `tributary-loadgen` derives by default).
# Receivers run later see data that ended a few minutes earlier; all three accept that.
NOW_MS=$(date +%s%3N)
INTERVAL_MS=$((INTERVAL_SECS * 1000))
START_MS=${START_MS:-$(((NOW_MS - (SAMPLES + 1) * INTERVAL_MS) / INTERVAL_MS * INTERVAL_MS))}

COMMAND="CLUSTERS=$CLUSTERS SERIES=$SERIES SAMPLES=$SAMPLES CONNECTIONS=$CONNECTIONS SEED=$SEED RUNS=$RUNS WARMUP=$WARMUP STEP=$STEP TRIBUTARY_HEAD=$TRIBUTARY_HEAD VM_CACHE=$VM_CACHE TARGETS=\"$TARGETS\" benches/compare/query.sh"
RUNS_DIR=${RESULTS%.json}.runs
WORK=$(mktemp -d "${TMPDIR:-/tmp}/tributary-query.XXXXXX")

# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

trap cleanup EXIT

for tool in curl jq du ss; do
    command -v "$tool" >/dev/null || { echo "query.sh needs $tool" >&2; exit 1; }
done
for t in $TARGETS; do
    case $t in
    prometheus | victoria-metrics | tributary) ;;
    *) echo "unknown target '$t' (known: prometheus victoria-metrics tributary)" >&2; exit 1 ;;
    esac
done
if [[ -z ${LOADGEN_BIN_SET:-} ]]; then
    # A stale load generator silently changes the workload or the queries; no-op when current.
    cargo build --release -p tributary-loadgen
fi
[[ -x $LOADGEN_BIN ]] || { echo "load generator $LOADGEN_BIN not found" >&2; exit 1; }
mkdir -p "$RUNS_DIR"

# ---------------------------------------------------------------------------------------------
# Helpers. They run inside a target's subshell: `fail` ends that target only.

# Sum of the /metrics lines of the server starting with a literal prefix.
metric_sum() {
    curl -fsS --max-time 10 "$BASE/metrics" | awk -v p="$1" 'index($0, p) == 1 { s += $NF } END { printf "%.0f\n", s }'
}

# query_run LABEL STATE DIALECT: the suite against the running server, into $RUNS_DIR/LABEL.json.
# Exit status 1 of `query run` means some query failed: the file is written and the report
# shows which; the target is then marked failed too.
query_run() {
    local label=$1 state=$2 dialect=$3 rc=0
    local cmd=("$LOADGEN_BIN" query run --url "$BASE" --target "$TARGET" --label "$label"
        --receiver-version "$VERSION" --state "$state" --dialect "$dialect"
        --clusters "$CLUSTERS" --series "$SERIES" --samples "$SAMPLES" --interval-secs "$INTERVAL_SECS"
        --seed "$SEED" --start-ms "$START_MS" --step-secs "$STEP" --warmup "$WARMUP" --runs "$RUNS"
        --server-pid "$SERVER_PID" --output "$RUNS_DIR/$label.json")
    local load
    load=$(cut -d' ' -f1-3 /proc/loadavg)
    log "$label: querying (load average $load): ${cmd[*]}"
    echo "$label|$load" >>"$DIR/query_loads"
    "${cmd[@]}" || rc=$?
    [[ -s $RUNS_DIR/$label.json ]] || fail "query run for $label produced no result file (exit $rc)"
    alive "$SERVER_PID" || fail "server exited while queried; log tail: $(tail -n 5 "$DIR/server.log" | tr '\n' ' ')"
    if ((rc != 0)); then
        echo "some queries failed on $label (see the report)" >"$WORK/$TARGET.reason"
        QUERY_FAILED=1
    fi
}

# ---------------------------------------------------------------------------------------------
# Per target: start, then persist (make what the receiver holds durable the way it would be
# queried in production) and query.

start_prometheus() {
    [[ -x $PROMETHEUS_BIN ]] || fail "binary $PROMETHEUS_BIN not found"
    VERSION=$("$PROMETHEUS_BIN" --version 2>&1 | head -n1 | sed "s/, version / /; s/ (.*//")
    printf 'global:\n  scrape_interval: 15s\nscrape_configs: []\n' >"$DIR/prometheus.yml"
    start_server "$PROMETHEUS_BIN" --config.file="$DIR/prometheus.yml" --storage.tsdb.path="$DIR/data" \
        --web.listen-address="127.0.0.1:$PORT" --web.enable-remote-write-receiver
    wait_ready "$BASE/-/ready"
    URL="$BASE/api/v1/write"
}

query_prometheus() {
    # A 1 h workload never leaves the head (compaction waits for 1.5x the 2 h block range), so
    # Prometheus answers from its in-memory head + mmapped head chunks, as it would for the
    # last hour in production.
    query_run prometheus "head (in-memory + mmapped chunks)" promql
}

start_victoria_metrics() {
    [[ -x $VICTORIA_METRICS_BIN ]] || fail "binary $VICTORIA_METRICS_BIN not found"
    VERSION="victoria-metrics $(dpkg-query -W -f '${Version}' victoria-metrics 2>/dev/null || echo unknown)"
    local cache=(-search.disableCache)
    [[ $VM_CACHE == 1 ]] && cache=()
    start_server "$VICTORIA_METRICS_BIN" -storageDataPath="$DIR/data" -httpListenAddr="127.0.0.1:$PORT" "${cache[@]}"
    wait_ready "$BASE/health"
    URL="$BASE/api/v1/write"
}

query_victoria_metrics() {
    # force_flush makes buffered rows searchable parts; then wait until nothing is pending and
    # no merge runs, so queries do not compete with background merges.
    curl -fsS --max-time 60 "$BASE/internal/force_flush" >/dev/null || fail "force_flush failed"
    local deadline=$((SECONDS + PERSIST_TIMEOUT)) pending merges
    while true; do
        pending=$(metric_sum 'vm_pending_rows{')
        merges=$(metric_sum 'vm_active_merges{')
        [[ $pending == 0 && $merges == 0 ]] && break
        ((SECONDS < deadline)) || fail "still $pending pending rows / $merges merges after ${PERSIST_TIMEOUT}s"
        curl -fsS --max-time 60 "$BASE/internal/force_flush" >/dev/null || true
        sleep 0.5
    done
    local state="parts on disk after /internal/force_flush, no pending rows or merges"
    if [[ $VM_CACHE == 1 ]]; then state+=", rollup result cache on"; else state+=", -search.disableCache"; fi
    query_run victoria-metrics "$state" metricsql
}

# Samples in Tributary's head. The exposition has carried a stray leading underscore
# (`_tributary_head_samples`), so accept both spellings; fail if neither is there.
tributary_head_samples() {
    curl -fsS --max-time 10 "$BASE/metrics" |
        awk '$1 ~ /^_?tributary_head_samples$/ { s += $2; n++ } END { if (n) printf "%d\n", s; else print "missing" }'
}

query_tributary() {
    local total=$((CLUSTERS * SERIES * SAMPLES)) held
    if [[ $TRIBUTARY_HEAD == 1 ]]; then
        held=$(tributary_head_samples)
        [[ $held != missing ]] || fail "no tributary_head_samples in /metrics"
        ((held == total)) || fail "head holds $held samples before the flush, expected $total (a flush ran early?)"
        query_run tributary-head "head (in memory, before any flush)" promql
    fi
    curl -fsS -X POST --max-time "$PERSIST_TIMEOUT" "$BASE/api/v1/admin/flush" >/dev/null ||
        fail "POST /api/v1/admin/flush failed"
    [[ -d $DIR/data/metrics ]] || fail "no $DIR/data/metrics after the flush"
    held=$(tributary_head_samples)
    [[ $held == 0 ]] || fail "head still holds $held samples after the flush; queries would not read Parquet only"
    query_run tributary "Parquet after POST /api/v1/admin/flush (head empty)" promql
}

run_target() {
    TARGET=$1
    DIR="$WORK/$TARGET"
    QUERY_FAILED=0
    mkdir -p "$DIR"
    trap stop_server EXIT
    PORT=$(free_port) || fail "no free port"
    BASE="http://127.0.0.1:$PORT"
    local fn=${TARGET//-/_}
    "start_$fn"

    local loadgen=("$LOADGEN_BIN" --url "$URL" --clusters "$CLUSTERS" --series "$SERIES" --samples "$SAMPLES"
        --interval-secs "$INTERVAL_SECS" --connections "$CONNECTIONS" --seed "$SEED" --start-ms "$START_MS"
        --server-pid "$SERVER_PID" --output "$DIR/loadgen.json")
    log "$TARGET: ${loadgen[*]}"
    "${loadgen[@]}" >/dev/null || {
        [[ -s $DIR/loadgen.json ]] || fail "load generator failed before producing a summary"
        fail "not every sample was acknowledged: $(jq -c '{samples_acked, samples_failed, samples_unsent, errors_by_status, error_examples}' "$DIR/loadgen.json")"
    }
    alive "$SERVER_PID" || fail "server exited during ingest; log tail: $(tail -n 5 "$DIR/server.log" | tr '\n' ' ')"
    log "$TARGET: $(jq -r '"\(.samples_acked) samples acknowledged in \(.wall_seconds | floor) s"' "$DIR/loadgen.json")"

    "query_$fn"
    stop_server

    jq -n --arg target "$TARGET" --arg version "$VERSION" --arg server_cmd "$(cat "$DIR/server.cmd")" \
        --arg loadgen_cmd "${loadgen[*]}" --arg loads "$(cat "$DIR/query_loads")" --argjson failed "$QUERY_FAILED" \
        --slurpfile lg "$DIR/loadgen.json" '
        {target: $target, version: $version, status: (if $failed == 1 then "failed" else "ok" end),
         reason: (if $failed == 1 then "some queries failed (see the report)" else "" end),
         server_command: $server_cmd, loadgen_command: $loadgen_cmd,
         ingest: ($lg[0] | {samples_acked, wall_seconds, acked_samples_per_second, retries, start_ms: .workload.start_ms}),
         loadavg_at_query_start: ($loads | split("\n") | map(select(. != "") | split("|") | {(.[0]): .[1]}) | add)}' \
        >"$DIR/result.json"
    ((QUERY_FAILED == 0)) || exit 1
}

# ---------------------------------------------------------------------------------------------

log "workload: $CLUSTERS clusters x $SERIES series x $SAMPLES samples from $START_MS; targets: $TARGETS"
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
FAILED=0
for t in $TARGETS; do
    set +e
    (
        set -e
        run_target "$t"
    )
    rc=$?
    set -e
    if ((rc != 0)); then
        FAILED=1
        if [[ ! -s $WORK/$t/result.json ]]; then
            mkdir -p "$WORK/$t"
            reason=$(cat "$WORK/$t.reason" 2>/dev/null || echo "exit status $rc")
            jq -n --arg target "$t" --arg reason "$reason" '{target: $target, status: "failed", reason: $reason}' \
                >"$WORK/$t/result.json"
        fi
    fi
done
LOAD_AFTER=$(cut -d' ' -f1-3 /proc/loadavg)

# The report over every result file written, in target order; Prometheus is the reference.
FILES=()
for label in prometheus victoria-metrics tributary tributary-head; do
    [[ -s $RUNS_DIR/$label.json ]] && FILES+=("$RUNS_DIR/$label.json")
done
REPORT_RC=0
REPORT_JSON=$WORK/report.json
if ((${#FILES[@]} > 0)); then
    REFERENCE=()
    [[ -s $RUNS_DIR/prometheus.json ]] && REFERENCE=(--reference prometheus)
    "$LOADGEN_BIN" query report "${FILES[@]}" "${REFERENCE[@]}" --subject tributary \
        --tolerance "$TOLERANCE" --metricsql-tolerance "$METRICSQL_TOLERANCE" --json "$REPORT_JSON" \
        >"$WORK/report.md" || REPORT_RC=$?
fi
[[ -s $REPORT_JSON ]] || echo null >"$REPORT_JSON"

mkdir -p "$(dirname "$RESULTS")"
MACHINE=$(jq -n --arg nproc "$(nproc)" --arg free "$(free -g)" --arg kernel "$(uname -srm)" \
    --arg cpu "$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //')" \
    --arg load_before "$LOAD_BEFORE" --arg load_after "$LOAD_AFTER" \
    '{nproc: ($nproc | tonumber), free_g: $free, kernel: $kernel, cpu: $cpu, loadavg_before: $load_before, loadavg_after: $load_after}')
jq -n --arg command "$COMMAND" --arg date "$(date -u +%Y-%m-%dT%H:%M:%SZ)" --argjson machine "$MACHINE" \
    --arg runs_dir "$RUNS_DIR" --slurpfile report "$REPORT_JSON" \
    --argjson workload "{\"clusters\": $CLUSTERS, \"series_per_cluster\": $SERIES, \"samples_per_series\": $SAMPLES, \"interval_ms\": $INTERVAL_MS, \"connections\": $CONNECTIONS, \"seed\": $SEED, \"start_ms\": $START_MS}" \
    '{date: $date, command: $command, machine: $machine, workload: $workload, answers_dir: $runs_dir,
      targets: [inputs], report: $report[0]}' \
    $(for t in $TARGETS; do echo "$WORK/$t/result.json"; done) >"$RESULTS"

# Markdown report on stdout.
{
    echo "## Query latency: Tributary vs Prometheus vs VictoriaMetrics"
    echo
    jq -r '"Machine: \(.machine.nproc) CPUs (\(.machine.cpu)), \(.machine.kernel), load average \(.machine.loadavg_before) before / \(.machine.loadavg_after) after; at the start of each query run: \([.targets[] | select(.loadavg_at_query_start) | .loadavg_at_query_start | to_entries[] | "\(.key) \(.value)"] | join(", ")). \(.date)."' "$RESULTS"
    echo
    echo "Command: \`$COMMAND\`"
    echo
    jq -r '.targets[] | select(.status == "failed" and .ingest == null) | "**\(.target) FAILED**: \(.reason)\n"' "$RESULTS"
    [[ -s $WORK/report.md ]] && cat "$WORK/report.md"
    echo
    jq -r '"Ingest (same bodies, same timestamps for every receiver): " + ([.targets[] | select(.ingest) | "\(.target) \(.ingest.samples_acked) samples in \(.ingest.wall_seconds | floor) s"] | join(", ")) + "."' "$RESULTS"
    echo "JSON: $RESULTS (answers of every receiver: $RUNS_DIR/)"
}

if ((FAILED != 0 || REPORT_RC == 1)); then
    exit 1
fi
exit "$REPORT_RC"
