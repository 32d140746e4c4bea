# Shared by the benchmark scripts (sourced, not run): a work directory removed
# on exit with every process started, the demo server, and /proc readings.
# Sets WORK, SERVE, LOAD; RUN_SECONDS and RUNS from SECONDS_PER_RUN and RUNS.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
exec </dev/null

RUN_SECONDS=${SECONDS_PER_RUN:-8}
RUNS=${RUNS:-3}
WORK=$(mktemp -d "${TMPDIR:-/tmp}/bench.XXXXXX")
chmod 755 "$WORK"
PIDS=()
cleanup() {
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT
ulimit -n "$(ulimit -Hn)"

cargo build --release --example serve --example load >/dev/null 2>&1
SERVE=target/release/examples/serve
LOAD=target/release/examples/load
truncate -s 4G "$WORK/big.bin"   # sparse: reads cost no disk

# cpu_seconds PID: user + system CPU time of a process so far.
cpu_seconds() {
    awk -v hz="$(getconf CLK_TCK)" '{ printf "%.2f", ($14 + $15) / hz }' "/proc/$1/stat"
}
peak_rss_kib() { awk '/VmHWM/ { print $2 }' "/proc/$1/status"; }

# start_demo PORT FLAGS...: the demo server serving $WORK; sets PID once it answers.
start_demo() {
    local port=$1
    shift
    "$SERVE" --root "$WORK" --addr "127.0.0.1:$port" --progress 0 "$@" >>"$WORK/serve-$port.log" 2>&1 &
    PID=$!
    PIDS+=("$PID")
    for _ in $(seq 100); do
        curl -s -o /dev/null --max-time 1 "http://127.0.0.1:$port/big.bin" -r 0-0 && return
        sleep 0.05
    done
    echo "server on $port did not start" >&2
    exit 1
}

# start_nginx PORT RATE: nginx (one worker, or NGINX_WORKERS) with sendfile and limit_rate RATE (0: none),
# serving $WORK; sets PID (the master).
start_nginx() {
    local port=$1 rate=$2
    mkdir -p "$WORK/nginx-$port"
    cat >"$WORK/nginx-$port/nginx.conf" <<CONF
user root;
worker_processes ${NGINX_WORKERS:-1};
pid $WORK/nginx-$port/nginx.pid;
error_log $WORK/nginx-$port/error.log;
events { worker_connections 12000; }
http {
    access_log off;
    sendfile on;
    server {
        listen 127.0.0.1:$port;
        root $WORK;
        limit_rate $rate;
    }
}
CONF
    nginx -c "$WORK/nginx-$port/nginx.conf" -g 'daemon off;' &
    PID=$!
    PIDS+=("$PID")
    sleep 0.5
}

# measure LABEL PID LOAD-ARGS...: runs the load client against the server PID
# and prints its report with the server's CPU seconds during the run and its
# peak RSS, both summed over the process and its children (nginx's workers).
measure() {
    local label=$1 pid=$2 before=0 after=0 rss=0 p
    shift 2
    local processes="$pid $(pgrep -P "$pid" | tr '\n' ' ')"
    for p in $processes; do before=$(awk -v a="$before" -v b="$(cpu_seconds "$p")" 'BEGIN { print a + b }'); done
    local report
    report=$("$LOAD" --seconds "$RUN_SECONDS" "$@")
    for p in $processes; do
        after=$(awk -v a="$after" -v b="$(cpu_seconds "$p")" 'BEGIN { print a + b }')
        rss=$((rss + $(peak_rss_kib "$p")))
    done
    local cpu
    cpu=$(awk -v a="$after" -v b="$before" 'BEGIN { printf "%.2f", a - b }')
    echo "$label $report server_cpu_s=$cpu server_peak_rss_kib=$rss"
}
