#!/usr/bin/env bash
# Cold and warm 1 GiB GETs: the demo server against nginx (sendfile on), in turn
# on the same files, dropping the page cache before each cold run. Needs root
# (drop_caches), nginx and curl. Prints one line per run and the medians.
#
#   sudo bash scripts/bench_cold.sh                # RUNS=5 by default
#   BASE_SERVE=/tmp/serve-base bash scripts/bench_cold.sh   # also an older build
#   VARIANTS='ra0:--read-ahead 0' bash scripts/bench_cold.sh  # and other flags
#
# The files live in COLD_DIR (default /var/tmp/bench-cold, on a real disk, not
# tmpfs): `old.bin` is kept between runs (written once, as a library's files
# are), `fresh.bin` is written anew each time the script starts.
source "$(dirname "${BASH_SOURCE[0]}")/bench_common.sh"

RUNS=${RUNS:-5}
COLD_DIR=${COLD_DIR:-/var/tmp/bench-cold}
SIZE_MIB=${SIZE_MIB:-1024}
mkdir -p "$COLD_DIR"
if [[ ! -f $COLD_DIR/old.bin ]] || (($(stat -c %s "$COLD_DIR/old.bin") != SIZE_MIB << 20)); then
    head -c "${SIZE_MIB}M" /dev/urandom >"$COLD_DIR/old.bin"
fi
head -c "${SIZE_MIB}M" /dev/urandom >"$COLD_DIR/fresh.bin"
sync

cat >"$WORK/nginx.conf" <<EOF
daemon off;
master_process off;
worker_processes 1;
error_log $WORK/nginx-error.log;
pid $WORK/nginx.pid;
events { worker_connections 64; }
http {
    access_log off;
    sendfile on;
    client_body_temp_path $WORK;
    proxy_temp_path $WORK;
    fastcgi_temp_path $WORK;
    uwsgi_temp_path $WORK;
    scgi_temp_path $WORK;
    server {
        listen 127.0.0.1:3291;
        root $COLD_DIR;
    }
}
EOF
nginx -c "$WORK/nginx.conf" &
PIDS+=($!)

declare -A PORT=([nginx]=3291 [ours]=3292)
SERVERS=(ours nginx)
"$SERVE" --root "$COLD_DIR" --addr 127.0.0.1:3292 --progress 0 >>"$WORK/serve.log" 2>&1 &
PIDS+=($!)
if [[ -n ${BASE_SERVE:-} ]]; then
    "$BASE_SERVE" --root "$COLD_DIR" --addr 127.0.0.1:3293 --progress 0 >>"$WORK/base.log" 2>&1 &
    PIDS+=($!)
    PORT[base]=3293
    SERVERS+=(base)
fi
port=3294
IFS=';' read -ra variants <<<"${VARIANTS:-}"
for variant in "${variants[@]}"; do
    name=${variant%%:*}
    # shellcheck disable=SC2086 # the flags are words
    "$SERVE" --root "$COLD_DIR" --addr "127.0.0.1:$port" --progress 0 ${variant#*:} >>"$WORK/$name.log" 2>&1 &
    PIDS+=($!)
    PORT[$name]=$port
    SERVERS+=("$name")
    port=$((port + 1))
done
for server in "${SERVERS[@]}"; do
    for _ in $(seq 100); do
        curl -s -o /dev/null --max-time 1 -r 0-0 "http://127.0.0.1:${PORT[$server]}/old.bin" && continue 2
        sleep 0.05
    done
    echo "$server did not start" >&2
    exit 1
done

# get SERVER FILE: MB/s of one whole GET.
get() {
    curl -s -o /dev/null -w '%{speed_download}' "http://127.0.0.1:${PORT[$1]}/$2" |
        awk '{ printf "%.0f", $1 / 1e6 }'
}

echo "file  server  run  cold_MB/s  warm_MB/s"
for run in $(seq "$RUNS"); do
    for file in old.bin fresh.bin; do
        # Alternate who goes first, so neither always follows the other.
        order=("${SERVERS[@]}")
        ((run % 2 == 0)) && order=($(printf '%s\n' "${SERVERS[@]}" | tac))
        for server in "${order[@]}"; do
            sync
            echo 1 >/proc/sys/vm/drop_caches
            cold=$(get "$server" "$file")
            warm=$(get "$server" "$file")
            echo "$file  $server  $run  $cold  $warm" | tee -a "$WORK/results"
        done
    done
done

echo
echo "medians (min-max) over $RUNS runs, MB/s"
for file in old.bin fresh.bin; do
    for server in "${SERVERS[@]}"; do
        line="$file $server"
        for col in 4 5; do
            values=$(awk -v f="$file" -v s="$server" -v c="$col" '$1 == f && $2 == s { print $c }' "$WORK/results" | sort -n)
            line+=" $(echo "$values" | awk '{ v[NR] = $1 } END {
                m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
                printf "%s(%s-%s)", m, v[1], v[NR] }')"
        done
        echo "$line"
    done
done | awk 'BEGIN { print "file server cold_median(min-max) warm_median(min-max)" } { print }' | column -t
