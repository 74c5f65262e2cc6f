#!/usr/bin/env bash
# Throughput with a generator that costs the same on both routes: wrk
# replaying precomputed valid Digest headers (examples/headers.rs: one
# nonce and cnonce per wrk thread, nc 1..N; bench/replay.lua) against
# `GET /open/hello` and `GET /auth/hello`, which answer the same bytes and
# differ only in the guard. The open route gets the same headers (and
# ignores them). For the memory and SQLite stores of the example server, and
# Apache httpd's mod_auth_digest serving the same two paths (MD5, the only
# algorithm it has), all with the same wrk settings.
# Then a fleet (issue 13): two instances of the example server with the same
# secret, credentials in PostgreSQL, nonce counts in Redis (a redis-server
# of this run) and then in PostgreSQL (nc_lease = 0), each against the open
# route of the same two instances. wrk thread k is pinned to instance k mod 2
# and threads 2j and 2j+1 share one nonce and cnonce, the first sending its
# odd counts, the second its even ones (headers --interleave 2): one client
# whose requests alternate between the instances, request by request (the
# two threads keep within a few dozen counts of each other, see
# bench/replay.lua). The fleet's non-2xx answers are tallied by status: a
# "401 stale" is a request that reached the counts after more than
# nc_window (256) later counts of its nonce had (a run with
# DIGEST_AUTH_CONFIG='nc_window=65536' had none).
#
#   bench/wrk.sh
#   WRK_THREADS=2 CONNECTIONS=16 DURATION=10 ROUNDS=2 bench/wrk.sh
#   ONLY_FLEET=1 DURATION=10 ROUNDS=2 bench/wrk.sh      # the fleet table
#
# Environment:
#   WRK_THREADS   wrk threads, each with its own nonce (default 2); in the
#                 fleet two threads per nonce, so it must be even
#   CONNECTIONS   connections in all (default 16)
#   DURATION      seconds per run (default 10)
#   WARMUP        seconds of open requests before a server's first run (default 2)
#   ROUNDS        open/protected pairs per server, order alternating (default 2)
#   RATE_BOUND    requests/s no run reaches: headers precomputed per thread
#                 are RATE_BOUND * DURATION / WRK_THREADS (default 60000)
#   NO_APACHE=1   skip Apache
#   NO_POSTGRES, NO_MYSQL  as for bench/compare.sh (the same build: bench_features
#                 in bench/lib.sh); NO_POSTGRES also skips the fleet
#   NO_FLEET=1    skip the fleet (also skipped without redis-server or PostgreSQL)
#   ONLY_FLEET=1  only the fleet
#   STATUSES=0    the fleet's non-2xx answers are not tallied by status. The
#                 tally has wrk parse every response's headers into Lua, which
#                 costs more on the protected route (its answers carry more
#                 headers): in one A/B on the Redis fleet, wrk's CPU per
#                 protected request 11.7 -> 13.3 us and 3% fewer protected
#                 requests; no difference showed on the open route
#   DIGEST_AUTH_CONFIG  extra [digest_auth] keys for every run of the crate's
#                 server, as inline TOML, e.g. 'nc_window=1024'
#   DIGEST_AUTH_TEST_POSTGRES_URL  PostgreSQL (default postgres://postgres@127.0.0.1:5432/test);
#                 the fleet's credentials go in schemas made and dropped by this run
#   BASE_PORT     first loopback port used (default 18380)
#   CARGO_TARGET_DIR  as for cargo
#   RESULTS       also write the table to this file
#
# Needs: cargo, curl, wrk (apt-get install -y wrk); for Apache `apache2` and
# `apache2-utils`; for the fleet `redis-server`, `redis-cli` and `psql`.
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
EXTRA=${DIGEST_AUTH_CONFIG:+,$DIGEST_AUTH_CONFIG}
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
    drop_pg_schemas
    rm -rf "$WORK"
}
trap cleanup EXIT

bench_features
if [ -n "$HAVE_REDIS" ] && [ $((WRK_THREADS % 2)) -ne 0 ]; then
    echo "the fleet needs an even WRK_THREADS (two threads per nonce), not $WRK_THREADS" >&2
    exit 1
fi
log "building release binaries (${FEATURES[*]:-default features})"
cargo build --release "${FEATURES[@]}" --example server --example headers >&2
SERVER="$TARGET/release/examples/server"
HEADERS_BIN="$TARGET/release/examples/headers"

