# Shell functions the bench scripts share; sourced, not run.

log() { printf '== %s\n' "$*" >&2; }

loadavg() { cut -d' ' -f1-3 /proc/loadavg; }

wait_http() { # url
    for _ in $(seq 1 200); do
        if curl -s -o /dev/null "$1"; then return 0; fi
        sleep 0.1
    done
    echo "no answer from $1" >&2
    return 1
}

stop() { # pid
    kill "$1" 2>/dev/null || true
    wait "$1" 2>/dev/null || true
}

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "-" }'; }

meets() { awk -v v="$1" -v t="$2" -v dir="$3" 'BEGIN {
    if (v == "-") print "n/a"; else if ((dir == ">=" && v >= t) || (dir == "<=" && v <= t)) print "met"; else print "MISSED" }'; }

# start_apache DIR PORT USERNAME: Apache httpd in the foreground with
# mod_auth_digest (event MPM, keep-alive, no access log), serving under DIR:
#   /index.txt, /open/hello             open
#   /private/me.json, /auth/hello       AuthType Digest, realm "bench"
# (/open/hello and /auth/hello hold the same bytes as the example server's
# routes of those names). Sets APACHE_PID and APACHE_TOKEN (the password of
# USERNAME in the htdigest file). Returns 1 when Apache or htdigest is not
# installed.
start_apache() {
    local A=$1 port=$2 username=$3 apache_bin mods run_as expected
    apache_bin=$(command -v apache2 || command -v httpd || true)
    [ -n "$apache_bin" ] && command -v htdigest >/dev/null || return 1
    log "Apache httpd $("$apache_bin" -v | sed -n 's/^Server version: //p') with mod_auth_digest"
    mkdir -p "$A/htdocs/private" "$A/htdocs/open" "$A/htdocs/auth" "$A/run"
    printf '{"username":"%s"}' "$username" >"$A/htdocs/private/me.json"
    printf 'rocket_digest_auth example.\n' >"$A/htdocs/index.txt"
    printf 'hello\n' >"$A/htdocs/open/hello"
    printf 'hello\n' >"$A/htdocs/auth/hello"
    APACHE_TOKEN=$(head -c 20 /dev/urandom | od -An -tx1 | tr -d ' \n')
    # htdigest reads the password from the terminal; without a controlling
    # terminal (setsid) it reads it from stdin.
    printf '%s\n%s\n' "$APACHE_TOKEN" "$APACHE_TOKEN" |
        setsid -w htdigest -c "$A/htdigest" bench "$username" >/dev/null 2>&1
    expected="$username:bench:$(printf '%s' "$username:bench:$APACHE_TOKEN" | md5sum | cut -d' ' -f1)"
    if [ "$(cat "$A/htdigest")" != "$expected" ]; then
        echo "htdigest wrote an unexpected line: $(cat "$A/htdigest")" >&2
        exit 1
    fi
    chmod -R a+rX "$A"
    mods=/usr/lib/apache2/modules
    [ -d "$mods" ] || mods=$(dirname "$apache_bin")/../modules
    run_as=""
    if [ "$(id -u)" = 0 ]; then
        run_as="User www-data
Group www-data"
    fi
    local dir protected=""
    for dir in private auth; do
        protected+="<Directory \"$A/htdocs/$dir\">
    AuthType Digest
    AuthName \"bench\"
    AuthDigestDomain /private/ /auth/
    AuthDigestProvider file
    AuthUserFile \"$A/htdigest\"
    Require valid-user
</Directory>
"
    done
    cat >"$A/httpd.conf" <<EOF
ServerRoot "$A"
ServerName 127.0.0.1
Listen 127.0.0.1:$port
PidFile "$A/run/httpd.pid"
DefaultRuntimeDir "$A/run"
ErrorLog "$A/error.log"
LogLevel warn
$run_as
LoadModule mpm_event_module $mods/mod_mpm_event.so
LoadModule authn_core_module $mods/mod_authn_core.so
LoadModule authn_file_module $mods/mod_authn_file.so
LoadModule authz_core_module $mods/mod_authz_core.so
LoadModule authz_user_module $mods/mod_authz_user.so
LoadModule auth_digest_module $mods/mod_auth_digest.so
KeepAlive On
MaxKeepAliveRequests 0
KeepAliveTimeout 5
DocumentRoot "$A/htdocs"
<Directory "$A/htdocs">
    Require all granted
</Directory>
$protected
EOF
    "$apache_bin" -f "$A/httpd.conf" -DFOREGROUND >"$A/stdout" 2>&1 &
    APACHE_PID=$!
    wait_http "http://127.0.0.1:$port/index.txt"
}

