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
