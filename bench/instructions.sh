#!/usr/bin/env bash
# Server instructions per request, counted by callgrind: deterministic
# whatever else the machine does, unlike throughput.
#
# The release example server runs under `valgrind --tool=callgrind`; a
# client outside valgrind (bench/instructions.py) sends N requests over one
# keep-alive connection, each with a precomputed valid Digest header
# (examples/headers.rs: one nonce, one cnonce, nc 1..N), to `GET /open/hello`
# or to `GET /auth/hello` (the same bytes behind the guard). Every run does
# the same before the N requests (one open request to see the server up, one
# 401 for the challenge); a run with 0 requests is subtracted, and the rest
# divided by N. Open runs send the same Authorization headers (the route
# ignores them), so the difference between the routes is the guard alone.
#
# valgrind hides SHA-NI, so sha2 runs its portable code: SHA-256 compression
# (`sha2::sha256::compress256` and what it calls) is reported apart, and so
# are the blocks it compresses (how often its unrolled per-block body ran,
# from a profile with per-instruction counts); MD5's likewise.
#
#   bench/instructions.sh                 # memory and SQLite; SHA-256 and MD5
#   REQUESTS=500 STORES=memory bench/instructions.sh
#
# Environment:
#   REQUESTS          requests per run (default 2000)
#   STORES            stores to measure (default "memory sqlite")
#   ALGORITHMS        algorithms of the protected runs (default "SHA-256 MD5")
#   BASE_PORT         loopback port (default 18280)
#   CARGO_TARGET_DIR  as for cargo
#   KEEP              keep the callgrind profiles in this directory
#   RESULTS           also write the table to this file
#
# Needs: cargo, valgrind (apt-get install -y valgrind), python3, curl.
set -euo pipefail
cd "$(dirname "$0")/.."

REQUESTS=${REQUESTS:-2000}
STORES=${STORES:-memory sqlite}
ALGORITHMS=${ALGORITHMS:-SHA-256 MD5}
PORT=${BASE_PORT:-18280}
TARGET=${CARGO_TARGET_DIR:-target}
SECRET="instructions.sh secret, 32 bytes or more"
USERNAME="bench"
# How long a server under valgrind may take to come up, and to shut down.
START_TIMEOUT=${START_TIMEOUT:-180}
STOP_TIMEOUT=30

# The compression functions counted apart (each holds its per-block loop,
# unrolled: the count its body ran is the number of blocks).
SHA_FN='sha2::sha256::compress256'
MD5_FN='md5::compress::soft::compress'

WORK=$(mktemp -d /tmp/digest-instructions.XXXXXX)
SERVER_PID=""
cleanup() {
    if [ -n "$SERVER_PID" ]; then
        kill -KILL "$SERVER_PID" 2>/dev/null || true
        wait "$SERVER_PID" 2>/dev/null || true
    fi
    rm -rf "$WORK"
}
trap cleanup EXIT

log() { printf '== %s\n' "$*" >&2; }

log "building release binaries"
cargo build --release --example server --example headers >&2
SERVER="$TARGET/release/examples/server"
HEADERS_BIN="$TARGET/release/examples/headers"

export ROCKET_LOG_LEVEL=critical
export ROCKET_ADDRESS=127.0.0.1
export ROCKET_PORT=$PORT
# The cleanup task wakes every cleanup_interval: longer than any run here,
# so its instructions do not depend on how long a run took.
CONFIG="secret=\"$SECRET\",cleanup_interval=3600"

# run STORE ROUTE ALGORITHM COUNT -> the profile's path in $PROFILE (not printed:
# a command substitution's subshell would hide SERVER_PID from the exit trap)
run() {
    local store=$1 route=$2 algorithm=$3 count=$4 env_args args token="" out
    out="$WORK/callgrind.$store.$route.$algorithm.$count.out"
    case $store in
    memory)
        env_args=(ROCKET_DIGEST_AUTH="{store=\"memory\",$CONFIG}")
        args=(serve-with-token "$USERNAME")
        ;;
    sqlite)
        env_args=(ROCKET_DIGEST_AUTH="{$CONFIG}"
            ROCKET_DATABASES="{digest_auth={url=\"sqlite://$WORK/sqlite.db?mode=rwc\"}}")
        args=()
        token=$(env "${env_args[@]}" "$SERVER" create-token "$USERNAME" 2>"$WORK/token.err" | tail -n1)
        ;;
    esac
    env "${env_args[@]}" valgrind --tool=callgrind --dump-instr=yes --callgrind-out-file="$out" \
        "$SERVER" "${args[@]}" >"$WORK/server.out" 2>"$WORK/server.err" &
    SERVER_PID=$!
    local waited=0
    until curl -s -o /dev/null "http://127.0.0.1:$PORT/open/hello"; do
        if ! kill -0 "$SERVER_PID" 2>/dev/null || [ "$waited" -ge $((START_TIMEOUT * 10)) ]; then
            echo "the server under valgrind did not come up:" >&2
            tail -n 20 "$WORK/server.err" >&2
            return 1
        fi
        sleep 0.1
        waited=$((waited + 1))
    done
    [ -n "$token" ] || token=$(sed -n 's/^TOKEN //p' "$WORK/server.out")
    "$HEADERS_BIN" --url "http://127.0.0.1:$PORT/auth/hello" --user "$USERNAME" --token "$token" \
        --algorithm "$algorithm" --count "$((count > 0 ? count : 1))" --out "$WORK/headers"
    python3 bench/instructions.py replay "127.0.0.1:$PORT" "/$route/hello" "$WORK/headers-0.txt" "$count"
    kill -TERM "$SERVER_PID"
    local i
    for i in $(seq 1 $((STOP_TIMEOUT * 10))); do
        kill -0 "$SERVER_PID" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$SERVER_PID" 2>/dev/null; then
        echo "the server under valgrind did not stop within ${STOP_TIMEOUT} s" >&2
        return 1
    fi
    wait "$SERVER_PID" || true
    SERVER_PID=""
    rm -f "$WORK/sqlite.db"*
    [ -s "$out" ] || { echo "no profile written: $out" >&2; return 1; }
    PROFILE=$out
}

