#!/usr/bin/env bash
# Ingest comparison: Tributary vs Prometheus 2.42 vs VictoriaMetrics on the same remote-write
# workload, one receiver at a time, on loopback, each with a fresh data directory.
# See benches/compare/README.md. Everything is configured through the environment:
#
#   TARGETS="prometheus victoria-metrics tributary"   receivers to run, in this order
#   CLUSTERS=3 SERIES=30000 SAMPLES=240 CONNECTIONS=4 SEED=1   workload (SERIES is per cluster)
#   TRIBUTARY_ROLE=all-in-one (or ingest: the ingester alone; its persist step is the flush,
#   with no compaction round, which the ingest role does not serve)
#   TRIBUTARY_BIN=target/release/tributary   PROMETHEUS_BIN=/usr/bin/prometheus
#   VICTORIA_METRICS_BIN=/usr/bin/victoria-metrics   LOADGEN_BIN=target/release/tributary-loadgen
#   TRIBUTARY_READY_PATH=/-/ready   READY_TIMEOUT=120   PERSIST_TIMEOUT=900   STOP_TIMEOUT=120
#   RESULTS=target/compare/results-<time>.json   KEEP_DATA=0 (1 keeps data dirs and logs)
#
# Exit status is non-zero if any selected target failed (missing binary, not ready, samples
# not acknowledged, persist step failed); its row then says FAILED and why.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$ROOT"

CLUSTERS=${CLUSTERS:-3}
SERIES=${SERIES:-30000}
SAMPLES=${SAMPLES:-240}
CONNECTIONS=${CONNECTIONS:-4}
SEED=${SEED:-1}
TARGETS=${TARGETS:-"prometheus victoria-metrics tributary"}
PROMETHEUS_BIN=${PROMETHEUS_BIN:-/usr/bin/prometheus}
VICTORIA_METRICS_BIN=${VICTORIA_METRICS_BIN:-/usr/bin/victoria-metrics}
TRIBUTARY_BIN=${TRIBUTARY_BIN:-target/release/tributary}
TRIBUTARY_READY_PATH=${TRIBUTARY_READY_PATH:-/-/ready}
TRIBUTARY_ROLE=${TRIBUTARY_ROLE:-all-in-one}
LOADGEN_BIN_SET=${LOADGEN_BIN:+1}
LOADGEN_BIN=${LOADGEN_BIN:-target/release/tributary-loadgen}
READY_TIMEOUT=${READY_TIMEOUT:-120}
PERSIST_TIMEOUT=${PERSIST_TIMEOUT:-900}
STOP_TIMEOUT=${STOP_TIMEOUT:-120}
RESULTS=${RESULTS:-target/compare/results-$(date -u +%Y%m%dT%H%M%SZ).json}
KEEP_DATA=${KEEP_DATA:-0}

COMMAND="CLUSTERS=$CLUSTERS SERIES=$SERIES SAMPLES=$SAMPLES CONNECTIONS=$CONNECTIONS SEED=$SEED TARGETS=\"$TARGETS\" TRIBUTARY_ROLE=$TRIBUTARY_ROLE benches/compare/run.sh"
CLK_TCK=$(getconf CLK_TCK 2>/dev/null || echo 100)
WORK=$(mktemp -d "${TMPDIR:-/tmp}/tributary-compare.XXXXXX")

# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

trap cleanup EXIT

for tool in curl jq du ss getconf; do
    command -v "$tool" >/dev/null || { echo "run.sh needs $tool" >&2; exit 1; }
done
for t in $TARGETS; do
    case $t in
    prometheus | victoria-metrics | tributary) ;;
    *) echo "unknown target '$t' (known: prometheus victoria-metrics tributary)" >&2; exit 1 ;;
    esac
done
if [[ -z ${LOADGEN_BIN_SET:-} ]]; then
    # Always (re)build the default binary: a stale load generator silently changes the workload.
    # This is a no-op when it is up to date.
    cargo build --release -p tributary-loadgen
