#!/usr/bin/env bash
# Cluster-wide limits through Redis: demo servers (replicas) sharing one
# redis-server, loaded at once. Measures, with 3, 2 and 5 replicas that learn
# their number from Redis, one client's start burst, its rate over 6 s, and over
# 6 s that include a 3 s Redis outage; with two replicas, the cross-replica
# precision of a client rate and a total rate, and the load on Redis per 1,000
# throttled streams.
#
#   scripts/bench_redis.sh                 # about 6 minutes
#   SECONDS_PER_RUN=8 RUNS=3 scripts/bench_redis.sh
#   ONLY=fleet scripts/bench_redis.sh      # the learned-count part alone
#
# Prints one line per measurement; BENCHMARKS.md quotes them. Loopback only.
command -v redis-server >/dev/null || { echo "needs redis-server (apt-get install redis-server)" >&2; exit 1; }
source "$(dirname "$0")/bench_common.sh"

SOCKET="$WORK/redis.sock"
# start_redis: (re)starts the redis-server; sets REDIS once it answers.
start_redis() {
    rm -f "$SOCKET"
    redis-server --port 0 --unixsocket "$SOCKET" --save "" --appendonly no \
        --dir "$WORK" >>"$WORK/redis.log" 2>&1 &
    REDIS=$!
    PIDS+=("$REDIS")
    until redis-cli -s "$SOCKET" ping >/dev/null 2>&1; do sleep 0.05; done
}
start_redis
URL="redis+unix://$SOCKET"

redis_calls() {
    redis-cli -s "$SOCKET" info commandstats | awk -F'[=,:]' '/^cmdstat_evalsha|^cmdstat_eval:/ { n += $3 } END { print n + 0 }'
}

stop_replicas() {
    kill "$@" 2>/dev/null || true
    wait "$@" 2>/dev/null || true
}

# field NAME LINE: the value of NAME=... in a load report.
field() { tr ' ' '\n' <<<"$2" | awk -F= -v k="$1" '$1 == k { print $2 }'; }

# both_replicas ARGS...: one load process whose connections alternate between
# the two replicas (one process, so both are measured over the same window).
both_replicas() {
    "$LOAD" --url "http://127.0.0.1:18201/big.bin" --url "http://127.0.0.1:18202/big.bin" \
        --seconds "$RUN_SECONDS" "$@"
}

# precision LABEL RATE SERVER-FLAGS... -- LOAD-FLAGS...: one client (127.0.0.1)
# through both replicas; prints achieved/configured.
precision() {
    local label=$1 rate=$2
    shift 2
    local server=() load=()
    while [[ $1 != -- ]]; do server+=("$1"); shift; done
    shift
    load=("$@")
    start_demo 18201 "${server[@]}"
    local a=$PID
    start_demo 18202 "${server[@]}"
    local b=$PID
    # The probes above leased a slice each; let the replicas drop what they
    # hold (after a second idle) and the bucket refill.
    sleep 1.5
    local report
    report=$(both_replicas "${load[@]}")
    stop_replicas "$a" "$b"
    awk -v t="$(field total_bytes "$report")" -v w="$(field seconds "$report")" -v r="$rate" -v l="$label" \
        'BEGIN { printf "%s: %.0f B/s over %.2f s = %+.2f%% of %d B/s\n", l, t / w, w, (t / w / r - 1) * 100, r }'
    echo "  per stream (alternating replicas): min $(field stream_min_Bps "$report") median $(field stream_median_Bps "$report") max $(field stream_max_Bps "$report") jain $(field jain "$report")"
}

# fleet N FLAGS...: N demo servers (ports 18201...) on the Redis with FLAGS and
# no --replicas (they learn how many they are); sets FLEET (their PIDs) and
# URLS (--url arguments for the load, one per server, taken in turn).
fleet() {
    local n=$1
    shift
    FLEET=()
    URLS=()
    for i in $(seq "$n"); do
        start_demo $((18200 + i)) --redis "$URL" "$@"
        FLEET+=("$PID")
        URLS+=(--url "http://127.0.0.1:$((18200 + i))/big.bin")
    done
    # The probes leased a little each: let the replicas drop it, the client's
    # key expire (a start on a new key), and every replica beat at least once.
    sleep 2
    # A server that could not bind its port has exited: another process (a
    # benchmark running alongside) answered the probe.
    for pid in "${FLEET[@]}"; do
        kill -0 "$pid" 2>/dev/null || { echo "a server exited: port taken?" >&2; exit 1; }
    done
}

# excess LABEL RATE REPORT: the bytes over RATE in a load report's window, as
# a percentage and as milliseconds of the rate.
excess() {
    awk -v t="$(field total_bytes "$3")" -v w="$(field seconds "$3")" -v r="$2" -v l="$1" \
        'BEGIN { printf "%s: %+.2f%% of %d B/s over %.2f s (%+.0f ms of the rate)\n", l, (t / w / r - 1) * 100, r, w, (t / r - w) * 1000 }'
}

