//! HA1 values of token credentials, kept per user with the hash state after
//! them, so that a request hashes neither `username:realm:token` nor HA1
//! again. An entry is used only while the store
//! still returns the same token for the user: a rotated token misses and is
//! hashed anew, a revoked user is never looked up.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::protocol::digest::HashedHa1;
use crate::protocol::{digest, Algorithm, HashFunction, HexDigest};
use crate::store::{Credential, Secret};

/// Users kept at most; past it the cache starts over (a miss costs one hash).
const CAPACITY: usize = 10_000;

struct Entry {
    token: Arc<str>,
    /// Per hash function, in the order of [`HashFunction::ALL`].
    ha1: [Option<HashedHa1>; 3],
}

/// The cache; keyed with a random seed, since clients choose the usernames.
pub(crate) struct Ha1Cache {
    realm: String,
    users: Mutex<HashMap<Arc<str>, Entry, ahash::RandomState>>,
}

fn slot(h: HashFunction) -> usize {
    match h {
        HashFunction::Md5 => 0,
        HashFunction::Sha256 => 1,
        HashFunction::Sha512_256 => 2,
    }
}

impl Ha1Cache {
    pub(crate) fn new(realm: &str) -> Ha1Cache {
        Ha1Cache {
            realm: realm.to_owned(),
            users: Mutex::new(HashMap::with_hasher(ahash::RandomState::new())),
        }
    }

    /// HA1 of `credential` for `alg` (before any `-sess` step), or `None`
    /// when the credential cannot serve that algorithm.
    pub(crate) fn ha1(&self, credential: &Credential, alg: Algorithm) -> Option<HashedHa1> {
        let h = alg.hash_function();
        let token = match &credential.secret {
            Secret::Token(token) => token,
            ha1s @ Secret::Ha1 { .. } => {
                return ha1s
                    .stored_ha1(h)
                    .and_then(HexDigest::from_hex)
                    .map(|hex| HashedHa1::new(h, hex))
            }
        };
        let mut users = self.users.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(entry) = users.get_mut(&*credential.username) {
            if entry.token == *token {
                if let Some(ha1) = &entry.ha1[slot(h)] {
                    return Some(ha1.clone());
                }
            } else {
                entry.token.clone_from(token);
                entry.ha1 = Default::default();
            }
            let ha1 = self.compute(credential, h, token);
            entry.ha1[slot(h)] = Some(ha1.clone());
            return Some(ha1);
        }
        if users.len() >= CAPACITY {
            users.clear();
        }
        let ha1 = self.compute(credential, h, token);
        let mut entry = Entry {
            token: token.clone(),
            ha1: Default::default(),
        };
        entry.ha1[slot(h)] = Some(ha1.clone());
        users.insert(credential.username.clone(), entry);
        Some(ha1)
    }

    fn compute(&self, credential: &Credential, h: HashFunction, token: &str) -> HashedHa1 {
        let hex = digest::ha1_digest(h, &credential.username, &self.realm, token);
        HashedHa1::new(h, hex)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token_credential(token: &str) -> Credential {
        Credential {
            username: "alice".into(),
            secret: Secret::Token(token.into()),
            created_at: None,
        }
    }

    #[test]
    fn a_rotated_token_is_hashed_anew() {
        let cache = Ha1Cache::new("r");
        for token in ["one", "two", "one"] {
            let c = token_credential(token);
            for alg in [Algorithm::Md5, Algorithm::Sha256, Algorithm::Sha256] {
                assert_eq!(
                    *cache.ha1(&c, alg).unwrap().hex(),
                    digest::ha1(alg, "alice", "r", token),
                    "{token} {alg}"
                );
            }
        }
    }

    #[test]
    fn stored_ha1_values_are_served_as_stored() {
        let cache = Ha1Cache::new("r");
        let c = Credential {
            username: "bob".into(),
            secret: Secret::Ha1 {
                md5: Some(digest::ha1(Algorithm::Md5, "bob", "r", "t").into()),
                sha256: None,
                sha512_256: None,
            },
            created_at: None,
        };
        assert_eq!(
            *cache.ha1(&c, Algorithm::Md5).unwrap().hex(),
            digest::ha1(Algorithm::Md5, "bob", "r", "t")
        );
        assert!(cache.ha1(&c, Algorithm::Sha256).is_none());
    }
}
