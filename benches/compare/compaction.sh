#!/usr/bin/env bash
# What one forced compaction round costs in a compactor process of its own: ingests the workload
# into a Tributary (compaction schedule off), flushes and stops it, then starts `--role compactor`
# on the same data dir, runs `POST /api/v1/admin/compact?force=true` and reads that process' peak
# RSS (VmHWM: nothing but the round ran in it), CPU and wall time. See benches/compare/README.md.
#
#   CLUSTERS [1] SERIES [30000] SAMPLES [240] CONNECTIONS [2] SEED [1]   the workload
#   TRIBUTARY_BIN [target/release/tributary]   LOADGEN_BIN [target/release/tributary-loadgen]
#   READY_TIMEOUT [120] PERSIST_TIMEOUT [900] STOP_TIMEOUT [120]   KEEP_DATA [0]
#
# One line of JSON on stdout, progress on stderr.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$ROOT"

CLUSTERS=${CLUSTERS:-1}
SERIES=${SERIES:-30000}
SAMPLES=${SAMPLES:-240}
CONNECTIONS=${CONNECTIONS:-2}
SEED=${SEED:-1}
TRIBUTARY_BIN=${TRIBUTARY_BIN:-target/release/tributary}
TRIBUTARY_READY_PATH=${TRIBUTARY_READY_PATH:-/-/ready}
LOADGEN_BIN=${LOADGEN_BIN:-target/release/tributary-loadgen}
READY_TIMEOUT=${READY_TIMEOUT:-120}
PERSIST_TIMEOUT=${PERSIST_TIMEOUT:-900}
STOP_TIMEOUT=${STOP_TIMEOUT:-120}
KEEP_DATA=${KEEP_DATA:-0}
CLK_TCK=$(getconf CLK_TCK 2>/dev/null || echo 100)
WORK=$(mktemp -d "${TMPDIR:-/tmp}/tributary-compaction.XXXXXX")
TARGET=tributary
DIR="$WORK/$TARGET"
mkdir -p "$DIR"

# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

trap 'KEEP_DATA=1 stop_server; cleanup' EXIT

for bin in "$TRIBUTARY_BIN" "$LOADGEN_BIN"; do
    [[ -x $bin ]] || { echo "$bin not built (cargo build --release -p tributary -p tributary-loadgen)" >&2; exit 1; }
done
printf '[storage.compaction]\nenabled = false\ndeletion_delay = "0s"\n' >"$DIR/tributary.toml"

serve() {
    PORT=$(free_port) || fail "no free port"
    BASE="http://127.0.0.1:$PORT"
    start_server "$TRIBUTARY_BIN" --config "$DIR/tributary.toml" --http-listen "127.0.0.1:$PORT" --data-dir "$DIR/data" "$@"
    wait_ready "$BASE$TRIBUTARY_READY_PATH"
}

serve
"$LOADGEN_BIN" --url "$BASE/api/v1/write" --clusters "$CLUSTERS" --series "$SERIES" --samples "$SAMPLES" \
    --connections "$CONNECTIONS" --seed "$SEED" --output "$DIR/loadgen.json" >/dev/null ||
    fail "load generator failed"
curl -fsS -X POST --max-time "$PERSIST_TIMEOUT" "$BASE/api/v1/admin/flush" >/dev/null || fail "flush failed"
KEEP_DATA=1 stop_server

serve --role compactor
rss_before=$(awk '/^VmRSS:/ { printf "%.0f\n", $2 * 1024 }' "/proc/$SERVER_PID/status")
started=$(date +%s.%N)
report=$(curl -fsS -X POST --max-time "$PERSIST_TIMEOUT" "$BASE/api/v1/admin/compact?force=true") || fail "compaction round failed"
wall=$(awk -v a="$started" -v b="$(date +%s.%N)" 'BEGIN { printf "%.2f\n", b - a }')
peak=$(awk '/^VmHWM:/ { printf "%.0f\n", $2 * 1024 }' "/proc/$SERVER_PID/status")
cpu=$(awk -v tck="$CLK_TCK" '{ sub(/^.*\) /, ""); printf "%.2f\n", ($12 + $13) / tck }' "/proc/$SERVER_PID/stat")
jq -e '.ran and (.failures | length == 0)' <<<"$report" >/dev/null || fail "the round did not run cleanly: $report"
log "round done in ${wall}s"
jq -nc --argjson report "$report" --argjson rss_before "$rss_before" --argjson peak "$peak" --argjson cpu "$cpu" \
    --argjson wall "$wall" --argjson acked "$(jq .samples_acked "$DIR/loadgen.json")" \
    '{workload: {clusters: '"$CLUSTERS"', series_per_cluster: '"$SERIES"', samples_per_series: '"$SAMPLES"', acked_samples: $acked},
      rss_before_round_bytes: $rss_before, peak_rss_bytes: $peak, process_cpu_seconds: $cpu, wall_seconds: $wall,
      cpu_s_per_million_rows: (if $report.rows_in > 0 then $cpu / $report.rows_in * 1e6 else null end),
      peak_bytes_per_row: (if $report.rows_in > 0 then $peak / $report.rows_in else null end), report: $report}'
