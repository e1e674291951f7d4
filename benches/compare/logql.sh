#!/usr/bin/env bash
# LogQL query latency through the Loki HTTP API: starts the release `tributary` binary with
# `--role query` over the log workload that storage/examples/log_scan.rs writes (≥ 5 GB of
# k8s-like log lines, 2 hours, 3 clusters x 12 services x 4 pods), then sends each query the way
# Grafana's Loki data source does (GET /loki/api/v1/query_range, start/end in ns, step in ms,
# direction=backward, limit) RUNS times after WARMUP untimed runs, and reports curl's
# time_total (median, min, max), the server's CPU per query and the result size. See
# BENCHMARKS.md ("Log scan"). Usage:
#
#   benches/compare/logql.sh [DATASET_DIR]      default /tmp/logscan
#
# The dataset is generated first (untimed, ~3 min) when DATASET_DIR has no workload.txt:
#   cargo run --release -p tributary-storage --features test-util --example log_scan -- \
#       --gb $GB --dir DATASET_DIR --generate-only
# Configured through the environment:
#
#   RUNS=10 WARMUP=1      timed and untimed runs per query
#   LIMIT=1000            `limit` of log queries (Grafana's default "line limit")
#   STEP=60000ms          `step` (sent with every query, as Grafana does; used by metric ones)
#   GB=5                  size of a generated dataset (GB of line bodies)
#   TRIBUTARY_BIN=target/release/tributary   READY_TIMEOUT=120   STOP_TIMEOUT=60
#   QUERY_TIMEOUT=300     curl --max-time per request
#   RESULTS=target/compare/logql-<time>.json   KEEP_DATA=0 (1 keeps the server log)
#
# Every response must be HTTP 200 with status "success" and a non-empty result (every query
# here matches data in the workload), and every run must return the same result; log queries
# are also checked line by line (in range, labels and line content as the query demands).
# Otherwise the query is FAILED, the script goes on with the others and exits 1.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$ROOT"

DATASET=${1:-/tmp/logscan}
RUNS=${RUNS:-10}
WARMUP=${WARMUP:-1}
LIMIT=${LIMIT:-1000}
STEP=${STEP:-60000ms}
GB=${GB:-5}
TRIBUTARY_BIN=${TRIBUTARY_BIN:-target/release/tributary}
READY_TIMEOUT=${READY_TIMEOUT:-120}
STOP_TIMEOUT=${STOP_TIMEOUT:-60}
QUERY_TIMEOUT=${QUERY_TIMEOUT:-300}
RESULTS=${RESULTS:-target/compare/logql-$(date -u +%Y%m%dT%H%M%SZ).json}
KEEP_DATA=${KEEP_DATA:-0}

COMMAND="RUNS=$RUNS WARMUP=$WARMUP LIMIT=$LIMIT STEP=$STEP benches/compare/logql.sh $DATASET"
WORK=$(mktemp -d "${TMPDIR:-/tmp}/tributary-logql.XXXXXX")
TARGET=tributary
# lib.sh's DIR is the server's scratch dir (log, command), never the dataset: its stop_server
# removes "$DIR/data".
DIR="$WORK/$TARGET"
mkdir -p "$DIR"

# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# shellcheck disable=SC2317  # called by the trap
on_exit() {
    stop_server
    if [[ $KEEP_DATA == 1 && -e $DIR/server.log ]]; then
        mkdir -p "${RESULTS%.json}.runs"
        cp "$DIR/server.log" "$DIR/server.cmd" "${RESULTS%.json}.runs/"
    fi
    cleanup
}
trap on_exit EXIT

for tool in curl jq ss awk find; do
    command -v "$tool" >/dev/null || { echo "logql.sh needs $tool" >&2; exit 1; }
done
((RUNS >= 1)) || { echo "RUNS must be at least 1" >&2; exit 1; }

# ---------------------------------------------------------------------------------- dataset

if [[ ! -s $DATASET/workload.txt ]]; then
    log "no workload in $DATASET: generating it (untimed)"
    cargo run --release -p tributary-storage --features test-util --example log_scan -- \
        --gb "$GB" --dir "$DATASET" --generate-only
