# Shared by the real-client scripts (real_clients.sh, rough_clients.sh,
# tls_clients.sh): a work directory removed on exit with the servers started
# (PIDS), TAP-like counters, and the install of missing tools.
#
#   source scripts/clients_common.sh NAME    # after `cd` to the repository

WORK=$(mktemp -d "${TMPDIR:-/tmp}/$1.XXXXXX")
PIDS=()
cleanup() {
    for pid in "${PIDS[@]}"; do
        kill "$pid" 2>/dev/null
        wait "$pid" 2>/dev/null
    done
    if [[ ${KEEP:-0} == 1 ]]; then
        echo "# kept $WORK"
    else
        rm -rf "$WORK"
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

PASSED=0
FAILED=0
ok() {
    echo "ok - $*"
    PASSED=$((PASSED + 1))
}
fail() {
    echo "FAIL - $*"
    FAILED=$((FAILED + 1))
}
check() {
    local what=$1
    shift
    if "$@"; then ok "$what"; else fail "$what"; fi
}
finish() {
    echo "$PASSED passed, $FAILED failed"
    [[ $FAILED == 0 ]]
    exit
}
die() {
    fail "$*"
    finish
}

as_root() {
    if [[ $(id -u) == 0 ]]; then
        "$@"
    elif command -v sudo >/dev/null; then
        sudo -n "$@"
    else
        return 1
    fi
}

# need COMMAND:PACKAGE ...: installs the Debian packages of the missing
# commands (the package lists may be missing or stale: updated only if a first
# try fails).
need() {
    local missing=() pair
    for pair in "$@"; do
        command -v "${pair%%:*}" >/dev/null || missing+=("${pair#*:}")
    done
    ((${#missing[@]})) || return 0
    echo "# installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    if ! as_root apt-get install -y -q "${missing[@]}" >"$WORK/apt.log" 2>&1; then
        as_root apt-get update -q >>"$WORK/apt.log" 2>&1
        as_root apt-get install -y -q "${missing[@]}" >>"$WORK/apt.log" 2>&1 ||
            { tail -n 20 "$WORK/apt.log"; die "install ${missing[*]}"; }
    fi
}

# build_examples NAME ...: builds the examples with PROFILE (release by default;
# CI uses debug, which `cargo test` has already built; SKIP_BUILD=1 uses what is
# there) and sets BIN to the folder that holds them.
build_examples() {
    local flag=() name
    PROFILE=${PROFILE:-release}
    case $PROFILE in
        release) flag=(--release) ;;
        debug) ;;
        *) die "PROFILE must be debug or release" ;;
    esac
    BIN="${CARGO_TARGET_DIR:-target}/$PROFILE/examples"
    if [[ ${SKIP_BUILD:-0} != 1 ]]; then
        echo "# building $* (cargo build ${flag[*]})"
        nice -n 19 cargo build "${flag[@]}" "${@/#/--example=}" >"$WORK/build.log" 2>&1 ||
            { tail -n 30 "$WORK/build.log"; die "build $*"; }
    fi
    for name in "$@"; do
        [[ -x $BIN/$name ]] || die "no $BIN/$name"
    done
}
