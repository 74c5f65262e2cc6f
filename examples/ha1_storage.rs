//! `token_storage = "ha1"`: the database keeps only HA1 values
//! (`H(username:realm:token)` per hash function); the token is printed once.
//!
//! ```text
//! ROCKET_DATABASES='{digest_auth={url="sqlite://ha1.db?mode=rwc"}}' \
//!     cargo run --example ha1_storage -- create-token alice
//! ROCKET_DATABASES='{digest_auth={url="sqlite://ha1.db?mode=rwc"}}' \
//!     cargo run --example ha1_storage
//! curl --digest -u alice:<token> http://127.0.0.1:8000/me
//! ```
//! Trade-off: an HA1 is still password-equivalent for its realm, and
//! changing the realm invalidates every stored HA1 (re-issue the tokens).
//! The token is printed once by create-token; only its HA1 values are kept.

mod common;

use std::process::ExitCode;

use rocket::{get, routes, Build, Rocket};
use rocket_digest_auth::{DigestAuth, DigestAuthenticated, User};

#[get("/me")]
fn me(user: DigestAuthenticated<User>) -> String {
    format!("hello, {}\n", user.username)
}

fn rocket() -> Rocket<Build> {
    let figment = rocket::Config::figment().merge(("digest_auth.token_storage", "ha1"));
    rocket::custom(figment)
        .attach(DigestAuth::fairing())
        .mount("/", routes![me])
}

#[rocket::main]
async fn main() -> ExitCode {
    common::main(rocket()).await
}
