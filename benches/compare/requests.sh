#!/usr/bin/env bash
# Object-store requests Tributary makes, i.e. what S3 bills: read from its own counter
# `tributary_object_store_requests_total{operation="get"|"head"|"put"|"list"|"delete"|"copy",outcome}`
# (see storage/src/store/metered.rs for what counts as what) before and after each step:
#
#   start      opening the storage (manifest load) on an empty store, then again on the loaded one
#   ingest     replaying the workload (run.sh's) through remote write, then POST /api/v1/admin/flush;
#              reported per million acknowledged samples
#   compact    one forced round, POST /api/v1/admin/compact?force=true (COMPACT=1): merges,
#              deletes the inputs (deletion_delay 0s), sweeps orphans, drops old manifest versions
#   query      each query of query.sh's fixed set: cold (first query after a restart, nothing
#              cached) and warm (the same query again), one evaluation each
#   idle       a `--role query` process on the loaded store doing nothing for IDLE_SECS with
#              storage.refresh_interval = IDLE_REFRESH: what its manifest refreshes cost per tick
#
# Scheduled compaction is off and, outside the idle step, storage.refresh_interval is 1h, so no
# background request lands in a step's count.
#
# The counts do not depend on the store behind the counter (local disk counts the requests S3
# would get), so the default runs on local disk; STORAGE=s3://bucket/prefix (with the AWS_*
# environment) measures a real S3 server instead. Environment (defaults in brackets):
#
#   CLUSTERS [1] SERIES [10000] SAMPLES [240] CONNECTIONS [2] SEED [1] STEP [60]   the workload
#   STORAGE [unset: local files under the data dir]   TRIBUTARY_BIN [target/release/tributary]
#   LOADGEN_BIN [target/release/tributary-loadgen]   READY_TIMEOUT [120] PERSIST_TIMEOUT [900]
#   STOP_TIMEOUT [120]   RESULTS [target/compare/requests-<time>.json]   KEEP_DATA [0]
#   COMPACT [1: queries read the compacted store; 0: the flushed files]   IDLE_SECS [60]
#   IDLE_REFRESH [2]: seconds
#
# Markdown report on stdout, progress on stderr, everything in the RESULTS JSON.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$ROOT"

CLUSTERS=${CLUSTERS:-1}
SERIES=${SERIES:-10000}
SAMPLES=${SAMPLES:-240}
CONNECTIONS=${CONNECTIONS:-2}
SEED=${SEED:-1}
STEP=${STEP:-60}
INTERVAL_SECS=15
STORAGE=${STORAGE:-}
TRIBUTARY_BIN=${TRIBUTARY_BIN:-target/release/tributary}
TRIBUTARY_READY_PATH=${TRIBUTARY_READY_PATH:-/-/ready}
LOADGEN_BIN_SET=${LOADGEN_BIN:+1}
LOADGEN_BIN=${LOADGEN_BIN:-target/release/tributary-loadgen}
READY_TIMEOUT=${READY_TIMEOUT:-120}
PERSIST_TIMEOUT=${PERSIST_TIMEOUT:-900}
STOP_TIMEOUT=${STOP_TIMEOUT:-120}
RESULTS=${RESULTS:-target/compare/requests-$(date -u +%Y%m%dT%H%M%SZ).json}
KEEP_DATA=${KEEP_DATA:-0}
COMPACT=${COMPACT:-1}
IDLE_SECS=${IDLE_SECS:-60}
IDLE_REFRESH=${IDLE_REFRESH:-2}
NOW_MS=$(date +%s%3N)
INTERVAL_MS=$((INTERVAL_SECS * 1000))
START_MS=${START_MS:-$(((NOW_MS - (SAMPLES + 1) * INTERVAL_MS) / INTERVAL_MS * INTERVAL_MS))}

COMMAND="CLUSTERS=$CLUSTERS SERIES=$SERIES SAMPLES=$SAMPLES CONNECTIONS=$CONNECTIONS SEED=$SEED STEP=$STEP COMPACT=$COMPACT IDLE_SECS=$IDLE_SECS IDLE_REFRESH=$IDLE_REFRESH${STORAGE:+ STORAGE=$STORAGE} benches/compare/requests.sh"
WORK=$(mktemp -d "${TMPDIR:-/tmp}/tributary-requests.XXXXXX")
TARGET=tributary
DIR="$WORK/$TARGET"
mkdir -p "$DIR"

# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

trap 'stop_server; cleanup' EXIT

for tool in curl jq ss; do
    command -v "$tool" >/dev/null || { echo "requests.sh needs $tool" >&2; exit 1; }
done
if [[ -z ${LOADGEN_BIN_SET:-} ]]; then
    cargo build --release -p tributary-loadgen
fi
[[ -x $LOADGEN_BIN ]] || { echo "load generator $LOADGEN_BIN not found" >&2; exit 1; }
[[ -x $TRIBUTARY_BIN ]] || { echo "binary $TRIBUTARY_BIN not built (cargo build --release -p tributary)" >&2; exit 1; }
VERSION=$("$TRIBUTARY_BIN" --version 2>/dev/null | head -n1 || echo tributary)

