//! The fairing: reads `[digest_auth]`, opens the stores, manages the
//! verifier and [`Tokens`](crate::Tokens), registers the catchers, cleans
//! expired nonce counts, records each request's method as received, adds
//! `Authentication-Info` to answered requests, and closes the store it
//! opened at shutdown.
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
use rocket::{Build, Data, Orbit, Request, Response, Rocket};

use crate::config::{Config, Qop};
use crate::protocol::MAX_CLOCK_SKEW_SECS;
use crate::rocket::builtin::{Closer, DatabaseSource, Stores};
use crate::rocket::catcher;
use crate::rocket::request::method_as_sent;
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
    /// The app's own database, when it holds the crate's tables.
    #[cfg(any(feature = "sqlite", feature = "postgres", feature = "mysql"))]
    database: Option<crate::rocket::builtin::AppDatabase>,
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

    /// Keeps the crate's tables (all named `digest_auth_*`, migrations
    /// recorded in `digest_auth_migrations`) in the app's own
    /// rocket_db_pools database `D` instead of opening
    /// `[databases.digest_auth]`, so that the app's users and their tokens
    /// live in one database. Attach `D::init()` before this fairing. The
    /// app's own sqlx migrations may run on the same database.
    ///
    /// ```no_run
    /// use rocket_db_pools::{sqlx, Database};
    /// use rocket_digest_auth::DigestAuth;
    ///
    /// #[derive(Database)]
    /// #[database("app")]
    /// struct Db(sqlx::SqlitePool);
    ///
    /// #[rocket::launch]
    /// fn rocket() -> _ {
    ///     rocket::build()
    ///         .attach(Db::init())
    ///         .attach(DigestAuth::fairing().with_database::<Db>())
    /// }
    /// ```
    #[cfg(any(feature = "sqlite", feature = "postgres", feature = "mysql"))]
    pub fn with_database<D>(mut self) -> DigestAuth
    where
        D: rocket_db_pools::Database,
        D::Pool: crate::store::SqlPool,
    {
        self.database = Some(crate::rocket::builtin::AppDatabase::of::<D>());
        self
    }

    /// The pool of the database store in use (`sqlx::SqlitePool`,
    /// `sqlx::PgPool` or `sqlx::MySqlPool`), whether the fairing opened it
    /// from `[databases.digest_auth]` or it is the app's
    /// ([`with_database`](DigestAuth::with_database)): for the app's own
    /// queries on the crate's tables. `None` before the fairing ignited, with
    /// no database store, or for another pool type.
    ///
    /// ```no_run
    /// # async fn f(rocket: rocket::Rocket<rocket::Orbit>) -> Result<(), sqlx::Error> {
    /// use rocket_digest_auth::DigestAuth;
    ///
    /// let pool: &sqlx::SqlitePool = DigestAuth::pool(&rocket).expect("the database store");
    /// let users: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM digest_auth_tokens")
    ///     .fetch_one(pool)
    ///     .await?;
    /// # Ok(()) }
    /// ```
    #[cfg(any(feature = "sqlite", feature = "postgres", feature = "mysql"))]
    pub fn pool<P: crate::store::SqlPool>(rocket: &Rocket<impl rocket::Phase>) -> Option<&P> {
        rocket
            .state::<crate::rocket::state::DatabaseState>()?
            .0
            .pool::<P>()
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

    /// Where the database store's pool comes from: the app's database when
    /// one was given (its fairing must have ignited), else the configuration.
    #[cfg_attr(
        not(any(feature = "sqlite", feature = "postgres", feature = "mysql")),
        allow(unused_variables)
    )]
    fn database_source(&self, rocket: &Rocket<Build>) -> Result<DatabaseSource, Error> {
        #[cfg(any(feature = "sqlite", feature = "postgres", feature = "mysql"))]
        if let Some(app) = &self.database {
            let Some(open) = (app.fetch)(rocket) else {
                let type_name = app.type_name.rsplit("::").next().unwrap_or(app.type_name);
                return Err(Error::Attach(format!(
                    "the database `{}` given to `with_database::<{type_name}>()` is not \
                     attached: attach `{type_name}::init()` before `DigestAuth::fairing()`",
                    app.name,
                )));
            };
            return Ok(DatabaseSource::App {
                key: app.url_key(),
                open,
            });
        }
        Ok(DatabaseSource::Configured)
    }

    async fn build(&self, rocket: &Rocket<Build>) -> Result<(Verifier, Stores), Error> {
        if rocket.state::<DigestAuthState>().is_some() {
            return Err(Error::Attach(
                "`DigestAuth::fairing()` is attached twice to this Rocket instance: attach it \
                 once (one realm, one set of stores and catchers per instance)"
                    .into(),
            ));
        }
        let figment = rocket.figment();
        let config = Self::config(figment)?;
        let database = self.database_source(rocket)?;
        let stores = Stores::choose(
            self.credentials.clone(),
            self.counts.clone(),
            database,
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
            kind: Kind::Ignite | Kind::Liftoff | Kind::Request | Kind::Response | Kind::Shutdown,
        }
    }

    async fn on_ignite(&self, rocket: Rocket<Build>) -> fairing::Result {
        let (verifier, stores) = match self.build(&rocket).await {
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
        #[cfg(any(feature = "sqlite", feature = "postgres", feature = "mysql"))]
        if let Some(database) = stores.database() {
            rocket = rocket.manage(crate::rocket::state::DatabaseState(database));
        }
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
        for warning in liftoff_warnings(rocket, state.verifier.config()) {
            rocket::warn!("{warning}");
        }
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

    async fn on_request(&self, request: &mut Request<'_>, data: &mut Data<'_>) {
        if let Some(method) = method_as_sent(request, data).await {
            verdict::record_method_as_sent(request, method);
        }
    }

    async fn on_response<'r>(&self, request: &'r Request<'_>, response: &mut Response<'r>) {
        // Not on a 401: a user refused after the digest checked out
        // (`Refusal::Unauthenticated`) must look like any other failure.
        if let Some(Ok(verified)) = verdict::of(request) {
            if response.status() != Status::Unauthorized {
                response.set_header(Header::new(
                    "Authentication-Info",
                    verified.authentication_info.as_str(),
                ));
            }
        }
    }

    async fn on_shutdown(&self, _: &Rocket<Orbit>) {
        let closer = std::mem::take(&mut *self.closer.lock().unwrap_or_else(|e| e.into_inner()));
        closer.close().await;
    }
}

/// What would keep clients out although the app launches: no 401 catcher
/// at `/` to send the challenge (with `catcher = false` and none of the
/// app's own), or a `qop` setting the common clients cannot use.
pub(crate) fn liftoff_warnings(rocket: &Rocket<Orbit>, config: &Config) -> Vec<String> {
    let mut warnings = Vec::new();
    let challenges = rocket
        .catchers()
        .any(|c| c.code == Some(401) && c.base.path() == "/");
    if !challenges {
        warnings.push(
            "digest_auth.catcher = false and no 401 catcher is registered at \"/\": a refused \
             request gets no WWW-Authenticate challenge, so no client can log in. Register a \
             401 catcher answering with `catcher::ChallengeResponse`, or set catcher = true."
                .to_owned(),
        );
    }
    if !config.qop.contains(&Qop::Auth) && !config.allow_rfc2069 {
        warnings.push(
            "digest_auth.qop has no \"auth\": curl, Python requests and httpx do not \
             support qop=auth-int and cannot log in. Add \"auth\" to digest_auth.qop unless \
             every client supports auth-int."
                .to_owned(),
        );
    }
    warnings
}
