//! Nonce counts in Redis (or Valkey, or a Redis Cluster), shared by every
//! instance of a fleet: `counts = "redis"` (feature `redis`).
//!
//! A claim is one round trip: `claim.lua` runs the engine's rule
//! ([`counts`](super::counts)) atomically inside Redis, sent as `EVALSHA`
//! (its full text only when the server does not know it yet). Each nonce's
//! counts are a sorted set of `nc:cnonce` scored by `nc`; entries below the
//! window go once the nonce holds two windows' worth (as in the engine), and
//! never more than [`max_entries_per_nonce`] are kept; the key expires with the nonce
//! plus [`MAX_CLOCK_SKEW_SECS`], as in every store. Redis's own clock (`TIME`) decides both
//! when the key goes and when a claim on the nonce is refused as expired, so
//! no claim ever lands on counts already deleted: that is this store's
//! "deleted through" rule, and [`remove_expired`](NonceCountStore::remove_expired)
//! has nothing to do.
//!
//! Losing Redis's data (`FLUSHALL`, a restart without persistence, a new
//! server) must not reopen a replay: see [`generation`] for how every nonce
//! carries the generation of the data that judges it.
//!
//! Replication is asynchronous: a replica promoted before it received a
//! count would accept that count again. With [`RedisOptions::replicas`] set,
//! the claim goes with `WAIT replicas replica_timeout` in one pipeline on one
//! connection (`WAIT` cannot run in a script), and an accepted claim fewer
//! replicas acknowledged is an error (503), not [`Claim::Accepted`].
//!
//! Every key of one store shares the hash tag `{key_prefix}`, so a cluster
//! keeps them in one slot: the claim script touches the generation and a
//! nonce's counts together, and the two must live and die together on one
//! node. A cluster brings failover, not sharding, to the counts.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use redis::aio::ConnectionManager;
use redis::cluster_async::ClusterConnection;
use redis::{FromRedisValue, RedisResult};
use rocket::figment::Figment;
use serde::Deserialize;

use super::counts::max_entries_per_nonce;
use super::{Claim, ClaimRequest, NonceCountStore, StoreError};
use crate::protocol::{NonceKey, MAX_CLOCK_SKEW_SECS};

mod failures;
pub mod generation;

use generation::Generation;

/// The claim script (see the module docs).
const CLAIM: &str = include_str!("claim.lua");

/// How many connections carry the claims followed by `WAIT`.
const WAITING_CONNECTIONS: usize = 8;

/// The Redis database of `[databases.digest_auth_counts]`.
pub const DATABASE_NAME: &str = "digest_auth_counts";

/// How to reach Redis and name the keys.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default)]
#[non_exhaustive]
pub struct RedisOptions {
    /// `key_prefix`: every key is `{key_prefix}:...`. Default `"digest_auth"`;
    /// stores sharing a prefix share their counts and generation.
    pub key_prefix: String,
    /// `cluster`: `url` is one node of a Redis Cluster. Default false.
    pub cluster: bool,
    /// `connect_timeout`: seconds to wait for a connection. Default 5.
    pub connect_timeout: u64,
    /// `replicas`: a claim is answered Accepted only once this many replicas
    /// have it (`WAIT`, pipelined with the claim), so a failover to one of
    /// them cannot accept it again; fewer within `replica_timeout` fails the
    /// claim (503). Default 0: no `WAIT`.
    pub replicas: u32,
    /// `replica_timeout`: milliseconds `WAIT` waits for the replicas, at
    /// least 1 (`WAIT` with 0 waits forever). Default 1000; the request's
    /// `store_timeout` bounds it too.
    pub replica_timeout: u64,
}

impl Default for RedisOptions {
    fn default() -> RedisOptions {
        RedisOptions {
            key_prefix: "digest_auth".into(),
            cluster: false,
            connect_timeout: 5,
            replicas: 0,
            replica_timeout: 1000,
        }
    }
}

impl RedisOptions {
    /// Sets `key_prefix`.
    #[must_use]
    pub fn with_key_prefix(mut self, prefix: impl Into<String>) -> RedisOptions {
        self.key_prefix = prefix.into();
        self
    }

    /// Sets `cluster`.
    #[must_use]
    pub fn with_cluster(mut self, cluster: bool) -> RedisOptions {
        self.cluster = cluster;
        self
    }

    /// Sets `replicas` and `replica_timeout` (milliseconds).
    #[must_use]
    pub fn with_replicas(mut self, replicas: u32, timeout_ms: u64) -> RedisOptions {
        self.replicas = replicas;
        self.replica_timeout = timeout_ms;
        self
    }

    /// The mistake in these options, naming the key under `table`.
    fn invalid(&self, table: &str) -> Option<String> {
        (self.replicas > 0 && self.replica_timeout == 0).then(|| {
            format!(
                "`{table}.replica_timeout` must be at least 1 (milliseconds) when \
                 `{table}.replicas` is set: `WAIT` with 0 waits forever"
            )
        })
    }
}

