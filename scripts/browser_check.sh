#!/usr/bin/env bash
# A person's first look at the demo server, with headless Chromium (Debian's
# `chromium` package; not run by CI): opens the root URL, checks that it lists
# the demo folder, follows its links to a file and a sub-folder, and checks
# that the brotli variant of notes.txt reaches the page decoded. Saves a
# screenshot of the listing. Prints `ok - ...` / `FAIL - ...`, then
# `N passed, M failed`.
#
#   scripts/browser_check.sh            # PROFILE=debug|release (default debug)
set -uo pipefail
cd "$(dirname "$0")/.."
exec </dev/null

CHROMIUM=$(command -v chromium || command -v chromium-browser) ||
    { echo "no chromium (apt-get install chromium)"; exit 1; }
WORK=$(mktemp -d "${TMPDIR:-/tmp}/browser-check.XXXXXX")
PROFILE=${PROFILE:-debug}
FLAG=()
[[ $PROFILE == release ]] && FLAG=(--release)
cargo build "${FLAG[@]}" --example serve >"$WORK/build.log" 2>&1 ||
    { tail -n 20 "$WORK/build.log"; exit 1; }
"${CARGO_TARGET_DIR:-target}/$PROFILE/examples/serve" --addr 127.0.0.1:0 >"$WORK/serve.log" 2>&1 &
SERVER=$!
trap 'kill $SERVER 2>/dev/null; wait $SERVER 2>/dev/null' EXIT
for _ in $(seq 100); do
    URL=$(sed -n 's|.* on \(http://127\.0\.0\.1:[0-9]*\).*|\1|p' "$WORK/serve.log")
    [[ -n $URL ]] && break
    sleep 0.1
done

browse() { timeout 60 "$CHROMIUM" --headless --no-sandbox --disable-gpu "$@" 2>/dev/null; }
PASSED=0
FAILED=0
check() {
    if eval "$2"; then echo "ok - $1"; PASSED=$((PASSED + 1)); else echo "FAIL - $1"; FAILED=$((FAILED + 1)); fi
}

browse --dump-dom "$URL/" >"$WORK/root.html"
check "the root URL lists the demo folder" "grep -q '<a href=\"big.bin\">big.bin</a>' '$WORK/root.html'"
link=$(grep -o 'href="na[^"]*"' "$WORK/root.html" | head -n 1 | cut -d'"' -f2)
browse --dump-dom "$URL/$link" >"$WORK/file.html"
check "its link to a file beyond ASCII ($link) opens the file" "grep -q 'A file name beyond ASCII' '$WORK/file.html'"
browse --dump-dom "$URL/docs" >"$WORK/docs.html"
check "a folder without its slash is redirected to its listing" "grep -q 'href=\"readme.md\"' '$WORK/docs.html' && grep -q 'href=\"../\"' '$WORK/docs.html'"
browse --dump-dom "$URL/notes.txt" >"$WORK/notes.html"
check "notes.txt (sent as brotli to a browser) reads as text" "grep -q 'Notes on precompressed files' '$WORK/notes.html'"
encoding=$(curl -s -o /dev/null -w '%header{content-encoding}' -H 'Accept-Encoding: gzip, deflate, br, zstd' "$URL/notes.txt")
check "a browser's Accept-Encoding gets the brotli variant ($encoding)" "[[ '$encoding' == br ]]"
browse --screenshot="$WORK/listing.png" --window-size=900,500 "$URL/" >/dev/null
check "a screenshot of the listing ($WORK/listing.png)" "[[ -s '$WORK/listing.png' ]]"
echo "$PASSED passed, $FAILED failed"
[[ $FAILED == 0 ]]
