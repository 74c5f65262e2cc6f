//! The `[digest_auth]` configuration, read from Rocket's figment at ignite
//! (Rocket.toml `[default.digest_auth]`, or `ROCKET_DIGEST_AUTH`), with every
//! rule about its keys: [`Config::validate`] checks the keys on their own,
//! [`Config::validate_for`] what depends on the credential store in use.
//! The fairing runs each once at ignite.
//!
//! Code that builds a configuration starts from the defaults:
//!
//! ```
//! use rocket_digest_auth::{config::Qop, Config};
//!
//! let config = Config::default()
//!     .with_realm("api")
//!     .with_secret("a random string of at least 32 bytes")
//!     .with_qop([Qop::Auth, Qop::AuthInt]);
//! assert!(config.validate().is_ok());
//!
//! let err = Config::default().with_nonce_lifetime(0).validate().unwrap_err();
//! assert!(err.to_string().contains("digest_auth.nonce_lifetime"));
//! ```

use serde::{Deserialize, Serialize};

use crate::protocol::Algorithm;
use crate::store::{CredentialStore, DEFAULT_NC_WINDOW};

/// The `[digest_auth]` table. Every key has a default; the
/// [guide](crate::guide#configuration) has them in one table. Built in code with [`Config::default`] and the `with_*`
/// setters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct Config {
    /// `realm`: the protection space shown to users. Default `"rocket"`.
    pub realm: String,
    /// `algorithms`: offered in this order, one challenge each. Default
    /// `["SHA-256", "MD5"]`.
    pub algorithms: Vec<Algorithm>,
    /// `qop`: `"auth"` and/or `"auth-int"`. Default `["auth"]`.
    pub qop: Vec<Qop>,
    /// `allow_rfc2069`: accept requests without `qop` (RFC 2069). Default false.
    pub allow_rfc2069: bool,
    /// `nonce_lifetime`: seconds a nonce is accepted. Default 300.
    pub nonce_lifetime: u64,
    /// `nextnonce_within`: send `nextnonce` when the nonce has fewer seconds
    /// left than this; 0 disables. Default: a fifth of `nonce_lifetime`, at
    /// most 60 (see [`Config::nextnonce_within`]).
    pub nextnonce_within: Option<u64>,
    /// `secret`: signs nonces; at least 32 bytes. Default: random per launch.
    pub secret: Option<String>,
    /// `opaque`: echoed by clients and checked. Default: none.
    pub opaque: Option<String>,
    /// `userhash`: offer `userhash=true`. Default false.
    pub userhash: bool,
    /// `domain`: URIs of the protection space for the challenge. Default: none.
    pub domain: Vec<String>,
    /// `store`: `"database"` or `"memory"`. Default `"database"`.
    pub store: StoreKind,
    /// `counts`: where nonce counts live: `"store"` (beside the credentials,
    /// in the store `store` names) or `"redis"` (the Redis of
    /// `[databases.digest_auth_counts]`, feature `redis`, shared by a
    /// fleet). Default `"store"`.
    pub counts: CountsKind,
    /// `token_storage`: `"token"` or `"ha1"` (keep only HA1 values). Default `"token"`.
    pub token_storage: TokenStorage,
    /// `htdigest_file`: take credentials from this Apache `htdigest` file
    /// (MD5 only) instead of the store's tokens. Default: none.
    pub htdigest_file: Option<String>,
    /// `uri_prefix`: a path prefix a rewriting proxy strips before the app
    /// sees the request; the client's signed `uri` may carry it. Default: none.
    pub uri_prefix: Option<String>,
    /// `nc_window`: how far below the highest `nc` seen on a nonce a count may
    /// arrive and still be accepted once. Default 256, at least 64.
    pub nc_window: u32,
    /// `nc_lease`: database store only. How many counts of a nonce one process
    /// leases from the database at a time (one write), deciding them in its
    /// memory afterwards; `0` writes one row per request instead. Leases keep
    /// every count accepted once across processes, but a client whose requests
    /// on one nonce alternate between instances is refused (`stale=true`) by
    /// the instance without the lease. Default: 256 on SQLite and MySQL, 0 on
    /// PostgreSQL. Every instance sharing a database must use the same value.
    pub nc_lease: Option<u32>,
    /// `max_failures`: failed attempts per (user, client address) in
    /// `failure_window` before 429. The user is the one the credential
    /// store resolved (her userhashes count as her). Default 10.
    pub max_failures: u32,
    /// `failure_window`: seconds. Default 300.
    pub failure_window: u64,
    /// `max_tracked_clients`: bound on the failure bookkeeping. A lock is
    /// never dropped to make room: expired, then unlocked pairs (oldest
    /// first) make way, and when only locks are left a new pair's wrong
    /// guess gets 429 until the oldest lock ends (a right token still
    /// passes). Default 100000.
    pub max_tracked_clients: usize,
    /// `trust_ip_header`: take the client address for failure limiting from
    /// Rocket's `ip_header` (X-Real-IP by default). Only behind a proxy that
    /// overwrites that header; otherwise any client picks its own address and
    /// escapes the limit. Default false: the connection's peer address.
    pub trust_ip_header: bool,
    /// `credential_cache_ttl`: seconds the database store's credential
    /// lookups are reused in this process at most. Rotation and revocation
    /// through `Tokens` apply at once here; changes by another process apply
    /// within `credential_recheck_ms`. Default 60; 0 turns the cache off (one
    /// credential query per request). A cached name is answered faster, so
    /// whoever can time requests learns whether that name (known or not) was
    /// sent to this instance within the TTL; set 0 where that recent
    /// activity is sensitive (SECURITY.md, "Known limitations").
    pub credential_cache_ttl: u64,
    /// `credential_recheck_ms`: milliseconds between reads of the token
    /// table's version (one row, bumped by trigger on every change): a token
    /// issued, rotated or revoked by another process (another instance,
    /// `create-token` from a shell, SQL by hand) applies here within this
    /// long. Default 100; 0 reads it before every lookup.
    pub credential_recheck_ms: u64,
    /// `store_timeout`: seconds a store may take to answer before the request
    /// fails closed with 503. Default 5.
    pub store_timeout: u64,
    /// `cleanup_interval`: seconds between removals of expired nonce counts. Default 60.
    pub cleanup_interval: u64,
    /// `catcher`: register the 401 catcher (challenges) and the 429 catcher
    /// (`Retry-After`). Default true.
    pub catcher: bool,
}

