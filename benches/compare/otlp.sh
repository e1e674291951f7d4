#!/usr/bin/env bash
# OTLP ingest benchmark: Tributary's OTLP/HTTP and OTLP/gRPC receivers under realistic
# OpenTelemetry Collector traffic (metrics and logs from several Kubernetes clusters), one
# scenario at a time, each against a fresh release server on free loopback ports with a fresh
# data directory. No peer runs here: Debian's Prometheus 2.42 and VictoriaMetrics 1.79 predate
# their OTLP receivers. See BENCHMARKS.md. Configured through the environment:
#
#   SCENARIOS="metrics/http metrics/grpc logs/http logs/grpc traces/http traces/grpc"   signal/transport pairs, in order
#                     (also logs/loki: the logs workload through the Loki push API, snappy protobuf
#                     as Promtail and Alloy send it; see benches/loadgen/src/otlp/loki.rs)
#   CLUSTERS=3 CONNECTIONS=4 SEED=1 COMPRESSION=gzip            common workload knobs
#   METRICS_PODS=300 METRICS_ROUNDS=60 (15 s apart)             metrics: pods per cluster, exports
#   LOGS_PODS=200 LOGS_SECONDS=120 LOGS_RATE=5000               logs: pods, seconds, records/s per cluster
#   TRACES_PODS=200 TRACES_SECONDS=120 TRACES_RATE=5000         traces: pods, seconds, spans/s per cluster
#   START_MS=<derived>  first timestamp; by default the start of the hour before the workload's
#                     span ends just before now (one hourly partition per run)
#   PERF=0            1: `perf record -e cpu-clock -g` the server during each replay (top symbols
#                     land in the JSON and in <scenario>/perf.txt next to RESULTS)
#   TRIBUTARY_BIN=target/release/tributary   LOADGEN_BIN=target/release/tributary-loadgen
#   TRIBUTARY_READY_PATH=/-/ready   READY_TIMEOUT=120   PERSIST_TIMEOUT=900   STOP_TIMEOUT=120
#   RESULTS=target/compare/otlp-<time>.json   KEEP_DATA=0 (1 keeps data dirs and logs)
#
# Exit status is non-zero if any scenario failed: server not ready or gone, a request failed, or
# any item was refused in partial_success (the load generator treats every rejection as a
# failure), or the flush failed. Its row then says FAILED and why.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$ROOT"

SCENARIOS=${SCENARIOS:-"metrics/http metrics/grpc logs/http logs/grpc traces/http traces/grpc"}
CLUSTERS=${CLUSTERS:-3}
CONNECTIONS=${CONNECTIONS:-4}
SEED=${SEED:-1}
COMPRESSION=${COMPRESSION:-gzip}
METRICS_PODS=${METRICS_PODS:-300}
METRICS_ROUNDS=${METRICS_ROUNDS:-60}
LOGS_PODS=${LOGS_PODS:-200}
LOGS_SECONDS=${LOGS_SECONDS:-120}
LOGS_RATE=${LOGS_RATE:-5000}
TRACES_PODS=${TRACES_PODS:-200}
TRACES_SECONDS=${TRACES_SECONDS:-120}
TRACES_RATE=${TRACES_RATE:-5000}
PERF=${PERF:-0}
TRIBUTARY_BIN=${TRIBUTARY_BIN:-target/release/tributary}
TRIBUTARY_READY_PATH=${TRIBUTARY_READY_PATH:-/-/ready}
LOADGEN_BIN_SET=${LOADGEN_BIN:+1}
LOADGEN_BIN=${LOADGEN_BIN:-target/release/tributary-loadgen}
READY_TIMEOUT=${READY_TIMEOUT:-120}
PERSIST_TIMEOUT=${PERSIST_TIMEOUT:-900}
STOP_TIMEOUT=${STOP_TIMEOUT:-120}
RESULTS=${RESULTS:-target/compare/otlp-$(date -u +%Y%m%dT%H%M%SZ).json}
KEEP_DATA=${KEEP_DATA:-0}

