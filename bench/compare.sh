#!/usr/bin/env bash
# Compares, on this machine in one run, the example server's protected
# `GET /me` with its open `GET /` for each store (memory, SQLite,
# PostgreSQL, MariaDB/MySQL), and Apache httpd with mod_auth_digest, all driven by the same
# Digest load generator (examples/loadgen.rs) with the same connection count.
# Then the same with wrk replaying precomputed headers on two routes that
# differ only in the guard (bench/wrk.sh: memory, SQLite, Apache, and the
# fleet below with each nonce's counts alternating between the instances).
# Then a fleet: two instances, PostgreSQL credentials, nonce counts in Redis
# against counts in PostgreSQL (nc_lease = 0), each against the open route
# of the same two instances, the load generator sending each connection's
# requests round-robin over both. Then checks that after many authenticated
# requests, each with a fresh cnonce, the SQLite counter table holds only
# rows of live nonces, and that Redis's memory stays bounded by the live
# nonces on the Redis fleet.
#
#   bench/compare.sh                       # everything
#   CONNECTIONS=16 DURATION=10 ROUNDS=3 bench/compare.sh
#   NO_POSTGRES=1 NO_APACHE=1 MILLION_REQUESTS=100000 bench/compare.sh
#
# Environment:
#   CONNECTIONS       connections per run (default 16)
#   DURATION          measured seconds per run (default 10)
#   WARMUP            warm-up seconds per run (default 2)
#   ROUNDS            open/protected pairs per store; ratios are taken from the
#                     summed throughput (default 2, order alternates)
#   MILLION_REQUESTS  requests of the counter-table and Redis memory checks
#                     (default 1000000; 0 skips)
#   NO_POSTGRES=1     skip PostgreSQL (also skipped when it is unreachable)
#   NO_MYSQL=1        skip MariaDB/MySQL (also skipped when it is unreachable)
#   NO_APACHE=1       skip Apache
#   SKIP_COMPARE=1    skip the per-store, Apache and wrk rows but wrk's fleet
#                     (with NO_FLEET=1: only the counter-table check)
#   NO_FLEET=1        skip the fleet rows and the Redis memory check (also
#                     skipped without PostgreSQL or redis-server)
#   ONLY_FLEET=1      only the fleet rows (the load generator's and wrk's) and
#                     the Redis memory check
#   NO_WRK=1          skip the wrk rows (bench/wrk.sh, same CONNECTIONS,
#                     DURATION, ROUNDS, NO_APACHE, NO_FLEET, DIGEST_AUTH_CONFIG)
#   DIGEST_AUTH_CONFIG  extra [digest_auth] keys for every run of the crate's
#                     server, as inline TOML, e.g. 'credential_cache_ttl=5'
#   DIGEST_AUTH_TEST_POSTGRES_URL  PostgreSQL URL (default postgres://postgres@127.0.0.1:5432/test)
#   DIGEST_AUTH_TEST_MYSQL_URL     MariaDB/MySQL server (default mysql://root@127.0.0.1:3306/test);
#                     the run uses a database of its own on it, made with the `mariadb` client
#   BASE_PORT         first loopback port used (default 18180)
#   CARGO_TARGET_DIR  as for cargo
#   RESULTS           also write the table to this file
#
# Needs: cargo, curl; for Apache `apache2` and `apache2-utils` (Debian:
# apt-get install -y apache2 apache2-utils), run as a user that may start it;
# for the counter-table check `sqlite3` (apt-get install -y sqlite3); for the
# wrk rows `wrk` (apt-get install -y wrk); for the fleet `redis-server` and
# `redis-cli` (apt-get install -y redis-server), which this script starts on
# a port of its own.
set -euo pipefail
cd "$(dirname "$0")/.."

