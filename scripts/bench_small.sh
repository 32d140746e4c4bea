#!/usr/bin/env bash
# Small files (issue #27): requests per second of the demo server with its
# defaults against nginx and Go's file server (the shared benchmark's peers,
# /work/shared/bench/peers/run-peer), over 127.0.0.1, with wrk:
#
#   one       one 4 KiB file, 64 connections
#   random    1,000 files of 1-16 KiB requested at random (a wrk Lua script)
#   random-ae the same with `Accept-Encoding: br, gzip`, every file having .br
#             and .gz sidecars (ours sends the .br; the peers, without
#             gzip_static, send the identity file: compare ours with ours)
#
# Servers are run A B C A B C ... (RUNS rounds; a fresh server per round, all
# three scenarios on it), so slow drift of the machine spreads over all of
# them. Prints a Markdown table: median (min-max) requests/s, and the server's
# CPU seconds per 100,000 requests (summed over its processes: nginx's workers).
#
#   scripts/bench_small.sh                    # RUNS=3, DURATION=5s
#   SERVERS="ours ours-nocache nginx" RUNS=5 scripts/bench_small.sh
#
# Knobs: RUNS [3], DURATION [5s], CONNECTIONS [64], THREADS [2],
# SERVERS [ours ours-nocache nginx go] (ours-nocache: --open-file-cache off;
# ours-w2: --workers 2; ours-w0: --workers 0, one multi-threaded runtime;
# LABEL=BINARY: another build of the demo server, e.g. before=/tmp/serve-old,
# run like ours), OURS_ARGS (more flags for ours), PEERS [/work/shared/bench/peers].
# Needs wrk, nginx and go (for the peers); builds the release demo server.
source "$(dirname "${BASH_SOURCE[0]}")/bench_common.sh"

RUNS=${RUNS:-3}
DURATION=${DURATION:-5s}
CONNECTIONS=${CONNECTIONS:-64}
THREADS=${THREADS:-2}
SERVERS=${SERVERS:-"ours ours-nocache nginx go"}
OURS_ARGS=${OURS_ARGS:-}
PEERS=${PEERS:-/work/shared/bench/peers}
SCENARIOS="one random random-ae"

# The fixture: 4k.bin, and small/f0000.txt .. f0999.txt (1-16 KiB, fixed seed)
# with .gz (real) and .br (a stand-in of a quarter of the length) sidecars.
python3 - "$WORK" <<'EOF'
import gzip, os, random, sys
root = sys.argv[1]
random.seed(27)
with open(os.path.join(root, "4k.bin"), "wb") as f:
    f.write(random.randbytes(4096))