# The requests counter by operation, as one JSON object: {"get": 12, "put": 3, ...}.
requests() {
    curl -fsS --max-time 10 "$BASE/metrics" | awk '
        index($0, "tributary_object_store_requests_total{operation=\"") == 1 {
            split($0, a, "\""); if (!(a[2] in c)) order[n++] = a[2]; c[a[2]] += $NF }
        END { for (i = 0; i < n; i++) printf "%s\"%s\": %d", (i ? ", " : "{"), order[i], c[order[i]]; print (n ? "}" : "{}") }'
}

# What happened between two snapshots, per operation, plus the total.
delta() {
    jq -n --argjson a "$1" --argjson b "$2" \
        '$b | with_entries(.value -= ($a[.key] // 0)) | . + {total: (to_entries | map(.value) | add // 0)}'
}

# Stops the server keeping its data (lib.sh's stop_server removes it unless KEEP_DATA=1).
stop() { KEEP_DATA=1 stop_server; }

# Quiet: no scheduled round, no manifest refresh within a step. Idle: refreshes every IDLE_REFRESH s.
config() {
    printf '[storage]\nrefresh_interval = "%s"\n[storage.compaction]\nenabled = false\ndeletion_delay = "0s"\n' "$2" >"$DIR/$1.toml"
}
config quiet 1h
config idle "${IDLE_REFRESH}s"

# start [CONFIG [ARGS...]]: a server on the data dir with $DIR/CONFIG.toml (default quiet).
start() {
    PORT=$(free_port) || fail "no free port"
    BASE="http://127.0.0.1:$PORT"
    local args=("$TRIBUTARY_BIN" --config "$DIR/${1:-quiet}.toml" --http-listen "127.0.0.1:$PORT" --data-dir "$DIR/data" "${@:2}")
    [[ -n $STORAGE ]] && args+=(--storage "$STORAGE")
    start_server "${args[@]}"
    wait_ready "$BASE$TRIBUTARY_READY_PATH"
}

# query_once NAME LABEL: one evaluation of one suite query; its requests into $DIR/LABEL.json.
query_once() {
    local name=$1 label=$2 before after
    before=$(requests)
    "$LOADGEN_BIN" query run --url "$BASE" --target tributary --label "$label" --receiver-version "$VERSION" \
        --clusters "$CLUSTERS" --series "$SERIES" --samples "$SAMPLES" --interval-secs "$INTERVAL_SECS" \
        --seed "$SEED" --start-ms "$START_MS" --step-secs "$STEP" --warmup 0 --runs 1 --only "$name" \
        --output "$DIR/$label.run.json" 2>>"$DIR/query.log" || fail "query $name failed (see $DIR/query.log)"
    after=$(requests)
    delta "$before" "$after" >"$DIR/$label.json"
}

log "workload: $CLUSTERS clusters x $SERIES series x $SAMPLES samples; storage: ${STORAGE:-local files}"
start
START_EMPTY=$(requests)

# Ingest and flush.
before=$(requests)
"$LOADGEN_BIN" --url "$BASE/api/v1/write" --clusters "$CLUSTERS" --series "$SERIES" --samples "$SAMPLES" \
    --connections "$CONNECTIONS" --seed "$SEED" --start-ms "$START_MS" --output "$DIR/loadgen.json" >/dev/null ||
    fail "load generator failed: $(jq -c '{samples_acked, samples_failed, errors_by_status}' "$DIR/loadgen.json" 2>/dev/null)"
curl -fsS -X POST --max-time "$PERSIST_TIMEOUT" "$BASE/api/v1/admin/flush" >"$DIR/flush.json" || fail "flush failed"
INGEST=$(delta "$before" "$(requests)")
ACKED=$(jq '.samples_acked' "$DIR/loadgen.json")

# One forced compaction round: every file of the day becomes one per cluster and table.
COMPACTION='{}'
echo '{}' >"$DIR/compact.json"
if [[ $COMPACT == 1 ]]; then
    before=$(requests)
    curl -fsS -X POST --max-time "$PERSIST_TIMEOUT" "$BASE/api/v1/admin/compact?force=true" >"$DIR/compact.json" ||
        fail "compaction round failed"
    COMPACTION=$(delta "$before" "$(requests)")
    jq -e '.ran and (.failures | length == 0)' "$DIR/compact.json" >/dev/null ||
        fail "compaction round did not run cleanly: $(cat "$DIR/compact.json")"
fi
stop

