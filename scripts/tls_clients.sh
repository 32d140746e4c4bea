#!/usr/bin/env bash
# HTTPS end to end against the demo server (example `serve`), all on 127.0.0.1:
#
#   - `--tls-self-signed`: the banner names the certificate file, and curl
#     trusts the server with `--cacert FILE`
#   - curl --http1.1 and curl --http2 (ALPN): a 64 MiB download (sha256 equal),
#     a range (206, the right bytes), a `curl -C -` resume of a cut-off download
#   - plain HTTP, then garbage, sent to the HTTPS port: the connection is
#     closed, one log line each, and the next HTTPS request is served
#   - a client that says nothing is closed after `--tls-handshake-timeout`, and
#     20 such connections leave no file descriptor behind
#   - `--workers 2` (single-threaded runtimes on SO_REUSEPORT listeners):
#     downloads over both protocols, and SIGTERM stops it
#   - `--tls-cert/--tls-key` with `--tls-ciphers TLS13_AES_128_GCM_SHA256`:
#     curl negotiates TLS 1.3 with that suite (needs the `openssl` command to
#     make the key and certificate; skipped without it)
#
# Prints `ok - ...` / `FAIL - ...` per check, then `N passed, M failed`; exits
# non-zero if any check failed. Needs curl (built with HTTP/2) and sha256sum.
#
#   scripts/tls_clients.sh
#
# Knobs: PROFILE=debug|release picks the build of the demo server (default
# release; CI uses debug, which `cargo test` has already built); SKIP_BUILD=1
# uses the existing binary; KEEP=1 keeps the work directory.
set -uo pipefail
cd "$(dirname "$0")/.."
exec </dev/null

source scripts/clients_common.sh tls-clients

command -v curl >/dev/null || die "curl is needed"
curl --version | grep -q HTTP2 || die "curl without HTTP/2"
echo "# $(curl --version | head -n 1)"

# --- server --------------------------------------------------------------------

build_examples serve
SERVE="$BIN/serve"

ROOT="$WORK/root"
mkdir -p "$ROOT"
FULL=$((64 << 20))
head -c $FULL /dev/urandom >"$ROOT/big.bin"
sha_of() { sha256sum <"$1" | cut -d' ' -f1; }
size_of() { stat -c %s "$1" 2>/dev/null || echo 0; }
BIG_SHA=$(sha_of "$ROOT/big.bin")