fi
# The 4th field is log_scan's generator version; v1 data has no JSON 5xx timeout lines, so the
# issue's example query would find nothing.
read -r W_LINES W_BODY_BYTES _ W_VERSION <"$DATASET/workload.txt" || true
[[ ${W_VERSION:-v1} == v2 ]] ||
    { echo "$DATASET holds log_scan workload ${W_VERSION:-v1}, not v2: delete it and rerun" >&2; exit 1; }

# The data's span from the file keys (logs/<day>/<hour>/<cluster>/<min_ms>-<max_ms>-<rows>-<uuid>.parquet),
# widened to whole hours: the absolute time range one would pick in Grafana (00:00 to 02:00).
read -r FILES MIN_MS MAX_MS < <(find "$DATASET/logs" -name '*.parquet' -printf '%f\n' |
    awk -F- '{ n++; if (n == 1 || $1 < lo) lo = $1; if ($2 > hi) hi = $2 } END { printf "%d %.0f %.0f\n", n, lo, hi }')
((FILES > 0)) || { echo "no Parquet files under $DATASET/logs" >&2; exit 1; }
START_NS=$((MIN_MS / 3600000 * 3600000 * 1000000))
END_NS=$(((MAX_MS + 1 + 3599999) / 3600000 * 3600000 * 1000000))
HOUR_NS=3600000000000
LAST_HOUR_NS=$((END_NS - HOUR_NS))
DATASET_BYTES=$(du -sb "$DATASET/logs" | cut -f1)
log "dataset $DATASET: $W_LINES lines, $W_BODY_BYTES B of bodies, $FILES files, $DATASET_BYTES B; span [$START_NS, $END_NS) ns"

# ---------------------------------------------------------------------------------- queries

# name | kind (log/metric) | start | end | query | jq check on the response (true when right)
# Log-query checks look at every returned line; `ts` is the line's timestamp as a number.
QUERIES=()
# (One line each: `read` takes the fields apart.)
add() { QUERIES+=("$1"$'\x1f'"$2"$'\x1f'"$3"$'\x1f'"$4"$'\x1f'"$5"$'\x1f'"$6"); }
# shellcheck disable=SC2016  # jq variables, not shell ones
LINES='[.data.result[] | .stream as $s | .values[] | {s: $s, ts: (.[0] | tonumber), line: .[1]}]'
# A line of the issue's example: a JSON 5xx line, or (Tributary keeps Loki 2's rule that numeric
# label filters pass lines that already carry an error) a logfmt timeout line that `| json`
# could not parse. Loki 3 drops the latter; the report counts them (`lines with __error__`).
ISSUE_LINE='(.s.cluster | startswith("prod-")) and .s.service_name == "checkout" and (.line | contains("timeout")) and (if .s.__error__ == null then (.line | fromjson | .status >= 500) else .s.__error__ == "JSONParserErr" end)'
ISSUE='{cluster=~"prod-.*", service_name="checkout"} |= "timeout" | json | status >= 500'
add issue_example_2h log "$START_NS" "$END_NS" "$ISSUE" "$LINES | all($ISSUE_LINE)"
add issue_example_1h log "$LAST_HOUR_NS" "$END_NS" "$ISSUE" "$LINES | all(.ts >= $LAST_HOUR_NS and $ISSUE_LINE)"
# The same without the lines `| json` failed on: what Loki 3 answers to the issue's example.
add issue_example_2h_no_errors log "$START_NS" "$END_NS" \
    '{cluster=~"prod-.*", service_name="checkout"} |= "timeout" | json | __error__="" | status >= 500' \
    "$LINES | all(.s.__error__ == null and $ISSUE_LINE)"
add slo_error_rate metric "$START_NS" "$END_NS" \
    'sum by (cluster) (rate({service_name="checkout"} |= "error" [5m]))' \
    '[.data.result[].metric.cluster] | sort == ["prod-eu-1", "prod-us-1", "staging"]'
add explore_stream log "$START_NS" "$END_NS" \
    '{cluster="prod-eu-1", service_name="checkout"}' \
    "$LINES | all(.s.cluster == \"prod-eu-1\" and .s.service_name == \"checkout\")"
