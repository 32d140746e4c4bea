#!/usr/bin/env bash
# Bandwidth policy end to end: precision, fairness and scale of throttled streams
# through the demo server, beside nginx's limit_rate where it applies.
#
#   scripts/bench_throttle.sh            # everything (about 3 minutes)
#   SECONDS_PER_RUN=8 RUNS=3 scripts/bench_throttle.sh
#
# Prints one line per measurement; BENCHMARKS.md quotes them. Loopback only.
source "$(dirname "$0")/bench_common.sh"

# start_nginx PORT RATE: nginx with sendfile and limit_rate; sets PID (master).
start_nginx() {
    local port=$1 rate=$2
    mkdir -p "$WORK/nginx-$port"
    cat >"$WORK/nginx-$port/nginx.conf" <<CONF
user root;
worker_processes 1;
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
# and prints its report with the server's CPU seconds and peak RSS.
measure() {
    local label=$1 pid=$2
    shift 2
    local before after workers
    before=$(cpu_seconds "$pid")
    workers=$(pgrep -P "$pid" || true)
    local report
    report=$("$LOAD" --seconds "$RUN_SECONDS" "$@")
    after=$(cpu_seconds "$pid")
    local rss cpu
    rss=$(peak_rss_kib "$pid")
    cpu=$(awk -v a="$after" -v b="$before" 'BEGIN { printf "%.2f", a - b }')
    for worker in $workers; do
        rss=$((rss + $(peak_rss_kib "$worker")))
        cpu=$(awk -v c="$cpu" -v w="$(cpu_seconds "$worker")" 'BEGIN { printf "%.2f", c + w }')
    done
    echo "$label $report server_cpu_s=$cpu server_peak_rss_kib=$rss"
}

echo "# $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(uname -r)"
echo "# $RUN_SECONDS s per run"

# 1. Precision: one stream at 1 MiB/s.
start_demo 18001 --rate 1MiB
OURS=$PID
if command -v nginx >/dev/null; then start_nginx 18002 1m; NGINX=$PID; fi
for run in $(seq "$RUNS"); do
    measure "precision ours run=$run" "$OURS" --url http://127.0.0.1:18001/big.bin
    [[ -n ${NGINX:-} ]] &&
        measure "precision nginx run=$run" "$NGINX" --url http://127.0.0.1:18002/big.bin
done

# 2. Fairness: 16 streams of one client sharing 1 MiB/s.
start_demo 18003 --client-rate 1MiB
for run in $(seq "$RUNS"); do
    measure "fairness ours run=$run" "$PID" --url http://127.0.0.1:18003/big.bin --connections 16
done

# 3. Scale: 2,000 streams at 16 KiB/s each (HTTP/1.1, a connection each).
start_demo 18004 --rate 16KiB
measure "scale-2000 ours" "$PID" --url http://127.0.0.1:18004/big.bin --connections 2000 --ramp 50
if command -v nginx >/dev/null; then
    start_nginx 18005 16k
    measure "scale-2000 nginx" "$PID" --url http://127.0.0.1:18005/big.bin --connections 2000 --ramp 50
fi

# 4. Scale: 10,000 streams at 16 KiB/s each, 100 per HTTP/2 connection (a file
# descriptor per stream for its file, a few for sockets: within the 20,000 limit).
start_demo 18006 --rate 16KiB
measure "scale-10000 ours" "$PID" --url http://127.0.0.1:18006/big.bin --connections 10000 \
    --streams-per-connection 100 --ramp 100

# 5. Scale with shared limits: 10,000 streams, 100 clients... all from one IP on
# loopback, so one client key: 10,000 streams sharing 160 MB/s.
start_demo 18007 --client-rate 156250KiB
measure "shared-10000 ours" "$PID" --url http://127.0.0.1:18007/big.bin --connections 10000 \
    --streams-per-connection 100 --ramp 100
