//! The fairing: reads `[digest_auth]`, opens the store, manages the verifier,
//! registers the catcher, cleans expired nonce counts, and adds the
//! `Authentication-Info` and `Retry-After` headers to responses.
//!
//! ```no_run
//! use rocket_digest_auth::DigestAuth;
//!
//! #[rocket::launch]
//! fn rocket() -> _ {
//!     rocket::build().attach(DigestAuth::fairing())
//! }
//! ```

use std::sync::Arc;
use std::time::Duration;

use rocket::fairing::{self, Fairing, Info, Kind};
use rocket::figment::providers::Serialized;
use rocket::figment::Figment;
use rocket::http::{Header, Status};
use rocket::{Build, Orbit, Request, Response, Rocket};

use crate::config::{Config, InvalidConfig, StoreKind, TokenStorage};
use crate::guard::CachedVerification;
use crate::protocol::MAX_CLOCK_SKEW_SECS;
use crate::store::{
    CredentialStore, HtdigestFile, MemoryStore, NonceCountStore, StoreError, StoreOptions,
    TokenAdmin,
};
use crate::verifier::{Rejection, Verifier};
use crate::Error;

/// The database URL used when `[databases.digest_auth]` gives none.
pub const DEFAULT_DATABASE_URL: &str = "sqlite://digest_auth.db?mode=rwc";

/// The name of the rocket_db_pools database this crate uses:
/// `[default.databases.digest_auth]`.
pub const DATABASE_NAME: &str = "digest_auth";

/// The fairing. Attach [`DigestAuth::fairing()`] in `rocket::build()`;
/// optionally pass the app's own stores.
#[derive(Default)]
pub struct DigestAuth {
    credentials: Option<Arc<dyn CredentialStore>>,
    counts: Option<Arc<dyn NonceCountStore>>,
}

/// The managed state the guard and catcher use.
#[derive(Debug)]
pub struct DigestAuthState {
    verifier: Verifier,
}

impl DigestAuthState {
    /// The verifier, e.g. to build challenges in an app's own catcher.
    pub fn verifier(&self) -> &Verifier {
        &self.verifier
    }
}

/// Create, rotate and revoke users' tokens in the built-in store. Managed by
/// the fairing when a built-in credential store is in use: take
/// `&State<Tokens>` in a route, or `rocket.state::<Tokens>()` after ignite.
#[derive(Clone)]
pub struct Tokens(Arc<dyn TokenAdmin>);

impl std::fmt::Debug for Tokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Tokens")
    }
}

impl Tokens {
    /// Wraps a store.
    pub fn new(admin: Arc<dyn TokenAdmin>) -> Tokens {
        Tokens(admin)
    }

    /// Creates `username`'s token, or rotates it if there is one; returns
    /// the new token (the old one stops working at once).
    pub async fn issue(&self, username: &str) -> Result<String, StoreError> {
        if username.is_empty() || username.len() > 256 || username.chars().any(char::is_control) {
            return Err(StoreError::new(
                "a username must be 1 to 256 bytes without control characters",
            ));
        }
        self.0.issue_token(username).await
    }

    /// Revokes `username`'s token; returns whether there was one.
    pub async fn revoke(&self, username: &str) -> Result<bool, StoreError> {
        self.0.revoke_token(username).await
    }
}

impl DigestAuth {
    /// The fairing, with the stores chosen by configuration.
    pub fn fairing() -> DigestAuth {
        DigestAuth::default()
    }

    /// Uses the app's own credential store instead of a built-in one.
    pub fn with_credential_store(mut self, store: impl CredentialStore) -> DigestAuth {
        self.credentials = Some(Arc::new(store));
        self
    }

    /// Uses the app's own nonce-count store instead of a built-in one.
    pub fn with_nonce_count_store(mut self, store: impl NonceCountStore) -> DigestAuth {
        self.counts = Some(Arc::new(store));
        self
    }

    /// Reads and validates `[digest_auth]` from a Rocket figment.
    pub fn config(figment: &Figment) -> Result<Config, Error> {
        let config: Config = figment.focus("digest_auth").extract()?;
        config.validate()?;
        Ok(config)
    }

    /// The figment for `[databases.digest_auth]` with rocket_db_pools'
    /// defaults joined in, and the embedded SQLite file as the default URL.
    pub fn database_figment(figment: &Figment) -> Figment {
        let workers: usize = figment
            .extract_inner(rocket::Config::WORKERS)
            .unwrap_or_else(|_| rocket::Config::default().workers);
        figment
            .focus(&format!("databases.{DATABASE_NAME}"))
            .join(Serialized::default("url", DEFAULT_DATABASE_URL))
            .join(Serialized::default("max_connections", workers * 4))
            .join(Serialized::default("connect_timeout", 5))
    }

    async fn build(&self, figment: &Figment) -> Result<(Verifier, Option<Tokens>), Error> {
        let config = Self::config(figment)?;
        let credentials = match (&self.credentials, &config.htdigest_file) {
            (Some(custom), _) => Some(custom.clone()),
            (None, Some(path)) => {
                let file = HtdigestFile::open(path, &config.realm).map_err(|e| InvalidConfig {
                    key: "htdigest_file",
                    message: e.to_string(),
                })?;
                Some(Arc::new(file) as Arc<dyn CredentialStore>)
            }
            (None, None) => None,
        };
        let (credentials, counts, tokens) = match (credentials, self.counts.clone()) {
            (Some(credentials), Some(counts)) => (credentials, counts, None),
            (credentials, counts) => {
                let builtin = Builtin::open(figment, &config).await?;
                // Tokens are managed only when the built-in store is the credential source.
                let tokens = credentials.is_none().then_some(builtin.tokens);
                (
                    credentials.unwrap_or(builtin.credentials),
                    counts.unwrap_or(builtin.counts),
                    tokens,
                )
            }
        };
        Ok((Verifier::new(config, credentials, counts)?, tokens))
    }
}

