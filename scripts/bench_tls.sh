#!/usr/bin/env bash
# HTTPS against nginx (issue #25): the demo server (`examples/serve` with
# `--tls-cert/--tls-key`) and nginx 1.22 with the same certificate (ECDSA P-256,
# made here with openssl), both TLS 1.3 only with the one suite
# TLS_AES_128_GCM_SHA256 (rustls `--tls-ciphers`, nginx `ssl_conf_command
# Ciphersuites`), on 127.0.0.1. Runs are interleaved (A B A B ...):
#
#   single   one GET of a 1 GiB file (curl --http1.1): MB/s, server CPU s per GiB
#   wrk64    64 connections × a 1 MiB file (wrk -t2 -c64, keep-alive): MB/s,
#            p50 and p99 latency, server CPU s per GiB
#   connect  new TLS connections per second: wrk -t2 -c16 with
#            `Connection: close` on a 1 KiB file: connections/s, server and
#            client CPU µs each. wrk *resumes* the TLS session on each
#            reconnection (it keeps its SSL object with SSL_clear), so these are
#            PSK handshakes with X25519 and no certificate, against both
#            servers. wrk also busy-polls while a handshake is under way (its
#            socket stays registered for EPOLLOUT), so its CPU per connection
#            grows with the server's answer time, and the rate with it.
#   handshake full TLS 1.3 handshakes per second (certificate, ECDSA
#            signature, X25519; no resumption): two `openssl s_time -new -www
#            /1k.bin` clients at once (one per core, blocking I/O), each
#            connection fetching the 1 KiB file: connections/s, server and
#            client CPU µs each
#
# Before each run the script waits until under 10 % of the machine is busy, and
# after it compares the machine's busy time with the server's and the client's:
# a run during which anything else used over 10 % is done again (up to 4
# tries). Server CPU is utime + stime of the server's processes (nginx's master
# and workers), from /proc/PID/stat.
#
#   scripts/bench_tls.sh                          # about 5 minutes
#   RUNS=5 SCENARIOS="single connect" scripts/bench_tls.sh
#   EXTRA="ours-h2buf=target/release/examples/serve --h2-max-send-buf-size 65536" scripts/bench_tls.sh
#
# Results: target/bench-tls/raw.tsv (one line per measurement) and summary.md
# (median (min–max) per server, and ours / nginx).
#
# Knobs (environment variables, defaults in brackets):
#   SCENARIOS     [single wrk64 connect handshake]
#   RUNS          interleaved rounds [3]
#   WRK_DURATION  length of one wrk run [10s]
#   CIPHER        the one TLS 1.3 suite, in IANA/OpenSSL naming [TLS_AES_128_GCM_SHA256]
#   NGINX_WORKERS nginx's worker_processes [auto: one per core, as Debian's]
#   EXTRA         more servers: "label=DEMO-BINARY [flags]" separated by ";",
#                 started with the same root, certificate and cipher flags
#   SKIP_BUILD    1: use the existing target/release/examples/serve [0]
#   QUIET         0: neither wait for a quiet machine nor repeat disturbed runs
#                 (a quick check on a busy machine; the figures are then noise) [1]
set -euo pipefail

SCENARIOS=${SCENARIOS:-"single wrk64 connect handshake"}
RUNS=${RUNS:-3}
WRK_DURATION=${WRK_DURATION:-10s}
CIPHER=${CIPHER:-TLS_AES_128_GCM_SHA256}
NGINX_WORKERS=${NGINX_WORKERS:-auto}
EXTRA=${EXTRA:-}
SKIP_BUILD=${SKIP_BUILD:-0}
QUIET=${QUIET:-1}

GIB=$((1024 * 1024 * 1024))
HZ=$(getconf CLK_TCK)
NPROC=$(nproc)
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
out="$repo/target/bench-tls"
mkdir -p "$out"
cd "$repo"
exec </dev/null

log() { printf '[bench-tls %s] %s\n' "$(date +%T)" "$*" >&2; }
die() { log "error: $*"; exit 1; }
has() { [[ " $SCENARIOS " == *" $1 "* ]]; }

