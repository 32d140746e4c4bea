#!/usr/bin/env bash
# 10,000 throttled streams (16 KiB/s each) over HTTP/2 against the same over
# HTTP/1.1 (issue #25: HTTP/2 in at most 1.2× the memory, without more CPU):
# the demo server with --rate 16KiB, and the load client `examples/load` with
# one connection per stream (HTTP/1.1) or 100 streams per connection (HTTP/2,
# prior knowledge). A fresh server for every run (its peak RSS is that run's),
# variants interleaved, RUNS rounds.
#
#   scripts/bench_h2_scale.sh
#   N=2000 RUNS=3 scripts/bench_h2_scale.sh
#   VARIANTS="h1 h2 h2-64k" scripts/bench_h2_scale.sh
#
# Variants: h1, h2 (the demo's defaults), h2-BYTES (h2 with
# --h2-max-send-buf-size BYTES, e.g. h2-65536), and SERVER=PATH runs another
# demo build (OLD=PATH adds the variants old-h1 and old-h2 run with it).
# Prints one line per run: the load client's report, the server's CPU seconds
# in the run and its peak RSS (KiB).
source "$(dirname "$0")/bench_common.sh"

N=${N:-10000}
VARIANTS=${VARIANTS:-"h1 h2"}
OLD=${OLD:-}
[[ -n $OLD ]] && VARIANTS="$VARIANTS old-h1 old-h2"
echo "# $(nproc) cores, $N streams x 16 KiB/s, $RUN_SECONDS s per run, variants: $VARIANTS"

port=18500
for run in $(seq "$RUNS"); do
    for variant in $VARIANTS; do
        port=$((port + 1))
        binary=$SERVE
        flags=(--rate 16KiB)
        case $variant in
            old-*) binary=$OLD ;;
        esac
        case ${variant#old-} in
            h1) load=(--connections "$N" --ramp 50) ;;
            h2) load=(--connections "$N" --streams-per-connection 100 --ramp 100) ;;
            h2-*)
                flags+=(--h2-max-send-buf-size "${variant#h2-}")
                load=(--connections "$N" --streams-per-connection 100 --ramp 100)
                ;;
            *) echo "unknown variant $variant" >&2; exit 2 ;;
        esac
        SERVE=$binary start_demo "$port" "${flags[@]}"
        measure "h2-scale variant=$variant run=$run" "$PID" \
            --url "http://127.0.0.1:$port/big.bin" "${load[@]}"
        kill "$PID"
        wait "$PID" 2>/dev/null || true
    done
done
