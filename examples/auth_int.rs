//! `qop=auth-int`: the digest covers the request body.
//!
//! ```text
//! cargo run --example auth_int -- create-token alice
//! cargo run --example auth_int
//! ```
//! `POST /notes` takes a body checked by the data guard: a client using
//! `auth-int` (the Rust `digest_auth` crate prefers it) signs the body's hash,
//! so a changed byte fails. Clients using `auth` (curl, requests) still work:
//! `curl --digest -u alice:<token> -d 'hello' http://127.0.0.1:8000/notes`.
//! Bodies over Rocket's `limits.string` get 413.

mod common;

use std::process::ExitCode;

use rocket::{post, routes, Build, Rocket};
use rocket_digest_auth::{DigestAuth, DigestAuthenticatedData, User};

#[post("/notes", data = "<note>")]
fn notes(note: DigestAuthenticatedData<User, String>) -> String {
    format!(
        "{} posted {} bytes: {}\n",
        note.user.username,
        note.data.len(),
        note.data
    )
}

fn rocket() -> Rocket<Build> {
    // Rocket.toml and ROCKET_* still apply; this only turns auth-int on.
    let figment = rocket::Config::figment().merge(("digest_auth.qop", ["auth", "auth-int"]));
    rocket::custom(figment)
        .attach(DigestAuth::fairing())
        .mount("/", routes![notes])
}

#[rocket::main]
async fn main() -> ExitCode {
    common::main(rocket()).await
}
