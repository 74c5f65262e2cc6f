//! The Redis store's [`FailureStore`]: `failures.lua`, one atomic script per
//! call, under the store's hash tag like the counts. Each pair's count is a
//! hash expiring with its window; locked pairs are also indexed by when they
//! became locked, so a poll reads only the new ones. Nothing is left for
//! [`remove_expired`](FailureStore::remove_expired): keys expire.

use redis::Value;

use super::RedisStore;
use crate::store::failures::{FailureCount, FailureKey, FailureStore, Locks};
use crate::store::StoreError;

/// The script (see its header).
const FAILURES: &str = include_str!("failures.lua");

/// The names of the failure keys of one store, and the script's SHA1.
#[derive(Debug, Clone)]
pub(super) struct FailureKeys {
    pair_prefix: String,
    lock_index: String,
    lock_ends: String,
    sha: String,
}

impl FailureKeys {
    /// The keys under hash tag `tag` (`{key_prefix}`).
    pub(super) fn new(tag: &str) -> FailureKeys {
        FailureKeys {
            pair_prefix: format!("{tag}:f:"),
            lock_index: format!("{tag}:locks"),
            lock_ends: format!("{tag}:lock_ends"),
            sha: redis::Script::new(FAILURES).get_hash().to_owned(),
        }
    }
}

fn int(value: &Value) -> Result<i64, StoreError> {
    redis::from_redis_value(value).map_err(StoreError::new)
}

fn count_of(answer: &[Value]) -> Result<FailureCount, StoreError> {
    match answer {
        [failures, left] => Ok(FailureCount::from_signed(int(failures)?, int(left)?)),
        _ => Err(StoreError::new("failures.lua answered no count")),
    }
}

impl RedisStore {
    /// Runs `failures.lua`'s `op` on `pair` (hex) with `args` after it.
    async fn failures_script(
        &self,
        op: &str,
        pair: &str,
        args: &[&[u8]],
    ) -> Result<Vec<Value>, StoreError> {
        let keys = &self.failure_keys;
        let pair_key = format!("{}{pair}", keys.pair_prefix);
        let mut all: Vec<&[u8]> = vec![op.as_bytes(), pair.as_bytes()];
        all.extend_from_slice(args);
        self.eval(
            (FAILURES, &keys.sha),
            &[&pair_key, &keys.lock_index, &keys.lock_ends],
            &all,
        )
        .await
    }
}

#[rocket::async_trait]
impl FailureStore for RedisStore {
    async fn record_failure(
        &self,
        key: FailureKey,
        window: u64,
        max_failures: u32,
    ) -> Result<FailureCount, StoreError> {
        let (window, max) = (window.to_string(), max_failures.to_string());
        let pair = hex::encode(key.as_bytes());
        let answer = self
            .failures_script("record", &pair, &[window.as_bytes(), max.as_bytes()])
            .await?;
        count_of(&answer)
    }

    async fn failures(&self, key: FailureKey) -> Result<FailureCount, StoreError> {
        let answer = self
            .failures_script("failures", &hex::encode(key.as_bytes()), &[])
            .await?;
        count_of(&answer)
    }

    async fn reset(&self, key: FailureKey, max_failures: u32) -> Result<(), StoreError> {
        let max = max_failures.to_string();
        self.failures_script(
            "reset",
            &hex::encode(key.as_bytes()),
            &[b"", max.as_bytes()],
        )
        .await
        .map(drop)
    }

    async fn locked_since(&self, since: i64) -> Result<Locks, StoreError> {
        // The pair's slot carries `since`; the pair key it names goes unused.
        let answer = self
            .failures_script("locked_since", &since.to_string(), &[])
            .await?;
        let Some((now, pairs)) = answer.split_first() else {
            return Err(StoreError::new("failures.lua answered no clock"));
        };
        let mut locked = Vec::with_capacity(pairs.len() / 2);
        for pair in pairs.chunks_exact(2) {
            let hex: String = redis::from_redis_value(&pair[0]).map_err(StoreError::new)?;
            let key = hex::decode(hex)
                .ok()
                .and_then(|bytes| FailureKey::from_bytes(&bytes));
            if let Some(key) = key {
                locked.push((key, u64::try_from(int(&pair[1])?).unwrap_or(0)));
            }
        }
        Ok(Locks {
            locked,
            now: int(now)?,
        })
    }

    async fn remove_expired(&self) -> Result<u64, StoreError> {
        Ok(0)
    }
}
