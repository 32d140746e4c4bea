#!/usr/bin/env bash
# Real download clients against the demo server (example `serve`), end to end,
# all on 127.0.0.1:
#
#   - curl            gets a listing of the folder at /
#   - curl -C -       resumes a download cut off after a second
#   - wget -c         resumes a download cut off after a second
#   - aria2c -x8 -s8  downloads with 8 parallel ranged connections
#   - aria2c -x4      verifies a download through the `Digest` header (from a
#                     NAME.sha256 beside the file), and fails with exit code 32
#                     on a file whose NAME.sha256 is wrong
#   - curl            gets a `Repr-Digest` hashed in the background that equals
#                     what sha256sum finds
#   - curl            takes the time --rate 4MiB says for a 16 MiB file (±10%)
#   - signed links    (--signing-key, `serve sign`): curl gets a file with a
#                     minted link, resumes it with curl -C - and the same link,
#                     gets 403 without a link, with a tampered one and on
#                     another path, and takes the time a link's rate claim says
#
# Every download is checked with sha256sum against the source file. Prints one
# line per check (`ok - ...` / `FAIL - ...`), then `N passed, M failed`; exits
# non-zero if any check failed. Installs curl, wget and aria2 with apt-get when
# they are missing (needs root or sudo). Works without a terminal (CI=true).
#
#   scripts/real_clients.sh
#
# Knobs: PROFILE=debug|release picks the build of the demo server (default
# release; CI uses debug, which `cargo test` has already built); SKIP_BUILD=1
# uses the existing binary; KEEP=1 keeps the work directory.
set -uo pipefail
cd "$(dirname "$0")/.."
exec </dev/null

source scripts/clients_common.sh real-clients

# --- tools -------------------------------------------------------------------

need curl:curl wget:wget aria2c:aria2 sha256sum:coreutils
echo "# $(curl --version | head -n 1)"
echo "# $(wget --version | head -n 1)"
echo "# $(aria2c --version | head -n 1)"

# --- server --------------------------------------------------------------------

build_examples serve
SERVE="$BIN/serve"

ROOT="$WORK/root"
mkdir -p "$ROOT"
head -c $((64 << 20)) /dev/urandom >"$ROOT/big.bin"
head -c $((16 << 20)) /dev/urandom >"$ROOT/rated.bin"
BIG_SHA=$(sha256sum <"$ROOT/big.bin" | cut -d' ' -f1)
# Digests: a published checksum that is right, one that is wrong, and none.
head -c $((16 << 20)) /dev/urandom >"$ROOT/verified.bin"
head -c $((16 << 20)) /dev/urandom >"$ROOT/tampered.bin"
head -c $((16 << 20)) /dev/urandom >"$ROOT/hashed.bin"
(cd "$ROOT" && sha256sum verified.bin >verified.bin.sha256)
echo "$(sha256sum <"$ROOT/big.bin" | cut -d' ' -f1)  tampered.bin" >"$ROOT/tampered.bin.sha256"
RATED_SHA=$(sha256sum <"$ROOT/rated.bin" | cut -d' ' -f1)

# Starts the demo server on a port the kernel picks; sets SERVER_URL. PROBE is
# the path (and query) that answers once it is up.
start_server() {
    local name=$1
    shift
    "$SERVE" --root "$ROOT" --addr 127.0.0.1:0 "$@" >"$WORK/$name.log" 2>&1 &
    PIDS+=($!)
    local addr
    for _ in $(seq 100); do
        addr=$(sed -n 's|.* on http://\(127\.0\.0\.1:[0-9]*\).*|\1|p' "$WORK/$name.log")
        if [[ -n $addr ]] && curl -sf -o /dev/null -r 0-0 "http://$addr${PROBE:-/big.bin}"; then
            SERVER_URL="http://$addr"
            return 0
        fi
        sleep 0.1
    done
    cat "$WORK/$name.log" >&2
    return 1
}

start_server plain || die "start the demo server"
URL=$SERVER_URL
start_server rated --rate 4MiB || die "start the demo server with --rate 4MiB"
RATED_URL=$SERVER_URL
echo "# servers: $URL and $RATED_URL (--rate 4MiB)"

sha_of() { sha256sum <"$1" | cut -d' ' -f1; }

# --- the listing at / (on by default) -----------------------------------------

if curl -sSf "$URL/" | grep -q '<a href="big.bin">big.bin</a>'; then
    ok "the root URL lists the folder and links its files"
else
    fail "the root URL lists the folder and links its files"