/// A `qop` value in the configuration (`"auth"`, `"auth-int"`): the
/// protocol's own type.
pub use crate::protocol::Qop;

/// Which built-in store the fairing uses when the app passes none.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StoreKind {
    /// The database configured as `[databases.digest_auth]` (SQLite, PostgreSQL or MySQL).
    Database,
    /// In this process's memory (single process; nonces bound to it).
    Memory,
}

/// Where nonce counts live when the app passes no count store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CountsKind {
    /// In the built-in store `store` names.
    Store,
    /// In Redis, `[databases.digest_auth_counts]` (feature `redis`).
    Redis,
}

/// How the database store keeps users' secrets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TokenStorage {
    /// The token itself.
    Token,
    /// Only HA1 values for the realm; the token is shown once at creation.
    Ha1,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            realm: "rocket".into(),
            algorithms: vec![Algorithm::Sha256, Algorithm::Md5],
            qop: vec![Qop::Auth],
            allow_rfc2069: false,
            nonce_lifetime: 300,
            nextnonce_within: None,
            secret: None,
            opaque: None,
            userhash: false,
            domain: Vec::new(),
            store: StoreKind::Database,
            counts: CountsKind::Store,
            token_storage: TokenStorage::Token,
            htdigest_file: None,
            uri_prefix: None,
            nc_window: DEFAULT_NC_WINDOW,
            nc_lease: None,
            max_failures: 10,
            failure_window: 300,
            max_tracked_clients: 100_000,
            trust_ip_header: false,
            store_timeout: 5,
            credential_cache_ttl: 60,
            credential_recheck_ms: 100,
            cleanup_interval: 60,
            catcher: true,
        }
    }
}