work=$(mktemp -d "${TMPDIR:-/tmp}/bench-tls.XXXXXX")
chmod 755 "$work"
declare -A pids_of addr_of
servers=()
cleanup() {
    local s
    for s in "${servers[@]}"; do
        # shellcheck disable=SC2086 # pid lists
        kill ${pids_of[$s]:-} 2>/dev/null || true
    done
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
ulimit -n "$(ulimit -Hn)"

for tool in curl wrk nginx openssl; do
    command -v "$tool" >/dev/null || die "$tool is needed (apt-get install $tool)"
done
if [[ $SKIP_BUILD != 1 ]]; then
    log "building the demo server (release)"
    cargo build --release --example serve >"$work/build.log" 2>&1 ||
        { tail -n 30 "$work/build.log"; die "build failed"; }
fi
SERVE=target/release/examples/serve

# --- files, certificate --------------------------------------------------------

root="$work/root"
mkdir -p "$root"
log "writing a 1 GiB random file"
head -c $GIB /dev/urandom >"$root/1g.bin"
head -c $((1 << 20)) /dev/urandom >"$root/1m.bin"
head -c 1024 /dev/urandom >"$root/1k.bin"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
    -subj /CN=localhost -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" \
    -keyout "$work/key.pem" -out "$work/cert.pem" >/dev/null 2>&1 || die "openssl req failed"
# rustls names the TLS 1.3 suites TLS13_*; OpenSSL and IANA TLS_*.
RUSTLS_CIPHER=${CIPHER/TLS_/TLS13_}

{
    echo "date: $(date -u +%FT%TZ)"
    echo "commit: $(git rev-parse --short HEAD 2>/dev/null)$(git diff --quiet 2>/dev/null || echo ' (dirty)')"
    echo "nproc: $NPROC"
    echo "kernel: $(uname -r)"
    echo "kTLS: tcp_available_ulp = $(cat /proc/sys/net/ipv4/tcp_available_ulp 2>/dev/null)"
    echo "curl: $(curl --version | head -1)"
    echo "wrk: $(wrk -v 2>&1 | head -1)"
    echo "nginx: $(nginx -v 2>&1), $(nginx -V 2>&1 | grep -o 'built with OpenSSL [^ ]*')"
    echo "cipher: TLS 1.3 $CIPHER, certificate ECDSA P-256 (both servers)"
} >"$out/machine.txt"

# --- servers -------------------------------------------------------------------

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

wait_listening() { # name url
    for _ in $(seq 200); do
        curl -s -k -o /dev/null --max-time 1 -r 0-0 "$2" && return 0
        sleep 0.05
    done
    die "$1 did not answer on $2"
}

start_demo() { # name binary flags...
    local name=$1 port
    shift
    port=$(free_port)
    # shellcheck disable=SC2068 # the flags are words
    $@ --root "$root" --addr "127.0.0.1:$port" --progress 0 \
        --tls-cert "$work/cert.pem" --tls-key "$work/key.pem" --tls-ciphers "$RUSTLS_CIPHER" \
        >"$work/$name.log" 2>&1 &
    pids_of[$name]=$!
    addr_of[$name]=127.0.0.1:$port
    servers+=("$name")
    wait_listening "$name" "https://127.0.0.1:$port/1k.bin"
}

start_nginx() { # name
    local name=$1 port dir
    port=$(free_port)
    dir="$work/$name"
    mkdir -p "$dir/body"
    cat >"$dir/nginx.conf" <<CONF
worker_processes $NGINX_WORKERS;
daemon off;
pid $dir/nginx.pid;
error_log $dir/error.log;
events { worker_connections 20000; }
worker_rlimit_nofile 40000;
http {
  default_type application/octet-stream;
  access_log off;
  # As the shared nginx peer; over TLS without kernel TLS nginx cannot use
  # sendfile and writes through SSL_write.
  sendfile on; tcp_nopush on;
  keepalive_requests 1000000;
  client_body_temp_path $dir/body;
  server {
    listen 127.0.0.1:$port ssl http2;
    ssl_certificate $work/cert.pem;
    ssl_certificate_key $work/key.pem;
    ssl_protocols TLSv1.3;
    ssl_conf_command Ciphersuites $CIPHER;
    root $root;
  }
}
CONF
    nginx -c "$dir/nginx.conf" -p "$dir" &
    pids_of[$name]=$!
    addr_of[$name]=127.0.0.1:$port
    servers+=("$name")
    wait_listening "$name" "https://127.0.0.1:$port/1k.bin"
    pids_of[$name]="${pids_of[$name]} $(pgrep -P "${pids_of[$name]}" | tr '\n' ' ')"
}

start_demo ours "$SERVE"
start_nginx nginx
IFS=';' read -ra extras <<<"$EXTRA"
for extra in "${extras[@]}"; do
    [[ -n $extra ]] || continue
    start_demo "${extra%%=*}" "${extra#*=}"
done
log "servers: $(for s in "${servers[@]}"; do printf '%s=%s ' "$s" "${addr_of[$s]}"; done)"
for s in "${servers[@]}"; do
    curl -sv --cacert "$work/cert.pem" -o /dev/null "https://localhost:${addr_of[$s]#*:}/1k.bin" 2>&1 |
        grep -q "SSL connection using TLSv1.3 / $CIPHER" || die "$s does not negotiate TLS 1.3 $CIPHER"
done

# --- measuring -----------------------------------------------------------------

machine_busy_ticks() {
    local user nice system irq steal
    read -r _ user nice system _ _ irq _ steal _ </proc/stat
    echo $((user + nice + system + irq + steal))
}

wait_quiet() {
    local i busy before after
    [[ $QUIET == 1 ]] || return 0
    for i in $(seq 240); do
        before=$(machine_busy_ticks)
        sleep 0.5
        after=$(machine_busy_ticks)
        busy=$(((after - before) * 100 / (HZ * NPROC / 2)))
        ((busy < 10)) && return 0
        ((i % 20 == 1)) && log "waiting for a quiet machine ($busy % busy)"
    done
    log "warning: the machine is still busy ($busy %)"
}

cpu_ticks() {
    local pid total=0
    for pid in "$@"; do
        total=$((total + $(sed 's/.*) //' "/proc/$pid/stat" | awk '{print $12 + $13}')))
    done
    echo "$total"
}

# guarded SERVER COMMAND...: runs the client, sets SERVER_CPU and CLIENT_CPU (s) and FOREIGN (%
# of the machine used by other processes); output in $work/cmd.out.
guarded() {
    local s=$1 t0 t1 b0 b1 c0 c1 wall
    shift
    local TIMEFORMAT='%3U %3S'
    for _ in 1 2 3 4; do
        wait_quiet
        # shellcheck disable=SC2086
        c0=$(cpu_ticks ${pids_of[$s]})
        b0=$(machine_busy_ticks)
        t0=$(date +%s.%N)
        { time "$@" >"$work/cmd.out" 2>"$work/cmd.err"; } 2>"$work/cmd.time" ||
            die "$s: $* failed: $(cat "$work/cmd.err")"
        t1=$(date +%s.%N)
        b1=$(machine_busy_ticks)
        # shellcheck disable=SC2086
        c1=$(cpu_ticks ${pids_of[$s]})
        CLIENT_CPU=$(tail -1 "$work/cmd.time" | awk '{print $1 + $2}')
        SERVER_CPU=$(awk -v c=$((c1 - c0)) -v hz="$HZ" 'BEGIN {print c / hz}')
        wall=$(awk -v a="$t0" -v b="$t1" 'BEGIN {print b - a}')
        FOREIGN=$(awk -v busy=$((b1 - b0)) -v hz="$HZ" -v server="$SERVER_CPU" -v client="$CLIENT_CPU" \
            -v wall="$wall" -v n="$NPROC" 'BEGIN {
                f = (busy / hz - server - client) / (wall * n) * 100
                printf "%.0f", f < 0 ? 0 : f }')
        ((FOREIGN <= 10 || QUIET == 0)) && return 0
        log "$s: other processes used $FOREIGN % of the machine during the run; again"
    done
    log "warning: $s measured with $FOREIGN % of the machine used by other processes"
    echo "warning: a run of $s was measured while other processes used $FOREIGN %" >>"$out/machine.txt"
}

raw="$out/raw.tsv"
: >"$raw"
record() { printf '%s\t%s\t%s\t%s\t%s\n' "$@" >>"$raw"; } # scenario metric unit server value

cat >"$work/report.lua" <<'EOF'
done = function(summary, latency, requests)
    local e = summary.errors
    io.write(string.format(
        "RESULT requests=%d duration_us=%d bytes=%.0f p50_us=%.0f p99_us=%.0f errors=%d non2xx=%d\n",
        summary.requests, summary.duration, summary.bytes,
        latency:percentile(50), latency:percentile(99),
        e.connect + e.read + e.write + e.timeout, e.status))
end
EOF
wrk_result() { # -> requests seconds bytes p50_ms p99_ms errors non2xx
    awk '/^RESULT / {
        for (i = 2; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] }
        printf "%s %s %s %s %s %s %s\n", v["requests"], v["duration_us"] / 1e6, v["bytes"],
            v["p50_us"] / 1000, v["p99_us"] / 1000, v["errors"], v["non2xx"]
    }' "$work/cmd.out"
}