/// One multiplexed connection (requests of every task share it, pipelined),
/// reconnected in the background after a failure.
#[derive(Clone)]
enum Connection {
    Single(ConnectionManager),
    Cluster(ClusterConnection),
}

impl Connection {
    /// A connection to `url` as `options` say.
    async fn open(url: &str, options: &RedisOptions) -> Result<Connection, StoreError> {
        let timeout = Duration::from_secs(options.connect_timeout.max(1));
        Ok(if options.cluster {
            let client = redis::cluster::ClusterClientBuilder::new(vec![url])
                .connection_timeout(timeout)
                .build()
                .map_err(|e| url_error(&e))?;
            Connection::Cluster(
                client
                    .get_async_connection()
                    .await
                    .map_err(StoreError::new)?,
            )
        } else {
            let client = redis::Client::open(url).map_err(|e| url_error(&e))?;
            let manager = ConnectionManager::new_with_backoff_and_timeouts(
                client,
                2,
                100,
                6,
                Duration::MAX,
                timeout,
            )
            .await
            .map_err(StoreError::new)?;
            Connection::Single(manager)
        })
    }

    /// Sends `cmd`, once more on a new connection when the one it went on
    /// turned out dead (the server restarted, a failover): the first request
    /// after an outage need not fail. Sending a claim twice is safe: if the
    /// first one ran, the second is refused, never the other way round.
    async fn query<T: FromRedisValue>(&self, cmd: &redis::Cmd) -> RedisResult<T> {
        let mut pipeline = redis::pipe();
        let (answer,): (T,) = self
            .query_pipeline(pipeline.add_command(cmd.clone()))
            .await?;
        Ok(answer)
    }

    /// Sends `pipeline`'s commands together on one connection, retried as
    /// [`query`](Self::query) is.
    async fn query_pipeline<T: FromRedisValue>(
        &self,
        pipeline: &redis::Pipeline,
    ) -> RedisResult<T> {
        match self.query_once(pipeline).await {
            Err(e) if e.is_unrecoverable_error() => self.query_once(pipeline).await,
            other => other,
        }
    }

    async fn query_once<T: FromRedisValue>(&self, pipeline: &redis::Pipeline) -> RedisResult<T> {
        match self {
            Connection::Single(c) => pipeline.query_async(&mut c.clone()).await,
            Connection::Cluster(c) => pipeline.query_async(&mut c.clone()).await,
        }
    }
}

/// Nonce counts in Redis. See the [module docs](self).
pub struct RedisStore {
    connection: Connection,
    generation_key: String,
    counts_prefix: String,
    claim_sha: String,
    generation: Generation,
    failure_keys: failures::FailureKeys,
    /// `WAIT replicas replica_timeout` after each claim; `None` for 0 replicas.
    wait: Option<(u32, u64)>,
    /// The connections of claims followed by `WAIT` (none for 0 replicas).
    waiting: Vec<Connection>,
    /// Which of `waiting` the next such claim goes on.
    next_waiting: AtomicUsize,
}

impl std::fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisStore")
            .field("generation_key", &self.generation_key)
            .finish_non_exhaustive()
    }
}

/// Why a `maxmemory-policy` is refused: it may evict the counts.
fn evicting(policy: &str) -> bool {
    policy != "noeviction"
}

impl RedisStore {
    /// Connects to `url` (`redis://host:port/db`, `rediss://` for TLS),
    /// refuses a server whose `maxmemory-policy` may evict keys, and learns
    /// the current generation.
    pub async fn connect(url: &str, options: RedisOptions) -> Result<RedisStore, StoreError> {
        if let Some(mistake) = options.invalid(&format!("databases.{DATABASE_NAME}")) {
            return Err(StoreError::new(mistake));
        }
        let connection = Connection::open(url, &options).await?;
        // `WAIT` holds its connection until the replicas answer: claims that
        // wait take turns over several connections, so their waits overlap.
        let mut waiting = Vec::new();
        if options.replicas > 0 {
            for _ in 0..WAITING_CONNECTIONS {
                waiting.push(Connection::open(url, &options).await?);
            }
        }
        check_eviction_policy(&connection).await?;
        let tag = format!("{{{}}}", options.key_prefix);
        let store = RedisStore {
            connection,
            generation_key: format!("{tag}:generation"),
            counts_prefix: format!("{tag}:n:"),
            claim_sha: redis::Script::new(CLAIM).get_hash().to_owned(),
            generation: Generation::default(),
            failure_keys: failures::FailureKeys::new(&tag),
            wait: (options.replicas > 0).then_some((options.replicas, options.replica_timeout)),
            waiting,
            next_waiting: AtomicUsize::new(0),
        };
        store.learn_generation().await?;
        Ok(store)
    }