/// Setters for code that builds a configuration: `with_KEY(value)` for
/// every key (`Option` keys take the value itself, lists anything iterable,
/// strings anything that converts).
macro_rules! setters {
    ($($kind:ident $setter:ident => $field:ident: $ty:ty;)*) => {
        impl Config {
            $(setters!(@one $kind $setter $field $ty);)*
        }
    };
    (@one plain $setter:ident $field:ident $ty:ty) => {
        #[doc = concat!("Sets `", stringify!($field), "`.")]
        #[must_use]
        pub fn $setter(mut self, value: $ty) -> Config {
            self.$field = value;
            self
        }
    };
    (@one value $setter:ident $field:ident $ty:ty) => {
        #[doc = concat!("Sets `", stringify!($field), "`.")]
        #[must_use]
        pub fn $setter(mut self, value: impl Into<$ty>) -> Config {
            self.$field = value.into();
            self
        }
    };
    (@one option $setter:ident $field:ident $ty:ty) => {
        #[doc = concat!("Sets `", stringify!($field), "`.")]
        #[must_use]
        pub fn $setter(mut self, value: $ty) -> Config {
            self.$field = Some(value);
            self
        }
    };
    (@one some $setter:ident $field:ident $ty:ty) => {
        #[doc = concat!("Sets `", stringify!($field), "`.")]
        #[must_use]
        pub fn $setter(mut self, value: impl Into<$ty>) -> Config {
            self.$field = Some(value.into());
            self
        }
    };
    (@one list $setter:ident $field:ident $ty:ty) => {
        #[doc = concat!("Sets `", stringify!($field), "`.")]
        #[must_use]
        pub fn $setter(mut self, values: impl IntoIterator<Item = impl Into<$ty>>) -> Config {
            self.$field = values.into_iter().map(Into::into).collect();
            self
        }
    };
}

setters! {
    value with_realm => realm: String;
    list with_algorithms => algorithms: Algorithm;
    list with_qop => qop: Qop;
    plain with_allow_rfc2069 => allow_rfc2069: bool;
    plain with_nonce_lifetime => nonce_lifetime: u64;
    option with_nextnonce_within => nextnonce_within: u64;
    some with_secret => secret: String;
    some with_opaque => opaque: String;
    plain with_userhash => userhash: bool;
    list with_domain => domain: String;
    plain with_store => store: StoreKind;
    plain with_counts => counts: CountsKind;
    plain with_token_storage => token_storage: TokenStorage;
    some with_htdigest_file => htdigest_file: String;
    some with_uri_prefix => uri_prefix: String;
    plain with_nc_window => nc_window: u32;
    option with_nc_lease => nc_lease: u32;
    plain with_max_failures => max_failures: u32;
    plain with_failure_window => failure_window: u64;
    plain with_max_tracked_clients => max_tracked_clients: usize;
    plain with_trust_ip_header => trust_ip_header: bool;
    plain with_credential_cache_ttl => credential_cache_ttl: u64;
    plain with_credential_recheck_ms => credential_recheck_ms: u64;
    plain with_store_timeout => store_timeout: u64;
    plain with_cleanup_interval => cleanup_interval: u64;
    plain with_catcher => catcher: bool;
}

/// A configuration value that cannot work; the message names the key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid `digest_auth.{key}`: {message}")]
pub struct InvalidConfig {
    /// The key, under `digest_auth`.
    pub key: &'static str,
    /// What is wrong with it.
    pub message: String,
}

impl InvalidConfig {
    /// The problem `message` with the key `key` (under `digest_auth`).
    pub fn new(key: &'static str, message: impl Into<String>) -> InvalidConfig {
        InvalidConfig {
            key,
            message: message.into(),
        }
    }
}

/// `nextnonce_within` when it is not set and `nonce_lifetime` is at least
/// five times as long.
pub const DEFAULT_NEXTNONCE_WITHIN: u64 = 60;

