//! Stateless server nonces: a timestamp plus randomness, authenticated with
//! HMAC-SHA-256 over the realm and the rest, so that any instance holding the
//! same secret can verify a nonce another minted, and nobody without it can
//! forge one or move its timestamp.
//!
//! ```
//! use rocket_digest_auth::protocol::{NonceKey, NonceStatus};
//!
//! let key = NonceKey::new(b"a shared secret of enough length!", "example", None);
//! let nonce = key.mint(1_000);
//! assert!(matches!(key.check(&nonce, 1_010, 300), NonceStatus::Fresh { issued_at: 1_000 }));
//! assert!(matches!(key.check(&nonce, 1_400, 300), NonceStatus::Stale));
//! assert!(matches!(key.check("forged", 1_010, 300), NonceStatus::Invalid));
//! ```

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::Sha256;

/// The MAC is keyed with a key derived from the secret and the realm, so a
/// check hashes only the payload: two SHA-256 blocks. Version 1 nonces
/// (the realm hashed in front of every payload) are answered as stale.
const VERSION: u8 = 2;
const VERSION_1: u8 = 1;
const DOMAIN: &[u8] = b"rocket_digest_auth/nonce/v1";
const TS_LEN: usize = 8;
const EPOCH_LEN: usize = 4;
const RANDOM_LEN: usize = 12;
const MAC_LEN: usize = 16;
const PAYLOAD_LEN: usize = 1 + TS_LEN + EPOCH_LEN + RANDOM_LEN;
const RAW_LEN: usize = PAYLOAD_LEN + MAC_LEN;

/// How far in the future a nonce's timestamp may be (clock skew between
/// instances) before it is treated as forged.
pub const MAX_CLOCK_SKEW_SECS: i64 = 60;

/// What a nonce turned out to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NonceStatus {
    /// Minted by a holder of the secret and still within its lifetime.
    Fresh {
        /// Unix time it was minted.
        issued_at: i64,
    },
    /// Authentic but expired, or minted by an earlier process when nonces
    /// are bound to the process, or in the format of an earlier version of
    /// this crate: the client should retry with a new one.
    Stale,
    /// Not minted with this secret and realm, altered, or from the future.
    Invalid,
}

/// The key that mints and checks nonces.
#[derive(Clone)]
pub struct NonceKey {
    mac: Hmac<Sha256>,
    epoch: Option<[u8; EPOCH_LEN]>,
}

impl std::fmt::Debug for NonceKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NonceKey")
            .field("bound_to_process", &self.epoch.is_some())
            .finish_non_exhaustive()
    }
}

impl NonceKey {
    /// A key for `realm` from `secret`. With `process_epoch`, nonces carry it
    /// and nonces without it are [`NonceStatus::Stale`]: for stores whose
    /// replay records die with the process.
    pub fn new(secret: &[u8], realm: &str, process_epoch: Option<[u8; 4]>) -> NonceKey {
        let mut derive = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes any key length");
        derive.update(DOMAIN);
        derive.update(&(realm.len() as u64).to_be_bytes());
        derive.update(realm.as_bytes());
        let key = derive.finalize().into_bytes();
        // The key's inner and outer pad blocks are hashed here, once.
        let mac = Hmac::<Sha256>::new_from_slice(&key).expect("HMAC takes any key length");
        NonceKey {
            mac,
            epoch: process_epoch,
        }
    }

    /// Mints a nonce at unix time `now`.
    pub fn mint(&self, now: i64) -> String {
        self.mint_in(now, self.epoch.unwrap_or_default())
    }

    /// Mints a nonce at unix time `now` carrying `epoch` (a store's
    /// generation, which the store checks; this key does not).
    pub fn mint_in(&self, now: i64, epoch: [u8; EPOCH_LEN]) -> String {
        let mut raw = [0u8; RAW_LEN];
        raw[0] = VERSION;
        raw[1..1 + TS_LEN].copy_from_slice(&now.to_be_bytes());
        raw[1 + TS_LEN..1 + TS_LEN + EPOCH_LEN].copy_from_slice(&epoch);
        rand::thread_rng().fill_bytes(&mut raw[1 + TS_LEN + EPOCH_LEN..PAYLOAD_LEN]);
        let tag = self.tag(&raw[..PAYLOAD_LEN]);
        raw[PAYLOAD_LEN..].copy_from_slice(&tag[..MAC_LEN]);
        URL_SAFE_NO_PAD.encode(raw)
    }

    /// Checks a nonce a client sent back at unix time `now`.
    pub fn check(&self, nonce: &str, now: i64, lifetime_secs: i64) -> NonceStatus {
        // Length first: never decode unbounded client input.
        if nonce.len() != URL_SAFE_NO_PAD_LEN {
            return NonceStatus::Invalid;
        }
        let mut raw = [0u8; RAW_LEN];
        match URL_SAFE_NO_PAD.decode_slice(nonce, &mut raw) {
            Ok(RAW_LEN) => {}
            _ => return NonceStatus::Invalid,
        }
        if raw[0] == VERSION_1 {
            // Minted before an upgrade: the client retries on a fresh nonce
            // without asking the user (stale is only sent once the digest
            // checked out).
            return NonceStatus::Stale;
        }
        let mut mac = self.mac.clone();
        mac.update(&raw[..PAYLOAD_LEN]);
        if raw[0] != VERSION || mac.verify_truncated_left(&raw[PAYLOAD_LEN..]).is_err() {
            return NonceStatus::Invalid;
        }
        let issued_at = i64::from_be_bytes(raw[1..1 + TS_LEN].try_into().expect("8 bytes"));
        if issued_at > now.saturating_add(MAX_CLOCK_SKEW_SECS) {
            return NonceStatus::Invalid;
        }
        let epoch = &raw[1 + TS_LEN..1 + TS_LEN + EPOCH_LEN];
        if self.epoch.is_some_and(|e| e != epoch) || now >= issued_at.saturating_add(lifetime_secs)
        {
            return NonceStatus::Stale;
        }
        NonceStatus::Fresh { issued_at }
    }