# figures FILE -> "total sha_ir sha_blocks md5_ir md5_blocks"
figures() {
    python3 bench/instructions.py totals "$1" "$SHA_FN" "$MD5_FN" |
        awk -F= -v s="$SHA_FN" -v m="$MD5_FN" '
            $1 == "total" { t = $2 } $1 == s ".ir" { si = $2 } $1 == s ".runs" { sb = $2 }
            $1 == m ".ir" { mi = $2 } $1 == m ".runs" { mb = $2 }
            END { print t, si, sb, mi, mb }'
}

# per_request RUN BASELINE -> "total sha_ir rest sha_blocks md5_ir md5_blocks", per request
per_request() {
    awk -v n="$REQUESTS" -v a="$1" -v b="$2" 'BEGIN {
        split(a, x, " "); split(b, y, " ");
        t = (x[1] - y[1]) / n; s = (x[2] - y[2]) / n; sb = (x[3] - y[3]) / n;
        m = (x[4] - y[4]) / n; mb = (x[5] - y[5]) / n;
        printf "%.0f %.0f %.0f %.2f %.0f %.2f\n", t, s, t - s, sb, m, mb }'
}

commas() { sed ':a;s/\B[0-9]\{3\}\>/,&/;ta' <<<"$1"; }

{
    echo "Instructions per request, server side (callgrind, $REQUESTS requests over one keep-alive connection,"
    echo "minus a run with 0 requests; valgrind $(valgrind --version | sed 's/valgrind-//'), commit $(git rev-parse --short HEAD)$(git diff --quiet HEAD -- src examples || echo '+changes'))"
    echo
    echo "| store | request | instructions | SHA-256 compression | rest | added by the guard (rest) | SHA-256 blocks | MD5 compression | MD5 blocks |"
    echo "|---|---|---|---|---|---|---|---|---|"
} >"$WORK/table"

for store in $STORES; do
    log "$store: run with 0 requests"
    run "$store" open SHA-256 0
    base=$(figures "$PROFILE")
    log "$store: $REQUESTS open requests"
    run "$store" open SHA-256 "$REQUESTS"
    open_file=$PROFILE
    read -r o_t o_s o_r o_sb o_m o_mb <<<"$(per_request "$(figures "$open_file")" "$base")"
    echo "| $store | open \`GET /open/hello\` | $(commas "$o_t") | $(commas "$o_s") | $(commas "$o_r") | - | $o_sb | $(commas "$o_m") | $o_mb |" >>"$WORK/table"
    [ -n "${KEEP:-}" ] && mkdir -p "$KEEP" && cp "$open_file" "$KEEP/"
    for algorithm in $ALGORITHMS; do
        log "$store: $REQUESTS protected requests, $algorithm"
        run "$store" auth "$algorithm" "$REQUESTS"
        file=$PROFILE
        read -r p_t p_s p_r p_sb p_m p_mb <<<"$(per_request "$(figures "$file")" "$base")"
        echo "| $store | protected \`GET /auth/hello\`, $algorithm | $(commas "$p_t") | $(commas "$p_s") | $(commas "$p_r") | $(commas $((p_r - o_r))) | $p_sb | $(commas "$p_m") | $p_mb |" >>"$WORK/table"
        [ -n "${KEEP:-}" ] && cp "$file" "$KEEP/"
    done
done

echo >&2
cat "$WORK/table"
if [ -n "${RESULTS:-}" ]; then
    cp "$WORK/table" "$RESULTS"
fi