add timeout_count_all metric "$START_NS" "$END_NS" \
    'sum by (cluster) (count_over_time({cluster=~".+"} |= "timeout" [5m]))' \
    '[.data.result[].metric.cluster] | sort == ["prod-eu-1", "prod-us-1", "staging"]'
add logfmt_level_error log "$START_NS" "$END_NS" \
    '{cluster="prod-eu-1", service_name="checkout"} | logfmt | level="error"' \
    "$LINES | all(.s.level == \"error\" and (.line | startswith(\"level=error \")))"
add logfmt_level_error_filtered log "$START_NS" "$END_NS" \
    '{cluster="prod-eu-1", service_name="checkout"} |= "level=error" | logfmt | level="error"' \
    "$LINES | all(.s.level == \"error\" and (.line | startswith(\"level=error \")))"
# What Explore sends next to the issue's example to draw the logs volume histogram. The series
# without `level` holds the lines `| json` failed on (see ISSUE_LINE).
add explore_volume metric "$START_NS" "$END_NS" \
    'sum by (level) (count_over_time({cluster=~"prod-.*", service_name="checkout"} |= "timeout" | json | status >= 500 | drop __error__ [1m]))' \
    '[.data.result[].metric.level] - [null] == ["error"]'

# ---------------------------------------------------------------------------------- server

PORT=$(free_port) || fail "no free port"
BASE="http://127.0.0.1:$PORT"
[[ -x $TRIBUTARY_BIN ]] || fail "binary $TRIBUTARY_BIN not built (cargo build --release --bin tributary)"
VERSION=$("$TRIBUTARY_BIN" --version 2>/dev/null | head -n1 || true)
# The query role opens no receivers (no gRPC/OTLP ports) and no WAL: it only reads the object
# store, whose file catalog it lists at startup (and again every 15 s).
start_server "$TRIBUTARY_BIN" --role query --data-dir "$DATASET" --http-listen "127.0.0.1:$PORT"
wait_ready "$BASE/-/ready"
deadline=$((SECONDS + READY_TIMEOUT))
until curl -fsS --max-time 10 -G "$BASE/loki/api/v1/labels" --data-urlencode "start=$START_NS" \
    --data-urlencode "end=$END_NS" 2>/dev/null | jq -e '.data | index("service_name") != null' >/dev/null; do
    alive "$SERVER_PID" || fail "server exited; log tail: $(tail -n 5 "$DIR/server.log" | tr '\n' ' ')"
    ((SECONDS < deadline)) || fail "/loki/api/v1/labels shows no service_name after ${READY_TIMEOUT}s"
    sleep 0.5
done
log "server ready on $BASE (pid $SERVER_PID): labels $(curl -fsS -G "$BASE/loki/api/v1/labels" \
    --data-urlencode "start=$START_NS" --data-urlencode "end=$END_NS" | jq -c .data)"

cpu_ticks() { awk '{ sub(/^.*\) /, ""); print $12 + $13 }' "/proc/$SERVER_PID/stat"; }
CLK_TCK=$(getconf CLK_TCK)

# One request as Grafana sends it; writes the body to $2, prints "http_code time_total size".
request() {
    local n=$1 out=$2 kind start end query
    IFS=$'\x1f' read -r _ kind start end query _ <<<"${QUERIES[$n]}"
    local args=(--data-urlencode "query=$query" --data-urlencode "direction=backward"
        --data-urlencode "start=$start" --data-urlencode "end=$end" --data-urlencode "step=$STEP")
    # Grafana sends its line limit with metric queries too; it changes nothing there.
    args+=(--data-urlencode "limit=$LIMIT")
    curl -sS -G --max-time "$QUERY_TIMEOUT" -o "$out" -w '%{http_code} %{time_total} %{size_download}\n' \
        "${args[@]}" "$BASE/loki/api/v1/query_range" || echo "000 0 0"
}

# The answer reduced to what must not change between runs.
canonical() {
    jq -cS 'if .data.resultType == "streams" then [.data.result[] | {stream, values}]
            else [.data.result[] | {metric, values}] end' "$1"
}

LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
FAILED=0
: >"$WORK/rows.jsonl"
for n in "${!QUERIES[@]}"; do
    IFS=$'\x1f' read -r name kind start end query check <<<"${QUERIES[$n]}"
    qdir="$WORK/q$n"
    mkdir -p "$qdir"
    status=ok reason=""
    load_at_start=$(cut -d' ' -f1-3 /proc/loadavg)
    for ((i = 0; i < WARMUP; i++)); do request "$n" "$qdir/warmup.json" >/dev/null; done
    cpu0=$(cpu_ticks)
    : >"$qdir/times"
    for ((i = 0; i < RUNS; i++)); do
        read -r code secs size < <(request "$n" "$qdir/run$i.json")
        echo "$code $secs $size" >>"$qdir/times"
    done
    cpu1=$(cpu_ticks)
    last="$qdir/run$((RUNS - 1)).json"
    # Every run: 200, success, non-empty, the same answer as the first.
    first_canon=""
    for ((i = 0; i < RUNS; i++)); do
        code=$(sed -n "$((i + 1))p" "$qdir/times" | cut -d' ' -f1)
        f="$qdir/run$i.json"
        if [[ $code != 200 ]]; then
            status=failed reason="run $i: HTTP $code: $(head -c 300 "$f" 2>/dev/null | tr '\n' ' ')"
            break
        fi
        if ! jq -e '.status == "success" and (.data.result | length > 0)' "$f" >/dev/null 2>&1; then
            status=failed reason="run $i: not success or empty result: $(head -c 300 "$f" | tr '\n' ' ')"
            break
        fi
        canon=$(canonical "$f" | md5sum | cut -d' ' -f1)
        if [[ -z $first_canon ]]; then
            first_canon=$canon
        elif [[ $canon != "$first_canon" ]]; then
            status=failed reason="run $i returned another answer than run 0"
            break
        fi
    done
    if [[ $status == ok ]] && ! jq -e "$check" "$last" >/dev/null 2>&1; then
        status=failed reason="answer fails the check: $check"
    fi
    if [[ $status == ok && $kind == log ]] &&
        ! jq -e --argjson s "$start" --argjson e "$end" --argjson lim "$LIMIT" '
            [.data.result[].values[][0] | tonumber] as $ts
            | ($ts | length) <= $lim and all($ts[]; . >= $s and . < $e)' "$last" >/dev/null; then
        status=failed reason="lines outside [start, end) or more than limit"
    fi
    [[ $status == ok ]] || { FAILED=1; echo "ERROR [$name]: $reason" >&2; }
    # Result size and server-side stats from the last run (null when it failed outright).
    size=$(jq -c 'if .data.resultType == "streams" then
            {type: "streams", streams: (.data.result | length), lines: ([.data.result[].values | length] | add // 0),
             lines_with_error: ([.data.result[] | select(.stream.__error__ != null) | .values | length] | add // 0),
             newest_ns: ([.data.result[].values[][0] | tonumber] | max), oldest_ns: ([.data.result[].values[][0] | tonumber] | min)}
          else {type: .data.resultType, series: (.data.result | length), points: ([.data.result[].values | length] | add // 0),
                value_sum: ([.data.result[].values[][1] | tonumber] | add // 0)} end
          + {lines_processed: .data.stats.summary.totalLinesProcessed, bytes_processed: .data.stats.summary.totalBytesProcessed,
             exec_time_s: .data.stats.summary.execTime}' "$last" 2>/dev/null || echo null)
    jq -nc --arg name "$name" --arg kind "$kind" --arg query "$query" --argjson start "$start" --argjson stop "$end" \
        --arg status "$status" --arg reason "$reason" --argjson size "$size" --arg load "$load_at_start" \
        --argjson cpu_ticks "$((cpu1 - cpu0))" --argjson tck "$CLK_TCK" --argjson runs "$RUNS" \
        --arg step "$STEP" --argjson limit "$LIMIT" --rawfile times "$qdir/times" '
        ($times | split("\n") | map(select(length > 0) | split(" ")) ) as $t
        | ($t | map(.[1] | tonumber * 1000) | sort) as $ms
        | ($ms | length) as $n
        | {name: $name, kind: $kind, query: $query, start_ns: $start, end_ns: $stop,
           hours: (($stop - $start) / 3.6e12), step: (if $kind == "metric" then $step else null end),
           limit: (if $kind == "log" then $limit else null end), status: $status, reason: $reason,
           loadavg_at_start: $load, runs: $n, wall_ms: $ms,
           median_ms: (if $n == 0 then null elif $n % 2 == 1 then $ms[($n - 1) / 2] else ($ms[$n / 2 - 1] + $ms[$n / 2]) / 2 end),
           min_ms: $ms[0], max_ms: $ms[-1],
           server_cpu_ms_per_query: ($cpu_ticks * 1000 / $tck / $runs),
           response_bytes: ($t[-1][2] | tonumber), result: $size}' >>"$WORK/rows.jsonl"
    log "$name: $(tail -n1 "$WORK/rows.jsonl" | jq -r '"\(.status) median \(.median_ms | round) ms (min \(.min_ms | round), max \(.max_ms | round)), server CPU \(.server_cpu_ms_per_query | round) ms/query, \(.result | tostring)"')"
done
LOAD_AFTER=$(cut -d' ' -f1-3 /proc/loadavg)

mkdir -p "$(dirname "$RESULTS")"
jq -s --arg command "$COMMAND" --arg date "$(date -u +%Y-%m-%dT%H:%M:%SZ)" --arg version "$VERSION" \
    --arg commit "$(git rev-parse --short HEAD 2>/dev/null || echo unknown)" \
    --arg server_cmd "$(cat "$DIR/server.cmd")" --arg dataset "$DATASET" \
    --argjson lines "$W_LINES" --argjson body "$W_BODY_BYTES" --argjson files "$FILES" --argjson bytes "$DATASET_BYTES" \
    --argjson start "$START_NS" --argjson stop "$END_NS" \
    --arg nproc "$(nproc)" --arg cpu "$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)" \
    --arg load_before "$LOAD_BEFORE" --arg load_after "$LOAD_AFTER" '
    {date: $date, command: $command, commit: $commit, version: $version, server_command: $server_cmd,
     machine: {nproc: ($nproc | tonumber), cpu: $cpu, loadavg_before: $load_before, loadavg_after: $load_after},
     dataset: {dir: $dataset, lines: $lines, body_bytes: $body, files: $files, parquet_bytes: $bytes,
               start_ns: $start, end_ns: $stop},
     queries: .}' "$WORK/rows.jsonl" >"$RESULTS"

# Markdown report on stdout.
jq -r '
def ms: if . == null then "n/a" elif . < 10 then (. * 10 | round / 10 | tostring) else (round | tostring) end;
def esc: gsub("\\|"; "\\|");
def size: if .result == null then "n/a"
  elif .result.type == "streams" then "\(.result.lines) lines in \(.result.streams) streams\(if .result.lines_with_error > 0 then " (\(.result.lines_with_error) with `__error__`)" else "" end)"
  else "\(.result.series) series × \(.result.points / (.result.series | if . == 0 then 1 else . end) | round) points" end;
"## LogQL query latency through the Loki API",
"",
"Machine: \(.machine.nproc) CPUs (\(.machine.cpu)), load average \(.machine.loadavg_before) before / \(.machine.loadavg_after) after. \(.date), commit \(.commit).",
"",
"Dataset: \(.dataset.dir), \(.dataset.lines) lines, \(.dataset.body_bytes / 1e9 * 100 | round / 100) GB of bodies, \(.dataset.files) Parquet files (\(.dataset.parquet_bytes / 1e9 * 100 | round / 100) GB).",
"",
"Command: `\(.command)`; server: `\(.server_command)`",
"",
"| query | range | result | median | min | max | server CPU/query | lines read |",
"|---|---|---|---:|---:|---:|---:|---:|",
(.queries[] | "| `\(.query | esc)`\(if .status != "ok" then " **FAILED**: \(.reason | esc)" else "" end) | \(.hours) h\(if .kind == "metric" then ", step \(.step)" else ", limit \(.limit)" end) | \(size) | \(.median_ms | ms) ms | \(.min_ms | ms) ms | \(.max_ms | ms) ms | \(.server_cpu_ms_per_query | ms) ms | \(.result.lines_processed // "n/a") |"),
"",
"JSON: '"$RESULTS"'"
' "$RESULTS"

exit "$FAILED"
