#!/usr/bin/env bash
# Real download clients over a rough network: curl, wget and aria2c fetch files
# from the demo server (example `serve`) through the fault-injecting proxy
# (example `fault_proxy`, the proxy of tests/support/proxy.rs), which cuts their
# connections after a random number of bytes (FIN or RST, either direction),
# stalls, trickles and splits writes. All on 127.0.0.1.
#
#   - curl -C -                  in a retry loop: one curl per attempt, until
#                                the file has its size (curl exits 0 when a cut
#                                falls inside the response head)
#   - curl --http2-prior-knowledge -C -   the same over HTTP/2 (h2c)
#   - wget -c --tries=0          retries and resumes by itself
#   - aria2c -x 4 -s 4           four ranged connections, --max-tries=0
#
# Every download must end byte for byte (sha256sum against the source file).
# Prints one line per download with the cuts it survived (`ok - ...` /
# `FAIL - ...`), the totals per client, then `N passed, M failed`; exits
# non-zero if any check failed. A failure names its seed: run that seed again
# with `--seed S` to replay the proxy's fault plan.
#
#   scripts/rough_clients.sh [--seeds N] [--seed S] [--size BYTES]
#       [--server-args "--client-rate 8MiB ..."]
#
# By default, seeds 1 2 3 (CI); `--seeds N` runs seeds 1..N (a soak), `--seed S`
# one seed. Knobs: PROFILE=debug|release picks the builds (default release; CI
# uses debug); SKIP_BUILD=1 uses the existing binaries; KEEP=1 keeps the work
# directory. Installs curl, wget and aria2 with apt-get when they are missing.
set -uo pipefail
cd "$(dirname "$0")/.."
exec </dev/null

SEEDS=(1 2 3)
SIZE=$((4 << 20))
SERVER_ARGS=()
while (($#)); do
    case $1 in
        --seeds)
            SEEDS=($(seq 1 "$2"))
            shift 2
            ;;
        --seed)
            SEEDS=("$2")
            shift 2
            ;;
        --size)
            SIZE=$2
            shift 2
            ;;
        --server-args)
            read -r -a SERVER_ARGS <<<"$2"
            shift 2
            ;;
        *)
            echo "usage: $0 [--seeds N] [--seed S] [--size BYTES] [--server-args ARGS]" >&2
            exit 2
            ;;
    esac
done
# Cuts fall within the first sixteenth of what is left, and 98% of the
# connections are cut, so most downloads survive dozens of cuts.
CUT_MAX=$((SIZE / 16))

source scripts/clients_common.sh rough-clients

# --- tools -------------------------------------------------------------------

need curl:curl wget:wget aria2c:aria2

# --- builds and server -----------------------------------------------------------

build_examples serve fault_proxy

ROOT="$WORK/root"
mkdir -p "$ROOT"
head -c "$SIZE" /dev/urandom >"$ROOT/rough.bin"
SHA=$(sha256sum <"$ROOT/rough.bin" | cut -d' ' -f1)
sha_of() { sha256sum <"$1" | cut -d' ' -f1; }

# Waits for `pattern` (with one capture group) in `log`; prints the capture.
wait_for_line() {
    local log=$1 pattern=$2 found
    for _ in $(seq 100); do
        found=$(sed -n "s|$pattern|\1|p" "$log" | head -n 1)
        if [[ -n $found ]]; then
            echo "$found"
            return 0
        fi
        sleep 0.1
    done
    cat "$log" >&2
    return 1
}

"$BIN/serve" --root "$ROOT" --addr 127.0.0.1:0 "${SERVER_ARGS[@]}" >"$WORK/server.log" 2>&1 &
PIDS+=($!)
SERVER=$(wait_for_line "$WORK/server.log" '.* on http://\(127\.0\.0\.1:[0-9]*\).*') ||
    die "start the demo server"
echo "# server http://$SERVER ${SERVER_ARGS[*]}, file of $SIZE bytes, cuts within $CUT_MAX bytes, seeds ${SEEDS[*]}"