/// The built-in store the configuration chose (`store = ...`).
struct Builtin {
    credentials: Arc<dyn CredentialStore>,
    counts: Arc<dyn NonceCountStore>,
    tokens: Tokens,
}

impl Builtin {
    fn of<S: CredentialStore + NonceCountStore + TokenAdmin>(store: Arc<S>) -> Builtin {
        Builtin {
            credentials: store.clone(),
            counts: store.clone(),
            tokens: Tokens(store),
        }
    }

    #[cfg_attr(
        not(any(feature = "sqlite", feature = "postgres")),
        allow(unused_variables)
    )]
    async fn open(figment: &Figment, config: &Config) -> Result<Builtin, Error> {
        let options = StoreOptions {
            realm: config.realm.clone(),
            ha1_only: config.token_storage == TokenStorage::Ha1,
            nc_lease: config.nc_lease,
        };
        match config.store {
            StoreKind::Memory => Ok(Builtin::of(Arc::new(MemoryStore::new(options)))),
            #[cfg(any(feature = "sqlite", feature = "postgres"))]
            StoreKind::Database => {
                let db = DigestAuth::database_figment(figment);
                let store = Arc::new(crate::store::SqlStore::connect(&db, options).await?);
                if config.credential_cache_ttl == 0 {
                    return Ok(Builtin::of(store));
                }
                // Only lookups are cached: tokens changed through `Tokens`
                // clear the cache, changes by others within the recheck.
                let ttl = Duration::from_secs(config.credential_cache_ttl);
                let recheck = Duration::from_millis(config.credential_recheck_ms);
                let cached = Arc::new(
                    crate::store::CachedCredentials::new(store.clone(), ttl).with_recheck(recheck),
                );
                Ok(Builtin {
                    credentials: cached.clone(),
                    counts: store,
                    tokens: Tokens(cached),
                })
            }
            #[cfg(not(any(feature = "sqlite", feature = "postgres")))]
            StoreKind::Database => Err(Error::Config(InvalidConfig {
                key: "store",
                message: "\"database\" needs the `sqlite` or `postgres` feature".into(),
            })),
        }
    }
}

#[rocket::async_trait]
impl Fairing for DigestAuth {
    fn info(&self) -> Info {
        Info {
            name: "Digest Authentication",
            kind: Kind::Ignite | Kind::Liftoff | Kind::Response,
        }
    }

    async fn on_ignite(&self, rocket: Rocket<Build>) -> fairing::Result {
        let (verifier, tokens) = match self.build(rocket.figment()).await {
            Ok(built) => built,
            Err(e) => {
                rocket::error!("Digest authentication failed to start: {e}");
                return Err(rocket);
            }
        };
        let config = verifier.config();
        if config.secret.is_none() {
            rocket::warn!(
                "digest_auth.secret is not set: nonces are signed with a random key that dies \
                 with this process. Several instances behind a load balancer, or nonces that \
                 survive a restart, need a shared `secret`."
            );
        }
        let catcher = config.catcher;
        let mut rocket = rocket.manage(DigestAuthState { verifier });
        if let Some(tokens) = tokens {
            rocket = rocket.manage(tokens);
        }
        if catcher {
            rocket = rocket.register("/", rocket::catchers![crate::catcher::challenge]);
        }
        Ok(rocket)
    }

    async fn on_liftoff(&self, rocket: &Rocket<Orbit>) {
        let Some(state) = rocket.state::<DigestAuthState>() else {
            return;
        };
        let counts = state.verifier.nonce_counts().clone();
        let every = Duration::from_secs(state.verifier.config().cleanup_interval);
        let mut shutdown = rocket.shutdown();
        rocket::tokio::spawn(async move {
            let mut interval = rocket::tokio::time::interval(every);
            loop {
                rocket::tokio::select! {
                    _ = interval.tick() => {
                        // Keep a margin: another instance whose clock is behind
                        // still accepts nonces this clock calls expired.
                        let now = chrono::Utc::now().timestamp() - MAX_CLOCK_SKEW_SECS;
                        if let Err(e) = counts.remove_expired(now).await {
                            rocket::warn!("digest_auth: removing expired nonce counts failed: {e}");
                        }
                    }
                    _ = &mut shutdown => break,
                }
            }
        });
    }

    async fn on_response<'r>(&self, request: &'r Request<'_>, response: &mut Response<'r>) {
        let cached = request.local_cache(|| CachedVerification(None));
        match &cached.0 {
            // Not on a 401: a user refused after the digest checked out (DigestUser
            // returned None) must look like any other failure.
            Some(Ok(verified)) if response.status() != Status::Unauthorized => {
                response.set_header(Header::new(
                    "Authentication-Info",
                    verified.authentication_info.to_string(),
                ));
            }
            Some(Err(Rejection::TooManyAttempts { retry_after }))
                if response.status().code == 429 && !response.headers().contains("Retry-After") =>
            {
                response.set_header(Header::new("Retry-After", retry_after.to_string()));
            }
            _ => {}
        }
    }
}
