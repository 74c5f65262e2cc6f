//! The example server: `GET /` is public, `GET /me` needs Digest auth.
//! `GET /open/hello` and `GET /auth/hello` answer the same bytes, the second
//! behind the guard: the pair the benchmarks compare (bench/).
//!
//! ```text
//! cargo run --example server -- create-token alice   # prints alice's token last
//! cargo run --example server                         # serves on Rocket.toml's port
//! curl --digest -u alice:<token> http://127.0.0.1:8000/me
//! ```
//!
//! Both commands read the same Rocket configuration: Rocket.toml plus
//! `ROCKET_*` variables (`ROCKET_PORT`, `ROCKET_DATABASES`, `ROCKET_DIGEST_AUTH`,
//! `ROCKET_PROFILE=postgres` or `ROCKET_PROFILE=mysql`, see Rocket.toml).

mod common;

use std::process::ExitCode;

use rocket::serde::json::{json, Json, Value};
use rocket::{get, routes, Build, Rocket};
use rocket_digest_auth::{DigestAuth, DigestAuthenticated, User};

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
        .mount("/", routes![index, me, open_hello, auth_hello])
}

#[rocket::main]
async fn main() -> ExitCode {
    common::main(rocket()).await
}