COMMAND="SCENARIOS=\"$SCENARIOS\" CLUSTERS=$CLUSTERS CONNECTIONS=$CONNECTIONS SEED=$SEED COMPRESSION=$COMPRESSION METRICS_PODS=$METRICS_PODS METRICS_ROUNDS=$METRICS_ROUNDS LOGS_PODS=$LOGS_PODS LOGS_SECONDS=$LOGS_SECONDS LOGS_RATE=$LOGS_RATE TRACES_PODS=$TRACES_PODS TRACES_SECONDS=$TRACES_SECONDS TRACES_RATE=$TRACES_RATE benches/compare/otlp.sh"
RUNS_DIR=${RESULTS%.json}.runs
WORK=$(mktemp -d "${TMPDIR:-/tmp}/tributary-otlp.XXXXXX")

# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

trap cleanup EXIT

for tool in curl jq du ss; do
    command -v "$tool" >/dev/null || { echo "otlp.sh needs $tool" >&2; exit 1; }
done
if [[ $PERF == 1 ]]; then
    command -v perf >/dev/null || { echo "PERF=1 needs perf" >&2; exit 1; }
fi
for s in $SCENARIOS; do
    case $s in
    metrics/http | metrics/grpc | logs/http | logs/grpc | logs/loki | traces/http | traces/grpc) ;;
    *) echo "unknown scenario '$s' (known: metrics/http metrics/grpc logs/http logs/grpc logs/loki traces/http traces/grpc)" >&2; exit 1 ;;
    esac
done
if [[ -z ${LOADGEN_BIN_SET:-} ]]; then
    # A stale load generator silently changes the workload; this is a no-op when it is current.
    cargo build --release -p tributary-loadgen
fi
[[ -x $LOADGEN_BIN ]] || { echo "load generator $LOADGEN_BIN not found" >&2; exit 1; }