    /// The store `[databases.digest_auth_counts]` configures (the fairing's).
    pub(crate) async fn from_figment(figment: &Figment) -> Result<RedisStore, crate::Error> {
        let key = format!("databases.{DATABASE_NAME}");
        let table = figment.focus(&key);
        // Extracted without `serde(flatten)`, which would lose the path of
        // the key in error.
        let naming_the_key = |e: rocket::figment::Error| {
            let path: String = e.path.iter().map(|p| format!(".{p}")).collect();
            StoreError::new(format!("`{key}{path}`: {}", e.kind))
        };
        let url = match table.extract_inner::<String>("url") {
            Ok(url) => Some(url),
            Err(e) if matches!(e.kind, rocket::figment::error::Kind::MissingField(_)) => None,
            Err(e) => return Err(naming_the_key(e).into()),
        };
        let options: RedisOptions = table.extract().map_err(naming_the_key)?;
        let Some(url) = url else {
            return Err(StoreError::new(format!(
                "`{key}.url` is missing: `digest_auth.counts = \"redis\"` needs the Redis URL, \
                 e.g. redis://127.0.0.1:6379/0"
            ))
            .into());
        };
        Ok(RedisStore::connect(&url, options).await?)
    }

    /// The generation now: read, or created when missing.
    async fn learn_generation(&self) -> Result<(), StoreError> {
        let current: String = self
            .connection
            .query(
                redis::cmd("EVAL")
                    .arg(generation::GET_OR_CREATE)
                    .arg(1)
                    .arg(&self.generation_key)
                    .arg(Generation::fresh()),
            )
            .await
            .map_err(StoreError::new)?;
        self.generation.learn(&current)
    }

    /// `EVALSHA` of `script` (whose SHA1 is `sha`), its text only when the
    /// server lacks it (a restarted or new server, another cluster node).
    async fn eval<T: FromRedisValue>(
        &self,
        script: (&str, &str),
        keys: &[&str],
        args: &[&[u8]],
    ) -> Result<T, StoreError> {
        let (answer, _) = self.eval_and_wait(script, keys, args, None).await?;
        Ok(answer)
    }

    /// [`eval`](Self::eval), followed on the same connection, in the same
    /// round trip, by `WAIT replicas timeout_ms` when `wait` is given (`WAIT`
    /// cannot run inside a script): the answer, and how many replicas
    /// acknowledged every write this connection made up to the script's.
    async fn eval_and_wait<T: FromRedisValue>(
        &self,
        (script, sha): (&str, &str),
        keys: &[&str],
        args: &[&[u8]],
        wait: Option<(u32, u64)>,
    ) -> Result<(T, Option<u32>), StoreError> {
        let call = |command: &str, script: &str| {
            let mut pipeline = redis::pipe();
            let cmd = pipeline.cmd(command).arg(script).arg(keys.len()).arg(keys);
            for arg in args {
                cmd.arg(*arg);
            }
            if let Some((replicas, timeout_ms)) = wait {
                pipeline.cmd("WAIT").arg(replicas).arg(timeout_ms);
            }
            pipeline
        };
        let connection = match wait {
            Some(_) if !self.waiting.is_empty() => {
                let next = self.next_waiting.fetch_add(1, Ordering::Relaxed);
                &self.waiting[next % self.waiting.len()]
            }
            _ => &self.connection,
        };
        let answer: RedisResult<Vec<redis::Value>> =
            match connection.query_pipeline(&call("EVALSHA", sha)).await {
                Err(e) if e.kind() == redis::ErrorKind::NoScriptError => {
                    connection.query_pipeline(&call("EVAL", script)).await
                }
                other => other,
            };
        let answer = answer.map_err(StoreError::new)?;
        let value = |i: usize| -> Result<&redis::Value, StoreError> {
            answer
                .get(i)
                .ok_or_else(|| StoreError::new("Redis answered fewer replies than commands"))
        };
        let result = T::from_redis_value(value(0)?).map_err(StoreError::new)?;
        let acknowledged = match wait {
            Some(_) => Some(u32::from_redis_value(value(1)?).map_err(StoreError::new)?),
            None => None,
        };
        Ok((result, acknowledged))
    }
}

fn url_error(e: &redis::RedisError) -> StoreError {
    StoreError::new(format!("`databases.{DATABASE_NAME}.url`: {e}"))
}

