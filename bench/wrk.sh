#!/usr/bin/env bash
# Throughput with a generator that costs the same on both routes: wrk
# replaying precomputed valid Digest headers (examples/headers.rs: one
# nonce and cnonce per wrk thread, nc 1..N; bench/replay.lua) against
# `GET /open/hello` and `GET /auth/hello`, which answer the same bytes and
# differ only in the guard. The open route gets the same headers (and
# ignores them). For the memory and SQLite stores of the example server, and
# Apache httpd's mod_auth_digest serving the same two paths (MD5, the only
# algorithm it has), all with the same wrk settings.
#
#   bench/wrk.sh
#   WRK_THREADS=2 CONNECTIONS=16 DURATION=10 ROUNDS=2 bench/wrk.sh
#
# Environment:
#   WRK_THREADS   wrk threads, each with its own nonce (default 2)
#   CONNECTIONS   connections in all (default 16)
#   DURATION      seconds per run (default 10)
#   WARMUP        seconds of open requests before a server's first run (default 2)
#   ROUNDS        open/protected pairs per server, order alternating (default 2)
#   RATE_BOUND    requests/s no run reaches: headers precomputed per thread
#                 are RATE_BOUND * DURATION / WRK_THREADS (default 60000)
#   NO_APACHE=1   skip Apache
#   NO_POSTGRES   as for bench/compare.sh (unset: built with --features postgres)
#   BASE_PORT     first loopback port used (default 18380)
#   CARGO_TARGET_DIR  as for cargo
#   RESULTS       also write the table to this file
#
# Needs: cargo, curl, wrk (apt-get install -y wrk); for Apache `apache2` and
# `apache2-utils`.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=bench/lib.sh
. bench/lib.sh

WRK_THREADS=${WRK_THREADS:-2}
CONNECTIONS=${CONNECTIONS:-16}
DURATION=${DURATION:-10}
WARMUP=${WARMUP:-2}
ROUNDS=${ROUNDS:-2}
RATE_BOUND=${RATE_BOUND:-60000}
PORT=${BASE_PORT:-18380}
TARGET=${CARGO_TARGET_DIR:-target}
SECRET="wrk.sh shared secret, 32 bytes or more"
USERNAME="bench-$$"
PER_THREAD=$((RATE_BOUND * DURATION / WRK_THREADS))

command -v wrk >/dev/null || { echo "wrk is not installed (apt-get install -y wrk)" >&2; exit 1; }

WORK=$(mktemp -d /tmp/digest-wrk.XXXXXX)
chmod 755 "$WORK"
PIDS=()
cleanup() {
    for pid in "${PIDS[@]}"; do
        kill "$pid" 2>/dev/null || true
    done
    wait 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT

FEATURES=()
[ -z "${NO_POSTGRES:-}" ] && FEATURES=(--features postgres)
log "building release binaries (${FEATURES[*]:-default features})"
cargo build --release "${FEATURES[@]}" --example server --example headers >&2
SERVER="$TARGET/release/examples/server"
HEADERS_BIN="$TARGET/release/examples/headers"

# run_wrk NAME URL -> appends "NAME ok_rps p50_ms p99_ms non2xx socket_errors" to $WORK/runs
run_wrk() {
    local name=$1 url=$2 out line
    out="$WORK/wrk-$name-$(date +%s%N).txt"
    HEADERS="$WORK/headers" wrk -t "$WRK_THREADS" -c "$CONNECTIONS" -d "${DURATION}s" \
        -s bench/replay.lua "$url" >"$out" 2>&1 || true
    sed 's/^/   /' "$out" >&2
    line=$(grep '^RESULT ' "$out") || { echo "wrk gave no result for $name" >&2; return 1; }
    awk -v name="$name" -v line="$line" 'BEGIN {
        n = split(line, kv, " ");
        for (i = 2; i <= n; i++) { split(kv[i], p, "="); v[p[1]] = p[2] }
        printf "%s %.1f %.3f %.3f %d %d\n", name, (v["requests"] - v["non2xx"]) / (v["duration_us"] / 1e6),
            v["p50_us"] / 1000, v["p99_us"] / 1000, v["non2xx"], v["socket_errors"] }' >>"$WORK/runs"
}

# measure LABEL BASE_URL USER TOKEN ALGORITHM: a warm-up, then ROUNDS
# alternating open/protected pairs, fresh headers (new nonces) per round.
measure() {
    local label=$1 base=$2 user=$3 token=$4 algorithm=$5 round
    wrk -t "$WRK_THREADS" -c "$CONNECTIONS" -d "${WARMUP}s" "$base/open/hello" >/dev/null 2>&1 || true
    for round in $(seq 1 "$ROUNDS"); do
        log "$label round $round/$ROUNDS (load $(loadavg))"
        rm -f "$WORK"/headers-*.txt
        "$HEADERS_BIN" --url "$base/auth/hello" --user "$user" --token "$token" --algorithm "$algorithm" \
            --count "$PER_THREAD" --streams "$WRK_THREADS" --out "$WORK/headers"
        if [ $((round % 2)) -eq 1 ]; then
            run_wrk "$label-open" "$base/open/hello"
            run_wrk "$label-protected" "$base/auth/hello"
        else
            run_wrk "$label-protected" "$base/auth/hello"
            run_wrk "$label-open" "$base/open/hello"
        fi
    done
}