# The whole suite once cold (a fresh process on the loaded store), then once warm; this also
# names the queries.
start
START_LOADED=$(requests)
suite_run() {
    local label=$1 before
    before=$(requests)
    "$LOADGEN_BIN" query run --url "$BASE" --target tributary --label "$label" --receiver-version "$VERSION" \
        --clusters "$CLUSTERS" --series "$SERIES" --samples "$SAMPLES" --interval-secs "$INTERVAL_SECS" \
        --seed "$SEED" --start-ms "$START_MS" --step-secs "$STEP" --warmup 0 --runs 1 \
        --output "$DIR/$label.run.json" 2>>"$DIR/query.log" || fail "query suite failed (see $DIR/query.log)"
    delta "$before" "$(requests)" >"$DIR/$label.json"
}
suite_run suite_cold
suite_run suite_warm
stop
mapfile -t NAMES < <(jq -r '.queries[].query.name' "$DIR/suite_cold.run.json")

# Each query alone: cold (after a restart), then warm.
for name in "${NAMES[@]}"; do
    start
    query_once "$name" "cold_$name"
    query_once "$name" "warm_$name"
    stop
done

# An idle query process: only its manifest refreshes reach the store.
start idle --role query
before=$(requests)
sleep "$IDLE_SECS"
IDLE=$(delta "$before" "$(requests)")
stop

mkdir -p "$(dirname "$RESULTS")"
jq -n --arg command "$COMMAND" --arg date "$(date -u +%Y-%m-%dT%H:%M:%SZ)" --arg version "$VERSION" \
    --arg storage "${STORAGE:-local files}" --argjson acked "$ACKED" \
    --argjson start_empty "$(delta '{}' "$START_EMPTY")" --argjson start_loaded "$(delta '{}' "$START_LOADED")" \
    --argjson ingest "$INGEST" --slurpfile flush "$DIR/flush.json" \
    --argjson compaction "$COMPACTION" --slurpfile compact "$DIR/compact.json" --argjson idle "$IDLE" \
    --argjson idle_secs "$IDLE_SECS" --argjson idle_refresh "$IDLE_REFRESH" \
    --slurpfile suite_cold "$DIR/suite_cold.json" --slurpfile suite_warm "$DIR/suite_warm.json" \
    --argjson queries "$(for n in "${NAMES[@]}"; do
        jq -n --arg name "$n" --slurpfile c "$DIR/cold_$n.json" --slurpfile w "$DIR/warm_$n.json" \
            '{name: $name, cold: $c[0], warm: $w[0]}'
    done | jq -s .)" \
    '{date: $date, command: $command, version: $version, storage: $storage,
      workload: {clusters: '"$CLUSTERS"', series_per_cluster: '"$SERIES"', samples_per_series: '"$SAMPLES"', acked_samples: $acked, start_ms: '"$START_MS"'},
      files_flushed: ($flush[0].files | length),
      start_empty: $start_empty, start_loaded: $start_loaded,
      ingest: $ingest,
      ingest_per_million: ($ingest | with_entries(.value = (.value / $acked * 1e6))),
      compaction: $compaction, compaction_report: $compact[0],
      idle: {seconds: $idle_secs, refresh_interval_seconds: $idle_refresh, ticks: ($idle_secs / $idle_refresh | floor),
             requests: $idle, per_tick: ($idle | with_entries(.value = (.value / ($idle_secs / $idle_refresh | floor))))},
      suite_cold: $suite_cold[0], suite_warm: $suite_warm[0], queries: $queries}' >"$RESULTS"

jq -r '
def r: (. * 10 | round) / 10 | tostring;
def ops: "\(.get // 0) | \(.head // 0) | \(.put // 0) | \(.list // 0) | \(.delete // 0) | \(.copy // 0) | \(.total // 0)";
"## Object-store requests: \(.workload.clusters) clusters x \(.workload.series_per_cluster) series x \(.workload.samples_per_series) samples (\(.storage))",
"",
"\(.version), \(.date). Command: `\(.command)`. \(.workload.acked_samples) samples acknowledged from START_MS=\(.workload.start_ms) (requests per query depend on where the hour boundary cuts the data), \(.files_flushed) files flushed.",
"",
"| step | GET | HEAD | PUT | LIST | DELETE | COPY | total |",
"|---|---|---|---|---|---|---|---|",
"| start, empty store | \(.start_empty | ops) |",
"| start, loaded store | \(.start_loaded | ops) |",
"| ingest + flush | \(.ingest | ops) |",
"| ingest + flush, per 1M samples | \(.ingest_per_million | map_values(r) | ops) |",
(if .compaction_report.ran then "| compaction round, forced (\(.compaction_report.files_in) files in, \(.compaction_report.files_out) out, \(.compaction_report.deleted_files) deleted) | \(.compaction | ops) |" else empty end),
"| idle query process, \(.idle.seconds) s at refresh_interval \(.idle.refresh_interval_seconds) s | \(.idle.requests | ops) |",
"| idle, per refresh tick (\(.idle.ticks) ticks) | \(.idle.per_tick | map_values(r) | ops) |",
"| query suite once, cold | \(.suite_cold | ops) |",
"| query suite once, warm | \(.suite_warm | ops) |",
(.queries[] | "| `\(.name)` cold | \(.cold | ops) |", "| `\(.name)` warm | \(.warm | ops) |"),
"",
"JSON: '"$RESULTS"'"
' "$RESULTS"