# Bytes under each top-level directory of the data dir, as a JSON object (`{}` if none).
table_bytes() {
    local d json='{}' b
    for d in "$1"/*/; do
        [[ -d $d ]] || continue
        b=$(du -sb "$d" | cut -f1)
        json=$(jq -c --arg k "$(basename "$d")" --argjson v "$b" '. + {($k): $v}' <<<"$json")
    done
    echo "$json"
}

bytes_of() { if [[ -e $1 ]]; then du -sb "$1" | cut -f1; else echo 0; fi; }

run_scenario() {
    local scenario=$1 signal=${1%/*} transport=${1#*/}
    TARGET="tributary-$signal-$transport"
    DIR="$WORK/$TARGET"
    mkdir -p "$DIR"
    trap stop_server EXIT
    PORT=$(free_port) || fail "no free port"
    local grpc_port otlp_port
    grpc_port=$(free_port) || fail "no free port"
    otlp_port=$(free_port) || fail "no free port"
    [[ $grpc_port != "$PORT" && $otlp_port != "$PORT" && $grpc_port != "$otlp_port" ]] || fail "port collision, retry"
    BASE="http://127.0.0.1:$PORT"
    [[ -x $TRIBUTARY_BIN ]] || fail "binary $TRIBUTARY_BIN not built (cargo build --release --bin tributary); not skipping"
    VERSION=$("$TRIBUTARY_BIN" --version 2>/dev/null | head -n1 || true)
    start_server "$TRIBUTARY_BIN" --http-listen "127.0.0.1:$PORT" --grpc-listen "127.0.0.1:$grpc_port" \
        --otlp-http-listen "127.0.0.1:$otlp_port" --data-dir "$DIR/data"
    wait_ready "$BASE$TRIBUTARY_READY_PATH"

    local endpoint="http://127.0.0.1:$otlp_port"
    [[ $transport == grpc ]] && endpoint="http://127.0.0.1:$grpc_port"
    [[ $transport == loki ]] && endpoint=$BASE
    local shape=(--pods "$METRICS_PODS" --rounds "$METRICS_ROUNDS")
    [[ $signal == logs ]] && shape=(--pods "$LOGS_PODS" --rounds "$LOGS_SECONDS" --records-per-second "$LOGS_RATE")
    [[ $signal == traces ]] && shape=(--pods "$TRACES_PODS" --rounds "$TRACES_SECONDS" --records-per-second "$TRACES_RATE")
    # Data starts on the hour before the span that ends just before now, so every run fills one
    # hourly partition: stored sizes do not depend on when the run happens to cross an hour.
    local span_ms=$(((METRICS_ROUNDS + 1) * 15000)) start_ms
    [[ $signal == logs ]] && span_ms=$(((LOGS_SECONDS + 1) * 1000))
    [[ $signal == traces ]] && span_ms=$(((TRACES_SECONDS + 1) * 1000))
    start_ms=${START_MS:-$((($(date +%s%3N) - span_ms) / 3600000 * 3600000))}
    ((span_ms <= 3600000)) || log "$TARGET: the workload spans more than an hour; it fills several partitions"
    local loadgen=("$LOADGEN_BIN" otlp --endpoint "$endpoint" --transport "$transport" --signal "$signal"
        --clusters "$CLUSTERS" "${shape[@]}" --connections "$CONNECTIONS" --seed "$SEED"
        --compression "$COMPRESSION" --start-ms "$start_ms" --server-pid "$SERVER_PID" --output "$DIR/loadgen.json")
    log "$TARGET: ${loadgen[*]}"
    local status=ok reason="" perf_pid=""
    if [[ $PERF == 1 ]]; then
        # Attached for the whole load generator run; pre-encoding leaves the server idle, so
        # the samples are the replay's.
        perf record -e cpu-clock -g -p "$SERVER_PID" -o "$DIR/perf.data" >"$DIR/perf.log" 2>&1 &
        perf_pid=$!
    fi
    "${loadgen[@]}" >/dev/null 2>"$DIR/loadgen.err" || {
        [[ -s $DIR/loadgen.json ]] || fail "load generator failed before producing a summary: $(tail -n 3 "$DIR/loadgen.err" | tr '\n' ' ')"
        status=failed
        reason="not clean: $(jq -c '{items_acked, items_rejected, items_failed, items_unsent, errors_by_status, error_examples}' "$DIR/loadgen.json")"
        echo "ERROR [$TARGET]: $reason" >&2
    }
    local load_after
    load_after=$(cut -d' ' -f1-3 /proc/loadavg)
    if [[ -n $perf_pid ]]; then
        kill -INT "$perf_pid" 2>/dev/null || true
        wait "$perf_pid" 2>/dev/null || true
        perf report -i "$DIR/perf.data" --no-children --sort symbol --stdio -g none 2>/dev/null |
            grep -E '^ +[0-9.]+%' | head -n 40 >"$DIR/perf.txt" || true
    fi
    alive "$SERVER_PID" || fail "server exited during ingest; log tail: $(tail -n 5 "$DIR/server.log" | tr '\n' ' ')"

    # Bytes appended to the WAL since start (the server's own counter: size-triggered head
    # flushes truncate the WAL during long log runs, so its size on disk undercounts), and what
    # the ingest left on disk before the final flush.
    local wal_bytes wal_disk live_bytes
    wal_bytes=$(curl -fsS --max-time 10 "$BASE/metrics" | awk '$1 == "tributary_wal_bytes" { printf "%.0f\n", $2 }')
    [[ -n $wal_bytes ]] || fail "no tributary_wal_bytes in $BASE/metrics"
    wal_disk=$(bytes_of "$DIR/data/wal")
    live_bytes=$(bytes_of "$DIR/data")
    local auto_flushes
    auto_flushes=$(grep -c 'flushed head to parquet' "$DIR/server.log" || true)
    log "$TARGET: flushing"
    curl -fsS -X POST --max-time "$PERSIST_TIMEOUT" "$BASE/api/v1/admin/flush" >/dev/null ||
        fail "POST /api/v1/admin/flush failed"
    local tables stored
    tables=$(table_bytes "$DIR/data")
    # Everything but the WAL: the Parquet tables (and their catalogs) the flush wrote.
    stored=$(jq 'to_entries | map(select(.key != "wal") | .value) | add // 0' <<<"$tables")
    ((stored > 0)) || fail "nothing but the WAL in $DIR/data after the flush: $tables"
    local cpu_after peak_after
    cpu_after=$(awk -v tck="$(getconf CLK_TCK)" '{ sub(/^.*\) /, ""); printf "%.2f\n", ($12 + $13) / tck }' "/proc/$SERVER_PID/stat")
    # %.0f, not %d: mawk's %d saturates at 2^31-1, i.e. at 2 GiB.
    peak_after=$(awk '/^VmHWM:/ { printf "%.0f\n", $2 * 1024 }' "/proc/$SERVER_PID/status")
    stop_server

    local top='[]'
    if [[ -s $DIR/perf.txt ]]; then
        top=$(awk '{ p = $1; sub(/%/, "", p); $1 = ""; sub(/^ +/, ""); sub(/ +- -$/, ""); print p "\t" $0 }' "$DIR/perf.txt" |
            jq -R -s 'split("\n") | map(select(length > 0) | split("\t") | {percent: (.[0] | tonumber), symbol: .[1]})')
    fi
    jq -n --arg scenario "$scenario" --arg version "$VERSION" --arg status "$status" --arg reason "$reason" \
        --arg server_cmd "$(cat "$DIR/server.cmd")" --arg loadgen_cmd "${loadgen[*]}" --arg load_after "$load_after" \
        --argjson wal "$wal_bytes" --argjson wal_disk "$wal_disk" --argjson live "$live_bytes" \
        --argjson auto_flushes "${auto_flushes:-0}" --argjson tables "$tables" --argjson stored "$stored" \
        --argjson cpu_after "$cpu_after" --argjson peak_after "$peak_after" --argjson perf_top "$top" \
        --slurpfile lg "$DIR/loadgen.json" '
        $lg[0] as $l | ($l.items_acked) as $n |
        def per(x): if $n > 0 then x / $n else null end;
        {scenario: $scenario, version: $version, status: $status, reason: $reason, item: $l.item,
         server_command: $server_cmd, loadgen_command: $loadgen_cmd, loadavg_after: $load_after, loadgen: $l,
         items_per_s: $l.acked_items_per_second, samples_per_s: $l.acked_samples_per_second,
         cpu_s_per_million_items: $l.server.cpu_seconds_per_million_items,
         cpu_s_per_million_samples: $l.server.cpu_seconds_per_million_samples,
         peak_rss_bytes: $l.server.peak_rss_bytes,
         wire_bytes_per_item: $l.pregenerated.body_bytes_per_item,
         protobuf_bytes_per_item: $l.pregenerated.raw_bytes_per_item,
         wal_bytes: $wal, wal_bytes_per_item: per($wal), wal_bytes_on_disk_before_flush: $wal_disk,
         live_bytes: $live, head_flushes_during_ingest: $auto_flushes,
         stored: {bytes: $stored, bytes_per_item: per($stored), tables_after_flush: $tables,
                  method: "du -sb of every DATA_DIR subdirectory but wal/ after POST /api/v1/admin/flush"},
         including_flush: {cpu_seconds: ($cpu_after - $l.server.cpu_seconds_before),
                           cpu_s_per_million_items: per(($cpu_after - $l.server.cpu_seconds_before) * 1e6),
                           peak_rss_bytes: $peak_after},
         perf_top: $perf_top}' >"$DIR/result.json"
    [[ $status == ok ]] || exit 1
}