# outage LABEL: one client's 6 s through the fleet, Redis killed 1.5 s into
# the window and back (a new, empty Redis) 3 s later.
outage() {
    "$LOAD" "${URLS[@]}" --seconds 6 --connections 6 >"$WORK/outage" &
    local load=$!
    sleep 1.5
    kill -9 "$REDIS"
    wait "$REDIS" 2>/dev/null || true
    sleep 3
    start_redis
    wait "$load"
    excess "$1" 1048576 "$(cat "$WORK/outage")"
}

if [[ ${ONLY:-} == fleet || -z ${ONLY:-} ]]; then
echo "== replicas that learn their number: one client, 6 connections, --client-rate 1MiB, no --replicas"
for n in 3 2 5; do
    for run in $(seq "$RUNS"); do
        fleet "$n" --client-rate 1MiB
        excess "$n replicas, start burst run $run" 1048576 "$("$LOAD" "${URLS[@]}" --seconds 1 --connections 6)"
        sleep 2
        excess "$n replicas, 6 s run $run" 1048576 "$("$LOAD" "${URLS[@]}" --seconds 6 --connections 6)"
        sleep 2
        outage "$n replicas, 6 s with a 3 s Redis outage run $run"
        stop_replicas "${FLEET[@]}"
    done
done
echo "== the same outage, three replicas with --replicas 1 (the former default: each at the whole rate)"
for run in $(seq "$RUNS"); do
    fleet 3 --client-rate 1MiB --replicas 1
    outage "3 replicas, --replicas 1, 6 s with a 3 s Redis outage run $run"
    stop_replicas "${FLEET[@]}"
done
fi
[[ ${ONLY:-} == fleet ]] && exit 0

echo "== one client through two replicas, --client-rate 1MiB, 4 connections to each"
for run in $(seq "$RUNS"); do
    precision "redis run $run" 1048576 --client-rate 1MiB --redis "$URL" --replicas 2 -- --connections 4
    precision "no redis run $run" 1048576 --client-rate 1MiB -- --connections 4
done

echo "== eight clients through two replicas, --total-rate 8MiB"
for run in $(seq "$RUNS"); do
    precision "redis run $run" 8388608 --total-rate 8MiB --redis "$URL" --replicas 2 -- \
        --connections 16 --source-ips 8
done

echo "== one client, replica B's streams slowed to 64 KiB/s each (--rate): A should get the rest"
for run in $(seq "$RUNS"); do
    start_demo 18201 --client-rate 1MiB --redis "$URL" --replicas 2
    a=$PID
    start_demo 18202 --client-rate 1MiB --rate 64KiB --redis "$URL" --replicas 2
    b=$PID
    sleep 1.5
    "$LOAD" --url "http://127.0.0.1:18201/big.bin" --seconds "$RUN_SECONDS" --connections 1 >"$WORK/a" &
    la=$!
    "$LOAD" --url "http://127.0.0.1:18202/big.bin" --seconds "$RUN_SECONDS" --connections 4 >"$WORK/b" &
    wait "$la" $!
    stop_replicas "$a" "$b"
    ra=$(field aggregate_Bps "$(cat "$WORK/a")")
    rb=$(field aggregate_Bps "$(cat "$WORK/b")")
    awk -v a="$ra" -v b="$rb" -v r=1048576 -v n="$run" \
        'BEGIN { printf "run %d: A (1 stream) %.1f%%, B (4 slowed streams) %.1f%%, together %.1f%% of the client rate\n", n, a / r * 100, b / r * 100, (a + b) / r * 100 }'
done

echo "== Redis load: 1,000 streams at 16 KiB/s over two replicas"
# redis_load LABEL SOURCES SERVER-FLAGS...: 1,000 connections alternating
# between the replicas, from SOURCES client addresses.
redis_load() {
    local label=$1 sources=$2
    shift 2
    start_demo 18201 "$@" --redis "$URL" --replicas 2
    local a=$PID
    start_demo 18202 "$@" --redis "$URL" --replicas 2
    local b=$PID
    sleep 1.5
    local calls0 cpu0 calls1 cpu1 report
    calls0=$(redis_calls)
    cpu0=$(cpu_seconds "$REDIS")
    report=$(both_replicas --connections 1000 --source-ips "$sources")
    calls1=$(redis_calls)
    cpu1=$(cpu_seconds "$REDIS")
    stop_replicas "$a" "$b"
    awk -v c="$((calls1 - calls0))" -v w="$RUN_SECONDS" -v u0="$cpu0" -v u1="$cpu1" -v l="$label" \
        'BEGIN { printf "%s: %.0f Redis scripts/s, redis-server CPU %.1f%%\n", l, c / w, (u1 - u0) / w * 100 }'
    echo "  $report"
}
redis_load "1,000 clients, --client-rate 16KiB" 1000 --client-rate 16KiB
redis_load "1,000 clients, --client-rate 16KiB, --total-rate 1GiB" 1000 --client-rate 16KiB --total-rate 1GiB
redis_load "1,000 clients, --client-rate 16KiB, --redis-lease 0.5" 1000 --client-rate 16KiB --redis-lease 0.5
redis_load "10 clients of 100 streams, --client-rate 1600KiB" 10 --client-rate 1600KiB
