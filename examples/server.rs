//! The example server: `GET /` is public, `GET /me` needs Digest auth, and
//! `GET /admin` admits the user `admin` only (403 for anyone else).
//! `GET /open/hello` and `GET /auth/hello` answer the same bytes, the second
//! behind the guard: the pair the benchmarks compare (bench/).
//!
//! ```text
//! cargo run -q --example server -- create-token alice   # prints alice's token
//! cargo run --example server                         # serves on Rocket.toml's port
//! curl --digest -u alice:<token> http://127.0.0.1:8000/me
//! ```
//!
//! Both commands read the same Rocket configuration: Rocket.toml plus
//! `ROCKET_*` variables (`ROCKET_PORT`, `ROCKET_DATABASES`, `ROCKET_DIGEST_AUTH`,
//! `ROCKET_PROFILE=postgres` or `ROCKET_PROFILE=mysql`, see Rocket.toml).
//! The command line is the library's (`rocket_digest_auth::cli`):
//! `create-token`, `revoke-token`, `list-tokens`.

mod common;

use std::process::ExitCode;

use rocket::serde::json::{json, Json, Value};
use rocket::{get, routes, Build, Request, Rocket};
use rocket_digest_auth::store::Credential;
use rocket_digest_auth::{DigestAuth, DigestAuthenticated, DigestUser, Refusal, User};

#[get("/")]
fn index() -> &'static str {
    "rocket_digest_auth example.\n\
     GET /me is protected with HTTP Digest authentication.\n\
     Create a token:  cargo run --example server -- create-token alice\n\
     Then:            curl --digest -u alice:<token> http://127.0.0.1:8000/me\n"
}

#[get("/me")]
fn me(user: DigestAuthenticated<User>) -> Json<Value> {
    Json(json!({ "username": user.username }))
}

/// A user allowed into `/admin`: the username `admin` only.
struct Admin {
    username: std::sync::Arc<str>,
}

impl DigestUser for Admin {
    async fn from_credential(credential: Credential, _: &Request<'_>) -> Result<Self, Refusal> {
        match &*credential.username {
            "admin" => Ok(Admin {
                username: credential.username,
            }),
            _ => Err(Refusal::Forbidden),
        }
    }
}

#[get("/admin")]
fn admin(user: DigestAuthenticated<Admin>) -> Json<Value> {
    Json(json!({ "admin": user.username }))
}

/// The open half of the benchmarks' route pair.
#[get("/open/hello")]
fn open_hello() -> &'static str {
    "hello\n"
}

/// The same bytes as `/open/hello`, behind the guard.
#[get("/auth/hello")]
fn auth_hello(_user: DigestAuthenticated<User>) -> &'static str {
    "hello\n"
}

fn rocket() -> Rocket<Build> {
    rocket::build()
        .attach(DigestAuth::fairing())
        .mount("/", routes![index, me, admin, open_hello, auth_hello])
}

#[rocket::main]
async fn main() -> ExitCode {
    common::main(rocket()).await
}
