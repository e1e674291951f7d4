#!/usr/bin/env bash
# The ruler's target of issue 17: 1,000 recording rules over 100 clusters, Tributary's ruler
# (all-in-one) against vmalert evaluating the same rule file through Tributary's Prometheus API
# and writing its results back to Tributary by remote write. See BENCHMARKS.md ("Recording rules
# over 100 clusters"). Configured through the environment:
#
#   CLUSTERS=100 SERIES=3000        workload (SERIES per cluster, kube-prometheus-like series)
#   RULES=1000 RULE_GROUPS=20       generated recording rules, spread round-robin over the groups
#   INTERVAL=15                     evaluation interval in seconds (every group)
#   RUN_SECS=240                    measured window per side, after a warm-up of two intervals
#   LOAD_SECS=300                   longest the data load may take (the data is written that far ahead)
#   IDLE_SECS=30                    idle baseline of each Tributary (data loaded, no evaluation)
#   SIDES="tributary vmalert"       which sides run, in this order
#   TRIBUTARY_BIN=target/release/tributary LOADGEN_BIN=target/release/tributary-loadgen
#   VMALERT_BIN=/usr/bin/vmalert READY_TIMEOUT=120 STOP_TIMEOUT=120 KEEP_DATA=0
#
# How the data is made: each side gets a fresh Tributary with `ingest.limits.max_future = "0s"`,
# loaded before any rule runs with the `tributary-loadgen` workload (CLUSTERS x SERIES series at
# a 15 s scrape interval) covering 15 minutes before now up to the end of the side's run: the
# samples of the run's future are written ahead, so nothing but rule evaluation (and, for
# vmalert, its remote write) runs during the measurement. A query at time t reads only samples
# at or before t, so each evaluation sees exactly what a live feed would have delivered.
#
# What is measured, per side, over RUN_SECS: CPU seconds (utime + stime, /proc/PID/stat) of the
# Tributary server and of vmalert, separately, and the same server's CPU over IDLE_SECS before
# any evaluation (its idle cost, subtracted in the "net" column); every group evaluation's
# duration (ours: `tributary_ruler_rule_group_last_duration_seconds` polled every 3 s with
# its `..._last_evaluation_timestamp_seconds`, so each evaluation is seen once; vmalert: its
# `vmalert_iteration_duration_seconds` summary, quantile 0.99 per group, and the mean from
# `_sum`/`_count` over the window); failed evaluations; the recorded series each side left
# (`count by (__name__)` of the `bench:` series, which must agree between the sides).
#
# Prints a summary and writes it as JSON to RESULTS (default target/compare/rules-<time>.json).
# Exit status 0 when every side ran without failed evaluations and the sides' recorded series agree.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$ROOT"

CLUSTERS=${CLUSTERS:-100}
SERIES=${SERIES:-3000}
RULES=${RULES:-1000}
RULE_GROUPS=${RULE_GROUPS:-20}
INTERVAL=${INTERVAL:-15}
RUN_SECS=${RUN_SECS:-240}
IDLE_SECS=${IDLE_SECS:-30}
SIDES=${SIDES:-"tributary vmalert"}
TRIBUTARY_BIN=${TRIBUTARY_BIN:-target/release/tributary}
LOADGEN_BIN=${LOADGEN_BIN:-target/release/tributary-loadgen}
VMALERT_BIN=${VMALERT_BIN:-/usr/bin/vmalert}
TRIBUTARY_READY_PATH=/-/ready
READY_TIMEOUT=${READY_TIMEOUT:-120}
STOP_TIMEOUT=${STOP_TIMEOUT:-120}
KEEP_DATA=${KEEP_DATA:-0}
RESULTS=${RESULTS:-target/compare/rules-$(date -u +%Y%m%dT%H%M%SZ).json}
SCRAPE_SECS=15
HISTORY_SECS=900
LOAD_SECS=${LOAD_SECS:-300}

# shellcheck source=benches/compare/lib.sh
source "$ROOT/benches/compare/lib.sh"