fi
[[ -x $LOADGEN_BIN ]] || { echo "load generator $LOADGEN_BIN not found" >&2; exit 1; }

# ---------------------------------------------------------------------------------------------
# Helpers. They run inside a target's subshell: `fail` ends that target only.

# Seconds of CPU (utime+stime, fields 14 and 15 of proc(5)) of a process; fields are counted
# after the `)` that ends the command name, which may itself contain spaces.
cpu_seconds() {
    awk -v tck="$CLK_TCK" '{ sub(/^.*\) /, ""); printf "%.2f\n", ($12 + $13) / tck }' "/proc/$1/stat"
}

peak_rss_bytes() { awk '/^VmHWM:/ { printf "%.0f\n", $2 * 1024 }' "/proc/$1/status"; }

dir_bytes() {
    local total=0 b
    for p in "$@"; do
        if [[ -e $p ]]; then
            b=$(du -sb "$p" | cut -f1)
            total=$((total + b))
        fi
    done
    echo "$total"
}

# Sum of the VictoriaMetrics /metrics lines starting with a literal prefix.
vm_metric_sum() {
    curl -fsS --max-time 10 "$BASE/metrics" | awk -v p="$1" 'index($0, p) == 1 { s += $NF } END { printf "%.0f\n", s }'
}

# ---------------------------------------------------------------------------------------------
# Per-target start and persist steps. Each persist step sets STORED_BYTES, STORED_SAMPLES
# (what the peer reports holding, or empty if it does not say), LIVE_BYTES and METHOD.

start_prometheus() {
    [[ -x $PROMETHEUS_BIN ]] || fail "binary $PROMETHEUS_BIN not found"
    VERSION=$("$PROMETHEUS_BIN" --version 2>&1 | head -n1 | sed "s/, version / /; s/ (.*//")
    printf 'global:\n  scrape_interval: 15s\nscrape_configs: []\n' >"$DIR/prometheus.yml"
    start_server "$PROMETHEUS_BIN" --config.file="$DIR/prometheus.yml" --storage.tsdb.path="$DIR/data" \
        --web.listen-address="127.0.0.1:$PORT" --web.enable-remote-write-receiver --web.enable-admin-api
    wait_ready "$BASE/-/ready"
    URL="$BASE/api/v1/write"
}