CONNECTIONS=${CONNECTIONS:-16}
DURATION=${DURATION:-10}
WARMUP=${WARMUP:-2}
ROUNDS=${ROUNDS:-2}
MILLION_REQUESTS=${MILLION_REQUESTS:-1000000}
BASE_PORT=${BASE_PORT:-18180}
MYSQL_URL=${DIGEST_AUTH_TEST_MYSQL_URL:-mysql://root@127.0.0.1:3306/test}
TARGET=${CARGO_TARGET_DIR:-target}
SECRET="compare.sh shared secret, 32 bytes or more"
EXTRA=${DIGEST_AUTH_CONFIG:+,$DIGEST_AUTH_CONFIG}
USERNAME="bench-$$"

WORK=$(mktemp -d /tmp/digest-compare.XXXXXX)
chmod 755 "$WORK"
PIDS=()
MYSQL_DATABASES=()
# The `mariadb` client on MYSQL_URL's server: mysql://user[:password]@host[:port]/...
mysql_client() {
    local rest=${MYSQL_URL#*://} auth host user password port
    rest=${rest%%/*}
    auth=""; [[ $rest == *@* ]] && auth=${rest%@*} && rest=${rest#*@}
    host=${rest%:*}; port=3306; [[ $rest == *:* ]] && port=${rest##*:}
    user=${auth%%:*}; password=""; [[ $auth == *:* ]] && password=${auth#*:}
    mariadb -h"$host" -P"$port" ${user:+-u"$user"} ${password:+-p"$password"} "$@"
}
cleanup() {
    for pid in "${PIDS[@]}"; do
        kill "$pid" 2>/dev/null || true
    done
    wait 2>/dev/null || true
    drop_pg_schemas
    for database in "${MYSQL_DATABASES[@]}"; do
        mysql_client -e "DROP DATABASE IF EXISTS $database" >/dev/null 2>&1 || true
    done
    rm -rf "$WORK"
}
trap cleanup EXIT

# shellcheck source=bench/lib.sh
. bench/lib.sh

# --- build --------------------------------------------------------------------
if [ -n "${ONLY_FLEET:-}" ]; then
    SKIP_COMPARE=1
    NO_SQLITE_MILLION=1
fi
bench_features
log "building release binaries (${FEATURES[*]:-default features})"
cargo build --release "${FEATURES[@]}" --example server --example loadgen >&2
SERVER="$TARGET/release/examples/server"
LOADGEN="$TARGET/release/examples/loadgen"

# --- helpers ------------------------------------------------------------------
# run_loadgen NAME URLS [--user U --token T] -> appends "NAME rps p50 p99 ok errors" to $WORK/runs
# (URLS: one URL, or several separated by spaces, each connection's requests
# going round-robin over them)
run_loadgen() {
    local name=$1 urls=$2 url_args=() url
    shift 2
    for url in $urls; do url_args+=(--url "$url"); done
    local out="$WORK/loadgen-$name-$(date +%s%N).txt"
    if ! "$LOADGEN" "${url_args[@]}" "$@" --connections "$CONNECTIONS" \
        --duration "$DURATION" --warmup "$WARMUP" >"$out"; then
        echo "load generator reported errors for $name:" >&2
    fi
    sed 's/^/   /' "$out" >&2
    local line
    line=$(grep '^RESULT ' "$out")
    local rps p50 p99 ok errors stale
    rps=$(sed -E 's/.* rps=([^ ]+).*/\1/' <<<"$line")
    p50=$(sed -E 's/.* p50_ms=([^ ]+).*/\1/' <<<"$line")
    p99=$(sed -E 's/.* p99_ms=([^ ]+).*/\1/' <<<"$line")
    ok=$(sed -E 's/.* ok=([^ ]+).*/\1/' <<<"$line")
    errors=$(sed -E 's/.* errors=([^ ]+).*/\1/' <<<"$line")
    stale=$(sed -E 's/.* stale=([^ ]+).*/\1/' <<<"$line")
    echo "$name $rps $p50 $p99 $ok $errors $(loadavg | cut -d' ' -f1) $stale" >>"$WORK/runs"
}

# measure_pair LABEL OPEN_URLS PROTECTED_URLS USER TOKEN: ROUNDS alternating pairs
measure_pair() {
    local label=$1 open=$2 protected=$3 user=$4 token=$5
    for round in $(seq 1 "$ROUNDS"); do
        log "$label round $round/$ROUNDS (load $(loadavg))"
        if [ $((round % 2)) -eq 1 ]; then
            run_loadgen "$label-open" "$open"
            run_loadgen "$label-protected" "$protected" --user "$user" --token "$token"
        else
            run_loadgen "$label-protected" "$protected" --user "$user" --token "$token"
            run_loadgen "$label-open" "$open"
        fi
    done
}

# --- the example server, per store --------------------------------------------
export ROCKET_LOG_LEVEL=critical
export ROCKET_ADDRESS=127.0.0.1
# Starts the example server with the given environment (and arguments after
# `--`), measures open `GET /` against protected `GET /me` on $PORT with
# $TOKEN (or the `TOKEN <token>` line the server prints), then stops it.
serve_and_measure() { # label env-assignments... -- server-args...
    local label=$1 env_args=() pid token
    shift
    while [ "$1" != "--" ]; do env_args+=("$1"); shift; done
    shift
    env "${env_args[@]}" "$SERVER" "$@" >"$WORK/$label.out" 2>"$WORK/$label.err" &
    pid=$!
    PIDS+=("$pid")
    wait_http "http://127.0.0.1:$PORT/"
    token=$(sed -n 's/^TOKEN //p' "$WORK/$label.out")
    measure_pair "$label" "http://127.0.0.1:$PORT/" "http://127.0.0.1:$PORT/me" "$USERNAME" "${token:-$TOKEN}"
    stop "$pid"
}

# Per label: summed 2xx responses / summed seconds; p99 is the worst round's.
summary() { # label -> "rps p99 errors"
    awk -v l="$1" -v d="$DURATION" '$1 == l { ok += $5; n++; err += $6; if ($4 > p99) p99 = $4 }
        END { if (n) printf "%.1f %.3f %d\n", ok / (n * d), p99, err; else print "- - -" }' "$WORK/runs"
}
# sampled_run NAME SAMPLER URLS: MILLION_REQUESTS authenticated requests of
# $USERNAME with $TOKEN, round-robin over URLS, running SAMPLER every 10 s
# into $WORK/NAME.samples; the load generator's report in $WORK/NAME.txt.
# Sets TOOK (seconds).
sampled_run() {
    local name=$1 sampler=$2 urls=$3 url_args=() url pid started
    for url in $urls; do url_args+=(--url "$url"); done
    started=$(date +%s)
    "$LOADGEN" "${url_args[@]}" --user "$USERNAME" --token "$TOKEN" \
        --connections "$CONNECTIONS" --requests "$MILLION_REQUESTS" >"$WORK/$name.txt" &
    pid=$!
    : >"$WORK/$name.samples"
    while kill -0 "$pid" 2>/dev/null; do
        sleep 10
        "$sampler" >>"$WORK/$name.samples" || true
    done
    wait "$pid" || true
    TOOK=$(($(date +%s) - started))
    sed 's/^/   /' "$WORK/$name.txt" >&2
}
stale_of() { # label -> the stale=true 401s re-answered, summed over its rounds
    awk -v l="$1" '$1 == l { s += $8 } END { print s + 0 }' "$WORK/runs"
}

: >"$WORK/runs"
PORT=$BASE_PORT

if [ -z "${SKIP_COMPARE:-}" ]; then
# memory
log "memory store"
PORT=$((PORT + 1))
MEM_ENV=(ROCKET_PORT=$PORT ROCKET_DIGEST_AUTH="{store=\"memory\",secret=\"$SECRET\"$EXTRA}")
# The token must come from the serving process itself: see serve-with-token.
serve_and_measure memory "${MEM_ENV[@]}" -- serve-with-token "$USERNAME"

# SQLite (the default store; WAL, synchronous=NORMAL)
log "SQLite store"
PORT=$((PORT + 1))
SQLITE_ENV=(ROCKET_PORT=$PORT
    ROCKET_DIGEST_AUTH="{secret=\"$SECRET\"$EXTRA}"
    ROCKET_DATABASES="{digest_auth={url=\"sqlite://$WORK/sqlite.db?mode=rwc\"}}")
TOKEN=$(env "${SQLITE_ENV[@]}" "$SERVER" create-token "$USERNAME" 2>"$WORK/sqlite-token.err" | tail -n1)
serve_and_measure sqlite "${SQLITE_ENV[@]}" --

# PostgreSQL: each configuration in a schema of its own, made for this run
# and dropped at the end (`nc_lease` is recorded per database). The default
# (a row per request, for load balancers that spread one client's requests
# over instances), then with nc_lease = 256 (instances that keep a client's
# connection, as an L4 balancer does).
HAVE_PG=""
if [ -z "${NO_POSTGRES:-}" ]; then
    for variant in postgres postgres-leased; do
        PORT=$((PORT + 1))
        lease=""
        [ "$variant" = postgres-leased ] && lease=",nc_lease=256"
        if ! pg_schema "digest_auth_bench_$$_${variant//-/_}"; then
            log "PostgreSQL unreachable at $PG_URL (psql failed), skipped"
            break
        fi
        url=$SCHEMA_URL
        PG_ENV=(ROCKET_PROFILE=postgres ROCKET_PORT=$PORT
            ROCKET_DIGEST_AUTH="{secret=\"$SECRET\"$lease$EXTRA}"
            ROCKET_DATABASES="{digest_auth={url=\"$url\"}}")
        if TOKEN=$(env "${PG_ENV[@]}" "$SERVER" create-token "$USERNAME" 2>"$WORK/pg-token.err" | tail -n1) &&
            [ -n "$TOKEN" ]; then
            log "PostgreSQL store ($variant)"
            HAVE_PG=1
            serve_and_measure "$variant" "${PG_ENV[@]}" --
        else
            log "PostgreSQL unreachable at $PG_URL, skipped: $(tail -n1 "$WORK/pg-token.err")"
            break
        fi
    done
fi

# MariaDB/MySQL with its default, leases (nc_lease = 256), in a database made
# for this run and dropped at the end.
HAVE_MYSQL=""
if [ -z "${NO_MYSQL:-}" ]; then
    PORT=$((PORT + 1))
    database="digest_auth_bench_$$"
    if mysql_client -e "CREATE DATABASE IF NOT EXISTS $database" >/dev/null 2>&1; then
        MYSQL_DATABASES+=("$database")
        url="${MYSQL_URL%/*}/$database"
        MYSQL_ENV=(ROCKET_PORT=$PORT
            ROCKET_DIGEST_AUTH="{secret=\"$SECRET\"$EXTRA}"
            ROCKET_DATABASES="{digest_auth={url=\"$url\"}}")
        if TOKEN=$(env "${MYSQL_ENV[@]}" "$SERVER" create-token "$USERNAME" 2>"$WORK/mysql-token.err" | tail -n1) &&
            [ -n "$TOKEN" ]; then
            log "MariaDB/MySQL store ($(mysql_client -N -e 'SELECT VERSION()'))"
            HAVE_MYSQL=1
            serve_and_measure mariadb "${MYSQL_ENV[@]}" --
        else
            log "MariaDB/MySQL store did not start, skipped: $(tail -n1 "$WORK/mysql-token.err")"
        fi
    else
        log "MariaDB/MySQL unreachable at $MYSQL_URL (mariadb client failed), skipped"
    fi
fi

# --- Apache httpd with mod_auth_digest ----------------------------------------
HAVE_APACHE=""
if [ -z "${NO_APACHE:-}" ]; then
    PORT=$((PORT + 1))
    if start_apache "$WORK/apache" "$PORT" "$USERNAME"; then
        PIDS+=("$APACHE_PID")
        HAVE_APACHE=1
        measure_pair apache "http://127.0.0.1:$PORT/index.txt" "http://127.0.0.1:$PORT/private/me.json" \
            "$USERNAME" "$APACHE_TOKEN"
        stop "$APACHE_PID"
    elif [ -n "${APACHE_PID:-}" ]; then
        PIDS+=("$APACHE_PID")
        log "Apache did not answer, skipped"
    else
        log "Apache skipped (apache2/htdigest not installed)"
    fi
else
    log "Apache skipped (NO_APACHE set)"
fi

# --- the table ----------------------------------------------------------------

{
    echo "Machine: $(nproc) cores, $(sed -n 's/^model name\s*: //p' /proc/cpuinfo | head -n1); load at the end $(loadavg)"
    echo "Runs: $CONNECTIONS connections, ${DURATION} s measured after ${WARMUP} s warm-up, $ROUNDS rounds per route"
    echo "Extra [digest_auth] configuration: ${DIGEST_AUTH_CONFIG:-none}"
    echo
    echo "| server, store | open req/s | protected req/s | protected/open | target | open p99 ms | protected p99 ms | p99 protected/open | errors |"
    echo "|---|---|---|---|---|---|---|---|---|"
    for label in memory sqlite postgres postgres-leased mariadb apache; do
        case $label in
        memory) target=0.9 name="example server, memory" ;;
        sqlite) target=0.5 name="example server, SQLite" ;;
        postgres) target=0.3 name="example server, PostgreSQL (nc_lease = 0, default)"; [ -n "$HAVE_PG" ] || continue ;;
        postgres-leased) target=0.3 name="example server, PostgreSQL, nc_lease = 256"; [ -n "$HAVE_PG" ] || continue ;;
        mariadb) target=0.5 name="example server, MariaDB (nc_lease = 256, default)"; [ -n "$HAVE_MYSQL" ] || continue ;;
        apache) target="" name="Apache mod_auth_digest (MD5)"; [ -n "$HAVE_APACHE" ] || continue ;;
        esac
        read -r o_rps o_p99 o_err <<<"$(summary "$label-open")"
        read -r p_rps p_p99 p_err <<<"$(summary "$label-protected")"
        r=$(ratio "$p_rps" "$o_rps")
        t="-"
        [ -n "$target" ] && t=">= $target: $(meets "$r" "$target" ">=")"
        echo "| $name | $o_rps | $p_rps | $r | $t | $o_p99 | $p_p99 | $(ratio "$p_p99" "$o_p99") | $((o_err + p_err)) |"
    done
    echo
    read -r s_rps s_p99 _ <<<"$(summary sqlite-protected)"
    read -r _ so_p99 _ <<<"$(summary sqlite-open)"
    if [ -n "$HAVE_APACHE" ]; then
        read -r a_rps _ _ <<<"$(summary apache-protected)"
        r=$(ratio "$s_rps" "$a_rps")
        echo "- SQLite protected / Apache protected throughput: $r (target >= 2: $(meets "$r" 2 ">="))"
    fi
    r=$(ratio "$s_p99" "$so_p99")
    echo "- SQLite protected p99 / open p99: $r (target <= 3: $(meets "$r" 3 "<="))"
} >"$WORK/table"

