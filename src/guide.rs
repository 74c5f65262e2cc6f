//! The user guide: features, the app's own database, testing, and what the
//! compiler says when something is missing; then the README (the walk-through,
//! every configuration key, status codes, several instances, custom stores
//! and user types, auth-int and htdigest files).
//!
//! # Features
//!
//! | feature | what it adds |
//! |---|---|
//! | `sqlite` (default) | the database store on SQLite |
//! | `postgres` | the database store on PostgreSQL (`postgres://` URLs) |
//! | `mysql` | the database store on MySQL or MariaDB (`mysql://`, `mariadb://`) |
//! | `redis` | nonce counts in Redis, shared by a fleet (`counts = "redis"`) |
//! | `json` | `Json<T>` bodies for [`DigestAuthenticatedData`](crate::DigestAuthenticatedData) |
//! | `test-util` | the shared [`NonceCountStore`](crate::store::NonceCountStore) suite and the stores' record counters |
//!
//! Without any database feature the memory store (`store = "memory"`), an
//! `htdigest_file` or the app's own stores still work.
//!
//! # Configuration
//!
//! Every key of `[default.digest_auth]` is a field of [`Config`](crate::Config),
//! documented there, and listed with its default and range in the README's
//! "Configuration" table below. A value that cannot work stops ignite with a
//! message naming the full key:
//!
//! ```text
//! invalid `digest_auth.algorithms[0]`: unknown Digest algorithm `SHA-1` ...
//! cannot use the database of `databases.digest_auth.url`: cannot open the SQLite
//!   database `/srv/db/x.db`: the directory `/srv/db` does not exist
//! ```
//!
//! At liftoff the fairing warns when
//! no client could log in although the app launched: no 401 catcher at `/`
//! (`catcher = false` without one of the app's own), or a `qop` without
//! `"auth"` (curl, Python requests and httpx do not speak `auth-int`).
//!
//! # The app's own database
//!
//! By default the fairing opens `[databases.digest_auth]` itself. To keep
//! users and their tokens in one database, give it the app's rocket_db_pools
//! database instead, attached first; the crate's tables all start with
//! `digest_auth_` and its migrations are recorded in `digest_auth_migrations`,
//! so the app's own sqlx migrations (`_sqlx_migrations`) run beside them:
//!
//! ```no_run
//! use rocket::{get, routes};
//! use rocket_db_pools::{sqlx, Connection, Database};
//! use rocket_digest_auth::{DigestAuth, DigestAuthenticated, User};
//!
//! #[derive(Database)]
//! #[database("app")]
//! struct Db(sqlx::SqlitePool);
//!
//! #[get("/tokens")]
//! async fn tokens(_admin: DigestAuthenticated<User>, mut db: Connection<Db>) -> String {
//!     let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM digest_auth_tokens")
//!         .fetch_one(&mut **db)
//!         .await
//!         .unwrap_or_default();
//!     format!("{n} users")
//! }
//!
//! #[rocket::launch]
//! fn rocket() -> _ {
//!     rocket::build()
//!         .attach(Db::init()) // [default.databases.app] url = "sqlite://app.db?mode=rwc"
//!         .attach(DigestAuth::fairing().with_database::<Db>())
//!         .mount("/", routes![tokens])
//! }
//! ```
//!
//! [`DigestAuth::pool`](crate::DigestAuth::pool) hands out the pool the
//! store uses either way. Users can also stay in the app's own table, with
//! a [`CredentialStore`](crate::store::CredentialStore) over the app's pool
//! (nonce counts then stay in the configured store):
//!
//! ```no_run
//! use rocket_db_pools::{sqlx, Database};
//! use rocket_digest_auth::store::{Credential, CredentialStore, StoreError};
//! use rocket_digest_auth::DigestAuth;
//!
//! #[derive(Database)]
//! #[database("app")]
//! struct Db(sqlx::SqlitePool);
//!
//! /// `users(name TEXT PRIMARY KEY, api_token TEXT)`, the app's own table.
//! struct AppUsers(sqlx::SqlitePool);
//!
//! #[rocket::async_trait]
//! impl CredentialStore for AppUsers {
//!     async fn credential(&self, username: &str) -> Result<Option<Credential>, StoreError> {
//!         let token: Option<String> = sqlx::query_scalar("SELECT api_token FROM users WHERE name = ?")
//!             .bind(username)
//!             .fetch_optional(&self.0)
//!             .await
//!             .map_err(StoreError::new)?; // an error answers 503, never lets through
//!         Ok(token.map(|token| Credential::token(username, &token)))
//!     }
//! }
//!
//! #[rocket::launch]
//! fn rocket() -> _ {
//!     rocket::build().attach(Db::init()).attach(rocket::fairing::AdHoc::try_on_ignite(
//!         "Digest authentication over the app's users",
//!         |rocket| async {
//!             let Some(pool) = Db::fetch(&rocket).map(|db| db.0.clone()) else {
//!                 return Err(rocket);
//!             };
//!             let fairing = DigestAuth::fairing().with_credential_store(AppUsers(pool));
//!             Ok(rocket.attach(fairing))
//!         },
//!     ))
//! }
//! ```
//!
//! On SQLite the app's pool keeps its own journal mode (the fairing's own
//! pool runs WAL with `synchronous=NORMAL`); on MySQL the crate's statements
//! expect `READ COMMITTED`, which the fairing's own pool sets on every
//! connection and an app's pool does not: several instances leasing counts
//! of one nonce may then deadlock and retry.
//!
//! # Testing an app
//!
//! Rocket's local client with the memory store, a token from
//! [`Tokens`](crate::Tokens) and the crate's own Digest client:
//!
//! ```
//! use rocket::http::{Header, Status};
//! use rocket::local::blocking::Client;
//! use rocket::{get, routes};
//! use rocket_digest_auth::protocol::{ClientChallenge, DigestClient};
//! use rocket_digest_auth::{DigestAuth, DigestAuthenticated, Tokens, User};
//!
//! #[get("/me")]
//! fn me(user: DigestAuthenticated<User>) -> String {
//!     user.username.to_string()
//! }
//!
//! let figment = rocket::figment::Figment::from(rocket::Config::debug_default())
//!     .merge(("digest_auth.store", "memory"))
//!     .merge(("digest_auth.secret", "a test secret of at least 32 bytes!"));
//! let rocket = rocket::custom(figment)
//!     .attach(DigestAuth::fairing())
//!     .mount("/", routes![me]);
//! let client = Client::tracked(rocket).unwrap();
//! let tokens = client.rocket().state::<Tokens>().unwrap();
//! let token = rocket::execute(tokens.issue("alice")).unwrap();
//!
//! let refused = client.get("/me").dispatch();
//! assert_eq!(refused.status(), Status::Unauthorized);
//! let header = refused.headers().get_one("WWW-Authenticate").unwrap();
//! let challenge = ClientChallenge::parse(header).unwrap().unwrap();
//! let mut digest = DigestClient::new("alice", &token, challenge);
//!
//! let answered = client
//!     .get("/me")
//!     .header(Header::new("Authorization", digest.authorization("GET", "/me")))
//!     .dispatch();
//! assert_eq!(answered.status(), Status::Ok);
//! assert!(answered.headers().get_one("Authentication-Info").is_some());
//! assert_eq!(answered.into_string().unwrap(), "alice");
//! ```
//!
//! # When it does not compile
//!
//! A guard's user type must implement [`DigestUser`](crate::DigestUser)
//! (or be [`User`](crate::User)); the compiler says so:
//!
//! ```compile_fail,E0277
//! # use rocket_digest_auth::DigestAuthenticated;
//! struct Account;
//! #[rocket::get("/")]
//! fn home(user: DigestAuthenticated<Account>) {}
//! ```
//!
//! A body type of [`DigestAuthenticatedData`](crate::DigestAuthenticatedData)
//! must implement [`FromAuthenticatedBody`](crate::FromAuthenticatedBody):
//! `Vec<u8>`, `String`, and `Json<T>` with the `json` feature do.
//!
//! ```compile_fail,E0277
//! # use rocket_digest_auth::{DigestAuthenticatedData, User};
//! struct Payload;
//! #[rocket::post("/", data = "<body>")]
//! fn create(body: DigestAuthenticatedData<User, Payload>) {}
//! ```
//!
//! ---
//!
#![doc = include_str!("../README.md")]