fi

size_of() { stat -c %s "$1" 2>/dev/null || echo 0; }
FULL=$((64 << 20))

# --- curl -C - ---------------------------------------------------------------

out="$WORK/curl.bin"
curl -s --limit-rate 20M --max-time 1 -o "$out" "$URL/big.bin"
cut=$(size_of "$out")
if ((cut == 0 || cut >= FULL)); then
    fail "curl -C - resumes a cut-off download (the first try got $cut bytes)"
elif ! curl -sSf -C - -o "$out" "$URL/big.bin"; then
    fail "curl -C - resumes a cut-off download (the resume failed)"
elif [[ $(sha_of "$out") == "$BIG_SHA" ]]; then
    ok "curl -C - resumes a download cut off at $cut bytes"
else
    fail "curl -C - resumes a cut-off download (sha256 differs)"
fi

# --- wget -c -----------------------------------------------------------------

mkdir -p "$WORK/wget"
out="$WORK/wget/big.bin"
timeout 1 wget -q --limit-rate=20m -P "$WORK/wget" "$URL/big.bin"
cut=$(size_of "$out")
if ((cut == 0 || cut >= FULL)); then
    fail "wget -c resumes a cut-off download (the first try got $cut bytes)"
elif ! wget -q -c -P "$WORK/wget" "$URL/big.bin"; then
    fail "wget -c resumes a cut-off download (the resume failed)"
elif [[ $(sha_of "$out") == "$BIG_SHA" ]]; then
    ok "wget -c resumes a download cut off at $cut bytes"
else
    fail "wget -c resumes a cut-off download (sha256 differs)"
fi

# --- aria2c -x 8 -s 8 --------------------------------------------------------

mkdir -p "$WORK/aria2"
out="$WORK/aria2/big.bin"
if ! aria2c -q -x 8 -s 8 --min-split-size=1M --file-allocation=none \
    --allow-overwrite=true --auto-file-renaming=false \
    --log="$WORK/aria2.log" --log-level=info \
    -d "$WORK/aria2" -o big.bin "$URL/big.bin"; then
    fail "aria2c -x 8 -s 8 downloads with parallel ranged connections (aria2c failed)"
else
    # aria2 logs each connection it opens to the server.
    connections=$(grep -c 'Connecting to 127\.0\.0\.1' "$WORK/aria2.log")
    if [[ $(sha_of "$out") != "$BIG_SHA" ]]; then
        fail "aria2c -x 8 -s 8 downloads with parallel ranged connections (sha256 differs)"
    elif ((connections < 8)); then
        fail "aria2c -x 8 -s 8 downloads with parallel ranged connections (only $connections connections)"
    else
        ok "aria2c -x 8 -s 8 downloads over $connections ranged connections"
    fi
fi

# --- digests: aria2c -x4 verifies, and fails on a wrong digest -------------------

aria2_x4() {
    local name=$1
    aria2c -q -x 4 -s 4 --min-split-size=1M --file-allocation=none \
        --allow-overwrite=true --auto-file-renaming=false \
        --log="$WORK/aria2-$name.log" --log-level=info \
        -d "$WORK/aria2" -o "$name" "$URL/$name"
}
aria2_x4 verified.bin
code=$?
if ((code != 0)); then
    fail "aria2c -x4 verifies a download through the Digest header (exit code $code)"
elif ! grep -q 'Verification finished successfully' "$WORK/aria2-verified.bin.log"; then
    fail "aria2c -x4 verifies a download through the Digest header (no verification in its log)"
elif [[ $(sha_of "$WORK/aria2/verified.bin") != $(sha_of "$ROOT/verified.bin") ]]; then
    fail "aria2c -x4 verifies a download through the Digest header (sha256 differs)"
else
    ok "aria2c -x4 verifies a download through the Digest header"
fi
aria2_x4 tampered.bin
code=$?
if ((code == 32)) && grep -q 'Checksum error detected' "$WORK/aria2-tampered.bin.log"; then
    ok "aria2c fails with exit code 32 on a file whose NAME.sha256 is wrong"
else
    fail "aria2c fails with exit code 32 on a file whose NAME.sha256 is wrong (exit code $code)"
fi

# --- digests: curl and sha256sum, hashed in the background ------------------------

