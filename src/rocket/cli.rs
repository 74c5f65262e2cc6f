//! A ready command line for an app's `main`: token commands, or the server.
//!
//! ```no_run
//! use std::process::ExitCode;
//! use rocket::{get, routes, Build, Rocket};
//! use rocket_digest_auth::{DigestAuth, DigestAuthenticated};
//!
//! #[get("/me")]
//! fn me(user: DigestAuthenticated) -> String {
//!     user.username.to_string()
//! }
//!
//! fn rocket() -> Rocket<Build> {
//!     rocket::build().attach(DigestAuth::fairing()).mount("/", routes![me])
//! }
//!
//! #[rocket::main]
//! async fn main() -> ExitCode {
//!     // `app` serves; `app create-token alice` prints alice's new token.
//!     rocket_digest_auth::cli::main(rocket()).await
//! }
//! ```
//!
//! | command | stdout | exit code |
//! |---|---|---|
//! | (none) | Rocket's launch output | 0 after a clean shutdown, [`CANNOT_START`] if launch failed |
//! | `create-token <user>` | the new token, one line | 0 |
//! | `revoke-token <user>` | nothing | 0, or [`UNKNOWN_USER`] when the user had no token |
//! | `list-tokens` | one line per user: `username`, created, changed (RFC 3339, UTC), tab-separated | 0 |
//! | `help`, `--help`, `-h` | the usage | 0 |
//!
//! Any command may also end with [`USAGE`] (unknown command, wrong
//! arguments, an invalid username), [`UNAVAILABLE`] (the store could not be
//! opened or could not answer) or [`CANNOT_START`] (the rocket did not
//! ignite: a configuration mistake, naming the key, or no built-in
//! credential store to manage). Messages go to stderr.
//!
//! A command ignites the rocket without launching it, so it reads the same
//! configuration as the server (Rocket.toml, `ROCKET_*` variables), runs the
//! same migrations, and listens on nothing. Rocket's log is turned off for
//! it, because Rocket writes its log to stdout: stdout holds the result
//! alone, and when ignite fails the command says why on stderr.

use std::fmt::Display;
use std::io::Write;
use std::process::ExitCode;

use chrono::SecondsFormat;
use rocket::config::LogLevel;
use rocket::figment::Figment;
use rocket::log::private as log;
use rocket::{Build, Rocket};

use crate::error::{Error, TokenError};
use crate::rocket::builtin::{DatabaseSource, Stores};
use crate::rocket::tokens::Tokens;
use crate::rocket::DigestAuth;
use crate::store::TokenInfo;

/// Exit code: the user named had no token (`revoke-token`).
pub const UNKNOWN_USER: u8 = 1;
/// Exit code: unknown command, wrong arguments, or invalid input.
pub const USAGE: u8 = 2;
/// Exit code: the store could not answer.
pub const UNAVAILABLE: u8 = 3;
/// Exit code: the rocket could not ignite or launch.
pub const CANNOT_START: u8 = 4;

/// The usage, as `help` prints it.
pub const USAGE_TEXT: &str =
    "usage: [create-token <username> | revoke-token <username> | list-tokens]\n\
     without arguments, serves the app\n";

/// A token command of the command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// `create-token <username>`: create or rotate the user's token, print it.
    CreateToken(String),
    /// `revoke-token <username>`: revoke the user's token.
    RevokeToken(String),
    /// `list-tokens`: print every user with a token.
    ListTokens,
    /// `help`: print the usage.
    Help,
}

/// What the arguments asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Invocation {
    /// No arguments: serve.
    Serve,
    /// A token command.
    Command(Command),
}

/// Arguments that are no command of this command line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown command or wrong arguments: {0}")]
pub struct UsageError(String);

impl Invocation {
    /// Reads the arguments after the program's name.
    ///
    /// ```
    /// use rocket_digest_auth::cli::{Command, Invocation};
    ///
    /// assert_eq!(Invocation::parse(Vec::<String>::new()), Ok(Invocation::Serve));
    /// assert_eq!(
    ///     Invocation::parse(["create-token", "alice"]),
    ///     Ok(Invocation::Command(Command::CreateToken("alice".into())))
    /// );
    /// assert!(Invocation::parse(["create-token"]).is_err());
    /// ```
    pub fn parse<I, S>(args: I) -> Result<Invocation, UsageError>
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let args: Vec<String> = args.into_iter().map(Into::into).collect();
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let command = match args.as_slice() {
            [] => return Ok(Invocation::Serve),
            ["create-token", user] => Command::CreateToken((*user).to_owned()),
            ["revoke-token", user] => Command::RevokeToken((*user).to_owned()),
            ["list-tokens"] => Command::ListTokens,
            ["help" | "--help" | "-h"] => Command::Help,
            other => return Err(UsageError(other.join(" "))),
        };
        Ok(Invocation::Command(command))
    }
}