fi

# --- wrk replaying precomputed headers: identical routes, and the fleet -------
# (with SKIP_COMPARE, the fleet alone)
if [ -z "${NO_WRK:-}" ] && { [ -z "${SKIP_COMPARE:-}" ] || [ -n "$HAVE_REDIS" ]; }; then
    if command -v wrk >/dev/null; then
        log "wrk rows (bench/wrk.sh)"
        echo >>"$WORK/table"
        ONLY_FLEET=${SKIP_COMPARE:+1} BASE_PORT=$((PORT + 1)) RESULTS="$WORK/wrk-table" bench/wrk.sh >&2
        cat "$WORK/wrk-table" >>"$WORK/table"
        PORT=$((PORT + 10))
    else
        echo "- wrk rows skipped: wrk is not installed (apt-get install -y wrk)" >>"$WORK/table"
    fi
fi

# --- a fleet: two instances, one client's requests alternating between them ----
# Two instances of the example server on two ports, credentials in PostgreSQL
# (a schema per configuration), the load generator sending each connection's
# requests round-robin over both on one nonce. Nonce counts in Redis (a
# redis-server of this run), then in PostgreSQL with nc_lease = 0 (what
# round-robin needs without Redis); each against the open route of the same
# two instances.
HAVE_FLEET=""
if [ -n "$HAVE_REDIS" ]; then
    fleet_redis
    for variant in fleet-redis fleet-postgres; do
        fleet_up "$variant" || break
        HAVE_FLEET=1
        measure_pair "$variant" "${FLEET_BASES[*]/%//}" "${FLEET_BASES[*]/%//me}" "$USERNAME" "$TOKEN"
        fleet_stop
    done