# run_wrk NAME URL -> appends "NAME ok_rps p50_ms p99_ms non2xx socket_errors
# statuses" to $WORK/runs (statuses: "401_stale:3,503:1", or "-"); threads
# pinned to $WRK_TARGETS when set (see bench/replay.lua)
run_wrk() {
    local name=$1 url=$2 out line
    out="$WORK/wrk-$name-$(date +%s%N).txt"
    HEADERS="$WORK/headers" TARGETS="$WRK_TARGETS" STATUSES="$WRK_STATUSES" \
        wrk -t "$WRK_THREADS" -c "$CONNECTIONS" -d "${DURATION}s" \
        -s bench/replay.lua "$url" >"$out" 2>&1 || true
    sed 's/^/   /' "$out" >&2
    line=$(grep '^RESULT ' "$out") || { echo "wrk gave no result for $name" >&2; return 1; }
    awk -v name="$name" -v line="$line" 'BEGIN {
        n = split(line, kv, " ");
        for (i = 2; i <= n; i++) { split(kv[i], p, "="); v[p[1]] = p[2] }
        printf "%s %.1f %.3f %.3f %d %d %s\n", name, (v["requests"] - v["non2xx"]) / (v["duration_us"] / 1e6),
            v["p50_us"] / 1000, v["p99_us"] / 1000, v["non2xx"], v["socket_errors"],
            v["statuses"] == "" ? "-" : v["statuses"] }' >>"$WORK/runs"
}

# measure LABEL USER TOKEN ALGORITHM BASE_URL...: a warm-up of each server,
# then ROUNDS alternating open/protected pairs, fresh headers (new nonces)
# per round. With n BASE_URLs (a fleet), wrk thread k is pinned to the
# (k mod n)-th, and each nonce's counts are spread over n threads in turn.
measure() {
    local label=$1 user=$2 token=$3 algorithm=$4 round url
    shift 4
    local base=$1 n=$#
    WRK_TARGETS=""
    if [ "$n" -gt 1 ]; then
        for url in "$@"; do WRK_TARGETS+=" ${url#http://}"; done
    fi
    for url in "$@"; do
        wrk -t "$WRK_THREADS" -c "$CONNECTIONS" -d "${WARMUP}s" "$url/open/hello" >/dev/null 2>&1 || true
    done
    for round in $(seq 1 "$ROUNDS"); do
        log "$label round $round/$ROUNDS (load $(loadavg))"
        rm -f "$WORK"/headers-*.txt
        "$HEADERS_BIN" --url "$base/auth/hello" --user "$user" --token "$token" --algorithm "$algorithm" \
            --count "$PER_THREAD" --streams $((WRK_THREADS / n)) --interleave "$n" --out "$WORK/headers"
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

if [ -z "${ONLY_FLEET:-}" ]; then
WRK_STATUSES=""
log "memory store"
PORT=$((PORT + 1))
serve memory ROCKET_PORT=$PORT ROCKET_DIGEST_AUTH="{store=\"memory\",secret=\"$SECRET\"$EXTRA}" \
    -- serve-with-token "$USERNAME"
measure memory "$USERNAME" "$TOKEN" SHA-256 "http://127.0.0.1:$PORT"
stop "$SERVER_PID"

log "SQLite store"
PORT=$((PORT + 1))
SQLITE_ENV=(ROCKET_PORT=$PORT ROCKET_DIGEST_AUTH="{secret=\"$SECRET\"$EXTRA}"
    ROCKET_DATABASES="{digest_auth={url=\"sqlite://$WORK/sqlite.db?mode=rwc\"}}")
TOKEN=$(env "${SQLITE_ENV[@]}" "$SERVER" create-token "$USERNAME" 2>"$WORK/sqlite-token.err" | tail -n1)
serve sqlite "${SQLITE_ENV[@]}" --
measure sqlite "$USERNAME" "$TOKEN" SHA-256 "http://127.0.0.1:$PORT"
stop "$SERVER_PID"

HAVE_APACHE=""
if [ -z "${NO_APACHE:-}" ]; then
    PORT=$((PORT + 1))
    if start_apache "$WORK/apache" "$PORT" "$USERNAME"; then
        PIDS+=("$APACHE_PID")
        HAVE_APACHE=1
        measure apache "$USERNAME" "$APACHE_TOKEN" MD5 "http://127.0.0.1:$PORT"
        stop "$APACHE_PID"
    elif [ -n "${APACHE_PID:-}" ]; then
        PIDS+=("$APACHE_PID")
        log "Apache did not answer, skipped"
    else
        log "Apache skipped (apache2/htdigest not installed)"
    fi
fi
fi

# The fleet: two instances, one client's requests alternating between them.
HAVE_FLEET=""
EVALSHA=""
if [ -n "$HAVE_REDIS" ]; then
    WRK_STATUSES=${STATUSES:-1}
    fleet_redis
    for variant in fleet-redis fleet-postgres; do
        fleet_up "$variant" || break
        HAVE_FLEET=1
        measure "$variant" "$USERNAME" "$TOKEN" SHA-256 "${FLEET_BASES[@]}"
        fleet_stop
        if [ "$variant" = fleet-redis ]; then
            # The claims' cost inside Redis, over this fleet's runs.
            redis-cli -p "$REDIS_PORT" info commandstats | tr -d '\r' | grep '^cmdstat_' | sed 's/^/   /' >&2
            EVALSHA=$(redis-cli -p "$REDIS_PORT" info commandstats | tr -d '\r' | sed -n 's/^cmdstat_evalsha://p')
            ERRORSTATS=$(redis-cli -p "$REDIS_PORT" info errorstats | tr -d '\r' | sed -n 's/^errorstat_//p' | paste -sd' ')
        fi
    done
fi

# Per label: summed 2xx responses / summed seconds (the mean of the rounds'
# rates: every run lasts DURATION); p99 the worst round's.
summary() { # label -> "rps p99 non2xx socket_errors"
    awk -v l="$1" '$1 == l { rps += $2; n++; if ($4 > p99) p99 = $4; bad += $5; sock += $6 }
        END { if (n) printf "%.1f %.3f %d %d\n", rps / n, p99, bad, sock; else print "- - - -" }' "$WORK/runs"
}
# statuses_of LABEL...: the non-2xx answers wrk tallied over the labels' runs,
# "401 stale: 3, 503: 1" ("none" when there were none, "-" when not tallied).
statuses_of() {
    local labels=" $* "
    awk -v labels="$labels" 'index(labels, " " $1 " ") {
            if ($7 == "-") { if ($5 > 0) untallied = 1; next }
            n = split($7, kv, ",");
            for (i = 1; i <= n; i++) { split(kv[i], p, ":"); c[p[1]] += p[2] }
        }
        END {
            if (untallied) { print "-"; exit }
            out = "";
            for (k in c) { name = k; gsub("_", " ", name); out = out (out == "" ? "" : ", ") name ": " c[k] }
            print out == "" ? "none" : out }' "$WORK/runs"
}

