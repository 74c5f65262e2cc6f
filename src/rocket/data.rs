//! The data guard for `qop=auth-int`: a request guard cannot see the body,
//! so this guard reads it (within Rocket's limits), verifies the response
//! over the hash of exactly those bytes, and hands the route the user with
//! the body. Routes using it still accept `qop=auth`.

use rocket::data::{ByteUnit, Data, FromData, Outcome};
use rocket::{Ignite, Request, Rocket, Sentinel};

use crate::rocket::guard::authenticate;
use crate::rocket::state::fairing_missing;
use crate::rocket::user::{DigestUser, User};
use crate::verifier::Rejection;

/// A body type the data guard can hand over once it has checked the digest.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be read as an authenticated request body",
    label = "not a body type of `DigestAuthenticatedData`",
    note = "bodies are read as `Vec<u8>`, `String`, or `rocket::serde::json::Json<T>` with the \
            crate feature `json` (features = [\"json\"] on rocket_digest_auth in Cargo.toml); \
            other types implement `FromAuthenticatedBody`"
)]
pub trait FromAuthenticatedBody: Sized + Send {
    /// The name in Rocket's `limits` that bounds this body (`"bytes"`,
    /// `"string"`, `"json"`...). Unknown names fall back to 1 MiB.
    const LIMIT: &'static str;

    /// Turns the authenticated bytes into the value; an `Err` answers 422.
    fn from_body(bytes: Vec<u8>) -> Result<Self, String>;
}

impl FromAuthenticatedBody for Vec<u8> {
    const LIMIT: &'static str = "bytes";
    fn from_body(bytes: Vec<u8>) -> Result<Self, String> {
        Ok(bytes)
    }
}

impl FromAuthenticatedBody for String {
    const LIMIT: &'static str = "string";
    fn from_body(bytes: Vec<u8>) -> Result<Self, String> {
        String::from_utf8(bytes).map_err(|e| e.to_string())
    }
}

#[cfg(feature = "json")]
impl<T: serde::de::DeserializeOwned + Send> FromAuthenticatedBody for rocket::serde::json::Json<T> {
    const LIMIT: &'static str = "json";
    fn from_body(bytes: Vec<u8>) -> Result<Self, String> {
        rocket::serde::json::from_slice(&bytes)
            .map(rocket::serde::json::Json)
            .map_err(|e| e.to_string())
    }
}

/// An authenticated request with its body: `qop=auth-int` is verified over
/// the body's bytes; `qop=auth` is accepted too. `U` is the user as for
/// [`DigestAuthenticated`](crate::DigestAuthenticated) (a refusal answers 403
/// or 401 the same way), `T` the body (`Vec<u8>`, `String`, `Json<T>` with the
/// `json` feature), bounded by Rocket's limit for it (`limits.string` for a
/// `String`, `limits.bytes` for `Vec<u8>`).
///
/// ```
/// use rocket::{post, routes};
/// use rocket::http::Status;
/// use rocket::local::asynchronous::Client;
/// use rocket_digest_auth::{DigestAuth, DigestAuthenticatedData, User};
///
/// #[post("/notes", data = "<note>")]
/// fn create(note: DigestAuthenticatedData<User, String>) -> String {
///     format!("{} wrote {} bytes", note.user.username, note.data.len())
/// }
///
/// # rocket::async_test(async {
/// let figment = rocket::Config::figment()
///     .merge(("digest_auth.store", "memory"))
///     .merge(("digest_auth.qop", ["auth", "auth-int"]));
/// let rocket = rocket::custom(figment)
///     .attach(DigestAuth::fairing())
///     .mount("/", routes![create]);
/// let client = Client::tracked(rocket).await.unwrap();
/// let reply = client.post("/notes").body("hello").dispatch().await;
/// assert_eq!(reply.status(), Status::Unauthorized);
/// assert!(reply.headers().get_one("WWW-Authenticate").unwrap().contains("auth-int"));
/// # });
/// ```
#[derive(Debug, Clone)]
pub struct DigestAuthenticatedData<U = User, T = Vec<u8>> {
    /// The user.
    pub user: U,
    /// The body.
    pub data: T,
}

const FALLBACK_LIMIT: ByteUnit = ByteUnit::Mebibyte(1);

#[rocket::async_trait]
impl<'r, U: DigestUser, T: FromAuthenticatedBody> FromData<'r> for DigestAuthenticatedData<U, T> {
    type Error = Rejection;

    async fn from_data(request: &'r Request<'_>, data: Data<'r>) -> Outcome<'r, Self> {
        let limit = request.limits().get(T::LIMIT).unwrap_or(FALLBACK_LIMIT);
        let result = async {
            // One byte over the limit is enough to know it is too large.
            let capped = data
                .open(limit)
                .into_bytes()
                .await
                .map_err(|e| Rejection::BodyUnreadable(e.to_string()))?;
            if !capped.is_complete() {
                return Err(Rejection::PayloadTooLarge);
            }
            let bytes = capped.into_inner();
            let user = authenticate::<U>(request, Some(&bytes)).await?;
            let data = T::from_body(bytes).map_err(Rejection::InvalidBody)?;
            Ok(DigestAuthenticatedData { user, data })
        }
        .await;
        match result {
            Ok(value) => Outcome::Success(value),
            Err(rejection) => Outcome::Error((rejection.status(), rejection)),
        }
    }
}

impl<U, T> Sentinel for DigestAuthenticatedData<U, T> {
    fn abort(rocket: &Rocket<Ignite>) -> bool {
        fairing_missing(rocket, "DigestAuthenticatedData")
    }
}