single() { # server
    local s=$1 code size speed
    guarded "$s" curl -s --http1.1 --cacert "$work/cert.pem" -o /dev/null \
        -w '%{http_code} %{size_download} %{speed_download}\n' "https://localhost:${addr_of[$s]#*:}/1g.bin"
    read -r code size speed <"$work/cmd.out"
    [[ $code == 200 && $size == "$GIB" ]] || die "$s: GET 1g.bin gave $code with $size bytes"
    record single "one GET of 1 GiB" MB/s "$s" "$(awk -v x="$speed" 'BEGIN {print x / 1e6}')"
    record single "server CPU per GiB" s "$s" "$SERVER_CPU"
}

wrk64() { # server
    local s=$1 requests seconds bytes p50 p99 errors non2xx
    guarded "$s" wrk -t2 -c64 -d"$WRK_DURATION" --latency -s "$work/report.lua" "https://${addr_of[$s]}/1m.bin"
    read -r requests seconds bytes p50 p99 errors non2xx < <(wrk_result)
    [[ ${errors:-1} == 0 && ${non2xx:-1} == 0 ]] || die "$s: wrk errors: $(cat "$work/cmd.out")"
    record wrk64 "64 connections × 1 MiB" MB/s "$s" "$(awk -v b="$bytes" -v t="$seconds" 'BEGIN {print b / t / 1e6}')"
    record wrk64 "p50 latency" ms "$s" "$p50"
    record wrk64 "p99 latency" ms "$s" "$p99"
    record wrk64 "server CPU per GiB" s "$s" "$(awk -v c="$SERVER_CPU" -v b="$bytes" -v g=$GIB 'BEGIN {print c / (b / g)}')"
}