/// Shortest `secret` accepted, in bytes.
pub const MIN_SECRET_LEN: usize = 32;

impl Config {
    /// Seconds before a nonce expires from which `nextnonce` is sent: the
    /// `nextnonce_within` key, or when it is not set a fifth of
    /// `nonce_lifetime`, at most 60 (so any valid `nonce_lifetime` works
    /// without it).
    pub fn nextnonce_within(&self) -> u64 {
        self.nextnonce_within
            .unwrap_or((self.nonce_lifetime / 5).min(DEFAULT_NEXTNONCE_WITHIN))
    }

    /// Checks every key on its own and against the others; the first problem
    /// is returned.
    pub fn validate(&self) -> Result<(), InvalidConfig> {
        let bad = |key, message: &str| Err(InvalidConfig::new(key, message));
        if self.realm.trim().is_empty() {
            return bad("realm", "must not be empty");
        }
        if self.realm.chars().any(char::is_control) {
            return bad("realm", "must not contain control characters");
        }
        if self.algorithms.is_empty() {
            return bad("algorithms", "offer at least one algorithm");
        }
        if has_duplicates(&self.algorithms) {
            return bad("algorithms", "lists an algorithm twice");
        }
        if self.qop.is_empty() && !self.allow_rfc2069 {
            return bad(
                "qop",
                "is empty, so no client could authenticate; list \"auth\" or set allow_rfc2069 = true",
            );
        }
        if has_duplicates(&self.qop) {
            return bad("qop", "lists a value twice");
        }
        if self.nonce_lifetime == 0 {
            return bad("nonce_lifetime", "must be at least 1 second");
        }
        if self.nonce_lifetime > 7 * 24 * 3600 {
            return bad("nonce_lifetime", "must be at most a week (604800 seconds)");
        }
        if let Some(within) = self.nextnonce_within {
            if within >= self.nonce_lifetime {
                return bad(
                    "nextnonce_within",
                    &format!(
                        "is {within}, but must be less than `digest_auth.nonce_lifetime` ({}); \
                         lower it, or leave it out to follow nonce_lifetime",
                        self.nonce_lifetime
                    ),
                );
            }
        }
        if let Some(secret) = &self.secret {
            if secret.len() < MIN_SECRET_LEN {
                return bad(
                    "secret",
                    &format!("must be at least {MIN_SECRET_LEN} bytes (use a random string)"),
                );
            }
        }
        if let Some(opaque) = &self.opaque {
            if opaque.is_empty() || opaque.chars().any(char::is_control) {
                return bad("opaque", "must be non-empty, without control characters");
            }
        }
        if self
            .domain
            .iter()
            .any(|d| d.is_empty() || d.contains(char::is_whitespace))
        {
            return bad(
                "domain",
                "entries must be non-empty URIs without whitespace",
            );
        }
        if self.htdigest_file.as_deref() == Some("") {
            return bad("htdigest_file", "must be a path");
        }
        if let Some(prefix) = &self.uri_prefix {
            if !prefix.starts_with('/') || prefix.ends_with('/') {
                return bad("uri_prefix", "must start with `/` and not end with `/`");
            }
        }
        if self.nc_window < 64 {
            return bad("nc_window", "must be at least 64");
        }
        if self.max_failures == 0 {
            return bad("max_failures", "must be at least 1");
        }
        if self.failure_window == 0 {
            return bad("failure_window", "must be at least 1 second");
        }
        if self.max_tracked_clients == 0 {
            return bad("max_tracked_clients", "must be at least 1");
        }
        if let Some(lease) = self.nc_lease {
            if lease != 0 && !(16..=1 << 20).contains(&lease) {
                return bad("nc_lease", "must be 0 (no leases) or from 16 to 1048576");
            }
        }
        if self.credential_cache_ttl > 3600 {
            return bad("credential_cache_ttl", "must be at most 3600 seconds");
        }
        if self.credential_recheck_ms > 60_000 {
            return bad("credential_recheck_ms", "must be at most 60000");
        }
        if self.store_timeout == 0 {
            return bad("store_timeout", "must be at least 1 second");
        }
        if self.cleanup_interval == 0 || self.cleanup_interval > 86_400 {
            return bad("cleanup_interval", "must be between 1 and 86400 seconds");
        }
        Ok(())
    }

