#!/usr/bin/env bash
# A longer soak of downloads over rough networks: the Rust tests through the
# fault-injecting proxy (tests/rough_network.rs, tests/rough_objects.rs) with
# N seeds per source instead of CI's fixed few, then the real clients
# (scripts/rough_clients.sh) with N seeds. Prints each source's totals
# (downloads, attempts, cuts, resets, stalls, trickles), the grand total, and
# exits non-zero if anything failed.
#
#   scripts/rough_soak.sh [--seeds N]      (default 50)
#
# PROFILE=debug|release as for rough_clients.sh (default release). The object
# store tests need moto_server on PATH (as .ci/run installs it), or they skip.
set -uo pipefail
cd "$(dirname "$0")/.."
exec </dev/null

SEEDS=50
while (($#)); do
    case $1 in
        --seeds)
            SEEDS=$2
            shift 2
            ;;
        *)
            echo "usage: $0 [--seeds N]" >&2
            exit 2
            ;;
    esac
done
PROFILE=${PROFILE:-release}
case $PROFILE in
    release) PROFILE_FLAG=(--release) ;;
    debug) PROFILE_FLAG=() ;;
    *)
        echo "PROFILE must be debug or release" >&2
        exit 2
        ;;
esac

LOG=$(mktemp "${TMPDIR:-/tmp}/rough-soak.XXXXXX")
echo "# Rust tests, $SEEDS seeds per source (log: $LOG)"
ROUGH_SEEDS=$SEEDS nice -n 19 cargo test "${PROFILE_FLAG[@]}" \
    --test rough_network --test rough_objects -- --nocapture --test-threads=1 >"$LOG" 2>&1
rust=$?
grep -E '^(test |[a-z-]+: Tally|moto: )' "$LOG"
# Sum `name: Tally { downloads: D, attempts: A, cuts: C, ... }` lines.
awk '/Tally \{/ {
        for (i = 1; i <= NF; i++) {
            key = $i; sub(/:$/, "", key); value = $(i + 1); sub(/,$/, "", value)
            if (key ~ /^(downloads|attempts|cuts|resets|stalls|trickles)$/) sum[key] += value
        }
    }
    END { printf "# Rust tests in all: %d downloads, %d attempts, %d cuts (%d resets), %d stalls, %d trickles\n",
          sum["downloads"], sum["attempts"], sum["cuts"], sum["resets"], sum["stalls"], sum["trickles"] }' "$LOG"

echo "# real clients, $SEEDS seeds"
PROFILE=$PROFILE bash scripts/rough_clients.sh --seeds "$SEEDS"
clients=$?

if ((rust != 0)); then
    echo "# the Rust tests FAILED: see $LOG"
fi
((rust == 0 && clients == 0))
