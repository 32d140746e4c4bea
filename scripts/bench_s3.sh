#!/usr/bin/env bash
# Object storage through the layer: the demo server with --s3 in front of moto
# (a real S3 API, in Python: slow, so the object is modest), against curl
# straight from moto. Needs moto_server (pip install 'moto[server]') and curl.
#
#   bash scripts/bench_s3.sh        # RUNS=3, SIZE_MIB=256, CLIENTS=100
#
# Prints single-stream MB/s (direct and through the layer, interleaved), the
# time to first byte of the first and the last MiB, and the demo's peak RSS
# while CLIENTS downloads run at once (each client reading at 1 MB/s).
source "$(dirname "${BASH_SOURCE[0]}")/bench_common.sh"

SIZE_MIB=${SIZE_MIB:-256}
CLIENTS=${CLIENTS:-100}
MOTO=127.0.0.1:3391
OURS=127.0.0.1:3392

moto_server -H 127.0.0.1 -p 3391 >"$WORK/moto.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 200); do curl -s -o /dev/null "http://$MOTO/" && break; sleep 0.05; done
head -c "${SIZE_MIB}M" /dev/urandom >"$WORK/object.bin"
# moto refuses large single PUTs (413): boto3 (installed with moto) uploads in
# parts.
python3 - "$MOTO" "$WORK/object.bin" <<'PY'
import sys, boto3
s3 = boto3.client("s3", endpoint_url="http://" + sys.argv[1], region_name="us-east-1",
                  aws_access_key_id="bench", aws_secret_access_key="bench")
s3.create_bucket(Bucket="bench")
s3.upload_file(sys.argv[2], "bench", "object.bin")
PY

export AWS_ENDPOINT=http://$MOTO AWS_ALLOW_HTTP=true AWS_REGION=us-east-1
export AWS_ACCESS_KEY_ID=bench AWS_SECRET_ACCESS_KEY=bench
"$SERVE" --s3 s3://bench --addr "$OURS" --progress 0 "$@" >"$WORK/serve.log" 2>&1 &
DEMO=$!
PIDS+=("$DEMO")
for _ in $(seq 200); do curl -s -o /dev/null -r 0-0 "http://$OURS/object.bin" && break; sleep 0.05; done

mbps() { curl -s -o /dev/null -w '%{speed_download}' "$@" | awk '{ printf "%.0f", $1 / 1e6 }'; }
ttfb_ms() { curl -s -o /dev/null -w '%{time_starttransfer}' "$@" | awk '{ printf "%.1f", $1 * 1000 }'; }

echo "run  direct_MB/s  ours_MB/s  ratio"
for run in $(seq "$RUNS"); do
    direct=$(mbps "http://$MOTO/bench/object.bin")
    ours=$(mbps "http://$OURS/object.bin")
    echo "$run  $direct  $ours  $(awk -v a="$ours" -v b="$direct" 'BEGIN { printf "%.2f", a / b }')"
done

echo
echo "time to first byte, ms (first MiB / last MiB), $RUNS runs"
for run in $(seq "$RUNS"); do
    echo "direct $(ttfb_ms -r 0-1048575 "http://$MOTO/bench/object.bin") / $(ttfb_ms -r -1048576 "http://$MOTO/bench/object.bin")" \
        " ours $(ttfb_ms -r 0-1048575 "http://$OURS/object.bin") / $(ttfb_ms -r -1048576 "http://$OURS/object.bin")"
done

echo
before=$(peak_rss_kib "$DEMO")
for _ in $(seq "$CLIENTS"); do
    curl -s -o /dev/null --limit-rate 1M --max-time 10 "http://$OURS/object.bin" &
done
wait_clients() { while pgrep -P $$ -x curl >/dev/null; do sleep 0.5; done; }
wait_clients
echo "peak RSS: $((before / 1024)) MiB before, $(($(peak_rss_kib "$DEMO") / 1024)) MiB with $CLIENTS concurrent downloads (1 MB/s each, 10 s)"