/// Refuses a server that may evict keys: an evicted nonce's counts would
/// accept its replays. Managed servers often forbid `CONFIG`: then only a
/// warning says what to check.
async fn check_eviction_policy(connection: &Connection) -> Result<(), StoreError> {
    let answer: RedisResult<Vec<String>> = connection
        .query(redis::cmd("CONFIG").arg("GET").arg("maxmemory-policy"))
        .await;
    match answer.as_deref() {
        Ok([_, policy]) if evicting(policy) => Err(StoreError::new(format!(
            "the Redis server's `maxmemory-policy` is `{policy}`: it may evict nonce counts \
             and let their replays through; set `maxmemory-policy noeviction` (a full \
             server then answers 503)"
        ))),
        Ok([_, _]) => Ok(()),
        Ok(_) | Err(_) => {
            rocket::warn!(
                "digest_auth: cannot read the Redis server's `maxmemory-policy` (CONFIG GET \
                 refused?): make sure it is `noeviction`, or evicted nonce counts let their \
                 replays through"
            );
            Ok(())
        }
    }
}

#[rocket::async_trait]
impl NonceCountStore for RedisStore {
    async fn claim(&self, request: ClaimRequest<'_>) -> Result<Claim, StoreError> {
        let key = format!("{}{}", self.counts_prefix, request.nonce);
        // A string not minted by this crate carries no generation: only the
        // rule applies (the verifier passes only nonces it minted).
        let minted_in = NonceKey::epoch_of(request.nonce)
            .map(Generation::hex)
            .unwrap_or_default();
        let member = format!("{}:{}", request.nc, request.cnonce);
        let (nc, window) = (request.nc.to_string(), request.window.to_string());
        let bound = max_entries_per_nonce(request.window).to_string();
        let (expires_at, margin) = (
            request.expires_at.to_string(),
            MAX_CLOCK_SKEW_SECS.to_string(),
        );
        let fresh = Generation::fresh();
        let args: [&[u8]; 8] = [
            minted_in.as_bytes(),
            fresh.as_bytes(),
            member.as_bytes(),
            nc.as_bytes(),
            window.as_bytes(),
            bound.as_bytes(),
            expires_at.as_bytes(),
            margin.as_bytes(),
        ];
        let ((code, current), acknowledged): ((i64, String), _) = self
            .eval_and_wait(
                (CLAIM, &self.claim_sha),
                &[&self.generation_key, &key],
                &args,
                self.wait,
            )
            .await?;
        self.generation.learn(&current)?;
        match code {
            1 => {
                // A count only the master holds would be accepted again by
                // a replica promoted in its place: not Accepted until the
                // replicas have it. It stays spent on the master.
                if let (Some((wanted, timeout_ms)), Some(got)) = (self.wait, acknowledged) {
                    if got < wanted {
                        return Err(StoreError::new(format!(
                            "the claim reached {got} of the {wanted} replicas asked \
                             (`databases.{DATABASE_NAME}.replicas`) within {timeout_ms} ms"
                        )));
                    }
                }
                Ok(Claim::Accepted)
            }
            0 | 2 => Ok(Claim::Replayed),
            other => Err(StoreError::new(format!("claim script answered {other}"))),
        }
    }

    async fn remove_expired(&self, _now: i64) -> Result<u64, StoreError> {
        // Keys expire on their own, by the clock that also refuses claims.
        Ok(0)
    }

    fn nonce_generation(&self) -> Option<[u8; 4]> {
        Some(self.generation.current())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_noeviction_is_accepted() {
        assert!(!evicting("noeviction"));
        for policy in [
            "allkeys-lru",
            "volatile-lru",
            "allkeys-random",
            "volatile-ttl",
        ] {
            assert!(evicting(policy), "{policy}");
        }
    }

    #[rocket::async_test]
    async fn a_missing_url_names_the_full_key() {
        let figment = Figment::new().merge(("databases.digest_auth_counts.key_prefix", "x"));
        let message = RedisStore::from_figment(&figment)
            .await
            .unwrap_err()
            .to_string();
        assert!(
            message.contains("`databases.digest_auth_counts.url` is missing"),
            "{message}"
        );
        let figment = Figment::new().merge(("databases.digest_auth_counts.url", "nope://x"));
        let message = RedisStore::from_figment(&figment)
            .await
            .unwrap_err()
            .to_string();
        assert!(
            message.contains("`databases.digest_auth_counts.url`"),
            "{message}"
        );
    }

    #[rocket::async_test]
    async fn a_bad_replicas_setting_names_the_full_key() {
        let table = |key: &str, value: i64| {
            Figment::new()
                .merge(("databases.digest_auth_counts.url", "redis://127.0.0.1:1/0"))
                .merge(("databases.digest_auth_counts.replicas", 1))
                .merge((format!("databases.digest_auth_counts.{key}"), value))
        };
        for (figment, named) in [
            (table("replica_timeout", 0), "replica_timeout"),
            (table("replicas", -1), "replicas"),
        ] {
            let message = RedisStore::from_figment(&figment)
                .await
                .unwrap_err()
                .to_string();
            assert!(
                message.contains(&format!("databases.digest_auth_counts.{named}")),
                "{message}"
            );
        }
    }
}
