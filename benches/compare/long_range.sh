#!/usr/bin/env bash
# Long-range queries from Parquet: a 30-day SLO burn rate and a 7-day `query_range` at a 5 m
# step, each answered with aggregations read in parts (`query.part_samples`, the default
# 10,000,000) and read whole (`part_samples` above the data), on a fresh server per setting so
# peak RSS (VmHWM) is the query's. See BENCHMARKS.md ("Long ranges"). Configured through the
# environment:
#
#   CLUSTERS=3 SERIES=3000 DAYS=30 INTERVAL_SECS=60 CONNECTIONS=4   workload (SERIES per cluster)
#   SETTINGS="10000000 2000000 1000000000000"   part_samples values to run, in this order
#   QUERIES="burn30d range7d"                   which queries; `all7d` (a 7-day count by cluster
#                                               of every series at a 5 m step) touches all data
#   RUNS=3                                      timed runs per query (the first reads cold)
#   TRIBUTARY_BIN=target/release/tributary LOADGEN_BIN=target/release/tributary-loadgen
#   READY_TIMEOUT=120 STOP_TIMEOUT=600 KEEP_DATA=0
#
# Prints one line per query run: setting, query, seconds, RSS and VmHWM after it, and the answer's
# first bytes. Exit status: 0 when every answer succeeded and matched across settings.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$ROOT"

CLUSTERS=${CLUSTERS:-3}
SERIES=${SERIES:-3000}
DAYS=${DAYS:-30}
INTERVAL_SECS=${INTERVAL_SECS:-60}
CONNECTIONS=${CONNECTIONS:-4}
SETTINGS=${SETTINGS:-"10000000 2000000 1000000000000"}
QUERIES=${QUERIES:-"burn30d range7d"}
RUNS=${RUNS:-3}
TRIBUTARY_BIN=${TRIBUTARY_BIN:-target/release/tributary}
LOADGEN_BIN=${LOADGEN_BIN:-target/release/tributary-loadgen}
TRIBUTARY_READY_PATH=/-/ready
READY_TIMEOUT=${READY_TIMEOUT:-120}
STOP_TIMEOUT=${STOP_TIMEOUT:-600}
KEEP_DATA=${KEEP_DATA:-0}

# shellcheck source=benches/compare/lib.sh
source "$ROOT/benches/compare/lib.sh"

WORK=$(mktemp -d /tmp/tributary-long.XXXXXX)
trap cleanup EXIT
TARGET=tributary
DIR=$WORK
[[ -x $LOADGEN_BIN ]] || fail "binary $LOADGEN_BIN not built (cargo build --release); not skipping"
for query in $QUERIES; do
    [[ $query =~ ^(burn30d|range7d|all7d)$ ]] || fail "unknown query $query in QUERIES (burn30d, range7d, all7d)"
done

SAMPLES=$((DAYS * 86400 / INTERVAL_SECS))
NOW_MS=$(date +%s%3N)
START_MS=$(((NOW_MS / 1000 / INTERVAL_SECS - SAMPLES) * INTERVAL_SECS * 1000))
END=$(((START_MS + (SAMPLES - 1) * INTERVAL_SECS * 1000) / 1000))

# Ingest once, then stop (the graceful stop flushes the head, so every query reads Parquet).
PORT=$(free_port)
BASE="http://127.0.0.1:$PORT"
KEEP_DATA=1 start_tributary
log "ingest: $CLUSTERS clusters x $SERIES series x $SAMPLES samples at ${INTERVAL_SECS}s from $START_MS"
"$LOADGEN_BIN" --url "$URL" --clusters "$CLUSTERS" --series "$SERIES" --samples "$SAMPLES" \
    --interval-secs "$INTERVAL_SECS" --connections "$CONNECTIONS" --start-ms "$START_MS" \
    --server-pid "$SERVER_PID" --output "$WORK/loadgen.json" >"$WORK/loadgen.log" 2>&1 ||
    fail "loadgen failed: $(tail -n 5 "$WORK/loadgen.log" | tr '\n' ' ')"
