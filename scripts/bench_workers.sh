#!/usr/bin/env bash
# The two plain-HTTP rows where nginx led (issue #25), each step against the
# base in one interleaved run:
#
#   ranges    random 64 KiB ranges of a 4 GiB (sparse) file on one keep-alive
#             connection (wrk -t1 -c1 --latency with a Lua script): requests/s,
#             p99, server CPU µs per request
#   throttled 2,000 streams × 16 KiB/s, one HTTP/1.1 connection each
#             (`examples/load`, 8 s): server CPU seconds, per-stream rates
#
# Servers: the demo server with its defaults (`base`), with `--workers 1` and
# `--workers 2` (single-threaded runtimes on SO_REUSEPORT listeners), more with
# EXTRA, and nginx 1.22 (`sendfile on`, no `tcp_nopush`; `limit_rate 16k` for
# `throttled`) with NGINX_WORKERS workers (2, one per core, as Debian's `auto`).
#
#   scripts/bench_workers.sh
#   RUNS=5 SCENARIOS=ranges scripts/bench_workers.sh
#   EXTRA="old=/tmp/serve-old" scripts/bench_workers.sh   # another demo build, default flags
#
# Knobs: RUNS [3], SCENARIOS [ranges throttled], SECONDS_PER_RUN [8], N [2000],
# VARIANTS ["base workers-1 workers-2"], EXTRA ("label=BINARY [flags]" separated
# by ";"), NGINX_WORKERS [2].
source "$(dirname "$0")/bench_common.sh"

SCENARIOS=${SCENARIOS:-"ranges throttled"}
N=${N:-2000}
VARIANTS=${VARIANTS:-"base workers-1 workers-2"}
EXTRA=${EXTRA:-}
export NGINX_WORKERS=${NGINX_WORKERS:-2}
echo "# $(nproc) cores, $RUN_SECONDS s per run, $RUNS runs, nginx with $NGINX_WORKERS workers"

cat >"$WORK/ranges.lua" <<'EOF'
local size = 4 * 1024 * 1024 * 1024
local span = 65536
math.randomseed(os.time())
request = function()
    local start = math.random(0, size - span)
    return wrk.format("GET", nil, { ["Range"] = string.format("bytes=%.0f-%.0f", start, start + span - 1) })
end
done = function(summary, latency, requests)
    local e = summary.errors
    io.write(string.format("RESULT requests=%d duration_us=%d bytes=%.0f p99_us=%.0f errors=%d\n",
        summary.requests, summary.duration, summary.bytes, latency:percentile(99),
        e.connect + e.read + e.write + e.status + e.timeout))
end
EOF

declare -A command
names=()
for variant in $VARIANTS; do
    case $variant in
        base) command[$variant]="$SERVE" ;;
        workers-*) command[$variant]="$SERVE --workers ${variant#workers-}" ;;
        *) echo "unknown variant $variant" >&2; exit 2 ;;
    esac
    names+=("$variant")
done
IFS=';' read -ra extras <<<"$EXTRA"
for extra in "${extras[@]}"; do
    [[ -n $extra ]] || continue
    command[${extra%%=*}]=${extra#*=}
    names+=("${extra%%=*}")
done
command[nginx]=nginx
names+=(nginx)

# Starts NAME with RATE (0: unlimited) on PORT; sets PID.
start() { # name rate port
    if [[ $1 == nginx ]]; then
        start_nginx "$3" "$2"
    else
        # shellcheck disable=SC2086 # the command's words
        SERVE=${command[$1]%% *} start_demo "$3" $(cut -s -d' ' -f2- <<<"${command[$1]}") --rate "$2"
    fi
}

port=18600
for scenario in $SCENARIOS; do
    for run in $(seq "$RUNS"); do
        for name in "${names[@]}"; do
            port=$((port + 1))
            case $scenario in
                ranges)
                    start "$name" 0 "$port"
                    before=$(cpu_seconds "$PID")
                    for p in $(pgrep -P "$PID"); do before=$(awk -v a="$before" -v b="$(cpu_seconds "$p")" 'BEGIN {print a + b}'); done
                    result=$(wrk -t1 -c1 -d"${RUN_SECONDS}s" --latency -s "$WORK/ranges.lua" \
                        "http://127.0.0.1:$port/big.bin" | grep '^RESULT')
                    after=$(cpu_seconds "$PID")
                    for p in $(pgrep -P "$PID"); do after=$(awk -v a="$after" -v b="$(cpu_seconds "$p")" 'BEGIN {print a + b}'); done
                    awk -v name="$name" -v run="$run" -v b="$before" -v a="$after" '{
                        for (i = 2; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] }
                        printf "ranges server=%s run=%d req_s=%.0f p99_ms=%.3f cpu_us_per_req=%.1f errors=%d bytes_per_req=%.0f\n",
                            name, run, v["requests"] / (v["duration_us"] / 1e6), v["p99_us"] / 1000,
                            (a - b) / v["requests"] * 1e6, v["errors"], v["bytes"] / v["requests"]
                    }' <<<"$result"
                    ;;
                throttled)
                    start "$name" 16384 "$port"
                    measure "throttled server=$name run=$run" "$PID" \
                        --url "http://127.0.0.1:$port/big.bin" --connections "$N" --ramp 50
                    ;;
            esac
            kill "$PID"
            wait "$PID" 2>/dev/null || true
        done
    done
done
