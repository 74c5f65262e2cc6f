//! The generation of the counts: a random id kept in Redis
//! (`{key_prefix}:generation`) and signed into every nonce an instance
//! mints (the nonce's epoch field, see [`NonceKey`](crate::protocol::NonceKey)).
//!
//! The generation key has no expiry and lives in the same slot as the
//! counts, so it is lost exactly when they may be: `FLUSHALL`, a server that
//! restarts empty, a new server behind the same address. The claim script
//! then finds it missing, creates a new one at once, and refuses every nonce
//! of the old one (the client gets `stale=true` and retries with a nonce of
//! the new generation, without asking its user again). A replay of a
//! request made before the loss is such a nonce: refused.
//!
//! Each instance caches the current generation: read (or created) at
//! connect, and replaced by the one the claim script reports with every
//! answer, so the instance that refuses an old nonce mints its `stale=true`
//! nonce in the new generation. An instance that has had no claim since the
//! loss mints old-generation nonces in its plain 401s until its first claim;
//! each costs its client one `stale=true`.

use std::sync::atomic::{AtomicU32, Ordering};

use crate::store::StoreError;

/// Reads the generation, creating it when missing (KEYS[1]: the key,
/// ARGV[1]: a fresh generation).
pub(super) const GET_OR_CREATE: &str = "\
local g = redis.call('GET', KEYS[1])
if not g then
  g = ARGV[1]
  redis.call('SET', KEYS[1], g)
end
return g";

/// The cached current generation; 0 until first learnt.
#[derive(Debug, Default)]
pub(super) struct Generation(AtomicU32);

impl Generation {
    /// A new random generation, never 0 (the epoch of nonces that have none).
    pub(super) fn fresh() -> String {
        let id = loop {
            let id: u32 = rand::random();
            if id != 0 {
                break id;
            }
        };
        Generation::hex(id.to_be_bytes())
    }

    /// How a generation is written in Redis: 8 hex digits.
    pub(super) fn hex(id: [u8; 4]) -> String {
        hex::encode(id)
    }

    /// Takes `current` (as Redis holds it) as the generation now.
    pub(super) fn learn(&self, current: &str) -> Result<(), StoreError> {
        let mut id = [0u8; 4];
        hex::decode_to_slice(current, &mut id).map_err(|_| {
            StoreError::new(format!(
                "the Redis generation key holds {current:?}, not 8 hex digits"
            ))
        })?;
        self.0.store(u32::from_be_bytes(id), Ordering::Relaxed);
        Ok(())
    }

    /// The generation to sign into nonces minted now.
    pub(super) fn current(&self) -> [u8; 4] {
        self.0.load(Ordering::Relaxed).to_be_bytes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fresh_generations_are_learnt_as_written() {
        let generation = Generation::default();
        let fresh = Generation::fresh();
        generation.learn(&fresh).unwrap();
        assert_eq!(Generation::hex(generation.current()), fresh);
        assert_ne!(generation.current(), [0; 4]);
    }

    #[test]
    fn a_foreign_value_is_an_error() {
        let generation = Generation::default();
        assert!(generation.learn("not hex").is_err());
        assert!(generation.learn("0102").is_err());
    }
}
