#!/usr/bin/env bash
# Digests (issue #17): what they cost the demo server, over 127.0.0.1.
#
#   1. Time to first byte of a first request (a version never seen before, so its
#      digest is not known and a hash is scheduled) with `--digest sha-256` and
#      with `--digest none`, interleaved, RUNS times each: the cost on the
#      request path. Every run rewrites the file's times (a new version); all
#      runs are over before the first of those hashes may start (2 s after).
#   2. How long the background hash of a settled 1 GiB file takes, from the first
#      request until a HEAD shows its `Repr-Digest` (polled every 50 ms), for
#      sha-256 and sha-512: the end-to-end hashing throughput, page cache reads
#      included; and the time to first byte of those HEADs, answered while the
#      hash runs, against HEADs of an idle server.
#
# Each measurement first waits (up to a minute) for the machine to be under 20%
# busy, and prints how busy it was.
#
# Prints a Markdown summary; needs curl. Builds the release demo server unless
# SKIP_BUILD=1.
#
#   scripts/bench_digest.sh            # RUNS=30
#   cargo bench --bench digest         # hashing alone, in memory (criterion)
set -uo pipefail
cd "$(dirname "$0")/.."
exec </dev/null

RUNS=${RUNS:-30}
WORK=$(mktemp -d "${TMPDIR:-/tmp}/bench-digest.XXXXXX")
PIDS=()
cleanup() {
    for pid in "${PIDS[@]}"; do
        kill "$pid" 2>/dev/null
        wait "$pid" 2>/dev/null
    done
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

SERVE="${CARGO_TARGET_DIR:-target}/release/examples/serve"
if [[ ${SKIP_BUILD:-0} != 1 ]]; then
    cargo build --release --example serve >"$WORK/build.log" 2>&1 ||
        { tail -n 30 "$WORK/build.log"; exit 1; }
fi

ROOT="$WORK/root"
mkdir -p "$ROOT"
head -c $((1 << 30)) /dev/urandom >"$ROOT/ttfb.bin"
head -c $((1 << 30)) /dev/urandom >"$ROOT/hash.bin"
cat "$ROOT"/*.bin >/dev/null # into the page cache

# Starts the demo server; sets SERVER_URL and SERVER_PID.
start() {
    local name=$1
    shift
    "$SERVE" --root "$ROOT" --addr 127.0.0.1:0 --progress 0 "$@" >"$WORK/$name.log" 2>&1 &
    SERVER_PID=$!
    PIDS+=("$SERVER_PID")
    local addr
    for _ in $(seq 100); do
        addr=$(sed -n 's|.* on http://\(127\.0\.0\.1:[0-9]*\).*|\1|p' "$WORK/$name.log")
        if [[ -n $addr ]] && curl -sf -o /dev/null -r 0-0 "http://$addr/ttfb.bin"; then
            SERVER_URL="http://$addr"
            return
        fi
        sleep 0.1
    done
    cat "$WORK/$name.log" >&2
    exit 1
}
stop() {
    kill "$1" 2>/dev/null
    wait "$1" 2>/dev/null
}

# Waits until the CPU is under 20% busy over a second (at most 60 tries);
# prints the last busy percentage.
quiet() {
    local busy=100
    for _ in $(seq 60); do
        busy=$(
            read -r _ a b c d e f g _ </proc/stat
            sleep 1
            read -r _ A B C D E F G _ </proc/stat
            total=$(((A + B + C + D + E + F + G) - (a + b + c + d + e + f + g)))
            echo $((100 * (total - (D - d) - (E - e)) / (total > 0 ? total : 1)))
        )
        ((busy < 20)) && break
    done
    echo "$busy"
}

median() { sort -g | awk '{ a[NR] = $1 } END { m = a[int((NR + 1) / 2)]; printf "%.2f (%.2f–%.2f)", m * 1000, a[1] * 1000, a[NR] * 1000 }'; }

start digest --digest sha-256
DIGEST=$SERVER_URL DIGEST_PID=$SERVER_PID
start none --digest none
NONE=$SERVER_URL NONE_PID=$SERVER_PID
want=(-H 'Want-Repr-Digest: sha-256=10' -H 'Want-Digest: SHA-512;q=1, SHA-256;q=1, SHA;q=0.1')
busy=$(quiet)
for _ in $(seq "$RUNS"); do
    for server in digest none; do
        url=$DIGEST
        [[ $server == none ]] && url=$NONE
        touch "$ROOT/ttfb.bin" # a new version: a first request
        curl -s -o /dev/null "${want[@]}" -w '%{time_starttransfer}\n' "$url/ttfb.bin" \
            >>"$WORK/ttfb-$server.txt" --max-time 5 -r 0-65535
    done
done
stop "$DIGEST_PID" # and the hashes it has queued
stop "$NONE_PID"

echo "## Time to first byte of a first request (ms, median (min–max) of $RUNS; CPU $busy% busy before)"
echo
echo "| server | TTFB |"
echo "|---|---|"
echo "| \`--digest sha-256\` | $(median <"$WORK/ttfb-digest.txt") |"
echo "| \`--digest none\` | $(median <"$WORK/ttfb-none.txt") |"
echo

echo "## Background hash of a settled 1 GiB file"
echo
echo "| algorithm | CPU busy before | until Repr-Digest (s) | MB/s | HEAD TTFB while hashing (ms) | HEAD TTFB idle (ms) |"
echo "|---|---|---|---|---|---|"
for algorithm in sha-256 sha-512; do
    start "hash-$algorithm" --digest "$algorithm"
    url=$SERVER_URL
    touch "$ROOT/hash.bin"
    sleep 2.5 # files are hashed once 2 s have passed since their last change
    busy=$(quiet)
    head=(-s -o /dev/null -D - -I -H "Want-Repr-Digest: $algorithm=10" -w 'ttfb %{time_starttransfer}\n')
    start_ns=$(date +%s%N)
    curl "${head[@]}" "$url/hash.bin" >/dev/null
    : >"$WORK/during.txt"
    while :; do
        out=$(curl "${head[@]}" "$url/hash.bin")
        grep -qi '^repr-digest' <<<"$out" && break
        sed -n 's/^ttfb //p' <<<"$out" >>"$WORK/during.txt"
        sleep 0.05
    done
    end_ns=$(date +%s%N)
    : >"$WORK/idle.txt"
    for _ in $(seq 20); do
        curl "${head[@]}" "$url/hash.bin" | sed -n 's/^ttfb //p' >>"$WORK/idle.txt"
        sleep 0.05
    done
    stop "$SERVER_PID"
    awk -v a="$algorithm" -v b="$busy" -v ns=$((end_ns - start_ns)) \
        -v during="$(median <"$WORK/during.txt")" -v idle="$(median <"$WORK/idle.txt")" \
        'BEGIN { s = ns / 1e9; printf "| %s | %s%% | %.3f | %.0f | %s | %s |\n", a, b, s, 2^30 / 1e6 / s, during, idle }'
done