fi
if [ -n "$HAVE_FLEET" ]; then
    {
        echo
        echo "Fleet: two instances of the example server, each loadgen connection's requests alternating between them"
        echo "on one nonce (--url twice); credentials in PostgreSQL; $CONNECTIONS connections in all"
        echo
        echo "| fleet, nonce counts in | open req/s | protected req/s | protected/open | target | open p99 ms | protected p99 ms | p99 protected/open | target | stale=true | errors |"
        echo "|---|---|---|---|---|---|---|---|---|---|---|"
        for label in fleet-redis fleet-postgres; do
            read -r o_rps o_p99 o_err <<<"$(summary "$label-open")"
            read -r p_rps p_p99 p_err <<<"$(summary "$label-protected")"
            echo "$(fleet_cells "$label" "$o_rps" "$o_p99" "$p_rps" "$p_p99") $(stale_of "$label-protected") | $((o_err + p_err)) |"
        done
    } >>"$WORK/table"
fi

# --- Redis's memory after many requests with fresh cnonces --------------------
if [ -n "$HAVE_FLEET" ] && [ "$MILLION_REQUESTS" -gt 0 ]; then
    LIFETIME=20
    # A nonce's counts outlive it by MAX_CLOCK_SKEW_SECS (60 s, see
    # src/protocol/nonce.rs), as in every store.
    SKEW=60
    log "Redis memory: $MILLION_REQUESTS requests on the Redis fleet, nonce_lifetime=$LIFETIME s"
    # This run's own server: an empty start makes the figures its own.
    redis-cli -p "$REDIS_PORT" flushall >/dev/null
    redis_sample() { # -> "used_memory keys"
        echo "$(redis-cli -p "$REDIS_PORT" info memory | tr -d '\r' | sed -n 's/^used_memory://p') $(redis-cli -p "$REDIS_PORT" dbsize)"
    }
    pg_schema "digest_auth_bench_$$_fleet_memory"
    fleet_start fleet-memory "{secret=\"$SECRET\",counts=\"redis\",nonce_lifetime=$LIFETIME,nextnonce_within=5$EXTRA}" \
        "{digest_auth={url=\"$SCHEMA_URL\"},digest_auth_counts={url=\"$REDIS_URL\"}}"
    read -r m_before k_before <<<"$(redis_sample)"
    sampled_run redis-million redis_sample "${FLEET_BASES[*]/%//me}"
    read -r m_end k_end <<<"$(redis_sample)"
    sleep $((LIFETIME + SKEW + 2))
    read -r m_after k_after <<<"$(redis_sample)"
    fleet_stop
    samples=$(wc -l <"$WORK/redis-million.samples")
    read -r m_peak k_peak <<<"$(awk '$1 > m { m = $1 } $2 > k { k = $2 } END { print m + 0, k + 0 }' "$WORK/redis-million.samples")"
    ok=$(sed -nE 's/^RESULT .* ok=([0-9]+).*/\1/p' "$WORK/redis-million.txt")
    errors=$(sed -nE 's/^RESULT .* errors=([0-9]+).*/\1/p' "$WORK/redis-million.txt")
    verdict="MISSED"
    # Only the generation key is left once every nonce has expired.
    [ "$k_after" = 1 ] && verdict="met"
    kib() { awk -v b="$1" 'BEGIN { printf "%.0f KiB", b / 1024 }'; }
    {
        echo
        echo "- Redis memory over $ok authenticated 2xx requests on the Redis fleet (asked: $MILLION_REQUESTS; errors: ${errors:-?}),"
        echo "  each with a fresh cnonce, in ${TOOK} s with nonce_lifetime $LIFETIME s (nextnonce within 5 s): used_memory"
        echo "  before $(kib "$m_before") ($k_before keys); during, over $samples samples every 10 s, at most $(kib "$m_peak")"
        echo "  (at most $k_peak keys); right after $(kib "$m_end") ($k_end keys); once every nonce had been expired for"
        echo "  ${SKEW} s (the clock-skew margin) $(kib "$m_after") ($k_after keys: the generation alone). Keys go with their nonces: $verdict"
    } >>"$WORK/table"