# ---------------------------------------------------------------------------------------------

log "scenarios: $SCENARIOS; $CLUSTERS clusters, $CONNECTIONS connections, $COMPRESSION"
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
FAILED=0
for s in $SCENARIOS; do
    t="tributary-${s%/*}-${s#*/}"
    set +e
    (
        set -e
        run_scenario "$s"
    )
    rc=$?
    set -e
    if ((rc != 0)); then
        FAILED=1
        if [[ ! -s $WORK/$t/result.json ]]; then
            mkdir -p "$WORK/$t"
            reason=$(cat "$WORK/$t.reason" 2>/dev/null || echo "exit status $rc")
            jq -n --arg scenario "$s" --arg reason "$reason" '{scenario: $scenario, status: "failed", reason: $reason}' \
                >"$WORK/$t/result.json"
        fi
    fi
    # Keep the evidence of each scenario (loadgen summary, server log, profile) with the results.
    mkdir -p "$RUNS_DIR/$t"
    for f in loadgen.json loadgen.err server.log server.cmd perf.txt; do
        [[ -e $WORK/$t/$f ]] && cp "$WORK/$t/$f" "$RUNS_DIR/$t/"
    done
done

mkdir -p "$(dirname "$RESULTS")"
MACHINE=$(jq -n --arg nproc "$(nproc)" --arg free "$(free -g | awk '/^Mem:/ { print $2 }')" --arg kernel "$(uname -srm)" \
    --arg cpu "$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)" \
    --arg load_before "$LOAD_BEFORE" --arg load_after "$(cut -d' ' -f1-3 /proc/loadavg)" \
    '{nproc: ($nproc | tonumber), mem_gib: $free, kernel: $kernel, cpu: $cpu, loadavg_before: $load_before, loadavg_after: $load_after}')