/// Runs the command line of this process's arguments over `rocket`: see
/// the [module docs](self).
pub async fn main(rocket: Rocket<Build>) -> ExitCode {
    // Collected first: `Args` is not `Send`, and the future must be.
    let args: Vec<String> = std::env::args().skip(1).collect();
    run(rocket, args).await
}

/// Runs the command line of `args` (without the program's name) over
/// `rocket`: serves when there are none.
pub async fn run<I, S>(rocket: Rocket<Build>, args: I) -> ExitCode
where
    I: IntoIterator<Item = S>,
    S: Into<String>,
{
    match Invocation::parse(args) {
        Ok(Invocation::Serve) => match rocket.launch().await {
            Ok(_) => ExitCode::SUCCESS,
            Err(e) => {
                e.pretty_print();
                ExitCode::from(CANNOT_START)
            }
        },
        Ok(Invocation::Command(command)) => ExitCode::from(command.run(rocket).await),
        Err(e) => {
            eprint!("{e}\n{USAGE_TEXT}");
            ExitCode::from(USAGE)
        }
    }
}

impl Command {
    /// Ignites `rocket` (with its log off) and runs the command;
    /// returns the exit code (see the [module docs](self)).
    pub async fn run(self, rocket: Rocket<Build>) -> u8 {
        if self == Command::Help {
            print!("{USAGE_TEXT}");
            return 0;
        }
        let rocket = quiet(rocket);
        let figment = rocket.figment().clone();
        let rocket = match rocket.ignite().await {
            Ok(rocket) => rocket,
            Err(e) => {
                // Reading the kind marks the error handled: no panic on drop.
                let kind = e.kind().to_string();
                let (code, why) = match why_not_ignited(&figment).await {
                    Some(found) => found,
                    None => (CANNOT_START, format!("the app did not start: {kind}")),
                };
                return fail(code, why);
            }
        };
        let Some(tokens) = rocket.state::<Tokens>() else {
            return fail(
                CANNOT_START,
                "the configured credential store has no tokens to manage",
            );
        };
        match self.run_with(tokens).await {
            Ok(lines) => {
                print_lines(lines);
                0
            }
            Err(TokenError::InvalidInput(rule)) => fail(USAGE, rule),
            Err(e @ TokenError::UnknownUser(_)) => fail(UNKNOWN_USER, e),
            Err(e @ TokenError::Unavailable(_)) => fail(UNAVAILABLE, e),
        }
    }

    /// The lines to print on stdout.
    async fn run_with(&self, tokens: &Tokens) -> Result<Vec<String>, TokenError> {
        Ok(match self {
            Command::CreateToken(user) => vec![tokens.issue(user).await?],
            Command::RevokeToken(user) => {
                if !tokens.revoke(user).await? {
                    return Err(TokenError::UnknownUser(user.clone()));
                }
                eprintln!("revoked the token of `{user}`");
                Vec::new()
            }
            Command::ListTokens => tokens.list().await?.iter().map(list_line).collect(),
            // Answered before ignite.
            Command::Help => Vec::new(),
        })
    }
}

/// One line of `list-tokens`: usernames hold no control characters, so no
/// tab.
fn list_line(info: &TokenInfo) -> String {
    let time = |t: chrono::DateTime<chrono::Utc>| t.to_rfc3339_opts(SecondsFormat::Secs, true);
    format!(
        "{}\t{}\t{}",
        info.username,
        time(info.created_at),
        time(info.updated_at)
    )
}

fn print_lines(lines: Vec<String>) {
    let mut out = std::io::stdout().lock();
    for line in lines {
        // A closed stdout (`| head`) is not the command's failure.
        let _ = writeln!(out, "{line}");
    }
    let _ = out.flush();
}

fn fail(code: u8, message: impl Display) -> u8 {
    eprintln!("error: {message}");
    code
}

/// `rocket` with its log off. Rocket's logger writes to stdout, and is
/// installed when the rocket is built, before this can choose another one;
/// fairings log during ignite before Rocket applies `log_level`, hence the
/// level set here first.
fn quiet(rocket: Rocket<Build>) -> Rocket<Build> {
    log::set_max_level(log::LevelFilter::Off);
    let figment = rocket.figment().clone().merge(("log_level", LogLevel::Off));
    rocket.configure(figment)
}

/// What the fairing would have logged when ignite failed: opens the
/// configured stores again to see their error (and closes them). `None`
/// when this crate's part starts: something else of the app failed.
async fn why_not_ignited(figment: &Figment) -> Option<(u8, String)> {
    let failed = |e: Error| match e {
        e @ (Error::Store(_) | Error::Database { .. }) => (UNAVAILABLE, e.to_string()),
        other => (CANNOT_START, other.to_string()),
    };
    let config = match DigestAuth::config(figment) {
        Ok(config) => config,
        Err(e) => return Some(failed(e)),
    };
    match Stores::choose(None, None, DatabaseSource::Configured, figment, &config).await {
        Ok(stores) => {
            stores.closer().close().await;
            None
        }
        Err(e) => Some(failed(e)),
    }
}
