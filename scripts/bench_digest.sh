#!/usr/bin/env bash
# Digests (issue #17): what they cost the demo server, over 127.0.0.1.
#
#   1. Time to first byte of a first request (a version never seen before, so its
#      digest is not known and a hash is scheduled) with `--digest sha-256` and
#      with `--digest none`, interleaved, RUNS times each. Every run rewrites the
#      file's times (a new version), so the sha-256 server keeps hashing 1 GiB
#      versions in the background while later runs are measured.
#   2. How long the background hash of a settled 1 GiB file takes, from the first
#      request until a HEAD shows its `Repr-Digest` (polled every 10 ms), for
#      sha-256 and sha-512: the end-to-end hashing throughput, page cache reads
#      included.
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

# Starts the demo server; prints its URL.
start() {
    local name=$1
    shift
    "$SERVE" --root "$ROOT" --addr 127.0.0.1:0 --progress 0 "$@" >"$WORK/$name.log" 2>&1 &
    PIDS+=($!)
    local addr
    for _ in $(seq 100); do
        addr=$(sed -n 's|.* on http://\(127\.0\.0\.1:[0-9]*\).*|\1|p' "$WORK/$name.log")
        if [[ -n $addr ]] && curl -sf -o /dev/null -r 0-0 "http://$addr/ttfb.bin"; then
            echo "http://$addr"
            return
        fi
        sleep 0.1
    done
    exit 1
}

median() { sort -g | awk '{ a[NR] = $1 } END { m = a[int((NR + 1) / 2)]; printf "%.2f (%.2f–%.2f)", m * 1000, a[1] * 1000, a[NR] * 1000 }'; }

DIGEST=$(start digest --digest sha-256)
NONE=$(start none --digest none)
want=(-H 'Want-Repr-Digest: sha-256=10' -H 'Want-Digest: SHA-512;q=1, SHA-256;q=1, SHA;q=0.1')
for _ in $(seq "$RUNS"); do
    for server in digest none; do
        url=$DIGEST
        [[ $server == none ]] && url=$NONE
        touch "$ROOT/ttfb.bin" # a new version: a first request
        curl -s -o /dev/null "${want[@]}" -w '%{time_starttransfer}\n' "$url/ttfb.bin" \
            >>"$WORK/ttfb-$server.txt" --max-time 5 -r 0-65535
    done
    sleep 0.2 # hashes start 2 s after a change: most runs are measured while one runs
done

echo "## Time to first byte of a first request (ms, median (min–max) of $RUNS)"
echo
echo "| server | TTFB |"
echo "|---|---|"
echo "| \`--digest sha-256\` (hashing 1 GiB versions meanwhile) | $(median <"$WORK/ttfb-digest.txt") |"
echo "| \`--digest none\` | $(median <"$WORK/ttfb-none.txt") |"
echo

echo "## Background hash of a settled 1 GiB file"
echo
echo "| algorithm | until Repr-Digest (s) | MB/s |"
echo "|---|---|---|"
for algorithm in sha-256 sha-512; do
    url=$(start "hash-$algorithm" --digest "$algorithm")
    touch "$ROOT/hash.bin"
    sleep 2.5 # files are hashed once 2 s have passed since their last change
    start_ns=$(date +%s%N)
    curl -s -o /dev/null -I -H "Want-Repr-Digest: $algorithm=10" "$url/hash.bin"
    while ! curl -s -I -H "Want-Repr-Digest: $algorithm=10" "$url/hash.bin" | grep -qi '^repr-digest'; do
        sleep 0.01
    done
    end_ns=$(date +%s%N)
    awk -v a="$algorithm" -v ns=$((end_ns - start_ns)) \
        'BEGIN { s = ns / 1e9; printf "| %s | %.3f | %.0f |\n", a, s, 2^30 / 1e6 / s }'
done