WORK=$(mktemp -d /tmp/tributary-rules.XXXXXX)
trap 'stop_vmalert; stop_server; cleanup' EXIT
TARGET=rules
DIR=$WORK
for tool in curl jq python3 ss; do
    command -v "$tool" >/dev/null || fail "rules.sh needs $tool"
done
[[ -x $LOADGEN_BIN ]] || fail "binary $LOADGEN_BIN not built (cargo build --release -p tributary-loadgen); not skipping"
[[ -x $VMALERT_BIN ]] || fail "$VMALERT_BIN not found (Debian package victoria-metrics); not skipping"
for side in $SIDES; do
    [[ $side =~ ^(tributary|vmalert)$ ]] || fail "unknown side $side in SIDES (tributary, vmalert)"
done

# --- the rule file -------------------------------------------------------------------------
# Shapes a fleet's recording rules have (kube-prometheus mixins): CPU and memory by namespace
# and pod, request and error rates, error ratios, latency quantiles from classic histograms,
# mean latency, restarts, throttling, node CPU and filesystem use; each over the application
# namespaces and several windows, every one keeping `cluster`.
python3 - "$RULES" "$RULE_GROUPS" "$INTERVAL" >"$WORK/rules.yml" <<'PY'
import itertools, sys
rules, groups, interval = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
namespaces = ["payments", "checkout", "catalog", "search", "auth", "notifications", "orders",
              "inventory", "recommendations", "shipping", "analytics", "ingress-nginx"]
windows = ["1m", "2m", "5m", "10m"]
shapes = [
    ("cpu", 'sum by (cluster, namespace) (rate(container_cpu_usage_seconds_total{{namespace="{ns}"}}[{w}]))'),
    ("cpu_pod", 'sum by (cluster, namespace, pod) (rate(container_cpu_usage_seconds_total{{namespace="{ns}"}}[{w}]))'),
    ("mem_max", 'max by (cluster, namespace) (max_over_time(container_memory_working_set_bytes{{namespace="{ns}"}}[{w}]))'),
    ("mem_avg", 'sum by (cluster, namespace) (avg_over_time(container_memory_working_set_bytes{{namespace="{ns}"}}[{w}]))'),
    ("throttled", 'sum by (cluster, namespace) (rate(container_cpu_cfs_throttled_periods_total{{namespace="{ns}"}}[{w}]))'),
    ("requests", 'sum by (cluster, namespace, handler) (rate(http_requests_total{{namespace="{ns}"}}[{w}]))'),
    ("errors_ratio", 'sum by (cluster, namespace) (rate(http_requests_total{{namespace="{ns}",code=~"5.."}}[{w}])) / sum by (cluster, namespace) (rate(http_requests_total{{namespace="{ns}"}}[{w}]))'),
    ("client_errors_ratio", 'sum by (cluster, namespace) (rate(http_requests_total{{namespace="{ns}",code=~"4.."}}[{w}])) / sum by (cluster, namespace) (rate(http_requests_total{{namespace="{ns}"}}[{w}]))'),
    ("latency_p50", 'histogram_quantile(0.5, sum by (cluster, namespace, le) (rate(http_request_duration_seconds_bucket{{namespace="{ns}"}}[{w}])))'),
    ("latency_p90", 'histogram_quantile(0.9, sum by (cluster, namespace, le) (rate(http_request_duration_seconds_bucket{{namespace="{ns}"}}[{w}])))'),
    ("latency_p99", 'histogram_quantile(0.99, sum by (cluster, namespace, le) (rate(http_request_duration_seconds_bucket{{namespace="{ns}"}}[{w}])))'),
    ("latency_p99_handler", 'histogram_quantile(0.99, sum by (cluster, namespace, handler, le) (rate(http_request_duration_seconds_bucket{{namespace="{ns}"}}[{w}])))'),
    ("latency_mean", 'sum by (cluster, namespace) (rate(http_request_duration_seconds_sum{{namespace="{ns}"}}[{w}])) / sum by (cluster, namespace) (rate(http_request_duration_seconds_count{{namespace="{ns}"}}[{w}]))'),
    ("restarts", 'sum by (cluster, namespace) (increase(kube_pod_container_status_restarts_total{{namespace="{ns}"}}[{w}]))'),
    ("fs_writes", 'sum by (cluster, namespace) (rate(container_fs_writes_bytes_total{{namespace="{ns}"}}[{w}]))'),
]
fleet = [
    ("node_cpu", 'sum by (cluster, mode) (rate(node_cpu_seconds_total[{w}]))'),
    ("node_cpu_busy", '1 - avg by (cluster) (rate(node_cpu_seconds_total{{mode="idle"}}[{w}]))'),
    ("node_fs_used", '1 - sum by (cluster, mountpoint) (node_filesystem_avail_bytes) / sum by (cluster, mountpoint) (node_filesystem_size_bytes)'),
    ("up", 'sum by (cluster, job) (up)'),
]
out = []
for (name, expr), w in itertools.product(fleet, ["1m", "2m", "3m", "5m", "10m", "15m"]):
    out.append((f"bench:{name}:{w}", expr.format(w=w)))