{
    echo "wrk $(wrk -v 2>&1 | head -n1 | cut -d' ' -f2), $WRK_THREADS threads, $CONNECTIONS connections, ${DURATION} s per run, $ROUNDS rounds per route, order alternating; load at the end $(loadavg)"
    echo "Routes: \`GET /open/hello\` and \`GET /auth/hello\`, the same bytes, the second behind the guard; both get the same precomputed headers"
    if [ -n "$EXTRA" ]; then
        echo "Extra [digest_auth] configuration: $DIGEST_AUTH_CONFIG"
    fi
    if [ -z "${ONLY_FLEET:-}" ]; then
        echo
        echo "| server, store (one nonce per thread) | open req/s | protected req/s | protected/open | target | open p99 ms | protected p99 ms | non-2xx | socket errors |"
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
    fi
    if [ -n "$HAVE_FLEET" ]; then
        echo
        echo "Fleet: two instances of the example server (SHA-256), credentials in PostgreSQL; wrk thread k pinned to"
        echo "instance k mod 2, threads 2j and 2j+1 sharing one nonce and cnonce (odd and even nc): $((WRK_THREADS / 2)) client(s)"
        echo "whose requests alternate between the instances"
        echo
        echo "| fleet, nonce counts in | open req/s | protected req/s | protected/open | target | open p99 ms | protected p99 ms | p99 protected/open | target | non-2xx | non-2xx by status | socket errors |"
        echo "|---|---|---|---|---|---|---|---|---|---|---|---|"
        for label in fleet-redis fleet-postgres; do
            grep -q "^$label-" "$WORK/runs" || continue
            read -r o_rps o_p99 o_bad o_sock <<<"$(summary "$label-open")"
            read -r p_rps p_p99 p_bad p_sock <<<"$(summary "$label-protected")"
            echo "$(fleet_cells "$label" "$o_rps" "$o_p99" "$p_rps" "$p_p99") $((o_bad + p_bad)) |" \
                "$(statuses_of "$label-open" "$label-protected") | $((o_sock + p_sock)) |"
        done
        if [ -n "$EVALSHA" ]; then
            echo
            echo "- Redis INFO commandstats after the Redis fleet's runs, evalsha (the claim): $EVALSHA;"
            echo "  INFO errorstats: ${ERRORSTATS:-none}"
        fi
    fi
} >"$WORK/table"

echo >&2
cat "$WORK/table"
if [ -n "${RESULTS:-}" ]; then
    cp "$WORK/table" "$RESULTS"
fi