KEEP_DATA=1 stop_server
log "stored: $(du -sh "$DIR/data/metrics" | cut -f1) in $(find "$DIR/data/metrics" -name '*.parquet' | wc -l) files"

BURN='sum by (cluster) (rate(http_requests_total{code=~"5.."}[30d])) / sum by (cluster) (rate(http_requests_total[30d]))'
RANGE='sum by (cluster) (rate(http_requests_total[5m]))'
ALL='count by (cluster) ({__name__=~".+"})'
# Equal answers up to the rounding another summation order gives (relative 1e-9).
same_answer() {
    printf '%s' "$1" >"$WORK/a.json"
    printf '%s' "$2" >"$WORK/b.json"
    python3 - "$WORK/a.json" "$WORK/b.json" <<'PY'
import json, math, sys
a, b = (json.load(open(x))["data"]["result"] for x in sys.argv[1:3])
def rows(r):
    return sorted((json.dumps(s["metric"], sort_keys=True), s.get("values") or [s["value"]]) for s in r)
def close(x, y):
    x, y = float(x), float(y)
    return (math.isnan(x) and math.isnan(y)) or x == y or abs(x - y) <= 1e-9 * max(abs(x), abs(y))
ok = len(a) == len(b) and all(
    ka == kb and len(va) == len(vb) and all(p[0] == q[0] and close(p[1], q[1]) for p, q in zip(va, vb))
    for (ka, va), (kb, vb) in zip(rows(a), rows(b)))
sys.exit(0 if ok else 1)
PY
}

status=0
declare -A first_answer
for parts in $SETTINGS; do
    cat >"$WORK/config.toml" <<TOML
[query]
part_samples = $parts
max_samples = 1000000000
timeout = "30m"
[storage]
max_select_samples = 1000000000
TOML
    PORT=$(free_port)
    BASE="http://127.0.0.1:$PORT"
    start_server "$TRIBUTARY_BIN" --config "$WORK/config.toml" --http-listen "127.0.0.1:$PORT" --data-dir "$DIR/data"
    wait_ready "$BASE$TRIBUTARY_READY_PATH"
    run_query() { # name, path, curl --data-urlencode arguments...
        local name=$1 path=$2
        shift 2
        local t0 t1 out rss hwm
        t0=$(date +%s%N)
        out=$(curl -s --max-time 1800 "$@" "$BASE$path")
        t1=$(date +%s%N)
        rss=$(awk '/VmRSS/ {print $2}' "/proc/$SERVER_PID/status")
        hwm=$(awk '/VmHWM/ {print $2}' "/proc/$SERVER_PID/status")
        printf '%s part_samples=%s %s %.3f s rss=%d MiB hwm=%d MiB %s\n' "$(date -u +%H:%M:%S)" "$parts" "$name" \
            "$(echo "($t1 - $t0) / 1000000000" | bc -l)" $((rss / 1024)) $((hwm / 1024)) "${out:0:160}"
        [[ $out == '{"status":"success"'* ]] || status=1
        if [[ -z ${first_answer[$name]:-} ]]; then
            first_answer[$name]=$out
        elif ! same_answer "${first_answer[$name]}" "$out"; then
            echo "MISMATCH: $name answers differently with part_samples=$parts" >&2
            status=1
        fi
    }
    week() { # name, expression: a 7-day range at a 5 m step
        run_query "$1" /api/v1/query_range --data-urlencode "query=$2" \
            --data-urlencode "start=$((END - 7 * 86400))" --data-urlencode "end=$END" --data-urlencode "step=300"
    }
    for query in $QUERIES; do
        for run in $(seq "$RUNS"); do
            case $query in
            burn30d) run_query burn30d /api/v1/query --data-urlencode "query=$BURN" --data-urlencode "time=$END" ;;
            range7d) week range7d "$RANGE" ;;
            all7d) week all7d "$ALL" ;;
            esac
        done
    done
    log "parts read: $(curl -fsS "$BASE/metrics" | awk '$1 == "tributary_query_parts_total" {print $2}')"
    KEEP_DATA=1 stop_server
done
exit $status
