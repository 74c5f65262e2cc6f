//! The fairing: reads `[digest_auth]`, opens the stores, manages the
//! verifier and [`Tokens`](crate::Tokens), registers the catchers, cleans
//! expired nonce counts, adds `Authentication-Info` to answered requests,
//! and closes the store it opened at shutdown.
//!
//! ```no_run
//! use rocket_digest_auth::DigestAuth;
//!
//! #[rocket::launch]
//! fn rocket() -> _ {
//!     rocket::build().attach(DigestAuth::fairing())
//! }
//! ```

use std::sync::{Arc, Mutex};
use std::time::Duration;

use rocket::fairing::{self, Fairing, Info, Kind};
use rocket::figment::providers::Serialized;
use rocket::figment::Figment;
use rocket::http::{Header, Status};
use rocket::{Build, Orbit, Request, Response, Rocket};

use crate::config::Config;
use crate::protocol::MAX_CLOCK_SKEW_SECS;
use crate::rocket::builtin::{Closer, Stores};
use crate::rocket::catcher;
use crate::rocket::state::DigestAuthState;
use crate::rocket::verdict;
use crate::store::{CredentialStore, NonceCountStore};
use crate::verifier::Verifier;
use crate::Error;

/// The fairing. Attach [`DigestAuth::fairing()`] in `rocket::build()`;
/// optionally pass the app's own stores.
#[derive(Default)]
pub struct DigestAuth {
    credentials: Option<Arc<dyn CredentialStore>>,
    counts: Option<Arc<dyn NonceCountStore>>,
    /// Set at ignite, run at shutdown.
    closer: Mutex<Closer>,
}

impl DigestAuth {
    /// The name of the rocket_db_pools database this crate uses:
    /// `[default.databases.digest_auth]`.
    pub const DATABASE_NAME: &'static str = "digest_auth";

    /// The database URL used when `[databases.digest_auth]` gives none.
    pub const DEFAULT_DATABASE_URL: &'static str = "sqlite://digest_auth.db?mode=rwc";

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

    /// Reads `[digest_auth]` from a Rocket figment and checks every key
    /// ([`Config::validate`]).
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
            .focus(&format!("databases.{}", Self::DATABASE_NAME))
            .join(Serialized::default("url", Self::DEFAULT_DATABASE_URL))
            .join(Serialized::default("max_connections", workers * 4))
            .join(Serialized::default("connect_timeout", 5))
    }

    async fn build(&self, figment: &Figment) -> Result<(Verifier, Stores), Error> {
        let config = Self::config(figment)?;
        let stores = Stores::choose(
            self.credentials.clone(),
            self.counts.clone(),
            figment,
            &config,
        )
        .await?;
        config.validate_for(&*stores.credentials)?;
        let mut verifier =
            Verifier::from_valid(config, stores.credentials.clone(), stores.counts.clone());
        if let Some(failures) = &stores.failures {
            verifier = verifier.with_failure_store(failures.clone());
        }
        Ok((verifier, stores))
    }
}

#[rocket::async_trait]
impl Fairing for DigestAuth {
    fn info(&self) -> Info {
        Info {
            name: "Digest Authentication",
            kind: Kind::Ignite | Kind::Liftoff | Kind::Response | Kind::Shutdown,
        }
    }

    async fn on_ignite(&self, rocket: Rocket<Build>) -> fairing::Result {
        let (verifier, stores) = match self.build(rocket.figment()).await {
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
        let catchers = config.catcher;
        *self.closer.lock().unwrap_or_else(|e| e.into_inner()) = stores.closer();
        let mut rocket = rocket.manage(DigestAuthState { verifier });
        if let Some(tokens) = stores.tokens {
            rocket = rocket.manage(tokens);
        }
        if catchers {
            rocket = rocket.register(
                "/",
                rocket::catchers![catcher::challenge, catcher::too_many_attempts],
            );
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
                        // Whatever this clock says, the store's watermark keeps
                        // what it deletes refused. The margin only spares the
                        // nonces of an instance whose clock is a little behind,
                        // which would otherwise turn stale early.
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
        // Not on a 401: a user refused after the digest checked out (DigestUser
        // returned None) must look like any other failure.
        if let Some(Ok(verified)) = verdict::of(request) {
            if response.status() != Status::Unauthorized {
                response.set_header(Header::new(
                    "Authentication-Info",
                    verified.authentication_info.header_value(),
                ));
            }
        }
    }

    async fn on_shutdown(&self, _: &Rocket<Orbit>) {
        let closer = std::mem::take(&mut *self.closer.lock().unwrap_or_else(|e| e.into_inner()));
        closer.close().await;
    }
}