    /// The epoch a nonce carries, read without checking it: `None` for a
    /// string that is not a nonce of this format. For a store judging a
    /// nonce [`check`](Self::check) already accepted.
    pub fn epoch_of(nonce: &str) -> Option<[u8; EPOCH_LEN]> {
        if nonce.len() != URL_SAFE_NO_PAD_LEN {
            return None;
        }
        let mut raw = [0u8; RAW_LEN];
        match URL_SAFE_NO_PAD.decode_slice(nonce, &mut raw) {
            Ok(RAW_LEN) if raw[0] == VERSION => {
                raw[1 + TS_LEN..1 + TS_LEN + EPOCH_LEN].try_into().ok()
            }
            _ => None,
        }
    }

    fn tag(&self, payload: &[u8]) -> [u8; 32] {
        let mut mac = self.mac.clone();
        mac.update(payload);
        mac.finalize().into_bytes().into()
    }
}

const URL_SAFE_NO_PAD_LEN: usize = (RAW_LEN * 4).div_ceil(3);

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> NonceKey {
        NonceKey::new(b"0123456789abcdef0123456789abcdef", "realm", None)
    }

    #[test]
    fn fresh_then_stale_at_the_lifetime() {
        let k = key();
        let n = k.mint(100);
        assert_eq!(n.len(), URL_SAFE_NO_PAD_LEN);
        assert_eq!(k.check(&n, 100, 10), NonceStatus::Fresh { issued_at: 100 });
        assert_eq!(k.check(&n, 109, 10), NonceStatus::Fresh { issued_at: 100 });
        assert_eq!(k.check(&n, 110, 10), NonceStatus::Stale);
    }

    #[test]
    fn nonces_are_unique() {
        let k = key();
        assert_ne!(k.mint(1), k.mint(1));
    }

    #[test]
    fn any_altered_byte_is_invalid() {
        let k = key();
        let n = k.mint(100);
        let raw = URL_SAFE_NO_PAD.decode(&n).unwrap();
        for i in 0..raw.len() {
            let mut r = raw.clone();
            r[i] ^= 1;
            assert_eq!(
                k.check(&URL_SAFE_NO_PAD.encode(&r), 100, 10),
                NonceStatus::Invalid,
                "byte {i}"
            );
        }
    }

    #[test]
    fn nonces_of_the_earlier_format_are_stale() {
        let k = key();
        let mut raw = URL_SAFE_NO_PAD.decode(k.mint(100)).unwrap();
        raw[0] = VERSION_1;
        assert_eq!(
            k.check(&URL_SAFE_NO_PAD.encode(&raw), 100, 10),
            NonceStatus::Stale
        );
    }

    #[test]
    fn other_secret_or_realm_is_invalid() {
        let n = key().mint(100);
        let other_secret = NonceKey::new(b"another secret", "realm", None);
        let other_realm = NonceKey::new(b"0123456789abcdef0123456789abcdef", "realm2", None);
        assert_eq!(other_secret.check(&n, 100, 10), NonceStatus::Invalid);
        assert_eq!(other_realm.check(&n, 100, 10), NonceStatus::Invalid);
    }

    #[test]
    fn future_timestamps_are_invalid() {
        let k = key();
        let n = k.mint(1000);
        assert_eq!(
            k.check(&n, 1000 - MAX_CLOCK_SKEW_SECS - 1, 10),
            NonceStatus::Invalid
        );
        assert!(matches!(
            k.check(&n, 1000 - MAX_CLOCK_SKEW_SECS, 10),
            NonceStatus::Fresh { .. }
        ));
    }

    #[test]
    fn process_bound_nonces_from_another_process_are_stale() {
        let secret = b"0123456789abcdef0123456789abcdef";
        let before = NonceKey::new(secret, "realm", Some([1, 2, 3, 4]));
        let after = NonceKey::new(secret, "realm", Some([5, 6, 7, 8]));
        let n = before.mint(100);
        assert!(matches!(
            before.check(&n, 101, 10),
            NonceStatus::Fresh { .. }
        ));
        assert_eq!(after.check(&n, 101, 10), NonceStatus::Stale);
    }

    #[test]
    fn a_generation_is_carried_not_checked() {
        let k = key();
        let n = k.mint_in(100, [9, 8, 7, 6]);
        assert_eq!(NonceKey::epoch_of(&n), Some([9, 8, 7, 6]));
        assert_eq!(k.check(&n, 101, 10), NonceStatus::Fresh { issued_at: 100 });
        assert_eq!(NonceKey::epoch_of(&k.mint(100)), Some([0; 4]));
        assert_eq!(NonceKey::epoch_of("not a nonce"), None);
    }
}