    /// Checks that the built-in store `store` names is compiled in; run
    /// only when the fairing opens a built-in store (an app that passes its
    /// own stores needs no database feature).
    pub(crate) fn validate_builtin_store(&self) -> Result<(), InvalidConfig> {
        if cfg!(not(any(
            feature = "sqlite",
            feature = "postgres",
            feature = "mysql"
        ))) && self.store == StoreKind::Database
        {
            return Err(InvalidConfig::new(
                "store",
                "\"database\" needs the `sqlite`, `postgres` or `mysql` feature",
            ));
        }
        Ok(())
    }

    /// Checks what depends on the credential store in use: every offered
    /// algorithm must be one whose hash function it serves.
    pub fn validate_for(&self, credentials: &dyn CredentialStore) -> Result<(), InvalidConfig> {
        let served = credentials.hash_functions();
        let Some(alg) = self
            .algorithms
            .iter()
            .find(|a| !served.contains(&a.hash_function()))
        else {
            return Ok(());
        };
        let usable: Vec<String> = Algorithm::ALL
            .iter()
            .filter(|a| served.contains(&a.hash_function()))
            .map(ToString::to_string)
            .collect();
        let source = match &self.htdigest_file {
            Some(_) => "the htdigest_file holds MD5 HA1 values only",
            None => "the credential store does not hold its values",
        };
        Err(InvalidConfig::new(
            "algorithms",
            format!(
                "{alg} is offered, but {source}: offer {}",
                usable.join(" and/or ")
            ),
        ))
    }
}

/// The key a figment error is about, as the user writes it:
/// `digest_auth.algorithms[0]`, `digest_auth.realms` (an unknown key).
fn figment_key(error: &figment::Error) -> String {
    let mut key = String::from("digest_auth");
    let field = match &error.kind {
        figment::error::Kind::UnknownField(field, _) => Some(field.to_string()),
        figment::error::Kind::DuplicateField(field) => Some(field.to_string()),
        figment::error::Kind::MissingField(field) => Some(field.to_string()),
        _ => None,
    }
    .filter(|field| error.path.last() != Some(field));
    for segment in error.path.iter().chain(field.as_ref()) {
        if !segment.is_empty() && segment.bytes().all(|b| b.is_ascii_digit()) {
            key.push_str(&format!("[{segment}]"));
        } else {
            key.push('.');
            key.push_str(segment);
        }
    }
    key
}

/// Every problem in a figment error about `[digest_auth]`, each naming its
/// full key and where the value came from.
pub(crate) fn describe_figment_error(error: &figment::Error) -> String {
    error
        .clone()
        .into_iter()
        .map(|e| {
            let source = match &e.metadata {
                Some(md) => match &md.source {
                    Some(source) => format!(" (from {} {source})", md.name),
                    None => format!(" (from {})", md.name),
                },
                None => String::new(),
            };
            format!("invalid `{}`: {}{source}", figment_key(&e), e.kind)
        })
        .collect::<Vec<_>>()
        .join("; ")
}

fn has_duplicates<T: PartialEq>(items: &[T]) -> bool {
    items
        .iter()
        .enumerate()
        .any(|(i, a)| items[..i].contains(a))
}

#[cfg(test)]
mod tests {
    use super::*;
    use figment::providers::{Format, Toml};
    use figment::Figment;

    fn from_toml(toml: &str) -> Result<Config, String> {
        let config: Config = Figment::from(Toml::string(toml))
            .extract()
            .map_err(|e| e.to_string())?;
        config.validate().map_err(|e| e.to_string())?;
        Ok(config)
    }

    #[test]
    fn defaults_are_valid() {
        assert_eq!(from_toml(""), Ok(Config::default()));
    }

