//! The token API of the built-in stores.

use std::sync::Arc;

use crate::error::TokenError;
use crate::store::{TokenAdmin, TokenInfo};

/// The longest username, in bytes.
const MAX_USERNAME_BYTES: usize = 256;
/// The longest token [`Tokens::set`] accepts, in bytes.
const MAX_TOKEN_BYTES: usize = 256;

/// Create, rotate, import, list and revoke users' tokens (their Digest
/// "passwords") in the built-in store. Managed by the fairing when a built-in
/// credential store is in use: take `&State<Tokens>` in a route, or
/// `rocket.state::<Tokens>()` after ignite. Changes apply to this process's
/// requests at once, and to other processes sharing the database within
/// `credential_recheck_ms`.
///
/// Errors are typed ([`TokenError`]): invalid input (400), unknown user
/// (404) and an unavailable store (503), and a route can return them as
/// they are. The first token of a new app comes from the command line of
/// [`cli`](crate::cli) (`create-token <user>`).
///
/// ```
/// use rocket::{delete, get, post, routes, State};
/// use rocket::serde::json::Json;
/// use rocket_digest_auth::{store::TokenInfo, DigestAuth, TokenError, Tokens};
///
/// // Admin routes; guard them with the app's own authorization.
/// #[post("/tokens/<username>")]
/// async fn issue(tokens: &State<Tokens>, username: &str) -> Result<String, TokenError> {
///     tokens.issue(username).await
/// }
///
/// #[get("/tokens/<username>")]
/// async fn info(tokens: &State<Tokens>, username: &str) -> Result<Json<TokenInfo>, TokenError> {
///     tokens.info(username).await.map(Json)
/// }
///
/// #[delete("/tokens/<username>")]
/// async fn revoke(tokens: &State<Tokens>, username: &str) -> Result<(), TokenError> {
///     match tokens.revoke(username).await? {
///         true => Ok(()),
///         false => Err(TokenError::UnknownUser(username.into())),
///     }
/// }
///
/// # rocket::async_test(async {
/// let rocket = rocket::custom(rocket::Config::figment().merge(("digest_auth.store", "memory")))
///     .attach(DigestAuth::fairing())
///     .mount("/", routes![issue, info, revoke])
///     .ignite()
///     .await
///     .unwrap();
/// let tokens = rocket.state::<Tokens>().unwrap();
/// tokens.set("alice", "imported secret").await.unwrap();
/// assert!(tokens.exists("alice").await.unwrap());
/// let names: Vec<String> = tokens.list().await.unwrap().into_iter().map(|t| t.username).collect();
/// assert_eq!(names, ["alice"]);
/// assert!(matches!(tokens.issue("a\nb").await, Err(TokenError::InvalidInput(_))));
/// assert!(matches!(tokens.info("bob").await, Err(TokenError::UnknownUser(_))));
/// # });
/// ```
#[derive(Clone)]
pub struct Tokens(Arc<dyn TokenAdmin>);

impl std::fmt::Debug for Tokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Tokens")
    }
}

/// Refuses a username no store could keep or a client could send.
fn check_username(username: &str) -> Result<(), TokenError> {
    check_field(
        username,
        MAX_USERNAME_BYTES,
        "a username must be 1 to 256 bytes without control characters",
    )
}

/// `Err(refusal)` unless `value` is 1 to `max_bytes` bytes without control
/// characters.
fn check_field(value: &str, max_bytes: usize, refusal: &'static str) -> Result<(), TokenError> {
    if value.is_empty() || value.len() > max_bytes || value.chars().any(char::is_control) {
        return Err(TokenError::InvalidInput(refusal));
    }
    Ok(())
}

impl Tokens {
    /// Wraps a store.
    pub fn new(admin: Arc<dyn TokenAdmin>) -> Tokens {
        Tokens(admin)
    }

    /// Creates `username`'s token, or rotates it if there is one; returns
    /// the new token (160 random bits as 40 hex digits). The old one stops
    /// working at once.
    pub async fn issue(&self, username: &str) -> Result<String, TokenError> {
        check_username(username)?;
        Ok(self.0.issue_token(username).await?)
    }

    /// Sets `username`'s token to `token`, creating the user or replacing
    /// its token: to import tokens made elsewhere. A token is 1 to 256 bytes
    /// without control characters.
    pub async fn set(&self, username: &str, token: &str) -> Result<(), TokenError> {
        check_username(username)?;
        check_field(
            token,
            MAX_TOKEN_BYTES,
            "a token must be 1 to 256 bytes without control characters",
        )?;
        Ok(self.0.set_token(username, token).await?)
    }

    /// Revokes `username`'s token; returns whether there was one.
    pub async fn revoke(&self, username: &str) -> Result<bool, TokenError> {
        check_username(username)?;
        Ok(self.0.revoke_token(username).await?)
    }

    /// Whether `username` has a token.
    pub async fn exists(&self, username: &str) -> Result<bool, TokenError> {
        check_username(username)?;
        Ok(self.0.token_info(username).await?.is_some())
    }

    /// When `username`'s token was first created and last changed;
    /// [`TokenError::UnknownUser`] when it has none. Never the token.
    pub async fn info(&self, username: &str) -> Result<TokenInfo, TokenError> {
        check_username(username)?;
        self.0
            .token_info(username)
            .await?
            .ok_or_else(|| TokenError::UnknownUser(username.to_owned()))
    }

    /// Every user with a token, by username. Never the tokens.
    pub async fn list(&self) -> Result<Vec<TokenInfo>, TokenError> {
        Ok(self.0.list_tokens().await?)
    }
}