# Starts the demo server on a port the kernel picks; sets URL, PORT, PID and
# LOG. The remaining arguments are the server's TLS flags; CACERT is the
# certificate curl trusts (read from the banner with --tls-self-signed).
start_server() {
    local name=$1
    shift
    LOG="$WORK/$name.log"
    "$SERVE" --root "$ROOT" --addr 127.0.0.1:0 --progress 0 "$@" >"$LOG" 2>&1 &
    PID=$!
    PIDS+=("$PID")
    local addr cert
    for _ in $(seq 100); do
        addr=$(sed -n 's|.* on https://\(127\.0\.0\.1:[0-9]*\).*|\1|p' "$LOG")
        cert=$(sed -n 's|.*self-signed certificate .* in \([^ ]*\.pem\).*|\1|p' "$LOG")
        [[ -n $cert ]] && CACERT=$cert
        if [[ -n $addr ]] && curl -sf --cacert "$CACERT" -o /dev/null -r 0-0 "https://$addr/big.bin"; then
            URL="https://$addr"
            PORT=${addr##*:}
            return 0
        fi
        sleep 0.1
    done
    cat "$LOG" >&2
    return 1
}

CACERT=/nonexistent
start_server self-signed --tls-self-signed --tls-handshake-timeout 1 ||
    die "start the demo server with --tls-self-signed"
echo "# server: $URL, certificate $CACERT"
check "the banner prints a curl --cacert line" \
    grep -q "curl --cacert $CACERT .*https://127.0.0.1:$PORT/" "$LOG"

# --- downloads, ranges and resumes over both protocols ----------------------------

dd if="$ROOT/big.bin" of="$WORK/range.expected" bs=1 skip=1000000 count=65536 2>/dev/null
for proto in http1.1 http2; do
    want=${proto#http}
    out="$WORK/full-$proto.bin"
    got=$(curl -s --cacert "$CACERT" "--$proto" -o "$out" -w '%{http_version} %{http_code}' "$URL/big.bin")
    if [[ $got == "$want 200" && $(sha_of "$out") == "$BIG_SHA" ]]; then
        ok "curl --$proto downloads the whole file over TLS (HTTP/$want, sha256 equal)"
    else
        fail "curl --$proto downloads the whole file over TLS (got '$got', $(size_of "$out") bytes)"
    fi

    out="$WORK/range-$proto.bin"
    got=$(curl -s --cacert "$CACERT" "--$proto" -r 1000000-1065535 -o "$out" \
        -w '%{http_version} %{http_code}' "$URL/big.bin")
    if [[ $got == "$want 206" ]] && cmp -s "$out" "$WORK/range.expected"; then
        ok "curl --$proto gets a range over TLS (206, the file's bytes)"
    else
        fail "curl --$proto gets a range over TLS (got '$got', $(size_of "$out") bytes)"
    fi

    out="$WORK/resumed-$proto.bin"
    curl -s --cacert "$CACERT" "--$proto" --limit-rate 20M --max-time 1 -o "$out" "$URL/big.bin"
    cut=$(size_of "$out")
    got=$(curl -s --cacert "$CACERT" "--$proto" -C - -o "$out" -w '%{http_code}' "$URL/big.bin")
    if ((cut > 0 && cut < FULL)) && [[ $got == 206 && $(sha_of "$out") == "$BIG_SHA" ]]; then
        ok "curl --$proto -C - resumes a download cut off at $cut bytes over TLS (206, sha256 equal)"
    else
        fail "curl --$proto -C - resumes a cut-off download over TLS (cut at $cut, then '$got', $(size_of "$out") bytes)"
    fi
done

# --- what is not TLS -------------------------------------------------------------

served() { curl -sf --cacert "$CACERT" -r 0-9 -o /dev/null "$URL/big.bin"; }
failures() { grep -c "^tls: 127.0.0.1:[0-9]*: $1" "$LOG"; }

# rustls answers with a TLS alert record (which curl takes for HTTP/0.9) and
# closes; a server that held on would make curl time out (exit 28).
curl -s --http0.9 --max-time 5 -o "$WORK/plain.reply" "http://127.0.0.1:$PORT/big.bin"
rc=$?
reply=$(od -An -tx1 -N1 "$WORK/plain.reply" | tr -d ' ')
check "plain HTTP sent to the HTTPS port gets a TLS alert and the connection closed (curl exit $rc, first byte 0x$reply)" \
    test "$rc" == 0 -a "$reply" == 15
check "the server serves HTTPS after plain HTTP" served

# Garbage: the server closes, so reading to the end finishes (timeout would give 124).
timeout 5 bash -c "exec 3<>/dev/tcp/127.0.0.1/$PORT; head -c 4096 /dev/urandom >&3; cat <&3 >/dev/null"
rc=$?
check "garbage sent to the HTTPS port gets the connection closed (exit $rc)" test "$rc" != 124
check "the server serves HTTPS after garbage" served
check "each failed handshake is logged once ($(failures 'handshake failed') lines for 2)" \
    test "$(failures 'handshake failed')" == 2

# Silent clients: closed after --tls-handshake-timeout 1, nothing left behind.
fds() { find "/proc/$PID/fd" -mindepth 1 -maxdepth 1 | wc -l; }
before=$(fds)
start=$(date +%s%N)
for _ in $(seq 20); do
    timeout 8 bash -c "exec 3<>/dev/tcp/127.0.0.1/$PORT; cat <&3 >/dev/null" &
done
wait_rc=0
for job in $(jobs -p); do
    [[ " ${PIDS[*]} " == *" $job "* ]] && continue
    wait "$job" || wait_rc=$?
done
elapsed_ms=$((($(date +%s%N) - start) / 1000000))
check "20 silent clients are closed after the handshake timeout (all in $elapsed_ms ms)" \
    test "$wait_rc" == 0 -a "$elapsed_ms" -ge 900 -a "$elapsed_ms" -lt 7000
check "each silent client is logged once ($(failures 'no handshake within') lines for 20)" \
    test "$(failures 'no handshake within')" == 20
after=$(fds)
check "the silent clients leave no file descriptor behind ($before before, $after after)" \
    test "$after" -le "$before"
check "the server is still running and serving" served

# --- --workers: single-threaded runtimes on SO_REUSEPORT listeners ---------------

kill "$PID"
wait "$PID" 2>/dev/null
start_server workers --tls-self-signed --workers 2 || die "start the demo server with --workers 2"
good=0
for proto in http1.1 http2 http1.1 http2; do
    curl -s --cacert "$CACERT" "--$proto" -o "$WORK/workers.bin" "$URL/big.bin"
    [[ $(sha_of "$WORK/workers.bin") == "$BIG_SHA" ]] && good=$((good + 1))
done
check "--workers 2: four downloads over HTTP/1.1 and HTTP/2, sha256 equal ($good of 4)" test "$good" == 4
kill "$PID"
start=$(date +%s%N)
wait "$PID" 2>/dev/null
rc=$?
check "--workers 2: SIGTERM stops the server at once (exit $rc, $((($(date +%s%N) - start) / 1000000)) ms)" \
    test "$rc" == 0 -a $((($(date +%s%N) - start) / 1000000)) -lt 3000

# --- a certificate from files, one cipher suite --------------------------------------

if command -v openssl >/dev/null; then
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
        -subj /CN=localhost -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" \
        -keyout "$WORK/key.pem" -out "$WORK/cert.pem" >/dev/null 2>&1 ||
        die "openssl makes a certificate"
    CACERT="$WORK/cert.pem"
    start_server files --tls-cert "$WORK/cert.pem" --tls-key "$WORK/key.pem" \
        --tls-ciphers TLS13_AES_128_GCM_SHA256 ||
        die "start the demo server with --tls-cert, --tls-key and --tls-ciphers"
    details=$(curl -sv --cacert "$CACERT" -o "$WORK/files.bin" "$URL/big.bin" 2>&1 |
        grep -o 'SSL connection using .*')
    if [[ $details == *"TLSv1.3 / TLS_AES_128_GCM_SHA256"* && $(sha_of "$WORK/files.bin") == "$BIG_SHA" ]]; then
        ok "--tls-cert/--tls-key with --tls-ciphers: curl downloads over TLS 1.3 with TLS_AES_128_GCM_SHA256"
    else
        fail "--tls-cert/--tls-key with --tls-ciphers (curl: '$details')"
    fi
    tls12=$(curl -s --cacert "$CACERT" --tls-max 1.2 -o /dev/null -w '%{http_code}' "$URL/big.bin")
    check "a TLS 1.2 client is refused when only a TLS 1.3 suite is allowed (got '$tls12')" \
        test "$tls12" == 000
else
    ok "# skip --tls-cert/--tls-key: no openssl command to make a certificate"
fi

finish
