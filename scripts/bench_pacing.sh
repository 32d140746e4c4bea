#!/usr/bin/env bash
# Throttled streams against nginx's limit_rate: N streams (2,000 by default) at
# 16 KiB/s each, one HTTP/1.1 connection each, through the demo server with
# several --min-throttled-chunk settings and through nginx (sendfile on,
# limit_rate 16k), interleaved; one line per run with the server's CPU seconds
# and the load client's per-stream rates (window and steady, p1 and p99).
#
#   scripts/bench_pacing.sh                        # RUNS=3, 8 s each
#   CHUNKS="0 16KiB" N=10000 scripts/bench_pacing.sh
#
# Loopback only; raises the descriptor limit.
source "$(dirname "$0")/bench_common.sh"
CHUNKS=${CHUNKS:-"0 4KiB 8KiB 16KiB"}
N=${N:-2000}

echo "# $(nproc) cores, $N streams x 16 KiB/s, $RUN_SECONDS s per run"
declare -A server
port=18400
for chunk in $CHUNKS; do
    port=$((port + 1))
    start_demo "$port" --rate 16KiB --min-throttled-chunk "$chunk"
    server[$chunk]="$PID $port"
done
names=($CHUNKS)
if command -v nginx >/dev/null; then
    start_nginx 18420 16k
    server[nginx]="$PID 18420"
    names+=(nginx)
fi
for run in $(seq "$RUNS"); do
    for name in "${names[@]}"; do
        read -r pid port <<<"${server[$name]}"
        measure "pacing server=$name run=$run" "$pid" --url "http://127.0.0.1:$port/big.bin" \
            --connections "$N" --ramp 50
    done
done