connect() { # server
    local s=$1 requests seconds bytes p50 p99 errors non2xx
    guarded "$s" wrk -t2 -c16 -d"$WRK_DURATION" -H 'Connection: close' -s "$work/report.lua" \
        "https://${addr_of[$s]}/1k.bin"
    read -r requests seconds bytes p50 p99 errors non2xx < <(wrk_result)
    [[ ${non2xx:-1} == 0 ]] || die "$s: wrk: $(cat "$work/cmd.out")"
    record connect "new TLS connections" "per s" "$s" "$(awk -v r="$requests" -v t="$seconds" 'BEGIN {print r / t}')"
    record connect "server CPU per connection" µs "$s" "$(awk -v c="$SERVER_CPU" -v r="$requests" 'BEGIN {print c / r * 1e6}')"
    record connect "client CPU per connection" µs "$s" "$(awk -v c="$CLIENT_CPU" -v r="$requests" 'BEGIN {print c / r * 1e6}')"
    record connect "connection errors (wrk)" count "$s" "$errors"
}

handshake() { # server
    local s=$1 seconds=${WRK_DURATION%s} connections wall bytes
    # shellcheck disable=SC2016
    guarded "$s" bash -c 'start=$(date +%s.%N)
        for i in 1 2; do openssl s_time -connect "$1" -new -www /1k.bin -time "$2" >"$3.$i" 2>&1 & done
        wait
        echo "wall $(awk -v a="$start" -v b="$(date +%s.%N)" "BEGIN {print b - a}")"
        cat "$3".1 "$3".2' _ "${addr_of[$s]}" "$seconds" "$work/s_time"
    connections=$(awk '/connections in .* real seconds/ {n += $1} END {print n + 0}' "$work/cmd.out")
    bytes=$(awk '/real seconds/ {b = $(NF - 4)} END {print b + 0}' "$work/cmd.out")
    wall=$(awk '/^wall / {print $2}' "$work/cmd.out")
    ((connections > 0 && bytes >= 1024)) || die "$s: s_time: $(cat "$work/cmd.out")"
    record handshake "full handshakes" "per s" "$s" "$(awk -v n="$connections" -v t="$wall" 'BEGIN {print n / t}')"
    record handshake "server CPU per handshake" µs "$s" "$(awk -v c="$SERVER_CPU" -v n="$connections" 'BEGIN {print c / n * 1e6}')"
    record handshake "client CPU per handshake" µs "$s" "$(awk -v c="$CLIENT_CPU" -v n="$connections" 'BEGIN {print c / n * 1e6}')"
}

