#!/usr/bin/env bash
# End-to-end benchmarks of tower-range-serve against tower-http's ServeDir (and
# nginx with sendfile, when it can be installed), all on 127.0.0.1.
#
#   scripts/bench.sh                     # everything, about 15 minutes
#   SCENARIOS="single ttfb" scripts/bench.sh
#
# Results go to target/bench/: raw.tsv (one line per measurement), summary.md
# (the tables), chunk_sizes.csv (for scripts/plot_chunk_sizes.py) and machine.txt.
# Runs of different servers are interleaved (A B C A B C ...), so slow drift of
# the machine spreads over all of them instead of favouring one.
#
# Knobs (environment variables, defaults in brackets):
#   SCENARIOS     which scenarios to run [single wrk64 ranges many ttfb chunks
#                 throttled stalled]; throttled (2,000 streams at 16 KiB/s against
#                 nginx's limit_rate; Go has no throttle) and stalled (2,000
#                 never-reading clients) run scripts/bench_pacing.sh and
#                 scripts/bench_stalled.sh against the demo server, after the others
#   RUNS          single-stream GETs per server [5]
#   WRK_RUNS      wrk runs per server [3]
#   WRK_DURATION  length of one wrk run [10s]
#   MANY          concurrent downloads in the memory scenario [50]
#   MANY_RUNS     rounds of the memory scenario [3]
#   TTFB_RUNS     requests per server and range in the TTFB scenario [21]
#   CHUNK_SIZES   chunk sizes for ours [16384 65536 262144 1048576]
#   SERVERS       the servers compared [ours tower-http nginx-sendfile nginx-sendfile-nopush go]
#                 (go: Go's net/http FileServer, scripts/go-fileserver, built with
#                 Debian's golang-go, installed when missing)
#   OURS_ARGS     more bench_server flags for ours, e.g. "--chunk-size 262144" []
#   EXTRA         more servers, measured interleaved with the others: a list of
#                 "label=BINARY [flags]" separated by ";", where BINARY is a
#                 bench_server built from another tree (a patch to compare) []
#   NGINX         auto: use nginx if installable; no: skip it [auto]
#   SKIP_BUILD    1: use the existing target/release/examples/bench_server [0]
#   BENCH_DIR     where to put the 1 GiB and 50 GiB (sparse) files [a new temp dir]
#   KEEP          1: keep BENCH_DIR afterwards [0]
set -euo pipefail

SCENARIOS=${SCENARIOS:-"single wrk64 ranges many ttfb chunks throttled stalled"}
RUNS=${RUNS:-5}
WRK_RUNS=${WRK_RUNS:-3}
WRK_DURATION=${WRK_DURATION:-10s}
MANY=${MANY:-50}
MANY_RUNS=${MANY_RUNS:-3}
TTFB_RUNS=${TTFB_RUNS:-21}
CHUNK_SIZES=${CHUNK_SIZES:-"16384 65536 262144 1048576"}
SERVERS=${SERVERS:-"ours tower-http nginx-sendfile nginx-sendfile-nopush go"}
OURS_ARGS=${OURS_ARGS:-}
EXTRA=${EXTRA:-}
NGINX=${NGINX:-auto}
SKIP_BUILD=${SKIP_BUILD:-0}
KEEP=${KEEP:-0}

GIB=$((1024 * 1024 * 1024))
BIG_SIZE=$GIB
HZ=$(getconf CLK_TCK)
NPROC=$(nproc)

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
out="$repo/target/bench"
mkdir -p "$out"

log() { printf '[bench %s] %s\n' "$(date +%T)" "$*" >&2; }
die() { log "error: $*"; exit 1; }
has() { [[ " $SCENARIOS " == *" $1 "* ]]; }

# --- everything started here is stopped on exit -------------------------------