# Namespace by namespace, so a smaller RULES keeps every shape.
for ns, w, (name, expr) in itertools.product(namespaces, windows + ["3m", "15m"], shapes):
    out.append((f"bench:{name}:{ns.replace('-', '_')}:{w}", expr.format(ns=ns, w=w)))
if len(out) < rules:
    sys.exit(f"only {len(out)} distinct rules can be generated, {rules} asked for")
out = out[:rules]
print("groups:")
for g in range(groups):
    print(f"  - name: bench-{g:02d}\n    interval: {interval}s\n    rules:")
    for record, expr in out[g::groups]:
        print(f"      - record: {record}\n        expr: '{expr}'")
PY
log "rule file: $(grep -c 'record:' "$WORK/rules.yml") recording rules in $RULE_GROUPS groups at ${INTERVAL}s"

cpu_ticks() { awk '{ sub(/^.*\) /, ""); print $12 + $13 }' "/proc/$1/stat"; }
TICKS=$(getconf CLK_TCK)
# metric value from a /metrics dump: metric name with labels, exactly as printed.
sum_metric() { awk -v m="$1" 'index($1, m) == 1 { s += $2 } END { printf "%.6f", s + 0 }'; }

VMALERT_PID=
stop_vmalert() {
    [[ -n $VMALERT_PID ]] || return 0
    kill -TERM "$VMALERT_PID" 2>/dev/null || true
    wait "$VMALERT_PID" 2>/dev/null || true
    VMALERT_PID=
}

# Starts a fresh Tributary for `side` and loads the data; the ruler (side tributary) watches an
# empty rule directory, so nothing evaluates until the rule file is put there.
start_loaded() {
    local side=$1
    TARGET=$side
    DIR=$WORK/$side
    mkdir -p "$DIR/rules"
    {
        echo '[ingest.limits]'
        echo 'max_future = "0s"'
        if [[ $side == tributary ]]; then
            echo '[ruler]'
            echo "rule_files = [\"$DIR/rules/*.yml\"]"
            echo "evaluation_interval = \"${INTERVAL}s\""
        fi
    } >"$DIR/config.toml"
    PORT=$(free_port)
    BASE="http://127.0.0.1:$PORT"
    TRIBUTARY_CONFIG_FILE=$DIR/config.toml start_tributary
    local now_ms end_ms samples
    now_ms=$(date +%s%3N)
    START_MS=$(((now_ms - HISTORY_SECS * 1000) / (SCRAPE_SECS * 1000) * SCRAPE_SECS * 1000))
    # The load (LOAD_SECS at most), the idle baseline, the warm-up intervals, the run and a margin.
    end_ms=$((now_ms + (LOAD_SECS + IDLE_SECS + 2 * INTERVAL + RUN_SECS + 60) * 1000))
    samples=$(((end_ms - START_MS) / (SCRAPE_SECS * 1000)))
    log "$side: loading $CLUSTERS clusters x $SERIES series x $samples samples (${SCRAPE_SECS}s, from 15 min ago to $(((end_ms - now_ms) / 1000))s ahead)"
    "$LOADGEN_BIN" --url "$URL" --clusters "$CLUSTERS" --series "$SERIES" --samples "$samples" \
        --interval-secs "$SCRAPE_SECS" --connections 4 --start-ms "$START_MS" \
        --output "$DIR/loadgen.json" >"$DIR/loadgen.log" 2>&1 ||
        fail "loadgen failed: $(tail -n 5 "$DIR/loadgen.log" | tr '\n' ' ')"
    log "$side: loaded $(jq -r '.samples_acked' "$DIR/loadgen.json" 2>/dev/null) samples"
    (($(date +%s%3N) + (IDLE_SECS + 2 * INTERVAL + RUN_SECS + 30) * 1000 < end_ms)) ||
        fail "loading took longer than LOAD_SECS=$LOAD_SECS: the data would end before the run does"
}

