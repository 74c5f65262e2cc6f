//! Which stores serve the fairing: the app's own where it passed them, an
//! Apache `htdigest` file where `htdigest_file` names one, and otherwise the
//! built-in store `store` chooses (the database, with its credential cache,
//! or this process's memory). The failure limit is shared through Redis
//! where it keeps the counts, else through the built-in database.
//!
//! ```no_run
//! use rocket_digest_auth::{store::MemoryStore, store::StoreOptions, DigestAuth};
//!
//! // The app's own nonce-count store; credentials still come from the configuration.
//! let counts = MemoryStore::new(StoreOptions::new("example"));
//! let rocket = rocket::build().attach(DigestAuth::fairing().with_nonce_count_store(counts));
//! # let _ = rocket;
//! ```

use std::sync::Arc;

use rocket::figment::Figment;
#[cfg(any(feature = "sqlite", feature = "postgres", feature = "mysql"))]
use rocket::{futures::future::BoxFuture, Build, Rocket};

use crate::config::{Config, CountsKind, InvalidConfig, StoreKind, TokenStorage};
use crate::rocket::tokens::Tokens;
use crate::store::{
    CredentialStore, FailureStore, HtdigestFile, MemoryStore, NonceCountStore, StoreOptions,
    TokenAdmin,
};
use crate::Error;

/// The stores in use.
pub(crate) struct Stores {
    pub(crate) credentials: Arc<dyn CredentialStore>,
    pub(crate) counts: Arc<dyn NonceCountStore>,
    /// Where the fleet's failure counts live; `None`: in each process.
    pub(crate) failures: Option<Arc<dyn FailureStore>>,
    /// Managed only when the built-in store is the credential source.
    pub(crate) tokens: Option<Tokens>,
    /// The database store in use, if any.
    #[cfg(any(feature = "sqlite", feature = "postgres", feature = "mysql"))]
    database: Option<Arc<crate::store::SqlStore>>,
    /// Whether the fairing opened that database's pool (and closes it at
    /// shutdown), rather than the app.
    #[cfg(any(feature = "sqlite", feature = "postgres", feature = "mysql"))]
    owns_database: bool,
}

/// Opens the database store on the app's pool.
#[cfg(any(feature = "sqlite", feature = "postgres", feature = "mysql"))]
pub(crate) type OpenOnPool = Box<
    dyn FnOnce(
            StoreOptions,
        )
            -> BoxFuture<'static, Result<crate::store::SqlStore, crate::store::StoreError>>
        + Send,
>;

/// The app's own rocket_db_pools database, given to
/// [`DigestAuth::with_database`](crate::DigestAuth::with_database).
#[cfg(any(feature = "sqlite", feature = "postgres", feature = "mysql"))]
pub(crate) struct AppDatabase {
    /// `Database::NAME`: the database is `[databases.NAME]`.
    pub(crate) name: &'static str,
    /// The database type, for messages.
    pub(crate) type_name: &'static str,
    /// Its pool, once its own fairing ignited.
    pub(crate) fetch: fn(&Rocket<Build>) -> Option<OpenOnPool>,
}

#[cfg(any(feature = "sqlite", feature = "postgres", feature = "mysql"))]
impl AppDatabase {
    /// The app's database `D`.
    pub(crate) fn of<D>() -> AppDatabase
    where
        D: rocket_db_pools::Database,
        D::Pool: crate::store::SqlPool,
    {
        AppDatabase {
            name: D::NAME,
            type_name: std::any::type_name::<D>(),
            fetch: |rocket| {
                let pool: D::Pool = (**rocket.state::<D>()?).clone();
                Some(Box::new(move |options| {
                    Box::pin(async move { crate::store::SqlStore::from_pool(&pool, options).await })
                }))
            },
        }
    }

    /// The key naming this database's URL.
    pub(crate) fn url_key(&self) -> String {
        format!("databases.{}.url", self.name)
    }
}

/// Where the database store's pool comes from.
pub(crate) enum DatabaseSource {
    /// `[databases.digest_auth]`, opened by the fairing.
    Configured,
    /// The app's own database.
    #[cfg(any(feature = "sqlite", feature = "postgres", feature = "mysql"))]
    App {
        /// Its URL key, for messages.
        key: String,
        /// Opens the store on its pool.
        open: OpenOnPool,
    },
}

impl Stores {
    /// The app's stores where given, the configured ones for the rest.
    pub(crate) async fn choose(
        credentials: Option<Arc<dyn CredentialStore>>,
        counts: Option<Arc<dyn NonceCountStore>>,
        database: DatabaseSource,
        figment: &Figment,
        config: &Config,
    ) -> Result<Stores, Error> {
        let credentials = match (credentials, &config.htdigest_file) {
            (Some(custom), _) => Some(custom),
            (None, Some(path)) => {
                let file = HtdigestFile::open(path, &config.realm)
                    .map_err(|e| InvalidConfig::new("htdigest_file", e.to_string()))?;
                Some(Arc::new(file) as Arc<dyn CredentialStore>)
            }
            (None, None) => None,
        };
        let (counts, redis_failures) = match counts {
            Some(custom) => (Some(custom), None),
            None if config.counts == CountsKind::Redis => {
                let (counts, failures) = Stores::redis(figment).await?;
                (Some(counts), Some(failures))
            }
            None => (None, None),
        };
        if let (Some(credentials), Some(counts)) = (&credentials, &counts) {
            return Ok(Stores {
                credentials: credentials.clone(),
                counts: counts.clone(),
                failures: redis_failures,
                tokens: None,
                #[cfg(any(feature = "sqlite", feature = "postgres", feature = "mysql"))]
                database: None,
                #[cfg(any(feature = "sqlite", feature = "postgres", feature = "mysql"))]
                owns_database: false,
            });
        }
        let builtin = Stores::open(database, figment, config).await?;
        Ok(Stores {
            tokens: builtin.tokens.filter(|_| credentials.is_none()),
            credentials: credentials.unwrap_or(builtin.credentials),
            counts: counts.unwrap_or(builtin.counts),
            failures: redis_failures.or(builtin.failures),
            #[cfg(any(feature = "sqlite", feature = "postgres", feature = "mysql"))]
            database: builtin.database,
            #[cfg(any(feature = "sqlite", feature = "postgres", feature = "mysql"))]
            owns_database: builtin.owns_database,
        })
    }

