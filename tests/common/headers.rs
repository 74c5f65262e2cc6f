//! Response header lines, as received over TCP or from Rocket's local client.

use std::collections::BTreeMap;

use rocket_digest_auth::protocol::{grammar, AuthenticationInfo, ClientChallenge};

/// The `name=value` and `name="quoted"` pairs of a header value (after a
/// leading `Digest `), names lower-cased, through the crate's own grammar;
/// each must be valid.
pub fn params(value: &str) -> BTreeMap<String, String> {
    let list = grammar::digest_params(value).unwrap_or(value);
    grammar::params(list)
        .map(|p| {
            let (name, v) = p.unwrap_or_else(|e| panic!("{value}: {e}"));
            (name.to_ascii_lowercase(), v.into_owned())
        })
        .collect()
}

/// Header lines in the order received, names as sent; look-ups ignore the
/// case of the name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Headers(pub Vec<(String, String)>);

impl Headers {
    /// Every value of `name`, in order.
    pub fn all(&self, name: &str) -> Vec<&str> {
        self.0
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// The first value of `name`.
    pub fn first(&self, name: &str) -> Option<&str> {
        self.all(name).first().copied()
    }

    /// The value of `name`, which must not be sent more than once.
    pub fn one(&self, name: &str) -> Option<&str> {
        let all = self.all(name);
        assert!(all.len() <= 1, "{name} sent {} times", all.len());
        all.first().copied()
    }

    /// Sorted lower-case names, repeated as often as sent.
    pub fn names(&self) -> Vec<String> {
        let mut names: Vec<String> = self.0.iter().map(|(n, _)| n.to_ascii_lowercase()).collect();
        names.sort();
        names
    }

    /// The `WWW-Authenticate` challenges, in order; each must be a valid
    /// Digest challenge.
    pub fn challenges(&self) -> Vec<ClientChallenge> {
        self.all("WWW-Authenticate")
            .into_iter()
            .map(|v| {
                ClientChallenge::parse(v)
                    .unwrap_or_else(|e| panic!("challenge {v:?}: {e:?}"))
                    .unwrap_or_else(|| panic!("not a Digest challenge: {v:?}"))
            })
            .collect()
    }

    /// The first challenge (SHA-256 with the default configuration).
    pub fn challenge(&self) -> ClientChallenge {
        self.challenges()
            .into_iter()
            .next()
            .unwrap_or_else(|| panic!("no WWW-Authenticate in {self:?}"))
    }

    /// The `stale` flag of the challenges, `None` when there is none; the
    /// challenges of one response must agree on it.
    pub fn stale(&self) -> Option<bool> {
        let challenges = self.challenges();
        let stale = challenges.first()?.stale;
        assert!(
            challenges.iter().all(|c| c.stale == stale),
            "challenges disagree on stale: {self:?}"
        );
        Some(stale)
    }

    /// The `stale` flag of the challenges, which must be there.
    pub fn is_stale(&self) -> bool {
        self.stale()
            .unwrap_or_else(|| panic!("no WWW-Authenticate in {self:?}"))
    }

    /// The `Authentication-Info` header, parsed; it must be sent at most once
    /// and be valid.
    pub fn authentication_info(&self) -> Option<AuthenticationInfo> {
        self.one("Authentication-Info").map(|v| {
            AuthenticationInfo::parse(v)
                .unwrap_or_else(|e| panic!("Authentication-Info {v:?}: {e:?}"))
        })
    }
}
