#!/usr/bin/env bash
# Bandwidth policy end to end: precision, fairness and scale of throttled streams
# through the demo server, beside nginx's limit_rate where it applies.
#
#   scripts/bench_throttle.sh            # everything (about 3 minutes)
#   SECONDS_PER_RUN=8 RUNS=3 scripts/bench_throttle.sh
#
# Prints one line per measurement; BENCHMARKS.md quotes them. Loopback only.
source "$(dirname "$0")/bench_common.sh"

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