jq -n --arg command "$COMMAND" --arg date "$(date -u +%Y-%m-%dT%H:%M:%SZ)" --argjson machine "$MACHINE" \
    '{date: $date, command: $command, machine: $machine, scenarios: [inputs]}' \
    $(for s in $SCENARIOS; do echo "$WORK/tributary-${s%/*}-${s#*/}/result.json"; done) >"$RESULTS"

# Markdown report on stdout.
jq -r '
def r(n): if . == null then "n/a" else (. * pow(10; n) | round) / pow(10; n) | tostring end;
def big: if . == null then "n/a" else (round | tostring | [scan("\\d{1,3}(?=(?:\\d{3})*$)")] | join(",")) end;
def mib: if . == null then "n/a" else (. / 1048576 | r(0)) + " MiB" end;
"## OTLP ingest",
"",
"Machine: \(.machine.nproc) CPUs (\(.machine.cpu)), \(.machine.mem_gib) GiB, \(.machine.kernel), load average \(.machine.loadavg_before) before / \(.machine.loadavg_after) after. \(.date).",
"",
"Command: `\(.command)`",
"",
"| scenario | status | items/s | server CPU-s per 1M items | Prometheus samples/s | CPU-s per 1M samples | peak RSS | wire B/item | WAL B/item | stored B/item | p99 |",
"|---|---|---|---|---|---|---|---|---|---|---|",
(.scenarios[] | if .loadgen != null then
  "| \(.scenario) (\(.item)) | \(.status) | \(.items_per_s | big) | \(.cpu_s_per_million_items | r(2)) | \(if .scenario | startswith("metrics") then (.samples_per_s | big) else "–" end) | \(if .scenario | startswith("metrics") then (.cpu_s_per_million_samples | r(2)) else "–" end) | \(.peak_rss_bytes | mib) | \(.wire_bytes_per_item | r(1)) | \(.wal_bytes_per_item | r(1)) | \(.stored.bytes_per_item | r(2)) | \(.loadgen.latency_ms.p99 | r(1)) ms |"
  else "| \(.scenario) | **FAILED** | \(.reason) | | | | | | | | |" end),
"",
(.scenarios[] | select(.loadgen != null) |
  "- \(.scenario)\(if .status != "ok" then " (FAILED: \(.reason))" else "" end): \(.loadgen.items_acked | big) \(.item) acked in \(.loadgen.requests) requests (\(.loadgen.pregenerated.items_per_request | r(0)) per request, \(.protobuf_bytes_per_item | r(1)) B/item protobuf), \(.loadgen.retries) retries, \(.head_flushes_during_ingest) size-triggered head flushes during ingest, load average after \(.loadavg_after); tables after flush \(.stored.tables_after_flush | tostring); CPU-s per 1M incl. flush \(.including_flush.cpu_s_per_million_items | r(2)), peak RSS after flush \(.including_flush.peak_rss_bytes | mib)\(if (.perf_top | length) > 0 then "; top symbols: " + ([.perf_top[:6][] | "\(.percent)% \(.symbol)"] | join(", ")) else "" end)."),
"",
"JSON: '"$RESULTS"'"
' "$RESULTS"

exit "$FAILED"