fi

# --- the counter table after many requests with fresh cnonces -----------------
if [ "$MILLION_REQUESTS" -gt 0 ] && [ -z "${NO_SQLITE_MILLION:-}" ]; then
    if command -v sqlite3 >/dev/null; then
        LIFETIME=20
        CLEANUP=5
        # The cleanup keeps rows until MAX_CLOCK_SKEW_SECS (60 s, see
        # src/protocol/nonce.rs) after their nonce expired: another instance
        # whose clock is behind by up to that much still accepts the nonce.
        SKEW=60
        log "counter table: $MILLION_REQUESTS requests on SQLite, nonce_lifetime=$LIFETIME s, cleanup_interval=$CLEANUP s"
        PORT=$((PORT + 1))
        DB="$WORK/million.db"
        M_ENV=(ROCKET_PORT=$PORT
            ROCKET_DIGEST_AUTH="{secret=\"$SECRET\"$EXTRA,nonce_lifetime=$LIFETIME,nextnonce_within=5,cleanup_interval=$CLEANUP}"
            ROCKET_DATABASES="{digest_auth={url=\"sqlite://$DB?mode=rwc\"}}")
        TOKEN=$(env "${M_ENV[@]}" "$SERVER" create-token "$USERNAME" 2>/dev/null | tail -n1)
        env "${M_ENV[@]}" "$SERVER" >"$WORK/million.out" 2>&1 &
        PIDS+=($!)
        M_PID=$!
        wait_http "http://127.0.0.1:$PORT/"
        count_rows() { # -> "total live expired overdue distinct_nonces"
            # overdue: expired more than the skew margin plus one cleanup
            # interval (+1 s) ago, which the periodic cleanup must have removed.
            local now
            now=$(date +%s)
            sqlite3 "$DB" "SELECT COUNT(*), COALESCE(SUM(expires_at > $now), 0),
                COALESCE(SUM(expires_at <= $now), 0),
                COALESCE(SUM(expires_at <= $((now - SKEW - CLEANUP - 1))), 0),
                COUNT(DISTINCT nonce) FROM (
                    SELECT nonce, expires_at FROM digest_auth_nonce_counts
                    UNION ALL SELECT nonce, expires_at FROM digest_auth_nonce_leases)" | tr '|' ' '
        }
        sampled_run million count_rows "http://127.0.0.1:$PORT/me"
        took=$TOOK
        read -r t0 l0 e0 o0 n0 <<<"$(count_rows)"
        sleep $((CLEANUP + 2))
        read -r t1 l1 e1 o1 n1 <<<"$(count_rows)"
        sleep $((LIFETIME + SKEW + 1))
        read -r t2 l2 e2 o2 n2 <<<"$(count_rows)"
        stop "$M_PID"
        echo "$t0 $l0 $e0 $o0 $n0" >>"$WORK/million.samples"
        echo "$t1 $l1 $e1 $o1 $n1" >>"$WORK/million.samples"
        samples=$(wc -l <"$WORK/million.samples")
        max_rows=$(awk '$1 > m { m = $1 } END { print m + 0 }' "$WORK/million.samples")
        max_overdue=$(awk '$4 > m { m = $4 } END { print m + 0 }' "$WORK/million.samples")
        ok=$(sed -nE 's/^RESULT .* ok=([0-9]+).*/\1/p' "$WORK/million.txt")
        errors=$(sed -nE 's/^RESULT .* errors=([0-9]+).*/\1/p' "$WORK/million.txt")
        verdict="MISSED"
        [ "$max_overdue" = 0 ] && [ "${t2:-1}" = 0 ] && verdict="met"
        {
            echo "- Counter table after $ok authenticated 2xx requests (asked: $MILLION_REQUESTS; errors: ${errors:-?}), each with a fresh cnonce,"
            echo "  in ${took} s on SQLite with nonce_lifetime $LIFETIME s and cleanup_interval $CLEANUP s:"
            echo "  right after the run $t0 rows over $n0 nonces ($l0 rows of live nonces, $e0 of expired ones);"
            echo "  $((CLEANUP + 2)) s later $t1 rows ($l1 live, $e1 expired); once every nonce had been expired for ${SKEW} s"
            echo "  (the clock-skew margin the cleanup keeps) plus a cleanup interval: $t2 rows."
            echo "  Over $samples samples (every 10 s during the run, and after it) at most $max_rows rows, and $max_overdue rows of"
            echo "  nonces expired more than ${SKEW} s + one cleanup interval earlier. Only rows of nonces that are live (on"
            echo "  this clock, or on a clock up to ${SKEW} s behind) remain: $verdict"
        } >>"$WORK/table"
    else
        echo "- Counter-table check skipped: sqlite3 is not installed" >>"$WORK/table"
    fi
fi

echo
cat "$WORK/table"
if [ -n "${RESULTS:-}" ]; then
    cp "$WORK/table" "$RESULTS"
fi