    /// The Redis store of `[databases.digest_auth_counts]`, for counts and failures.
    #[cfg_attr(not(feature = "redis"), allow(unused_variables))]
    async fn redis(
        figment: &Figment,
    ) -> Result<(Arc<dyn NonceCountStore>, Arc<dyn FailureStore>), Error> {
        #[cfg(feature = "redis")]
        let stores = crate::store::RedisStore::from_figment(figment)
            .await
            .map(Arc::new)
            .map(|store| (store.clone() as Arc<dyn NonceCountStore>, store as _));
        #[cfg(not(feature = "redis"))]
        let stores =
            Err(InvalidConfig::new("counts", "\"redis\" needs the `redis` feature").into());
        stores
    }

    fn of<S: CredentialStore + NonceCountStore + TokenAdmin>(store: Arc<S>) -> Stores {
        Stores {
            credentials: store.clone(),
            counts: store.clone(),
            failures: None,
            tokens: Some(Tokens::new(store)),
            #[cfg(any(feature = "sqlite", feature = "postgres", feature = "mysql"))]
            database: None,
            #[cfg(any(feature = "sqlite", feature = "postgres", feature = "mysql"))]
            owns_database: false,
        }
    }

    /// The built-in store `store = ...` chose.
    #[cfg_attr(
        not(any(feature = "sqlite", feature = "postgres", feature = "mysql")),
        allow(unused_variables)
    )]
    async fn open(
        database: DatabaseSource,
        figment: &Figment,
        config: &Config,
    ) -> Result<Stores, Error> {
        config.validate_builtin_store()?;
        #[cfg(any(feature = "sqlite", feature = "postgres", feature = "mysql"))]
        if matches!(database, DatabaseSource::App { .. }) && config.store == StoreKind::Memory {
            return Err(InvalidConfig::new(
                "store",
                "is \"memory\", but the fairing was given the app's database \
                 (`with_database`): leave `store` out, or drop `with_database`",
            )
            .into());
        }
        let options = StoreOptions {
            realm: config.realm.clone(),
            ha1_only: config.token_storage == TokenStorage::Ha1,
            nc_lease: config.nc_lease,
        };
        match config.store {
            StoreKind::Memory => Ok(Stores::of(Arc::new(MemoryStore::new(options)))),
            #[cfg(any(feature = "sqlite", feature = "postgres", feature = "mysql"))]
            StoreKind::Database => {
                let (opened, key, owns_database) = match database {
                    DatabaseSource::Configured => {
                        let db = crate::DigestAuth::database_figment(figment);
                        let key = format!("databases.{}.url", crate::DigestAuth::DATABASE_NAME);
                        (
                            crate::store::SqlStore::connect(&db, options).await,
                            key,
                            true,
                        )
                    }
                    DatabaseSource::App { key, open } => (open(options).await, key, false),
                };
                let store = Arc::new(opened.map_err(|source| Error::Database { key, source })?);
                if config.credential_cache_ttl == 0 {
                    return Ok(Stores {
                        database: Some(store.clone()),
                        owns_database,
                        failures: Some(store.clone()),
                        ..Stores::of(store)
                    });
                }
                // Only lookups are cached: tokens changed through `Tokens`
                // clear the cache, changes by others within the recheck.
                let ttl = std::time::Duration::from_secs(config.credential_cache_ttl);
                let recheck = std::time::Duration::from_millis(config.credential_recheck_ms);
                let cached = Arc::new(
                    crate::store::CachedCredentials::new(store.clone(), ttl).with_recheck(recheck),
                );
                Ok(Stores {
                    credentials: cached.clone(),
                    counts: store.clone(),
                    failures: Some(store.clone()),
                    tokens: Some(Tokens::new(cached)),
                    database: Some(store),
                    owns_database,
                })
            }
            #[cfg(not(any(feature = "sqlite", feature = "postgres", feature = "mysql")))]
            StoreKind::Database => unreachable!("refused by Config::validate_builtin_store"),
        }
    }

    /// What closes the stores the fairing opened, to run at shutdown.
    pub(crate) fn closer(&self) -> Closer {
        Closer {
            #[cfg(any(feature = "sqlite", feature = "postgres", feature = "mysql"))]
            database: self.database.clone().filter(|_| self.owns_database),
        }
    }

    /// The database store in use, whoever opened its pool.
    #[cfg(any(feature = "sqlite", feature = "postgres", feature = "mysql"))]
    pub(crate) fn database(&self) -> Option<Arc<crate::store::SqlStore>> {
        self.database.clone()
    }
}

/// Closes the stores the fairing opened (the app's own stores are the app's).
#[derive(Default)]
pub(crate) struct Closer {
    #[cfg(any(feature = "sqlite", feature = "postgres", feature = "mysql"))]
    database: Option<Arc<crate::store::SqlStore>>,
}

impl Closer {
    /// Waits for the database's connections to close.
    pub(crate) async fn close(&self) {
        #[cfg(any(feature = "sqlite", feature = "postgres", feature = "mysql"))]
        if let Some(database) = &self.database {
            database.close().await;
        }
    }
}
