#!/usr/bin/env bash
# The demo server's admin page in headless Chromium (Debian's `chromium`
# package; not run by CI): while a throttled download runs, the page shows its
# row and progress, its rate control changes the client rate (the running
# download slows down at once, as the JSON API then shows), and a screenshot is
# kept in docs/admin.png (or $SCREENSHOT). Prints `ok - ...` / `FAIL - ...`,
# then `N passed, M failed`. About 20 s; CI runs it when chromium is there.
#
#   scripts/admin_browser_check.sh      # PROFILE=debug|release (default debug)
set -uo pipefail
cd "$(dirname "$0")/.."
exec </dev/null

CHROMIUM=$(command -v chromium || command -v chromium-browser) ||
    { echo "no chromium (apt-get install chromium)"; exit 1; }
WORK=$(mktemp -d "${TMPDIR:-/tmp}/admin-check.XXXXXX")
PROFILE=${PROFILE:-debug}
SCREENSHOT=${SCREENSHOT:-docs/admin.png}
FLAG=()
[[ $PROFILE == release ]] && FLAG=(--release)
cargo build "${FLAG[@]}" --example serve >"$WORK/build.log" 2>&1 ||
    { tail -n 20 "$WORK/build.log"; exit 1; }
"${CARGO_TARGET_DIR:-target}/$PROFILE/examples/serve" --addr 127.0.0.1:0 --admin 127.0.0.1:0 \
    --client-rate 256KiB --progress 0 >"$WORK/serve.log" 2>&1 &
SERVER=$!
CURL=
trap 'kill $SERVER $CURL 2>/dev/null; wait $SERVER $CURL 2>/dev/null' EXIT
for _ in $(seq 100); do
    URL=$(sed -n 's|.* on \(http://127\.0\.0\.1:[0-9]*\).*|\1|p' "$WORK/serve.log")
    [[ -n $URL ]] && break
    sleep 0.1
done
ADMIN=$(sed -n 's|^admin: \(http://[^/]*\)/$|\1|p' "$WORK/serve.log")
[[ -n $URL && -n $ADMIN ]] || { cat "$WORK/serve.log"; exit 1; }

PASSED=0
FAILED=0
check() {
    if eval "$2"; then echo "ok - $1"; PASSED=$((PASSED + 1)); else echo "FAIL - $1"; FAILED=$((FAILED + 1)); fi
}
browse() { timeout 60 "$CHROMIUM" --headless --no-sandbox --disable-gpu "$@" 2>/dev/null; }
# A field of the first running download, from the JSON API.
field() { curl -s "$ADMIN/api/downloads" | python3 -c "import json,sys; d=json.load(sys.stdin); print(d[0]['$1'] if d else '')"; }

# 64 MiB at 256 KiB/s: it runs for minutes.
curl -s -o /dev/null "$URL/big.bin" &
CURL=$!
for _ in $(seq 50); do [[ -n $(field id) ]] && break; sleep 0.1; done
sleep 3 # a rate, and a few points of the throughput graph
before=$(field rate)
check "the download runs at about 256 KiB/s ($before B/s)" "(( ${before:-0} > 150000 && ${before:-0} < 400000 ))"

browse --dump-dom --virtual-time-budget=2000 "$ADMIN/" >"$WORK/page.html"
check "the page shows the download's row" "grep -q '<tr id=\"download-0\"' '$WORK/page.html' && grep -q '/big.bin' '$WORK/page.html'"
shown=$(grep -o 'data-sent="[0-9]*"' "$WORK/page.html" | head -n 1 | grep -o '[0-9]*')
check "its progress: bytes sent ($shown) of 64 MiB, and a progress bar" \
    "(( ${shown:-0} > 0 && ${shown:-0} < 67108864 )) && grep -q '<progress max=\"67108864\"' '$WORK/page.html'"

# The page's rate control: the query fills the client rate and presses Apply.
browse --dump-dom --virtual-time-budget=2000 "$ADMIN/?client_rate=32KiB&apply=1" >"$WORK/applied.html"
check "the page says the new client rate applies" "grep -q 'applied: total unlimited, each client 32.0 KiB/s' '$WORK/applied.html'"
limit=$(curl -s "$ADMIN/api/limits")
check "the API has the client rate the page set ($limit)" "[[ '$limit' == *'\"client_rate\":32768'* ]]"
sent=$(field sent)
sleep 2
later=$(field sent)
check "the running download slowed down at once ($(( (later - sent) / 2 )) B/s over 2 s)" "(( later - sent < 2 * 48 * 1024 ))"
sleep 2
after=$(field rate)
check "the API's rate shows it ($after B/s)" "(( ${after:-999999} < 48 * 1024 ))"

browse --screenshot="$WORK/admin.png" --window-size=1100,620 --virtual-time-budget=2000 "$ADMIN/" >/dev/null
check "a screenshot of the page ($SCREENSHOT)" "[[ -s '$WORK/admin.png' ]] && cp '$WORK/admin.png' '$SCREENSHOT'"
echo "$PASSED passed, $FAILED failed"
[[ $FAILED == 0 ]]