# Starts a proxy for one download; sets PROXY (host:port) and PROXY_LOG. Each
# client gets plans of its own: the proxy's seed is the seed plus an offset
# per client (`--seed S` replays all three).
start_proxy() {
    local name=$1 seed=$2 offset
    case $name in
        curl) offset=0 ;;
        wget) offset=1000000 ;;
        aria2) offset=2000000 ;;
        *) offset=3000000 ;;
    esac
    PROXY_LOG="$WORK/proxy-$name-$seed.log"
    "$BIN/fault_proxy" --upstream "$SERVER" --seed $((seed + offset)) --file-size "$SIZE" \
        --cut 0.98 --cut-max "$CUT_MAX" --summary-every 3600 >"$PROXY_LOG" 2>&1 &
    PROXY_PID=$!
    PIDS+=("$PROXY_PID")
    PROXY=$(wait_for_line "$PROXY_LOG" 'listening on \(127\.0\.0\.1:[0-9]*\)')
}
stop_proxy() {
    kill "$PROXY_PID" 2>/dev/null
    wait "$PROXY_PID" 2>/dev/null
}
cuts_in() { grep -c ': cut ' "$1"; }

declare -A DOWNLOADS CUTS
# Records one download: checks its bytes and counts the cuts it survived.
check() {
    local client=$1 seed=$2 out=$3 status=$4 detail=$5
    local cuts
    cuts=$(cuts_in "$PROXY_LOG")
    DOWNLOADS[$client]=$((${DOWNLOADS[$client]:-0} + 1))
    CUTS[$client]=$((${CUTS[$client]:-0} + cuts))
    if [[ $status != 0 ]]; then
        fail "$client, seed $seed: did not finish ($detail) after $cuts cuts"
    elif [[ $(sha_of "$out") != "$SHA" ]]; then
        fail "$client, seed $seed: sha256 differs after $cuts cuts"
    else
        ok "$client, seed $seed: byte-exact after surviving $cuts cuts ($detail)"
    fi
}

for seed in "${SEEDS[@]}"; do
    # --- curl -C - in a retry loop, over HTTP/1.1 and HTTP/2 -------------------------
    for version in http1.1 http2-prior-knowledge; do
        name=curl
        label="curl -C -"
        if [[ $version != http1.1 ]]; then
            name=curl-h2
            label="curl --http2 -C -"
        fi
        start_proxy "$name" "$seed" || die "start the proxy"
        out="$WORK/$name-$seed.bin"
        rm -f "$out"
        status=1
        tries=0
        early=0
        while ((tries < 1000)); do
            tries=$((tries + 1))
            if curl -sf "--$version" -C - --max-time 60 -o "$out" "http://$PROXY/rough.bin" \
                2>/dev/null; then
                # curl (7.88) exits 0 when the connection closes inside the
                # response head, before any length: a loop must check the size.
                if [[ $(stat -c %s "$out" 2>/dev/null) == "$SIZE" ]]; then
                    status=0
                    break
                fi
                early=$((early + 1))
            fi
        done
        stop_proxy
        check "$label" "$seed" "$out" "$status" \
            "$tries runs of curl, $early of them exiting 0 on a cut head"
    done

    # --- wget -c --tries=0 ---------------------------------------------------------
    start_proxy wget "$seed" || die "start the proxy"
    dir="$WORK/wget-$seed"
    mkdir -p "$dir"
    timeout 300 wget -q -c --tries=0 --waitretry=0 --retry-connrefused --read-timeout=30 \
        -P "$dir" "http://$PROXY/rough.bin" 2>"$WORK/wget-$seed.log"
    status=$?
    stop_proxy
    check "wget -c" "$seed" "$dir/rough.bin" "$status" "one wget, exit code $status"

    # --- aria2c -x 4 -s 4 --max-tries=0 ------------------------------------------------
    start_proxy aria2 "$seed" || die "start the proxy"
    dir="$WORK/aria2-$seed"
    timeout 300 aria2c -q -x 4 -s 4 --min-split-size=1M --max-tries=0 --retry-wait=0 \
        --timeout=30 --file-allocation=none --allow-overwrite=true \
        --auto-file-renaming=false --log="$WORK/aria2-$seed.log" --log-level=warn \
        -d "$dir" -o rough.bin "http://$PROXY/rough.bin"
    status=$?
    stop_proxy
    check "aria2c -x 4" "$seed" "$dir/rough.bin" "$status" "one aria2c, exit code $status"
done

total_downloads=0
total_cuts=0
for client in "curl -C -" "curl --http2 -C -" "wget -c" "aria2c -x 4"; do
    echo "# $client: ${DOWNLOADS[$client]:-0} downloads, ${CUTS[$client]:-0} cuts survived"
    total_downloads=$((total_downloads + ${DOWNLOADS[$client]:-0}))
    total_cuts=$((total_cuts + ${CUTS[$client]:-0}))
done
echo "# in all: $total_downloads downloads, $total_cuts cuts, ${#SEEDS[@]} seeds"
finish