# CPU-s of `pid` over `secs`.
idle_cpu() {
    local pid=$1 secs=$2 t0
    t0=$(cpu_ticks "$pid")
    local deadline=$((SECONDS + secs))
    while ((SECONDS < deadline)); do sleep 1; done
    echo "scale=3; ($(cpu_ticks "$pid") - $t0) / $TICKS" | bc -l
}

# The recorded series the side left, `name count` per line, sorted.
recorded() {
    curl -fsS "$BASE/api/v1/query" --data-urlencode 'query=count by (__name__) ({__name__=~"bench:.+"})' |
        jq -r '.data.result[] | "\(.metric.__name__) \(.value[1])"' | sort
}

declare -A SUMMARY
status=0

run_tributary() {
    start_loaded tributary
    SUMMARY[tributary_idle]=$(idle_cpu "$SERVER_PID" "$IDLE_SECS")
    cp "$WORK/rules.yml" "$DIR/rules/bench.yml"
    curl -fsS -X POST "$BASE/-/reload" >/dev/null || fail "POST /-/reload failed"
    # One whole interval so every group has run once (the first evaluation restores alerts).
    local deadline=$((SECONDS + 2 * INTERVAL))
    while ((SECONDS < deadline)); do sleep 1; done
    curl -fsS "$BASE/metrics" >"$DIR/metrics.before"
    local t0 end
    t0=$(cpu_ticks "$SERVER_PID")
    end=$((SECONDS + RUN_SECS))
    : >"$DIR/durations.txt"
    # Each poll appends `group last_evaluation duration`; duplicates collapse below.
    while ((SECONDS < end)); do
        curl -fsS "$BASE/metrics" | awk '
            /^tributary_ruler_rule_group_last_duration_seconds\{/ { match($0, /rule_group="[^"]*"/); d[substr($0, RSTART, RLENGTH)] = $2 }
            /^tributary_ruler_rule_group_last_evaluation_timestamp_seconds\{/ { match($0, /rule_group="[^"]*"/); e[substr($0, RSTART, RLENGTH)] = $2 }
            END { for (g in d) print g, e[g], d[g] }' >>"$DIR/durations.txt"
        sleep 3
    done
    SUMMARY[tributary_cpu]=$(echo "scale=3; ($(cpu_ticks "$SERVER_PID") - $t0) / $TICKS" | bc -l)
    curl -fsS "$BASE/metrics" >"$DIR/metrics.after"
    SUMMARY[tributary_durations]=$(sort -u "$DIR/durations.txt" | python3 -c '
import sys, json, statistics
rows = [l.split() for l in sys.stdin if l.strip()]
by = {}
for g, ts, d in rows:
    by.setdefault(g, {})[ts] = float(d)
allv = sorted(v for g in by.values() for v in g.values())
p = lambda xs, q: xs[min(len(xs) - 1, int(q * len(xs)))]
per_group_p99 = sorted(p(sorted(g.values()), 0.99) for g in by.values())
print(json.dumps({"evaluations": len(allv), "mean": statistics.mean(allv), "p50": p(allv, 0.5),
    "p99": p(allv, 0.99), "max": allv[-1], "per_group_p99_median": p(per_group_p99, 0.5),
    "per_group_p99_max": per_group_p99[-1]}))')
    local failures evals
    failures=$(sum_metric tributary_ruler_rule_evaluation_failures_total <"$DIR/metrics.after")
    # Rule evaluations within the window: what the CPU above paid for.
    evals=$(echo "$(sum_metric tributary_ruler_rule_evaluations_total <"$DIR/metrics.after") - $(sum_metric tributary_ruler_rule_evaluations_total <"$DIR/metrics.before")" | bc)
    SUMMARY[tributary_failures]=$failures
    SUMMARY[tributary_rule_evaluations]=$evals
    SUMMARY[tributary_missed]=$(sum_metric tributary_ruler_rule_group_iterations_missed_total <"$DIR/metrics.after")
    SUMMARY[tributary_rss_mib]=$(($(awk '/VmHWM/ {print $2}' "/proc/$SERVER_PID/status") / 1024))
    recorded >"$DIR/recorded.txt"
    log "tributary: cpu ${SUMMARY[tributary_cpu]} s (idle ${SUMMARY[tributary_idle]} s per ${IDLE_SECS}s), failures $failures, $evals rule evaluations, durations ${SUMMARY[tributary_durations]}"
    [[ ${failures%.*} == 0 ]] || { status=1; log "tributary: failed evaluations: $(grep -m3 'rule evaluation failed' "$DIR/server.log")"; }
    stop_server
}

run_vmalert() {
    start_loaded vmalert
    SUMMARY[vmalert_tributary_idle]=$(idle_cpu "$SERVER_PID" "$IDLE_SECS")
    local vm_port
    vm_port=$(free_port)
    "$VMALERT_BIN" -rule="$WORK/rules.yml" -datasource.url="$BASE" -remoteWrite.url="$BASE" \
        -evaluationInterval="${INTERVAL}s" -httpListenAddr="127.0.0.1:$vm_port" \
        -loggerLevel=WARN >"$DIR/vmalert.log" 2>&1 &
    VMALERT_PID=$!
    local deadline=$((SECONDS + READY_TIMEOUT))
    until curl -fs -o /dev/null "http://127.0.0.1:$vm_port/metrics"; do
        alive "$VMALERT_PID" || fail "vmalert exited: $(tail -n 5 "$DIR/vmalert.log" | tr '\n' ' ')"
        ((SECONDS < deadline)) || fail "vmalert not ready after ${READY_TIMEOUT}s"
        sleep 0.2
    done
    deadline=$((SECONDS + 2 * INTERVAL))
    while ((SECONDS < deadline)); do sleep 1; done
    curl -fsS "http://127.0.0.1:$vm_port/metrics" >"$DIR/metrics.before"
    local t0 v0
    t0=$(cpu_ticks "$SERVER_PID")
    v0=$(cpu_ticks "$VMALERT_PID")
    deadline=$((SECONDS + RUN_SECS))
    while ((SECONDS < deadline)); do sleep 1; done
    SUMMARY[vmalert_tributary_cpu]=$(echo "scale=3; ($(cpu_ticks "$SERVER_PID") - $t0) / $TICKS" | bc -l)
    SUMMARY[vmalert_cpu]=$(echo "scale=3; ($(cpu_ticks "$VMALERT_PID") - $v0) / $TICKS" | bc -l)
    curl -fsS "http://127.0.0.1:$vm_port/metrics" >"$DIR/metrics.after"
    SUMMARY[vmalert_durations]=$(python3 - "$DIR/metrics.before" "$DIR/metrics.after" <<'PY'
import json, re, sys, statistics
def parse(path):
    out = {}
    for line in open(path):
        m = re.match(r'vmalert_iteration_duration_seconds(_sum|_count)?\{(.*)\} (\S+)', line)
        if not m:
            continue
        labels = dict(re.findall(r'(\w+)="([^"]*)"', m.group(2)))
        out[(m.group(1) or "", labels.get("group"), labels.get("quantile"))] = float(m.group(3))
    return out
b, a = parse(sys.argv[1]), parse(sys.argv[2])
groups = sorted({k[1] for k in a})
p99 = sorted(a[("", g, "0.99")] for g in groups if ("", g, "0.99") in a)
n = sum(a[("_count", g, None)] - b.get(("_count", g, None), 0) for g in groups)
s = sum(a[("_sum", g, None)] - b.get(("_sum", g, None), 0) for g in groups)
print(json.dumps({"evaluations": n, "mean": s / n if n else None,
    "per_group_p99_median": p99[len(p99) // 2] if p99 else None, "per_group_p99_max": p99[-1] if p99 else None}))
PY
)
    SUMMARY[vmalert_rule_evaluations]=$(echo "$(sum_metric vmalert_execution_total <"$DIR/metrics.after") - $(sum_metric vmalert_execution_total <"$DIR/metrics.before")" | bc)
    SUMMARY[vmalert_missed]=$(sum_metric vmalert_iteration_missed_total <"$DIR/metrics.after")
    SUMMARY[vmalert_failures]=$(grep -E '^vmalert_(recording_rules_error|execution_errors_total|remotewrite_errors_total)[{ ]' "$DIR/metrics.after" | awk '{ s += $2 } END { printf "%d", s + 0 }')
    SUMMARY[vmalert_rss_mib]=$(($(awk '/VmHWM/ {print $2}' "/proc/$VMALERT_PID/status") / 1024))
    SUMMARY[vmalert_tributary_rss_mib]=$(($(awk '/VmHWM/ {print $2}' "/proc/$SERVER_PID/status") / 1024))
    stop_vmalert
    recorded >"$DIR/recorded.txt"
    log "vmalert: vmalert cpu ${SUMMARY[vmalert_cpu]} s, tributary cpu ${SUMMARY[vmalert_tributary_cpu]} s (idle ${SUMMARY[vmalert_tributary_idle]} s per ${IDLE_SECS}s), errors ${SUMMARY[vmalert_failures]}, ${SUMMARY[vmalert_rule_evaluations]} rule evaluations, durations ${SUMMARY[vmalert_durations]}"
    [[ ${SUMMARY[vmalert_failures]} == 0 ]] || status=1
    stop_server
}

LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
for side in $SIDES; do
    "run_$side"
done
LOAD_AFTER=$(cut -d' ' -f1-3 /proc/loadavg)

agree=null
if [[ -f $WORK/tributary/recorded.txt && -f $WORK/vmalert/recorded.txt ]]; then
    if diff -q "$WORK/tributary/recorded.txt" "$WORK/vmalert/recorded.txt" >/dev/null; then
        agree=true
    else
        agree=false
        status=1
        log "the sides recorded different series: $(diff "$WORK/tributary/recorded.txt" "$WORK/vmalert/recorded.txt" | head -n 6 | tr '\n' ' ')"
    fi
    log "recorded metrics: $(wc -l <"$WORK/tributary/recorded.txt") names, $(awk '{ s += $2 } END { print s }' "$WORK/tributary/recorded.txt") series per evaluation round"
fi

mkdir -p "$(dirname "$RESULTS")"
{
    echo "{"
    echo "\"command\": \"CLUSTERS=$CLUSTERS SERIES=$SERIES RULES=$RULES RULE_GROUPS=$RULE_GROUPS INTERVAL=$INTERVAL RUN_SECS=$RUN_SECS IDLE_SECS=$IDLE_SECS benches/compare/rules.sh\","
    echo "\"date\": \"$(date -u +%FT%TZ)\", \"commit\": \"$(git rev-parse --short HEAD)\", \"nproc\": $(nproc),"
    echo "\"load_before\": \"$LOAD_BEFORE\", \"load_after\": \"$LOAD_AFTER\", \"recorded_series_agree\": $agree,"
    for k in "${!SUMMARY[@]}"; do
        v=${SUMMARY[$k]}
        [[ $v == "{"* || $v =~ ^-?[0-9]*\.?[0-9]+$ ]] || v="\"$v\""
        [[ $v == .* ]] && v="0$v"
        echo "\"$k\": $v,"
    done
    echo "\"run_secs\": $RUN_SECS, \"interval_secs\": $INTERVAL"
    echo "}"
} | jq . >"$RESULTS"
cat "$RESULTS"
exit $status