started_pids=()
work=""
# Whether $1 is still a child of this script (not a reused pid).
is_child() {
    [[ -r /proc/$1/stat ]] && [[ $(sed 's/.*) //' "/proc/$1/stat" | awk '{print $2}') == "$$" ]]
}
cleanup() {
    local pid
    for pid in "${started_pids[@]}"; do
        if is_child "$pid"; then kill "$pid" 2>/dev/null || true; fi
    done
    wait 2>/dev/null || true
    if [[ -n $work && $KEEP != 1 && -z ${BENCH_DIR_GIVEN:-} ]]; then
        rm -rf "$work"
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- tools ---------------------------------------------------------------------

apt_install() {
    [[ $(id -u) == 0 ]] || return 1
    command -v apt-get >/dev/null || return 1
    if [[ -z ${apt_updated:-} ]]; then
        apt-get update -qq >/dev/null 2>&1 || true
        apt_updated=1
    fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null 2>&1
}
for tool in curl wrk; do
    command -v "$tool" >/dev/null || apt_install "$tool" || die "$tool is missing"
done
nginx_bin=""
if [[ $NGINX != no ]]; then
    if ! command -v nginx >/dev/null && [[ ! -x /usr/sbin/nginx ]]; then
        apt_install nginx || log "nginx cannot be installed: its columns are skipped"
    fi
    nginx_bin=$(command -v nginx || { [[ -x /usr/sbin/nginx ]] && echo /usr/sbin/nginx; } || true)
fi

go_bin=""
if [[ " $SERVERS " == *" go "* ]]; then
    command -v go >/dev/null || apt_install golang-go || log "go cannot be installed: its column is skipped"
    go_bin=$(command -v go || true)
fi

# --- the server binary: copied, so that a rebuild during the run changes nothing --

if [[ -n ${BENCH_DIR:-} ]]; then
    BENCH_DIR_GIVEN=1
    work=$BENCH_DIR
    mkdir -p "$work"
else
    work=$(mktemp -d /tmp/trs-bench.XXXXXX)
fi
chmod 755 "$work" # nginx workers run as another user
if [[ $SKIP_BUILD != 1 ]]; then
    log "building the bench server (release)"
    (cd "$repo" && cargo build --release --example bench_server --quiet)
fi
cp "$repo/target/release/examples/bench_server" "$work/bench_server"
if [[ -n $go_bin ]]; then
    log "building the Go file server"
    cp "$repo/scripts/go-fileserver/main.go" "$work/go-fileserver.go"
    (cd "$work" && GO111MODULE=off "$go_bin" build -o "$work/go-fileserver" go-fileserver.go)
fi
revision=$(cd "$repo" && git rev-parse --short HEAD 2>/dev/null || echo unknown)
dirty=$(git -C "$repo" status --porcelain 2>/dev/null | grep -c .) || true

# --- files ---------------------------------------------------------------------

root="$work/root"
mkdir -p "$root"
chmod 755 "$root"
if [[ $(stat -c %s "$root/big.bin" 2>/dev/null || echo 0) != "$BIG_SIZE" ]]; then
    log "writing a 1 GiB file of random bytes"
    head -c "$BIG_SIZE" /dev/urandom >"$root/big.bin"
fi
head -c $((1024 * 1024)) "$root/big.bin" >"$root/1m.bin"
truncate -s 50G "$root/sparse50g.bin"
chmod 644 "$root"/*.bin
cat "$root/big.bin" >/dev/null # into the page cache

{
    echo "date: $(date -u +%FT%TZ)"
    echo "revision: $revision (uncommitted changes: $dirty files)"
    echo "nproc: $(nproc)"
    echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')"
    echo "kernel: $(uname -sr)"
    echo "memory: $(awk '/MemTotal/ {printf "%.1f GiB", $2 / 1048576}' /proc/meminfo)"
    echo "rustc: $(rustc --version 2>/dev/null || echo unknown)"
    echo "curl: $(curl --version | head -1)"
    echo "wrk: $(wrk -v 2>&1 | head -1)"
    [[ -n $nginx_bin ]] && echo "nginx: $("$nginx_bin" -v 2>&1)"
    [[ -n $go_bin ]] && echo "go: $("$go_bin" version)"
    echo "servers: $SERVERS${OURS_ARGS:+ (ours with $OURS_ARGS)}${EXTRA:+; extra: $EXTRA}"
    echo "settings: RUNS=$RUNS WRK_RUNS=$WRK_RUNS WRK_DURATION=$WRK_DURATION MANY=$MANY MANY_RUNS=$MANY_RUNS TTFB_RUNS=$TTFB_RUNS CHUNK_SIZES='$CHUNK_SIZES'"
} >"$out/machine.txt"
cat "$out/machine.txt" >&2

# --- servers -------------------------------------------------------------------

declare -A addr_of pids_of start_of bin_of
servers=()

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

wait_listening() { # name url
    local i
    for i in $(seq 100); do
        curl -s -o /dev/null "$2/1m.bin" && return 0
        sleep 0.1
    done
    die "$1 does not answer at $2"
}

start_rust() { # name bench_server-args...
    local name=$1
    shift
    start_of[$name]="start_rust $name $*"
    "${bin_of[$name]:-$work/bench_server}" --root "$root" --addr 127.0.0.1:0 "$@" \
        >"$work/$name.out" 2>"$work/$name.err" &
    local pid=$!
    started_pids+=("$pid")
    local i
    for i in $(seq 100); do
        grep -q '^listening on ' "$work/$name.out" 2>/dev/null && break
        kill -0 "$pid" 2>/dev/null || die "$name exited: $(cat "$work/$name.err")"
        sleep 0.1
    done
    addr_of[$name]=$(sed -n 's/^listening on //p' "$work/$name.out")
    [[ -n ${addr_of[$name]} ]] || die "$name did not print its address"
    pids_of[$name]=$pid
    wait_listening "$name" "http://${addr_of[$name]}"
}

start_nginx() { # name nopush(on|off)
    local name=$1 nopush=$2 port dir
    start_of[$name]="start_nginx $name $nopush"
    port=$(free_port)
    dir="$work/$name"
    mkdir -p "$dir/logs" "$dir/tmp"
    cat >"$dir/nginx.conf" <<EOF
# Two workers, like the two tokio workers of the Rust servers.
worker_processes 2;
daemon off;
pid $dir/nginx.pid;
error_log $dir/logs/error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    sendfile on;
    tcp_nopush $nopush;
    keepalive_requests 100000000;
    client_body_temp_path $dir/tmp/body;
    proxy_temp_path $dir/tmp/proxy;
    fastcgi_temp_path $dir/tmp/fastcgi;
    uwsgi_temp_path $dir/tmp/uwsgi;
    scgi_temp_path $dir/tmp/scgi;
    default_type application/octet-stream;
    server {
        listen 127.0.0.1:$port;
        root $root;
    }
}
EOF
    "$nginx_bin" -p "$dir" -e "$dir/logs/error.log" -c "$dir/nginx.conf" \
        >"$dir/logs/stdout" 2>&1 &
    local pid=$!
    started_pids+=("$pid")
    addr_of[$name]="127.0.0.1:$port"
    wait_listening "$name" "http://${addr_of[$name]}"
    pids_of[$name]="$pid $(pgrep -P "$pid" | tr '\n' ' ')"
}

start_go() { # name
    local name=$1 port
    start_of[$name]="start_go $name"
    port=$(free_port)
    "$work/go-fileserver" -root "$root" -addr "127.0.0.1:$port" \
        >"$work/$name.out" 2>"$work/$name.err" &
    local pid=$!
    started_pids+=("$pid")
    addr_of[$name]="127.0.0.1:$port"
    pids_of[$name]=$pid
    wait_listening "$name" "http://${addr_of[$name]}"
}

# Stops a server and starts it again (fresh memory statistics).
restart() { # name
    local pid
    for pid in ${pids_of[$1]}; do
        if is_child "$pid"; then
            kill "$pid"
            wait "$pid" 2>/dev/null || true
        fi
    done
    ${start_of[$1]}
}

# Busy ticks of the whole machine (user, nice, system, irq, steal; not softirq,
# where the kernel accounts loopback traffic of the processes measured).
machine_busy_ticks() {
    local user nice system irq steal
    read -r _ user nice system _ _ irq _ steal _ </proc/stat
    echo $((user + nice + system + irq + steal))
}

# Waits (up to 2 minutes) until under 10 % of the machine's CPU is busy over
# half a second, so that a build or another job does not skew the next run.
wait_quiet() {
    local i busy before after
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

# CPU time (utime + stime) of the given processes, all their threads, in ticks.
cpu_ticks() {
    local pid total=0 fields
    for pid in "$@"; do
        fields=$(sed 's/.*) //' "/proc/$pid/stat")
        total=$((total + $(awk '{print $12 + $13}' <<<"$fields")))
    done
    echo "$total"
}

# Runs a client command against a server and sets SERVER_CPU (seconds the server
# used meanwhile), WALL (seconds) and FOREIGN (% of the machine used by anything
# but that server and the client). A run where FOREIGN exceeds 10 % is done again
# (up to 4 attempts): the machine is shared, and a build elsewhere would skew it.
# The command's stdout is in $work/cmd.out.
guarded() { # server command...
    local s=$1 t0 t1 b0 b1 c0 c1 client
    shift
    local TIMEFORMAT='%3U %3S'
    for _ in 1 2 3 4; do
        wait_quiet
        # shellcheck disable=SC2086 # pid lists
        c0=$(cpu_ticks ${pids_of[$s]})
        b0=$(machine_busy_ticks)
        t0=$(date +%s.%N)
        { time "$@" >"$work/cmd.out" 2>"$work/cmd.err"; } 2>"$work/cmd.time" ||
            die "$s: $* failed: $(cat "$work/cmd.err")"
        t1=$(date +%s.%N)
        b1=$(machine_busy_ticks)
        # shellcheck disable=SC2086
        c1=$(cpu_ticks ${pids_of[$s]})
        client=$(tail -1 "$work/cmd.time" | awk '{print $1 + $2}')
        SERVER_CPU=$(awk -v c=$((c1 - c0)) -v hz="$HZ" 'BEGIN {print c / hz}')
        WALL=$(awk -v a="$t0" -v b="$t1" 'BEGIN {print b - a}')
        FOREIGN=$(awk -v busy=$((b1 - b0)) -v hz="$HZ" -v server="$SERVER_CPU" -v client="$client" \
            -v wall="$WALL" -v n="$NPROC" 'BEGIN {
                f = (busy / hz - server - client) / (wall * n) * 100
                printf "%.0f", f < 0 ? 0 : f }')
        ((FOREIGN <= 10)) && return 0
        log "$s: other processes used $FOREIGN % of the machine during the run; again"
    done
    log "warning: $s measured with $FOREIGN % of the machine used by other processes"
    echo "warning: a run of $s was measured while other processes used $FOREIGN % of the machine" \
        >>"$out/machine.txt"
}

# Resets the peak RSS (VmHWM) of the given processes to their current RSS.
reset_peak_rss() {
    local pid
    for pid in "$@"; do echo 5 >"/proc/$pid/clear_refs"; done
}

# The sum of a /proc/PID/status field (VmHWM: peak RSS, VmRSS) over processes, in KiB.
status_kib() { # field pid...
    local field=$1 pid total=0
    shift
    for pid in "$@"; do
        total=$((total + $(awk -v f="$field:" '$1 == f {print $2}' "/proc/$pid/status")))
    done
    echo "$total"
}

# --- results -------------------------------------------------------------------

raw="$out/raw.tsv"
: >"$raw"
record() { # scenario metric unit server value
    printf '%s\t%s\t%s\t%s\t%s\n' "$@" >>"$raw"
}

# median, min and max of the numbers on stdin
stats() {
    sort -g | awk '{a[NR] = $1} END {
        if (NR == 0) { print "- - - 0"; exit }
        m = NR % 2 ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2
        printf "%s %s %s %d\n", m, a[1], a[NR], NR }'
}

values() { # scenario metric server
    awk -F'\t' -v s="$1" -v m="$2" -v v="$3" '$1 == s && $2 == m && $4 == v {print $5}' "$raw"
}

fmt() { awk -v x="$1" 'BEGIN { if (x == "-") print "-"; else if (x >= 100) printf "%.0f", x; else if (x >= 10) printf "%.1f", x; else if (x >= 1) printf "%.2f", x; else printf "%.3g", x }'; }

# A markdown table: one row per metric of a scenario, one column per server.
table() { # scenario title
    local scenario=$1 title=$2 s metric unit cols header sep row median min max n ours theirs
    cols=$(awk -F'\t' -v s="$scenario" '$1 == s {print $4}' "$raw" | awk '!seen[$0]++')
    [[ -n $cols ]] || return 0
    header="| metric |"
    sep="|---|"
    for s in $cols; do header+=" $s |"; sep+="---|"; done
    header+=" ours / tower-http |"
    sep+="---|"
    printf '\n### %s\n\n%s\n%s\n' "$title" "$header" "$sep"
    while IFS=$'\t' read -r metric unit; do
        row="| $metric ($unit) |"
        ours="" theirs=""
        for s in $cols; do
            read -r median min max n < <(values "$scenario" "$metric" "$s" | stats)
            if [[ $n == 0 ]]; then
                row+=" - |"
                continue
            fi
            if [[ $n == 1 ]]; then
                row+=" $(fmt "$median") |"
            else
                row+=" $(fmt "$median") ($(fmt "$min")–$(fmt "$max")) |"
            fi
            [[ $s == ours ]] && ours=$median
            [[ $s == tower-http ]] && theirs=$median
        done
        if [[ -n $ours && -n $theirs ]]; then
            row+=" $(awk -v a="$ours" -v b="$theirs" 'BEGIN { if (b == 0) print "-"; else printf "%.2f×", a / b }') |"
        else
            row+=" - |"
        fi
        echo "$row"
    done < <(awk -F'\t' -v s="$scenario" '$1 == s {print $2 "\t" $3}' "$raw" | awk '!seen[$0]++')
}

# --- scenarios -----------------------------------------------------------------

cat >"$work/report.lua" <<'EOF'
done = function(summary, latency, requests)
    local e = summary.errors
    io.write(string.format(
        "RESULT requests=%d duration_us=%d bytes=%.0f p50_us=%.0f p99_us=%.0f max_us=%.0f errors=%d\n",
        summary.requests, summary.duration, summary.bytes,
        latency:percentile(50), latency:percentile(99), latency.max,
        e.connect + e.read + e.write + e.status + e.timeout))
end
EOF
{
    cat <<'EOF'
-- One random 64 KiB range of the big file per request.
local size = tonumber(os.getenv("BENCH_FILE_SIZE"))
local span = 65536
math.randomseed(os.time())
request = function()
    local start = math.random(0, size - span)
    return wrk.format("GET", nil, { ["Range"] = string.format("bytes=%.0f-%.0f", start, start + span - 1) })
end
EOF
    cat "$work/report.lua"
} >"$work/ranges.lua"

# Parses the wrk output in $work/cmd.out: "requests duration_s bytes p50_ms p99_ms errors".
wrk_result() {
    awk '/^RESULT / {
        for (i = 2; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] }
        printf "%s %s %s %s %s %s\n", v["requests"], v["duration_us"] / 1e6, v["bytes"],
            v["p50_us"] / 1000, v["p99_us"] / 1000, v["errors"]
    }' "$work/cmd.out"
}

# One GET of the big file with curl; records MB/s and the server's CPU s/GiB.
single_get() { # scenario server
    local scenario=$1 s=$2 code size speed
    guarded "$s" curl -s -o /dev/null -w '%{http_code} %{size_download} %{speed_download}\n' \
        "http://${addr_of[$s]}/big.bin"
    read -r code size speed <"$work/cmd.out"
    [[ $code == 200 && $size == "$BIG_SIZE" ]] || die "$s: GET big.bin gave $code with $size bytes"
    record "$scenario" "one GET of 1 GiB" "MB/s" "$s" "$(awk -v x="$speed" 'BEGIN {print x / 1e6}')"
    record "$scenario" "server CPU per GiB" "s" "$s" \
        "$(awk -v c="$SERVER_CPU" -v b="$size" -v g="$GIB" 'BEGIN {print c / (b / g)}')"
}

# 64 connections fetching the 1 MiB file for WRK_DURATION; records MB/s and p99.
wrk64() { # scenario server
    local scenario=$1 s=$2 requests duration bytes p50 p99 errors
    guarded "$s" wrk -t2 -c64 -d"$WRK_DURATION" -s "$work/report.lua" "http://${addr_of[$s]}/1m.bin"
    read -r requests duration bytes p50 p99 errors < <(wrk_result)
    [[ ${errors:-1} == 0 ]] || die "$s: wrk errors: $(cat "$work/cmd.out")"
    record "$scenario" "64 connections, 1 MiB file" "MB/s" "$s" \
        "$(awk -v b="$bytes" -v d="$duration" 'BEGIN {print b / d / 1e6}')"
    record "$scenario" "p99 latency" "ms" "$s" "$p99"
    record "$scenario" "server CPU per GiB" "s" "$s" \
        "$(awk -v c="$SERVER_CPU" -v b="$bytes" -v g="$GIB" 'BEGIN {print c / (b / g)}')"
}

scenario_single() {
    local s
    log "single stream: $RUNS interleaved GETs of 1 GiB per server"
    for s in "${servers[@]}"; do curl -s -o /dev/null "http://${addr_of[$s]}/big.bin"; done # warm-up
    for _ in $(seq "$RUNS"); do
        for s in "${servers[@]}"; do single_get single "$s"; done
    done
}

scenario_wrk64() {
    local s
    log "64 connections × 1 MiB file: $WRK_RUNS interleaved wrk runs of $WRK_DURATION per server"
    for _ in $(seq "$WRK_RUNS"); do
        for s in "${servers[@]}"; do wrk64 wrk64 "$s"; done
    done
}

scenario_ranges() {
    local s requests duration bytes p50 p99 errors
    log "random 64 KiB ranges over one connection: $WRK_RUNS interleaved wrk runs of $WRK_DURATION per server"
    for _ in $(seq "$WRK_RUNS"); do
        for s in "${servers[@]}"; do
            BENCH_FILE_SIZE=$BIG_SIZE guarded "$s" wrk -t1 -c1 -d"$WRK_DURATION" --latency \
                -s "$work/ranges.lua" "http://${addr_of[$s]}/big.bin"
            read -r requests duration bytes p50 p99 errors < <(wrk_result)
            [[ ${errors:-1} == 0 ]] || die "$s: wrk errors: $(cat "$work/cmd.out")"
            # Every response must be a 206 of 64 KiB, not the whole file (wrk also
            # counts the bytes of the response in flight at the end).
            awk -v b="$bytes" -v r="$requests" 'BEGIN { exit !(b < (r + 1) * (65536 + 1024)) }' ||
                die "$s: $bytes bytes for $requests range requests"
            record ranges "random 64 KiB ranges, 1 connection" "req/s" "$s" \
                "$(awk -v r="$requests" -v d="$duration" 'BEGIN {print r / d}')"
            record ranges "p50 latency" "ms" "$s" "$p50"
            record ranges "p99 latency" "ms" "$s" "$p99"
            record ranges "server CPU per request" "µs" "$s" \
                "$(awk -v c="$SERVER_CPU" -v r="$requests" 'BEGIN {print c / r * 1e6}')"
        done
    done
}

# MANY curl downloads of the big file at once; prints the number that failed.
many_downloads() { # url
    local i
    local -a curls=()
    for i in $(seq "$MANY"); do
        curl -s -o /dev/null -w '%{http_code} %{size_download}\n' "$1" >"$work/many.$i" &
        curls+=($!)
        started_pids+=($!)
    done
    for i in "${curls[@]}"; do wait "$i" || true; done
    cat "$work"/many.* | grep -cv "^200 $BIG_SIZE\$" || true
    rm -f "$work"/many.*
}

scenario_many() {
    local s kib
    log "$MANY concurrent downloads of 1 GiB: $MANY_RUNS interleaved rounds per server, each on a fresh server"
    for _ in $(seq "$MANY_RUNS"); do
        for s in "${servers[@]}"; do
            restart "$s"
            # shellcheck disable=SC2086
            kib=$(status_kib VmRSS ${pids_of[$s]})
            record many "idle server RSS before" "MiB" "$s" "$(awk -v k="$kib" 'BEGIN {print k / 1024}')"
            # shellcheck disable=SC2086
            reset_peak_rss ${pids_of[$s]}
            guarded "$s" many_downloads "http://${addr_of[$s]}/big.bin"
            [[ $(cat "$work/cmd.out") == 0 ]] || die "$s: $(cat "$work/cmd.out") of $MANY downloads failed"
            # shellcheck disable=SC2086
            kib=$(status_kib VmHWM ${pids_of[$s]})
            record many "$MANY × 1 GiB: server peak RSS" "MiB" "$s" "$(awk -v k="$kib" 'BEGIN {print k / 1024}')"
            record many "$MANY × 1 GiB: total time" "s" "$s" "$WALL"
            record many "$MANY × 1 GiB: server CPU per GiB" "s" "$s" \
                "$(awk -v c="$SERVER_CPU" -v n="$MANY" 'BEGIN {print c / n}')"
        done
    done
}

scenario_ttfb() {
    local s range code size ttfb
    log "time to first byte, 50 GiB sparse file: $TTFB_RUNS interleaved requests per server and range"
    wait_quiet
    for _ in $(seq "$TTFB_RUNS"); do
        for s in "${servers[@]}"; do
            for range in 0-99 -100; do
                read -r code size ttfb < <(curl -s -o /dev/null -H "Range: bytes=$range" \
                    -w '%{http_code} %{size_download} %{time_starttransfer}\n' \
                    "http://${addr_of[$s]}/sparse50g.bin")
                [[ $code == 206 && $size == 100 ]] || die "$s: bytes=$range gave $code with $size bytes"
                record ttfb "TTFB bytes=$range of 50 GiB" "ms" "$s" "$(awk -v t="$ttfb" 'BEGIN {print t * 1000}')"
            done
        done
    done
}

scenario_chunks() {
    local c s
    local -a names=()
    log "chunk sizes of ours: $CHUNK_SIZES"
    for c in $CHUNK_SIZES; do
        s="ours-chunk-$c"
        start_rust "$s" --impl ours --chunk-size "$c"
        names+=("$s")
        curl -s -o /dev/null "http://${addr_of[$s]}/big.bin" # warm-up
    done
    for _ in $(seq "$RUNS"); do
        for s in "${names[@]}"; do single_get chunks "$s"; done
    done
    for _ in $(seq "$WRK_RUNS"); do
        for s in "${names[@]}"; do wrk64 chunks-wrk64 "$s"; done
    done
    for s in "${names[@]}"; do kill "${pids_of[$s]}"; done
    {
        echo "chunk_size,metric,run,value"
        awk -F'\t' '$1 ~ /^chunks/ {
            sub(/^ours-chunk-/, "", $4)
            metric = $2 == "one GET of 1 GiB" ? "single_mb_s" : $2 == "64 connections, 1 MiB file" ? "wrk64_mb_s" : \
                $1 == "chunks" ? "cpu_s_per_gib" : "wrk64_cpu_s_per_gib"
            key = $4 SUBSEP metric
            print $4 "," metric "," ++run[key] "," $5
        }' "$raw"
    } >"$out/chunk_sizes.csv"
}

# --- run -------------------------------------------------------------------------

for s in $SERVERS; do
    case $s in
    ours)
        # shellcheck disable=SC2086 # flags
        start_rust ours --impl ours $OURS_ARGS
        ;;
    tower-http) start_rust tower-http --impl tower-http ;;
    nginx-sendfile | nginx-sendfile-nopush)
        [[ -n $nginx_bin ]] || continue
        start_nginx "$s" "$([[ $s == *nopush ]] && echo on || echo off)"
        ;;
    go)
        [[ -n $go_bin ]] || continue
        start_go go
        ;;
    *) die "unknown server $s" ;;
    esac
    servers+=("$s")
done
IFS=';' read -ra extras <<<"$EXTRA"
for spec in "${extras[@]}"; do
    read -r label binary flags <<<"${spec/=/ }"
    [[ -n $label ]] || continue
    [[ -x $binary ]] || die "EXTRA: $binary is not an executable"
    cp "$binary" "$work/bench_server.$label"
    bin_of[$label]="$work/bench_server.$label"
    # shellcheck disable=SC2086 # flags
    start_rust "$label" $flags
    servers+=("$label")
done
for s in "${servers[@]}"; do log "$s on ${addr_of[$s]} (pids ${pids_of[$s]})"; done

for scenario in single wrk64 ranges many ttfb; do
    has "$scenario" && "scenario_$scenario"
done
has chunks && scenario_chunks

{
    echo "## Results"
    echo
    echo "Medians, (min–max) over the runs; MB = 10^6 bytes."
    echo
    sed 's/^/    /' "$out/machine.txt"
    table single "One unthrottled GET of a 1 GiB file (curl, $RUNS runs)"
    table wrk64 "64 connections, 1 MiB file (wrk -t2 -c64 -d$WRK_DURATION, $WRK_RUNS runs)"
    table ranges "Random 64 KiB ranges of the 1 GiB file, one keep-alive connection (wrk -t1 -c1 --latency, $WRK_RUNS runs)"
    table many "$MANY concurrent downloads of the 1 GiB file (curl, $MANY_RUNS rounds)"
    table ttfb "Time to first byte in a 50 GiB sparse file (curl, $TTFB_RUNS requests)"
    table chunks "Chunk size of ours: one GET of 1 GiB ($RUNS runs)"
    table chunks-wrk64 "Chunk size of ours: 64 connections, 1 MiB file ($WRK_RUNS runs)"
} >"$out/summary.md"

# The demo server's scenarios, from their own scripts (the servers above are
# stopped first: these need the machine to themselves).
if has throttled || has stalled; then
    for s in "${servers[@]}"; do
        for pid in ${pids_of[$s]}; do is_child "$pid" && kill "$pid" 2>/dev/null || true; done
    done
fi
if has throttled; then
    log "throttled: 2,000 streams x 16 KiB/s, ours (default pacing chunk) and nginx"
    {
        echo
        echo "### Throttled: 2,000 streams at 16 KiB/s (scripts/bench_pacing.sh)"
        echo
        CHUNKS=16KiB bash "$repo/scripts/bench_pacing.sh" | sed 's/^/    /'
    } >>"$out/summary.md"
fi
if has stalled; then
    log "stalled: 2,000 clients that never read, then a normal one"
    {
        echo
        echo "### Stalled: 2,000 clients that never read (scripts/bench_stalled.sh)"
        echo
        bash "$repo/scripts/bench_stalled.sh" | tail -n 2 | sed 's/^/    /'
    } >>"$out/summary.md"
fi

if has chunks && command -v python3 >/dev/null; then
    python3 "$repo/scripts/plot_chunk_sizes.py" "$out/chunk_sizes.csv" "$repo/docs/chunk-sizes.svg"
fi
cat "$out/summary.md"
log "done: results in $out"
