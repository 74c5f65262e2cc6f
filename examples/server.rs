//! The example server: `GET /` is public, `GET /me` needs Digest auth.
//!
//! ```text
//! cargo run --example server -- create-token alice   # prints alice's token last
//! cargo run --example server                         # serves on Rocket.toml's port
//! curl --digest -u alice:<token> http://127.0.0.1:8000/me
//! ```
//!
//! Both commands read the same Rocket configuration: Rocket.toml plus
//! `ROCKET_*` variables (`ROCKET_PORT`, `ROCKET_DATABASES`, `ROCKET_DIGEST_AUTH`,
//! `ROCKET_PROFILE=postgres`).

use std::process::ExitCode;

use rocket::serde::json::{json, Json, Value};
use rocket::{get, routes, Build, Rocket};
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

fn rocket() -> Rocket<Build> {
    rocket::build()
        .attach(DigestAuth::fairing())
        .mount("/", routes![index, me])
}

async fn create_token(username: &str) -> Result<String, String> {
    // Igniting runs the fairing: the same config, database and migrations.
    let rocket = rocket().ignite().await.map_err(|e| e.to_string())?;
    let tokens = rocket
        .state::<Tokens>()
        .ok_or("the configured credential store has no tokens to manage")?;
    tokens.issue(username).await.map_err(|e| e.to_string())
}

#[rocket::main]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.as_slice() {
        [] => match rocket().launch().await {
            Ok(_) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("{e}");
                ExitCode::FAILURE
            }
        },
        [command, username] if command == "create-token" => match create_token(username).await {
            Ok(token) => {
                println!("{token}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("create-token failed: {e}");
                ExitCode::FAILURE
            }
        },
        _ => {
            eprintln!("usage: server [create-token <username>]");
            ExitCode::from(2)
        }
    }
}