os.makedirs(os.path.join(root, "small"), exist_ok=True)
for i in range(1000):
    n = random.randint(1024, 16 * 1024)
    words = b"".join(b"%d lorem ipsum dolor sit amet " % random.randint(0, 99) for _ in range(n // 16 + 1))
    data = words[:n]
    path = os.path.join(root, "small", f"f{i:04d}.txt")
    with open(path, "wb") as f:
        f.write(data)
    with open(path + ".gz", "wb") as f:
        f.write(gzip.compress(data, 6))
    with open(path + ".br", "wb") as f:
        f.write(data[: max(64, n // 4)])
EOF
cat "$WORK/4k.bin" "$WORK"/small/* >/dev/null

cat >"$WORK/random.lua" <<'EOF'
-- Each thread seeds its own generator: 1,000 files requested at random.
local counter = 0
function setup(thread)
    counter = counter + 1
    thread:set("seed", counter)
end
function init(args)
    math.randomseed(seed * 7919 + os.time())
end
function request()
    return wrk.format("GET", string.format("/small/f%04d.txt", math.random(0, 999)))
end
EOF

# start SERVER PORT: starts it serving $WORK; sets PID once it answers.
start() {
    local server=$1 port=$2
    case $server in
        ours) start_demo "$port" $OURS_ARGS; return ;;
        ours-nocache) start_demo "$port" --open-file-cache off $OURS_ARGS; return ;;
        ours-w2) start_demo "$port" --workers 2 $OURS_ARGS; return ;;
        ours-w0) start_demo "$port" --workers 0 $OURS_ARGS; return ;;
        *=*) "${server#*=}" --root "$WORK" --addr "127.0.0.1:$port" --progress 0 $OURS_ARGS \
            >>"$WORK/serve-$port.log" 2>&1 & ;;
        nginx | go) "$PEERS/run-peer" "$server" --root "$WORK" --addr "127.0.0.1:$port" \
            >>"$WORK/$server-$port.log" 2>&1 & ;;
        *) echo "unknown server $server" >&2; exit 2 ;;
    esac
    PID=$!
    PIDS+=("$PID")
    for _ in $(seq 600); do # Go's peer builds on first use
        curl -s -o /dev/null --max-time 1 "http://127.0.0.1:$port/4k.bin" && return
        sleep 0.1
    done
    echo "$server on $port did not start" >&2
    exit 1
}

# cpu_tree PID: CPU seconds of PID and its children.
cpu_tree() {
    local total=0 p
    for p in $1 $(pgrep -P "$1" | tr '\n' ' '); do
        total=$(awk -v a="$total" -v b="$(cpu_seconds "$p" 2>/dev/null || echo 0)" 'BEGIN { print a + b }')
    done
    echo "$total"
}

# scenario NAME PORT: one wrk run; prints "requests/s cpu_s_per_100k".
scenario() {
    local name=$1 port=$2 args=() path=/4k.bin
    case $name in
        random) args=(-s "$WORK/random.lua"); path=/ ;;
        random-ae) args=(-s "$WORK/random.lua" -H "Accept-Encoding: br, gzip"); path=/ ;;
    esac
    local before after out
    before=$(cpu_tree "$PID")
    out=$(wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" "${args[@]}" "http://127.0.0.1:$port$path")
    after=$(cpu_tree "$PID")
    if grep -q "Non-2xx" <<<"$out"; then
        echo "$name: non-2xx answers: $out" >&2
        exit 1
    fi
    local rate requests
    rate=$(awk '/Requests\/sec/ { print $2 }' <<<"$out")
    requests=$(awk '/requests in/ { print $1 }' <<<"$out")
    awk -v r="$rate" -v a="$after" -v b="$before" -v n="$requests" \
        'BEGIN { printf "%.0f %.2f\n", r, (a - b) * 100000 / (n > 0 ? n : 1) }'
}

echo "machine: $(nproc) cores, $(uname -r); wrk -t$THREADS -c$CONNECTIONS -d$DURATION; $RUNS rounds" >&2
port=18600
for round in $(seq "$RUNS"); do
    for server in $SERVERS; do
        port=$((port + 1))
        start "$server" "$port"
        for name in $SCENARIOS; do
            read -r rate cpu < <(scenario "$name" "$port")
            echo "$name ${server%%=*} $rate $cpu" >>"$WORK/results"
            echo "round $round: $name ${server%%=*} $rate req/s, $cpu CPU s per 100k" >&2
        done
        kill "$PID" 2>/dev/null || true
        wait "$PID" 2>/dev/null || true
    done
done

python3 - "$WORK/results" "$SERVERS" "$SCENARIOS" <<'EOF'
import statistics, sys
rows = [line.split() for line in open(sys.argv[1])]
servers = [server.split("=")[0] for server in sys.argv[2].split()]
scenarios = sys.argv[3].split()
def cell(values, fmt):
    if not values:
        return "-"
    return f"{fmt(statistics.median(values))} ({fmt(min(values))}-{fmt(max(values))})"
print("| scenario | " + " | ".join(servers) + " |")
print("|---|" + "---|" * len(servers))
for name in scenarios:
    rates = [cell([float(r[2]) for r in rows if r[0] == name and r[1] == s], lambda v: f"{v:,.0f}") for s in servers]
    print(f"| {name} req/s | " + " | ".join(rates) + " |")
for name in scenarios:
    cpus = [cell([float(r[3]) for r in rows if r[0] == name and r[1] == s], lambda v: f"{v:.2f}") for s in servers]
    print(f"| {name} CPU s / 100k req | " + " | ".join(cpus) + " |")
ours = {name: statistics.median([float(r[2]) for r in rows if r[0] == name and r[1] == "ours"] or [0]) for name in scenarios}
nginx = {name: statistics.median([float(r[2]) for r in rows if r[0] == name and r[1] == "nginx"] or [0]) for name in scenarios}
for name in scenarios:
    if ours[name] and nginx[name]:
        print(f"\n{name}: ours / nginx = {ours[name] / nginx[name]:.2f}", end="")
if ours.get("random") and ours.get("random-ae"):
    print(f"\nrandom-ae / random (ours) = {ours['random-ae'] / ours['random']:.2f}")
print()
EOF