    #[test]
    fn parses_every_key() {
        let c = from_toml(
            r#"
            realm = "api"
            algorithms = ["sha-512-256", "MD5-sess"]
            qop = ["auth", "auth-int"]
            nonce_lifetime = 60
            nextnonce_within = 10
            secret = "0123456789abcdef0123456789abcdef"
            opaque = "xyz"
            userhash = true
            domain = ["/api", "/admin"]
            store = "memory"
            token_storage = "ha1"
            uri_prefix = "/app"
            nc_window = 64
            "#,
        )
        .unwrap();
        assert_eq!(c.algorithms, [Algorithm::Sha512_256, Algorithm::Md5Sess]);
        assert_eq!(c.qop, [Qop::Auth, Qop::AuthInt]);
        assert_eq!(c.store, StoreKind::Memory);
        assert_eq!(c.token_storage, TokenStorage::Ha1);
    }

    #[test]
    fn errors_name_the_key() {
        let cases = [
            ("realm = \"\"", "digest_auth.realm"),
            ("algorithms = []", "digest_auth.algorithms"),
            ("algorithms = [\"MD5\", \"md5\"]", "digest_auth.algorithms"),
            ("nonce_lifetime = 0", "digest_auth.nonce_lifetime"),
            ("secret = \"short\"", "digest_auth.secret"),
            ("qop = []", "digest_auth.qop"),
            ("nc_window = 10", "digest_auth.nc_window"),
            ("uri_prefix = \"app\"", "digest_auth.uri_prefix"),
            ("max_failures = 0", "digest_auth.max_failures"),
            ("nc_lease = 8", "digest_auth.nc_lease"),
            (
                "credential_cache_ttl = 4000",
                "digest_auth.credential_cache_ttl",
            ),
            (
                "credential_recheck_ms = 70000",
                "digest_auth.credential_recheck_ms",
            ),
            ("cleanup_interval = 9999999", "digest_auth.cleanup_interval"),
        ];
        for (toml, key) in cases {
            let err = from_toml(toml).unwrap_err();
            assert!(err.contains(key), "{toml}: {err}");
        }
        // Unknown values and keys are named by figment.
        let err = from_toml("algorithms = [\"SHA-1\"]").unwrap_err();
        assert!(err.contains("SHA-1") && err.contains("algorithms"), "{err}");
        let err = from_toml("realms = \"x\"").unwrap_err();
        assert!(err.contains("realms"), "{err}");
    }

    /// A credential store that serves MD5 HA1 values only.
    struct Md5Only;

    #[rocket::async_trait]
    impl CredentialStore for Md5Only {
        async fn credential(
            &self,
            _: &str,
        ) -> Result<Option<crate::store::Credential>, crate::store::StoreError> {
            Ok(None)
        }
        fn hash_functions(&self) -> &'static [crate::protocol::HashFunction] {
            &[crate::protocol::HashFunction::Md5]
        }
    }

    #[test]
    fn validate_for_refuses_algorithms_the_store_cannot_serve() {
        let err = Config::default().validate_for(&Md5Only).unwrap_err();
        assert_eq!(err.key, "algorithms");
        let message = err.to_string();
        assert!(message.contains("digest_auth.algorithms"), "{message}");
        assert!(message.contains("SHA-256"), "{message}");
        assert!(message.contains("MD5 and/or MD5-sess"), "{message}");
        let md5 = Config::default().with_algorithms([Algorithm::Md5, Algorithm::Md5Sess]);
        assert_eq!(md5.validate_for(&Md5Only), Ok(()));
    }

    #[test]
    fn setters_set_the_keys_they_name() {
        let built = Config::default()
            .with_realm("api")
            .with_algorithms([Algorithm::Md5])
            .with_secret("s".repeat(32))
            .with_nc_lease(64)
            .with_catcher(false);
        let parsed = from_toml(
            r#"
            realm = "api"
            algorithms = ["MD5"]
            secret = "ssssssssssssssssssssssssssssssss"
            nc_lease = 64
            catcher = false
            "#,
        )
        .unwrap();
        assert_eq!(built, parsed);
    }
}
