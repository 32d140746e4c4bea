#!/usr/bin/env bash
# Stalled clients against the demo server: 2,000 connections that ask for a
# 1 GiB file and never read, then a normal client; prints the server's peak RSS.
#
#   scripts/bench_stalled.sh                      # the demo's defaults
#   scripts/bench_stalled.sh --max-buf-size 400KiB  # more demo flags
#
# CONNECTIONS (2000) sets the count. Loopback only; raises the descriptor limit.
set -euo pipefail
cd "$(dirname "$0")/.."
ulimit -n "$(ulimit -Hn)"
[[ ${SKIP_BUILD:-0} == 1 ]] || cargo build --release --example serve --example stalled_clients >/dev/null 2>&1
WORK=$(mktemp -d "${TMPDIR:-/tmp}/bench-stalled.XXXXXX")
truncate -s 1G "$WORK/big.bin"
target/release/examples/serve --root "$WORK" --addr 127.0.0.1:18600 --progress 0 "$@" \
    >"$WORK/serve.log" 2>&1 &
SERVER=$!
trap 'kill $SERVER 2>/dev/null; wait $SERVER 2>/dev/null; rm -rf "$WORK"' EXIT
until curl -s -o /dev/null -r 0-0 http://127.0.0.1:18600/big.bin; do sleep 0.05; done
target/release/examples/stalled_clients --connections "${CONNECTIONS:-2000}" \
    --addr 127.0.0.1:18600 --hold 3
awk '/VmHWM/ { printf "server peak RSS: %.1f MiB\n", $2 / 1024 }' "/proc/$SERVER/status"
