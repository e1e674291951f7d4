# Shell helpers shared by run.sh and query.sh: logging, failing a target, free ports, starting,
# probing and stopping a receiver. Sourced, not run; they use the caller's globals (DIR, PORT,
# BASE, TARGET, PID, ...), which each script sets up before calling them.
# shellcheck shell=bash

log() { echo "[$(date -u +%H:%M:%S)] $*" >&2; }

cleanup() {
    if [[ $KEEP_DATA == 1 ]]; then
        log "kept data and logs in $WORK"
    else
        rm -rf "$WORK"
    fi
}

fail() {
    echo "ERROR [$TARGET]: $*" >&2
    echo "$*" >"$WORK/$TARGET.reason"
    exit 1
}

free_port() {
    local p
    for _ in $(seq 200); do
        p=$((20000 + RANDOM % 40000))
        if [[ -z $(ss -Htan "( sport = :$p )") ]]; then
            echo "$p"
            return 0
        fi
    done
    return 1
}

# Running, i.e. neither gone nor a zombie waiting to be reaped (state from /proc/PID/stat).
alive() {
    local state
    state=$(awk '{ sub(/^.*\) /, ""); print $1 }' "/proc/$1/stat" 2>/dev/null) || return 1
    [[ -n $state && $state != Z && $state != X ]]
}

# Polls `curl URL` until it answers 2xx; fails the target on deadline or server exit.
wait_ready() {
    local url=$1 deadline=$((SECONDS + READY_TIMEOUT)) code
    while true; do
        code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "$url" || true)
        [[ $code == 2* ]] && return 0
        alive "$SERVER_PID" || fail "exited before becoming ready; log tail: $(tail -n 5 "$DIR/server.log" | tr '\n' ' ')"
        ((SECONDS < deadline)) || fail "not ready after ${READY_TIMEOUT}s (GET $url last answered ${code:-nothing})"
        sleep 0.2
    done
}

stop_server() {
    [[ -n ${SERVER_PID:-} ]] || return 0
    if alive "$SERVER_PID"; then
        kill -TERM "$SERVER_PID" 2>/dev/null || true
        local deadline=$((SECONDS + STOP_TIMEOUT))
        while alive "$SERVER_PID" && ((SECONDS < deadline)); do sleep 0.2; done
        if alive "$SERVER_PID"; then
            log "$TARGET did not stop within ${STOP_TIMEOUT}s; killing it"
            kill -KILL "$SERVER_PID" 2>/dev/null || true
        fi
    fi
    wait "$SERVER_PID" 2>/dev/null || true
    SERVER_PID=
    if [[ $KEEP_DATA != 1 ]]; then rm -rf "$DIR/data"; fi
}

start_server() {
    log "$TARGET: $*"
    echo "$*" >"$DIR/server.cmd"
    "$@" >"$DIR/server.log" 2>&1 &
    SERVER_PID=$!
}

start_tributary() {
    [[ -x $TRIBUTARY_BIN ]] || fail "binary $TRIBUTARY_BIN not built (cargo build --release -p tributary); not skipping"
    VERSION=$("$TRIBUTARY_BIN" --version 2>/dev/null | head -n1 || true)
    VERSION=${VERSION:-tributary}
    # TRIBUTARY_CONFIG_FILE (optional): a TOML config the caller wrote, e.g. run.sh's compaction
    # settings; the flags still override it.
    start_server "$TRIBUTARY_BIN" ${TRIBUTARY_CONFIG_FILE:+--config "$TRIBUTARY_CONFIG_FILE"} \
        --http-listen "127.0.0.1:$PORT" --data-dir "$DIR/data"
    wait_ready "$BASE$TRIBUTARY_READY_PATH"
    URL="$BASE/api/v1/write"
}