for run in $(seq "$RUNS"); do
    for scenario in single wrk64 connect handshake; do
        has $scenario || continue
        log "run $run/$RUNS: $scenario"
        for s in "${servers[@]}"; do $scenario "$s"; done
    done
done

# --- summary -------------------------------------------------------------------

stats() {
    sort -g | awk '{a[NR] = $1} END {
        if (NR == 0) { print "- - - 0"; exit }
        m = NR % 2 ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2
        printf "%s %s %s %d\n", m, a[1], a[NR], NR }'
}
fmt() { awk -v x="$1" 'BEGIN { if (x >= 100) printf "%.0f", x; else if (x >= 10) printf "%.1f", x; else if (x >= 1) printf "%.2f", x; else printf "%.3g", x }'; }
{
    echo "# HTTPS: ours against nginx, TLS 1.3 $CIPHER ($RUNS interleaved runs; median (min–max))"
    echo
    header="| scenario | metric |"
    sep="|---|---|"
    for s in "${servers[@]}"; do header+=" $s |"; sep+="---|"; done
    echo "$header ours / nginx |"
    echo "$sep---|"
    while IFS=$'\t' read -r scenario metric unit; do
        row="| $scenario | $metric ($unit) |"
        ours="" nginx=""
        for s in "${servers[@]}"; do
            read -r median min max n < <(awk -F'\t' -v a="$scenario" -v m="$metric" -v v="$s" \
                '$1 == a && $2 == m && $4 == v {print $5}' "$raw" | stats)
            if [[ $n == 0 ]]; then row+=" - |"; continue; fi
            row+=" $(fmt "$median") ($(fmt "$min")–$(fmt "$max")) |"
            [[ $s == ours ]] && ours=$median
            [[ $s == nginx ]] && nginx=$median
        done
        row+=" $(awk -v a="$ours" -v b="$nginx" 'BEGIN { if (b == 0) print "-"; else printf "%.2f×", a / b }') |"
        echo "$row"
    done < <(awk -F'\t' '{print $1 "\t" $2 "\t" $3}' "$raw" | awk '!seen[$0]++')
    echo
    sed 's/^/    /' "$out/machine.txt"
} >"$out/summary.md"
cat "$out/summary.md"
