//! The example server's routes, for the in-memory store run of
//! `bench/compare.sh`.
//!
//! `examples/server.rs create-token` issues a token in a separate process:
//! with `store = "memory"` that token dies with it. This binary serves the
//! same `GET /` and `GET /me` with the same fairing and configuration
//! (Rocket.toml + `ROCKET_*`), but issues a token for the user named on its
//! command line after ignite and before launch, and prints it as
//! `TOKEN <token>`.
//!
//! ```text
//! ROCKET_DIGEST_AUTH='{store="memory"}' cargo run --release --example bench_memory_server -- alice
//! ```

use std::process::ExitCode;

use rocket::serde::json::{json, Json, Value};
use rocket::{get, routes};
use rocket_digest_auth::{DigestAuth, DigestAuthenticated, Tokens, User};

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

#[rocket::main]
async fn main() -> ExitCode {
    let Some(username) = std::env::args().nth(1) else {
        eprintln!("usage: bench_memory_server <username>");
        return ExitCode::from(2);
    };
    let rocket = match rocket::build()
        .attach(DigestAuth::fairing())
        .mount("/", routes![index, me])
        .ignite()
        .await
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::FAILURE;
        }
    };
    let Some(tokens) = rocket.state::<Tokens>() else {
        eprintln!("the configured credential store has no tokens to manage");
        return ExitCode::FAILURE;
    };
    match tokens.issue(&username).await {
        Ok(token) => println!("TOKEN {token}"),
        Err(e) => {
            eprintln!("issuing a token failed: {e}");
            return ExitCode::FAILURE;
        }
    }
    match rocket.launch().await {
        Ok(_) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{e}");
            ExitCode::FAILURE
        }
    }
}