# start_private_redis DIR: a redis-server of this script on a free port,
# keeping nothing on disk (never the shared one: benchmarks may flush it).
# Sets REDIS_PORT and REDIS_PID.
start_private_redis() {
    local dir=$1
    REDIS_PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save "" --appendonly no \
        --dir "$dir" --maxmemory-policy noeviction >"$dir/redis.log" 2>&1 &
    REDIS_PID=$!
    for _ in $(seq 1 100); do
        [ "$(redis-cli -p "$REDIS_PORT" ping 2>/dev/null)" = PONG ] && return 0
        sleep 0.1
    done
    echo "the private redis-server did not answer (log: $dir/redis.log)" >&2
    return 1
}

# bench_features: sets FEATURES to the cargo arguments both bench scripts
# build the example server with, the same in both so that neither replaces
# the other's binary with one lacking a feature: postgres unless
# NO_POSTGRES, mysql unless NO_MYSQL, redis for the fleet unless NO_FLEET
# or NO_POSTGRES and when redis-server and redis-cli are installed (then
# HAVE_REDIS=1).
bench_features() {
    local features=()
    HAVE_REDIS=""
    [ -n "${NO_POSTGRES:-}" ] || features+=(postgres)
    [ -n "${NO_MYSQL:-}" ] || features+=(mysql)
    if [ -z "${NO_FLEET:-}" ] && [ -z "${NO_POSTGRES:-}" ]; then
        if command -v redis-server >/dev/null && command -v redis-cli >/dev/null; then
            HAVE_REDIS=1
            features+=(redis)
        else
            log "fleet skipped: redis-server/redis-cli not installed (apt-get install -y redis-server)"
        fi
    fi
    FEATURES=()
    if [ ${#features[@]} -gt 0 ]; then
        FEATURES=(--features "$(IFS=,; echo "${features[*]}")")
    fi
}

PG_URL=${DIGEST_AUTH_TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/test}
PG_SCHEMAS=()

pg_schema_url() { # schema -> the URL with that schema first on the search path
    local sep='?'
    [[ $PG_URL == *\?* ]] && sep='&'
    echo "${PG_URL}${sep}options%5Bsearch_path%5D=$1"
}
# pg_schema NAME: creates schema NAME for this run (dropped at exit by
# drop_pg_schemas) and sets SCHEMA_URL to its URL; fails when PostgreSQL is
# unreachable. Not in a command substitution: its subshell would lose the
# registration.
pg_schema() {
    psql "$PG_URL" -qc "CREATE SCHEMA IF NOT EXISTS $1" >/dev/null 2>&1 || return 1
    PG_SCHEMAS+=("$1")
    SCHEMA_URL=$(pg_schema_url "$1")
}
drop_pg_schemas() {
    local schema
    for schema in "${PG_SCHEMAS[@]}"; do
        psql "$PG_URL" -qc "DROP SCHEMA IF EXISTS $schema CASCADE" >/dev/null 2>&1 || true
    done
}

# --- a fleet: two instances of the example server -----------------------------
# These use the calling script's SERVER, WORK, USERNAME, SECRET, PORT (the
# last port taken) and PIDS (killed at exit), and EXTRA (more [digest_auth]
# keys, ",key=value...", may be unset).

# fleet_redis: this run's redis-server (start_private_redis in WORK); sets
# REDIS_URL.
fleet_redis() {
    start_private_redis "$WORK"
    PIDS+=("$REDIS_PID")
    REDIS_URL="redis://127.0.0.1:$REDIS_PORT/0"
    log "fleet: redis-server $(redis-server --version | sed -E 's/.* v=([^ ]+).*/\1/') on port $REDIS_PORT"
}

# fleet_start LABEL DIGEST_AUTH DATABASES: makes the user's token, starts
# two instances on the next two ports; sets TOKEN, FLEET_PIDS and
# FLEET_BASES (their base URLs, http://127.0.0.1:PORT). Fails when the
# token cannot be made.
fleet_start() {
    local label=$1 digest_auth=$2 databases=$3 i pid
    FLEET_PIDS=() FLEET_BASES=()
    TOKEN=$(env ROCKET_DIGEST_AUTH="$digest_auth" ROCKET_DATABASES="$databases" \
        "$SERVER" create-token "$USERNAME" 2>"$WORK/$label-token.err" | tail -n1)
    [ -n "$TOKEN" ] || return 1
    for i in 1 2; do
        PORT=$((PORT + 1))
        env ROCKET_PORT=$PORT ROCKET_DIGEST_AUTH="$digest_auth" ROCKET_DATABASES="$databases" \
            "$SERVER" >"$WORK/$label-$i.out" 2>"$WORK/$label-$i.err" &
        pid=$!
        PIDS+=("$pid")
        FLEET_PIDS+=("$pid")
        wait_http "http://127.0.0.1:$PORT/"
        FLEET_BASES+=("http://127.0.0.1:$PORT")
    done
}
fleet_stop() {
    local pid
    for pid in "${FLEET_PIDS[@]}"; do stop "$pid"; done
}

# fleet_up VARIANT: the fleet of VARIANT, credentials in a PostgreSQL schema
# of its own: fleet-redis (nonce counts in the Redis at REDIS_URL) or
# fleet-postgres (counts in PostgreSQL, nc_lease = 0: what round-robin
# needs without Redis). Logs why and fails when PostgreSQL or the token
# fails.
fleet_up() {
    local variant=$1 digest_auth databases
    if ! pg_schema "digest_auth_bench_$$_${variant//-/_}"; then
        log "fleet skipped: PostgreSQL unreachable at $PG_URL (psql failed)"
        return 1
    fi
    case $variant in
    fleet-redis)
        digest_auth="{secret=\"$SECRET\",counts=\"redis\"${EXTRA:-}}"
        databases="{digest_auth={url=\"$SCHEMA_URL\"},digest_auth_counts={url=\"$REDIS_URL\"}}" ;;
    fleet-postgres)
        digest_auth="{secret=\"$SECRET\",nc_lease=0${EXTRA:-}}"
        databases="{digest_auth={url=\"$SCHEMA_URL\"}}" ;;
    esac
    if ! fleet_start "$variant" "$digest_auth" "$databases"; then
        log "fleet skipped: no token ($(tail -n1 "$WORK/$variant-token.err"))"
        return 1
    fi
}

# fleet_cells LABEL OPEN_RPS OPEN_P99 PROTECTED_RPS PROTECTED_P99: the
# first cells of a fleet's table row, "| name | open req/s | protected req/s
# | ratio | target | open p99 | protected p99 | p99 ratio | target |", with
# issue 13's targets for the Redis fleet.
fleet_cells() {
    local label=$1 o_rps=$2 o_p99=$3 p_rps=$4 p_p99=$5 name t_rps="" t_p99="" r r99 t1="-" t2="-"
    case $label in
    fleet-redis) name="Redis" t_rps=0.5 t_p99=3 ;;
    fleet-postgres) name="PostgreSQL (nc_lease = 0)" ;;
    esac
    r=$(ratio "$p_rps" "$o_rps")
    r99=$(ratio "$p_p99" "$o_p99")
    [ -n "$t_rps" ] && t1=">= $t_rps: $(meets "$r" "$t_rps" ">=")"
    [ -n "$t_p99" ] && t2="<= $t_p99: $(meets "$r99" "$t_p99" "<=")"
    echo "| $name | $o_rps | $p_rps | $r | $t1 | $o_p99 | $p_p99 | $r99 | $t2 |"
}
