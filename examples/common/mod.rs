//! The command line the examples share: the library's
//! (`rocket_digest_auth::cli`: serve, `create-token`, `revoke-token`,
//! `list-tokens`), plus `serve-with-token <username>`, which issues a token
//! in the serving process itself, printed as `TOKEN <token>`, then serves
//! (for `store = "memory"`, where a token made by another process dies with
//! it). All read the same Rocket configuration.

use std::process::ExitCode;

use rocket::{Build, Rocket};
use rocket_digest_auth::{cli, Tokens};

async fn serve_with_token(rocket: Rocket<Build>, username: &str) -> Result<(), String> {
    let rocket = rocket.ignite().await.map_err(|e| e.to_string())?;
    let tokens = rocket
        .state::<Tokens>()
        .ok_or("the configured credential store has no tokens to manage")?;
    let token = tokens.issue(username).await.map_err(|e| e.to_string())?;
    println!("TOKEN {token}");
    rocket.launch().await.map(|_| ()).map_err(|e| e.to_string())
}

/// Runs `rocket` as the command line asks.
pub async fn main(rocket: Rocket<Build>) -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.as_slice() {
        [command, username] if command == "serve-with-token" => {
            match serve_with_token(rocket, username).await {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("serve-with-token failed: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        _ => cli::run(rocket, args).await,
    }
}