export ROCKET_LOG_LEVEL=critical
export ROCKET_ADDRESS=127.0.0.1
: >"$WORK/runs"

# serve LABEL ENV... -- ARGS...: starts the example server, sets SERVER_PID
# and TOKEN (from a `TOKEN <token>` line it prints, when it does).
serve() {
    local label=$1 env_args=() token
    shift
    while [ "$1" != "--" ]; do env_args+=("$1"); shift; done
    shift
    env "${env_args[@]}" "$SERVER" "$@" >"$WORK/$label.out" 2>"$WORK/$label.err" &
    SERVER_PID=$!
    PIDS+=("$SERVER_PID")
    wait_http "http://127.0.0.1:$PORT/open/hello"
    token=$(sed -n 's/^TOKEN //p' "$WORK/$label.out")
    [ -n "$token" ] && TOKEN=$token
    return 0
}

log "memory store"
PORT=$((PORT + 1))
serve memory ROCKET_PORT=$PORT ROCKET_DIGEST_AUTH="{store=\"memory\",secret=\"$SECRET\"}" \
    -- serve-with-token "$USERNAME"
measure memory "http://127.0.0.1:$PORT" "$USERNAME" "$TOKEN" SHA-256
stop "$SERVER_PID"

log "SQLite store"
PORT=$((PORT + 1))
SQLITE_ENV=(ROCKET_PORT=$PORT ROCKET_DIGEST_AUTH="{secret=\"$SECRET\"}"
    ROCKET_DATABASES="{digest_auth={url=\"sqlite://$WORK/sqlite.db?mode=rwc\"}}")
TOKEN=$(env "${SQLITE_ENV[@]}" "$SERVER" create-token "$USERNAME" 2>"$WORK/sqlite-token.err" | tail -n1)
serve sqlite "${SQLITE_ENV[@]}" --
measure sqlite "http://127.0.0.1:$PORT" "$USERNAME" "$TOKEN" SHA-256
stop "$SERVER_PID"

HAVE_APACHE=""
if [ -z "${NO_APACHE:-}" ]; then
    PORT=$((PORT + 1))
    if start_apache "$WORK/apache" "$PORT" "$USERNAME"; then
        PIDS+=("$APACHE_PID")
        HAVE_APACHE=1
        measure apache "http://127.0.0.1:$PORT" "$USERNAME" "$APACHE_TOKEN" MD5
        stop "$APACHE_PID"
    elif [ -n "${APACHE_PID:-}" ]; then
        PIDS+=("$APACHE_PID")
        log "Apache did not answer, skipped"
    else
        log "Apache skipped (apache2/htdigest not installed)"
    fi
fi

# Per label: summed 2xx responses / summed seconds (the mean of the rounds'
# rates: every run lasts DURATION); p99 the worst round's.
summary() { # label -> "rps p99 non2xx socket_errors"
    awk -v l="$1" '$1 == l { rps += $2; n++; if ($4 > p99) p99 = $4; bad += $5; sock += $6 }
        END { if (n) printf "%.1f %.3f %d %d\n", rps / n, p99, bad, sock; else print "- - - -" }' "$WORK/runs"
}

{
    echo "wrk $(wrk -v 2>&1 | head -n1 | cut -d' ' -f2), $WRK_THREADS threads (one nonce each), $CONNECTIONS connections, ${DURATION} s per run, $ROUNDS rounds per route, order alternating; load at the end $(loadavg)"
    echo "Routes: \`GET /open/hello\` and \`GET /auth/hello\`, the same bytes, the second behind the guard; both get the same precomputed headers"
    echo
    echo "| server, store | open req/s | protected req/s | protected/open | target | open p99 ms | protected p99 ms | non-2xx | socket errors |"
    echo "|---|---|---|---|---|---|---|---|---|"
    for label in memory sqlite apache; do
        case $label in
        memory) target=0.9 name="example server, memory (SHA-256)" ;;
        sqlite) target=0.85 name="example server, SQLite (SHA-256)" ;;
        apache) target="" name="Apache mod_auth_digest (MD5)"; [ -n "$HAVE_APACHE" ] || continue ;;
        esac
        read -r o_rps o_p99 o_bad o_sock <<<"$(summary "$label-open")"
        read -r p_rps p_p99 p_bad p_sock <<<"$(summary "$label-protected")"
        r=$(ratio "$p_rps" "$o_rps")
        t="-"
        [ -n "$target" ] && t=">= $target: $(meets "$r" "$target" ">=")"
        echo "| $name | $o_rps | $p_rps | $r | $t | $o_p99 | $p_p99 | $((o_bad + p_bad)) | $((o_sock + p_sock)) |"
    done
    if [ -n "$HAVE_APACHE" ]; then
        read -r s_rps _ <<<"$(summary sqlite-protected)"
        read -r a_rps _ <<<"$(summary apache-protected)"
        r=$(ratio "$s_rps" "$a_rps")
        echo
        echo "- wrk: SQLite protected / Apache protected throughput: $r (target >= 2: $(meets "$r" 2 ">="))"
    fi
} >"$WORK/table"

echo >&2
cat "$WORK/table"
if [ -n "${RESULTS:-}" ]; then
    cp "$WORK/table" "$RESULTS"
fi
