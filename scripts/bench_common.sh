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