# The first request schedules the hash; the digest shows up once it is done
# (at least 2 s after the file was written: files are hashed once settled).
want=(-H 'Want-Repr-Digest: sha-256=10')
expected=$(printf "$(sha_of "$ROOT/hashed.bin" | sed 's/../\\x&/g')" | base64 -w0)
digest=
for _ in $(seq 100); do
    digest=$(curl -sSfI "${want[@]}" "$URL/hashed.bin" | tr -d '\r' |
        sed -n 's/^repr-digest: sha-256=:\(.*\):$/\1/ip')
    [[ -n $digest ]] && break
    sleep 0.1
done
if [[ -z $digest ]]; then
    fail "curl gets a Repr-Digest hashed in the background (none after 10 s)"
elif [[ $digest != "$expected" ]]; then
    fail "curl gets a Repr-Digest hashed in the background ($digest, sha256sum says $expected)"
else
    ok "curl gets a Repr-Digest hashed in the background, equal to sha256sum's"
fi

# --- curl at --rate 4MiB -----------------------------------------------------

out="$WORK/rated.bin"
seconds=$(curl -sSf -o "$out" -w '%{time_total}' "$RATED_URL/rated.bin")
expected=4 # 16 MiB at 4 MiB/s
if [[ -z $seconds ]]; then
    fail "curl at --rate 4MiB (the download failed)"
elif [[ $(sha_of "$out") != "$RATED_SHA" ]]; then
    fail "curl at --rate 4MiB (sha256 differs)"
elif awk -v t="$seconds" -v e="$expected" 'BEGIN { exit !(t >= 0.9 * e && t <= 1.1 * e) }'; then
    ok "curl gets 16 MiB at --rate 4MiB in ${seconds}s (expected ${expected}s ±10%)"
else
    fail "curl gets 16 MiB at --rate 4MiB in ${seconds}s (expected ${expected}s ±10%)"
fi

# --- signed links ------------------------------------------------------------

openssl rand -hex 32 >"$WORK/k1.key" 2>/dev/null ||
    head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$WORK/k1.key"
sign() { "$SERVE" sign --signing-key "$WORK/k1.key" "$@"; }
BIG_LINK=$(sign /big.bin) || die "serve sign /big.bin"
PROBE=$BIG_LINK start_server signed --signing-key "$WORK/k1.key" ||
    die "start the demo server with --signing-key"
SIGNED_URL=$SERVER_URL
status_of() { curl -s -o /dev/null -w '%{http_code}' "$1"; }
# The link with its last character changed.
TAMPERED=${BIG_LINK%?}
if [[ ${BIG_LINK: -1} == A ]]; then TAMPERED+=B; else TAMPERED+=A; fi

out="$WORK/signed.bin"
curl -s --limit-rate 20M --max-time 1 -o "$out" "$SIGNED_URL$BIG_LINK"
cut=$(size_of "$out")
if ((cut == 0 || cut >= FULL)); then
    fail "curl -C - resumes with the same signed link (the first try got $cut bytes)"
elif ! curl -sSf -C - -o "$out" "$SIGNED_URL$BIG_LINK"; then
    fail "curl -C - resumes with the same signed link (the resume failed)"
elif [[ $(sha_of "$out") == "$BIG_SHA" ]]; then
    ok "curl gets a file with a signed link from serve sign, and resumes it with the same link at $cut bytes"
else
    fail "curl -C - resumes with the same signed link (sha256 differs)"
fi
refusals=("$(status_of "$SIGNED_URL/big.bin")"
    "$(status_of "$SIGNED_URL${BIG_LINK/big.bin/rated.bin}")"
    "$(status_of "$SIGNED_URL$TAMPERED")"
    "$(status_of "$SIGNED_URL/")")
if [[ ${refusals[*]} == "403 403 403 403" ]]; then
    ok "signed links: 403 without a link, on another path, with a tampered signature, and for the listing"
else
    fail "signed links: expected 403 403 403 403, got ${refusals[*]}"
fi
out="$WORK/signed-rated.bin"
seconds=$(curl -sSf -o "$out" -w '%{time_total}' "$SIGNED_URL$(sign --rate 4MiB /rated.bin)")
expected=4 # 16 MiB at 4 MiB/s
if [[ -n $seconds && $(sha_of "$out") == "$RATED_SHA" ]] &&
    awk -v t="$seconds" -v e="$expected" 'BEGIN { exit !(t >= 0.9 * e && t <= 1.1 * e) }'; then
    ok "curl gets 16 MiB with a link claiming --rate 4MiB in ${seconds}s (expected ${expected}s ±10%)"
else
    fail "curl gets 16 MiB with a link claiming --rate 4MiB in ${seconds}s (expected ${expected}s ±10%)"
fi

finish
