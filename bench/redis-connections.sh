#!/usr/bin/env bash
# Claims per second and p99 of the Redis count store's claim script through
# the redis crate's multiplexed ConnectionManager (what the store uses) and a
# deadpool-redis pool (rocket_db_pools' deadpool_redis), in one run, on a
# private redis-server of this script (nothing kept on disk).
#
#   bench/redis-connections.sh            # 16 clients, 3 rounds of 5 s each
#   CLIENTS=16 SECONDS_PER_ROUND=5 ROUNDS=3 bench/redis-connections.sh
#
# Needs: cargo, redis-server, redis-cli.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=bench/lib.sh
. bench/lib.sh

CLIENTS=${CLIENTS:-16}
SECONDS_PER_ROUND=${SECONDS_PER_ROUND:-5}
ROUNDS=${ROUNDS:-3}
TARGET=${CARGO_TARGET_DIR:-target}/redis-connections

log "building bench/redis-connections (release)"
cargo build --release --quiet --manifest-path bench/redis-connections/Cargo.toml --target-dir "$TARGET" >&2

WORK=$(mktemp -d /tmp/redis-connections.XXXXXX)
start_private_redis "$WORK"
trap 'stop "$REDIS_PID"; rm -rf "$WORK"' EXIT

log "$CLIENTS clients, $ROUNDS rounds of $SECONDS_PER_ROUND s per kind (load $(loadavg))"
"$TARGET/release/redis-connections" "redis://127.0.0.1:$REDIS_PORT/0" "$CLIENTS" "$SECONDS_PER_ROUND" "$ROUNDS"
log "load at the end $(loadavg)"