persist_prometheus() {
    # The head (WAL + mmapped head chunks) is what Prometheus holds right after ingest; it is
    # compacted into a block only once it spans 1.5x the 2h block range. A snapshot with head
    # writes the head as a regular level-1 block (chunks + index), i.e. the format the data
    # would have on disk after compaction; that block is the "stored" figure.
    LIVE_BYTES=$(dir_bytes "$DIR/data/wal" "$DIR/data/chunks_head" "$DIR"/data/01*)
    local answer name
    answer=$(curl -fsS -X POST --max-time "$PERSIST_TIMEOUT" "$BASE/api/v1/admin/tsdb/snapshot") ||
        fail "snapshot request failed"
    name=$(jq -er '.data.name' <<<"$answer") || fail "unexpected snapshot answer: $answer"
    STORED_BYTES=$(dir_bytes "$DIR/data/snapshots/$name")
    STORED_SAMPLES=$(cat "$DIR/data/snapshots/$name"/*/meta.json | jq -s 'map(.stats.numSamples) | add // 0')
    METHOD="snapshot block (chunks+index) via /api/v1/admin/tsdb/snapshot; live = wal+chunks_head"
}

start_victoria_metrics() {
    [[ -x $VICTORIA_METRICS_BIN ]] || fail "binary $VICTORIA_METRICS_BIN not found"
    VERSION="victoria-metrics $(dpkg-query -W -f '${Version}' victoria-metrics 2>/dev/null || echo unknown)"
    start_server "$VICTORIA_METRICS_BIN" -storageDataPath="$DIR/data" -httpListenAddr="127.0.0.1:$PORT"
    wait_ready "$BASE/health"
    URL="$BASE/api/v1/write"
}

persist_victoria_metrics() {
    LIVE_BYTES=$(dir_bytes "$DIR/data")
    # force_flush moves buffered rows into parts; we then wait until nothing is pending and no
    # merge is running, so the size is that of a settled store, not of a merge in progress.
    curl -fsS --max-time 60 "$BASE/internal/force_flush" >/dev/null || fail "force_flush failed"
    local deadline=$((SECONDS + PERSIST_TIMEOUT)) pending merges
    while true; do
        pending=$(vm_metric_sum 'vm_pending_rows{')
        merges=$(vm_metric_sum 'vm_active_merges{')
        [[ $pending == 0 && $merges == 0 ]] && break
        ((SECONDS < deadline)) || fail "still $pending pending rows / $merges merges after ${PERSIST_TIMEOUT}s"
        curl -fsS --max-time 60 "$BASE/internal/force_flush" >/dev/null || true
        sleep 0.5
    done
    STORED_BYTES=$(dir_bytes "$DIR/data")
    STORED_SAMPLES=$(vm_metric_sum 'vm_rows{type="storage/')
    METHOD="du -sb storageDataPath (data+indexdb) after /internal/force_flush and no pending rows or merges"
    PERSIST_CPU=$(cpu_seconds "$SERVER_PID")
    PERSIST_PEAK=$(peak_rss_bytes "$SERVER_PID")

    # Which background merges happened to run decides the settled size (it varies by ~15%
    # between runs), so also record the deterministic, fully merged size. force_merge runs
    # asynchronously; its completion is only visible in the log.
    local done_before
    done_before=$(grep -c 'forced merge.*successfully finished' "$DIR/server.log" || true)
    curl -fsS --max-time 60 "$BASE/internal/force_merge" >/dev/null || fail "force_merge failed"
    deadline=$((SECONDS + PERSIST_TIMEOUT))
    while (($(grep -c 'forced merge.*successfully finished' "$DIR/server.log" || true) <= done_before)); do
        ((SECONDS < deadline)) || fail "force_merge not finished after ${PERSIST_TIMEOUT}s"
        sleep 0.5
    done
    EXTRA_JSON="{\"fully_merged_bytes\": $(dir_bytes "$DIR/data"), \"fully_merged_method\": \"du -sb after /internal/force_merge\"}"
}

# The table directories of Tributary's data dir: its Parquet files (the manifest is beside them).
TRIBUTARY_TABLES=(metrics logs histograms exemplars metadata)

tributary_table_bytes() { dir_bytes "${TRIBUTARY_TABLES[@]/#/$DIR/data/}"; }

# The live data files of the data dir, as readers find them (storage/README.md, "The
# manifest"): the newest checkpoint named by the hint (none below version 32), then every later
# change in order until one is missing: its adds join, its removes leave. A JSON list of keys.
tributary_live_keys() {
    local m=$DIR/data/_manifest v=0 files='[]' changes=()
    if [[ -f $m/_last_checkpoint ]]; then
        v=$(cat "$m/_last_checkpoint")
        files=$(jq -c '[.files[].key]' "$m/$(printf '%020d' "$v").checkpoint.json") ||
            fail "unreadable manifest checkpoint $v in $m"
    fi
    while [[ -f $m/$(printf '%020d' $((v + 1))).json ]]; do
        v=$((v + 1))
        changes+=("$m/$(printf '%020d' "$v").json")
    done
    ((v > 0)) || fail "no manifest version in $m"
    if ((${#changes[@]})); then
        jq -n -c --argjson files "$files" \
            'reduce inputs as $c ($files; . + [($c.add // [])[].key] - ($c.remove // []))' "${changes[@]}"
    else
        echo "$files"
    fi
}

# Live files per table, date and cluster, from the manifest: {"metrics": {"2026-12-03": {"eu": 1}}}.
# Keys are <table>/<date>/<HH or day>/<cluster>/<file>.parquet.
tributary_files_per_cluster_day() {
    tributary_live_keys | jq -c '[.[] | split("/") | {table: .[0], date: .[1], cluster: .[3]}]
        | group_by(.table) | map({key: .[0].table, value: (group_by(.date) | map({key: .[0].date,
          value: (group_by(.cluster) | map({key: .[0].cluster, value: length}) | from_entries)}) | from_entries)})
        | from_entries'
}

# Rows of the live metrics files, from their keys (<min>-<max>-<rows>-<uuid>.parquet):
# duplicates collapsed by a merge would show here.
tributary_stored_rows() {
    tributary_live_keys | jq '[.[] | select(startswith("metrics/"))
        | split("/") | last | .[0:-45] | split("-") | last | tonumber] | add // 0'
}

persist_tributary() {
    LIVE_BYTES=$(dir_bytes "$DIR/data")
    curl -fsS -X POST --max-time "$PERSIST_TIMEOUT" "$BASE/api/v1/admin/flush" >/dev/null ||
        fail "POST /api/v1/admin/flush failed"
    [[ -d $DIR/data/metrics ]] || fail "no $DIR/data/metrics after flush"
    local flushed flushed_files
    flushed=$(tributary_table_bytes)
    flushed_files=$(tributary_files_per_cluster_day)
    # As for VictoriaMetrics, "including persist" stops before the forced merge: the
    # compaction round is reported on its own.
    PERSIST_CPU=$(cpu_seconds "$SERVER_PID")
    PERSIST_PEAK=$(peak_rss_bytes "$SERVER_PID")
    if [[ $TRIBUTARY_ROLE == ingest ]]; then
        STORED_BYTES=$flushed
        STORED_SAMPLES=$(tributary_stored_rows)
        METHOD="du -sb of DATA_DIR's table dirs (Parquet) after POST /api/v1/admin/flush (ingest role: no compaction round); live = whole data dir before"
        EXTRA_JSON=$(jq -n --argjson flushed "$flushed" --argjson files "$flushed_files" \
            '{after_flush_bytes: $flushed, after_flush_method: "du -sb of the table dirs after POST /api/v1/admin/flush",
              files_per_cluster_day_after_flush: $files}')
        return
    fi

    # One forced round (the current day too, like /internal/force_merge). The config sets
    # deletion_delay = 0s, so the merged inputs are deleted within the round and `du` of the
    # table dirs is the live files. Peak RSS of the round alone: writing 5 to clear_refs resets
    # VmHWM (Linux >= 4.0); where that fails, the figure is the process' peak so far.
    local hwm_reset=true started report
    echo 5 >"/proc/$SERVER_PID/clear_refs" 2>/dev/null || hwm_reset=false
    started=$(date +%s.%N)
    report=$(curl -fsS -X POST --max-time "$PERSIST_TIMEOUT" "$BASE/api/v1/admin/compact?force=true") ||
        fail "POST /api/v1/admin/compact?force=true failed"
    local wall cpu peak
    wall=$(awk -v a="$started" -v b="$(date +%s.%N)" 'BEGIN { printf "%.2f\n", b - a }')
    cpu=$(awk -v a="$PERSIST_CPU" -v b="$(cpu_seconds "$SERVER_PID")" 'BEGIN { printf "%.2f\n", b - a }')
    peak=$(peak_rss_bytes "$SERVER_PID")
    jq -e '.ran and (.failures | length == 0)' <<<"$report" >/dev/null || fail "compaction round did not run cleanly: $report"
    STORED_BYTES=$(tributary_table_bytes)
    STORED_SAMPLES=$(tributary_stored_rows)
    METHOD="du -sb of DATA_DIR's table dirs (Parquet) after POST /api/v1/admin/flush and POST /api/v1/admin/compact?force=true with deletion_delay 0s; live = whole data dir before"
    EXTRA_JSON=$(jq -n --argjson flushed "$flushed" --argjson before "$flushed_files" --argjson after "$(tributary_files_per_cluster_day)" \
        --argjson report "$report" --argjson wall "$wall" --argjson cpu "$cpu" --argjson peak "$peak" \
        --argjson hwm_reset "$hwm_reset" --argjson manifest "$(dir_bytes "$DIR/data/_manifest")" \
        '{after_flush_bytes: $flushed, after_flush_method: "du -sb of the table dirs after POST /api/v1/admin/flush",
          files_per_cluster_day_after_flush: $before, files_per_cluster_day: $after, manifest_dir_bytes: $manifest,
          compaction: {report: $report, wall_seconds: $wall, cpu_seconds: $cpu, peak_rss_bytes: $peak,
                       peak_rss_is_round_only: $hwm_reset}}')
}

run_target() {
    TARGET=$1
    DIR="$WORK/$TARGET"
    mkdir -p "$DIR"
    trap stop_server EXIT
    PORT=$(free_port) || fail "no free port"
    BASE="http://127.0.0.1:$PORT"
    local fn=${TARGET//-/_}
    if [[ $TARGET == tributary ]]; then
        # No scheduled round interferes; the persist step's forced round deletes merged inputs
        # at once, so the table dirs hold only live files.
        printf '[server]\nrole = "%s"\n\n[storage.compaction]\nenabled = false\ndeletion_delay = "0s"\n' \
            "$TRIBUTARY_ROLE" >"$DIR/tributary.toml"
        TRIBUTARY_CONFIG_FILE="$DIR/tributary.toml"
    fi
    "start_$fn"

    local loadgen=("$LOADGEN_BIN" --url "$URL" --clusters "$CLUSTERS" --series "$SERIES" --samples "$SAMPLES"
        --connections "$CONNECTIONS" --seed "$SEED" --pregenerate --server-pid "$SERVER_PID" --output "$DIR/loadgen.json")
    log "$TARGET: ${loadgen[*]}"
    local status=ok reason=""
    "${loadgen[@]}" >/dev/null || {
        [[ -s $DIR/loadgen.json ]] || fail "load generator failed before producing a summary"
        status=failed
        reason="not every sample was acknowledged: $(jq -c '{samples_acked, samples_failed, samples_unsent, errors_by_status, error_examples}' "$DIR/loadgen.json")"
        echo "ERROR [$TARGET]: $reason" >&2
    }
    alive "$SERVER_PID" || fail "server exited during ingest; log tail: $(tail -n 5 "$DIR/server.log" | tr '\n' ' ')"

    log "$TARGET: persisting"
    "persist_$fn"
    local cpu_after=${PERSIST_CPU:-$(cpu_seconds "$SERVER_PID")}
    local peak_after=${PERSIST_PEAK:-$(peak_rss_bytes "$SERVER_PID")}
    stop_server

    jq -n --arg target "$TARGET" --arg version "$VERSION" --arg status "$status" --arg reason "$reason" \
        --arg server_cmd "$(cat "$DIR/server.cmd")" --arg loadgen_cmd "${loadgen[*]}" --arg method "$METHOD" \
        --argjson stored "$STORED_BYTES" --argjson live "$LIVE_BYTES" --arg stored_samples "$STORED_SAMPLES" \
        --argjson cpu_after "$cpu_after" --argjson peak_after "$peak_after" --argjson extra "${EXTRA_JSON:-{\}}" \
        --slurpfile lg "$DIR/loadgen.json" '
        $lg[0] as $l | ($l.samples_acked) as $acked |
        {target: $target, version: $version, status: $status, reason: $reason,
         server_command: $server_cmd, loadgen_command: $loadgen_cmd, loadgen: $l,
         cpu_s_per_million: $l.server.cpu_seconds_per_million_samples,
         acked_samples_per_s: $l.acked_samples_per_second,
         peak_rss_bytes: $l.server.peak_rss_bytes,
         stored: ({method: $method, bytes: $stored,
                  samples_reported_by_receiver: (if $stored_samples == "" then null else ($stored_samples | tonumber) end),
                  bytes_per_sample: (if $acked > 0 then $stored / $acked else null end),
                  live_bytes: $live, live_bytes_per_sample: (if $acked > 0 then $live / $acked else null end)}
                 + $extra
                 + (if $extra.fully_merged_bytes and $acked > 0
                    then {fully_merged_bytes_per_sample: ($extra.fully_merged_bytes / $acked)} else {} end)
                 + (if $extra.after_flush_bytes and $acked > 0
                    then {after_flush_bytes_per_sample: ($extra.after_flush_bytes / $acked)} else {} end)),
         including_persist: {cpu_seconds: ($cpu_after - $l.server.cpu_seconds_before),
                             cpu_s_per_million: (if $acked > 0 then ($cpu_after - $l.server.cpu_seconds_before) / $acked * 1e6 else null end),
                             peak_rss_bytes: $peak_after}}' >"$DIR/result.json"
    [[ $status == ok ]] || exit 1
}

# ---------------------------------------------------------------------------------------------

log "workload: $CLUSTERS clusters x $SERIES series x $SAMPLES samples, $CONNECTIONS connections; targets: $TARGETS"
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

mkdir -p "$(dirname "$RESULTS")"
MACHINE=$(jq -n --arg nproc "$(nproc)" --arg free "$(free -g)" --arg kernel "$(uname -srm)" \
    --arg cpu "$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //')" \
    --arg load_before "$LOAD_BEFORE" --arg load_after "$(cut -d' ' -f1-3 /proc/loadavg)" \
    '{nproc: ($nproc | tonumber), free_g: $free, kernel: $kernel, cpu: $cpu, loadavg_before: $load_before, loadavg_after: $load_after}')
jq -n --arg command "$COMMAND" --arg date "$(date -u +%Y-%m-%dT%H:%M:%SZ)" --argjson machine "$MACHINE" \
    --argjson workload "{\"clusters\": $CLUSTERS, \"series_per_cluster\": $SERIES, \"samples_per_series\": $SAMPLES, \"connections\": $CONNECTIONS, \"seed\": $SEED}" \
    '{date: $date, command: $command, machine: $machine, workload: $workload, targets: [inputs]}' \
    $(for t in $TARGETS; do echo "$WORK/$t/result.json"; done) >"$RESULTS"

# Markdown report on stdout.
jq -r '
def r(n): if . == null then "n/a" else (. * pow(10; n) | round) / pow(10; n) | tostring end;
def big: if . == null then "n/a" else (round | tostring | [scan("\\d{1,3}(?=(?:\\d{3})*$)")] | join(",")) end;
def ratio(a; b): if a == null or b == null or b == 0 then "n/a" else (a / b | r(2)) + "x" end;
"## Remote-write ingest: \(.workload.clusters) clusters x \(.workload.series_per_cluster) series x \(.workload.samples_per_series) samples, \(.workload.connections) connections",
"",
"Machine: \(.machine.nproc) CPUs (\(.machine.cpu)), \(.machine.kernel), load average \(.machine.loadavg_before) before / \(.machine.loadavg_after) after. \(.date).",
"",
"Command: `\(.command)`",
"",
"| receiver | status | acked samples/s | server CPU-s per 1M samples | peak RSS (MiB) | stored B/sample | live on-disk B/sample |",
"|---|---|---|---|---|---|---|",
(.targets[] | if .status == "ok" or .loadgen != null then
  "| \(.version // .target) | \(.status) | \(.acked_samples_per_s | big) | \(.cpu_s_per_million | r(2)) | \(if .peak_rss_bytes then .peak_rss_bytes / 1048576 | r(0) else "n/a" end) | \(.stored.bytes_per_sample | r(2)) | \(.stored.live_bytes_per_sample | r(2)) |"
  else "| \(.target) | **FAILED** | \(.reason) | | | | |" end),
"",
"Stored bytes and what the receiver reports holding:",
"",
(.targets[] | select(.stored != null) | "- \(.target)\(if .status != "ok" then " (FAILED: \(.reason))" else "" end): \(.stored.bytes | big) B, \(.stored.samples_reported_by_receiver // "n/a" | if type == "number" then big else . end) samples reported (\(.loadgen.samples_acked | big) acked); \(.stored.method)\(if .stored.fully_merged_bytes_per_sample then "; fully merged (/internal/force_merge): \(.stored.fully_merged_bytes_per_sample | r(2)) B/sample" else "" end). CPU-s per 1M incl. persist step: \(.including_persist.cpu_s_per_million | r(2)); peak RSS after persist \(.including_persist.peak_rss_bytes / 1048576 | r(0)) MiB; request p99 \(.loadgen.latency_ms.p99 | r(1)) ms; \(.loadgen.retries) retries."),
(.targets[] | select(.stored.compaction != null) | .stored as $s | $s.compaction as $c |
  "- \(.target) persist step: after the flush \($s.after_flush_bytes_per_sample | r(2)) B/sample; forced compaction round \($c.report.files_in) files in, \($c.report.files_out) out (\($c.report.bytes_in | big) B to \($c.report.bytes_out | big) B, \($c.report.rows_in | big) rows to \($c.report.rows_out | big)), \($c.report.deleted_files) inputs deleted; \($c.wall_seconds) s wall, \($c.cpu_seconds) CPU-s, peak RSS \($c.peak_rss_bytes / 1048576 | r(0)) MiB \(if $c.peak_rss_is_round_only then "during the round" else "since start" end); files per cluster per day after the flush \($s.files_per_cluster_day_after_flush | tojson), after compaction \($s.files_per_cluster_day | tojson); manifest dir \($s.manifest_dir_bytes | big) B."),
([.targets[] | select(.status == "ok")] as $ok | ($ok | map(select(.target == "tributary")) | first) as $t |
  ($ok | map(select(.target == "victoria-metrics")) | first) as $v |
  if $t and $v and $t.stored.after_flush_bytes_per_sample then
    "- Tributary / VictoriaMetrics stored B/sample: after compaction vs settled \(ratio($t.stored.bytes_per_sample; $v.stored.bytes_per_sample)), after compaction vs fully merged \(ratio($t.stored.bytes_per_sample; $v.stored.fully_merged_bytes_per_sample)); after flush only vs settled \(ratio($t.stored.after_flush_bytes_per_sample; $v.stored.bytes_per_sample))."
  else empty end),
"",
"Ratios (row receiver / column receiver; lower is better except samples/s):",
"",
"| comparison | CPU-s per 1M samples | acked samples/s | peak RSS | stored B/sample |",
"|---|---|---|---|---|",
([.targets[] | select(.status == "ok")] as $ok |
  range(0; $ok | length) as $j | range(0; $j) as $i | $ok[$j] as $a | $ok[$i] as $b |
  "| \($a.target) vs \($b.target) | \(ratio($a.cpu_s_per_million; $b.cpu_s_per_million)) | \(ratio($a.acked_samples_per_s; $b.acked_samples_per_s)) | \(ratio($a.peak_rss_bytes; $b.peak_rss_bytes)) | \(ratio($a.stored.bytes_per_sample; $b.stored.bytes_per_sample)) |"),
"",
"Workload on the wire: \([.targets[] | select(.loadgen != null) | .loadgen.pregenerated][0] | if . then "\(.raw_bytes_per_sample | r(1)) B/sample raw protobuf, \(.compressed_bytes_per_sample | r(1)) B/sample snappy, \(.requests) requests" else "n/a" end).",
"JSON: '"$RESULTS"'"
' "$RESULTS"

exit "$FAILED"
