//! What the store suites of `tests/store_suite*.rs` share: the realm, claims
//! under the default window, two instances racing for every count, and the
//! database store's token administration (issue, rotate, revoke, userhash
//! lookup, HA1-only storage) with [`token_admin_tests!`](crate::token_admin_tests)
//! to run it on one backend.
#![cfg(any(feature = "sqlite", feature = "postgres", feature = "mysql"))]

use std::future::Future;
use std::sync::Arc;

use rocket_digest_auth::config::TokenStorage;
use rocket_digest_auth::protocol::{
    digest, Algorithm, ClientChallenge, DigestClient, HashFunction,
};
use rocket_digest_auth::store::{
    generate_token, ClaimRequest, Credential, CredentialStore, Secret, SqlStore, StoreOptions,
    TokenAdmin, DEFAULT_NC_WINDOW,
};
#[cfg(any(feature = "postgres", feature = "mysql"))]
use rocket_digest_auth::store::{Claim, NonceCountStore};
use rocket_digest_auth::verifier::{RequestParts, Verifier};
use rocket_digest_auth::Config;

/// One realm for every store of these tests, also across concurrent runs
/// sharing a PostgreSQL schema (see `tests/common/postgres.rs`).
pub const REALM: &str = "rocket_digest_auth store tests";

/// A claim under the default window.
pub fn at<'a>(nonce: &'a str, cnonce: &'a str, nc: u32, expires_at: i64) -> ClaimRequest<'a> {
    ClaimRequest::new(nonce, cnonce, nc, expires_at, DEFAULT_NC_WINDOW)
}

/// The token administration tests of this module for one database backend:
/// `$database` gives the URL of a database to run on and what must live as
/// long as the test (see [`check_store_at`]), `$pool` is an admin's
/// connection pool to read the raw rows with, and `$placeholder` how its SQL
/// spells the first parameter.
#[macro_export]
macro_rules! token_admin_tests {
    ($database:expr, $pool:ty, $placeholder:literal) => {
        #[test]
        fn tokens_issue_rotate_revoke() {
            $crate::common::store_checks::check_store_at(
                $database,
                rocket_digest_auth::store::StoreOptions::new($crate::common::store_checks::REALM),
                |store, options, _| async move {
                    $crate::common::store_checks::tokens_issue_rotate_revoke(&store, &options).await
                },
            );
        }

        #[test]
        fn userhash_lookup() {
            $crate::common::store_checks::check_store_at(
                $database,
                rocket_digest_auth::store::StoreOptions::new($crate::common::store_checks::REALM),
                |store, options, _| async move {
                    $crate::common::store_checks::userhash_lookup(&store, &options).await
                },
            );
        }

        #[test]
        fn ha1_only_storage() {
            let options = rocket_digest_auth::store::StoreOptions {
                ha1_only: true,
                ..rocket_digest_auth::store::StoreOptions::new($crate::common::store_checks::REALM)
            };
            $crate::common::store_checks::check_store_at(
                $database,
                options,
                |store, options, url| async move {
                    let (user, token) =
                        $crate::common::store_checks::ha1_only_storage(&store, &options).await;
                    // Read the database as an admin would.
                    let pool = <$pool>::connect(&url).await.unwrap();
                    let row: $crate::common::store_checks::RawRow = sqlx::query_as(concat!(
                        "SELECT token, ha1_md5, ha1_sha256, ha1_sha512_256 \
                     FROM digest_auth_tokens WHERE username = ",
                        $placeholder
                    ))
                    .bind(&user)
                    .fetch_one(&pool)
                    .await
                    .unwrap();
                    pool.close().await;
                    $crate::common::store_checks::check_raw_ha1_row(row, &user, &token);
                    store.revoke_token(&user).await.unwrap();
                },
            );
        }
    };
}

/// Runs `check(store, options, url)` on a store opened with `options` on the
/// database `database` gives: its URL and what must live as long as the test
/// (a temporary directory), or `None` when it cannot be reached (skipped, see
/// `common::require`). The store is closed afterwards.
pub fn check_store_at<Keep, Check, Checked>(
    database: impl Future<Output = Option<(String, Keep)>>,
    options: StoreOptions,
    check: Check,
) where
    Check: FnOnce(SqlStore, StoreOptions, String) -> Checked,
    Checked: Future<Output = ()>,
{
    rocket::async_test(async move {
        let Some((url, _keep)) = database.await else {
            return;
        };
        let store = SqlStore::connect_url(&url, options.clone())
            .await
            .unwrap_or_else(|e| panic!("store at {url}: {e}"));
        check(store.clone(), options, url).await;
        store.close().await;
    })
}

/// Two stores on one database, as two instances have: 100 counts on one
/// nonce, each claimed by both at once, each won exactly once.
#[cfg(any(feature = "postgres", feature = "mysql"))]
pub async fn two_instances_claim_each_count_once(a: &SqlStore, b: &SqlStore) {
    let nonce = format!(
        "two-instances-{}",
        rocket_digest_auth::store::generate_token()
    );
    let expires_at = chrono::Utc::now().timestamp() + 3600;
    let mut tasks = Vec::new();
    for nc in 1..=100u32 {
        for (i, store) in [a, b].into_iter().enumerate() {
            let (store, nonce) = (store.clone(), nonce.clone());
            tasks.push(rocket::tokio::spawn(async move {
                let claim = store.claim(at(&nonce, "c", nc, expires_at)).await;
                (nc, i, claim.expect("claim"))
            }));
        }
    }
    let mut winners = vec![Vec::new(); 101];
    for task in tasks {
        let (nc, i, claim) = task.await.unwrap();
        if claim == Claim::Accepted {
            winners[nc as usize].push(i);
        }
    }
    for (nc, w) in winners.iter().enumerate().skip(1) {
        assert_eq!(w.len(), 1, "nc {nc} was accepted by instances {w:?}");
    }
    // And afterwards, each count is refused by both.
    for nc in [1, 50, 100] {
        for store in [a, b] {
            let claim = store.claim(at(&nonce, "c", nc, expires_at)).await.unwrap();
            assert_eq!(claim, Claim::Replayed, "nc {nc}");
        }
    }
}

/// [`two_instances_claim_each_count_once`] on two stores from `connect`
/// (`None`: skipped), on a runtime whose tasks really run side by side.
#[cfg(any(feature = "postgres", feature = "mysql"))]
pub fn two_instances_race<Connect, Connected>(connect: Connect)
where
    Connect: Fn() -> Connected,
    Connected: Future<Output = Option<SqlStore>>,
{
    super::block_on_multi_thread(4, async {
        let Some(a) = connect().await else {
            return;
        };
        let b = connect().await.expect("reachable");
        two_instances_claim_each_count_once(&a, &b).await;
        a.close().await;
        b.close().await;
    });
}

/// The raw columns of a user's row: token, then the three HA1 values.
pub type RawRow = (
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
);

fn unique_user(tag: &str) -> String {
    format!("{tag}-{}", &generate_token()[..12])
}

/// A verifier over `store`, as the fairing would build it.
fn verifier(store: &SqlStore, options: &StoreOptions) -> Verifier {
    let config = Config::default()
        .with_realm(options.realm.clone())
        .with_secret(generate_token())
        .with_token_storage(if options.ha1_only {
            TokenStorage::Ha1
        } else {
            TokenStorage::Token
        })
        .with_algorithms([Algorithm::Sha256, Algorithm::Md5, Algorithm::Sha512_256Sess]);
    let store = Arc::new(store.clone());
    Verifier::new(config, store.clone(), store).expect("a valid configuration")
}

/// Signs in as `user` with `token` for each offered algorithm; returns the
/// status codes (200 for success).
async fn sign_in(verifier: &Verifier, user: &str, token: &str) -> Vec<u16> {
    let mut codes = Vec::new();
    for header in verifier.challenges(false) {
        let challenge = ClientChallenge::parse(&header).unwrap().unwrap();
        let mut client = DigestClient::new(user, token, challenge);
        let authorization = client.authorization("GET", "/me");
        let parts = RequestParts::new("GET", "/me", Some(&authorization));
        codes.push(match verifier.verify(&parts).await {
            Ok(verified) => {
                assert_eq!(&*verified.credential.username, user);
                200
            }
            Err(rejection) => rejection.status_code(),
        });
    }
    codes
}

pub async fn tokens_issue_rotate_revoke(store: &SqlStore, options: &StoreOptions) {
    let verifier = verifier(store, options);
    let user = unique_user("rotate");
    assert_eq!(store.credential(&user).await.unwrap(), None);

    let first = store.issue_token(&user).await.unwrap();
    assert_eq!(first.len(), 40);
    assert!(first.bytes().all(|b| b.is_ascii_hexdigit()));
    let credential = store.credential(&user).await.unwrap().expect("issued");
    assert_eq!(&*credential.username, user);
    assert_eq!(credential.secret, Secret::Token(first.as_str().into()));
    let created = credential.created_at.expect("created_at recorded");
    assert!((chrono::Utc::now() - created).num_seconds().abs() < 60);
    assert_eq!(sign_in(&verifier, &user, &first).await, [200, 200, 200]);

    // Rotation: a new token; the old one stops working at once.
    let second = store.issue_token(&user).await.unwrap();
    assert_ne!(second, first);
    let credential = store.credential(&user).await.unwrap().expect("rotated");
    assert_eq!(credential.secret, Secret::Token(second.as_str().into()));
    assert_eq!(sign_in(&verifier, &user, &first).await, [401, 401, 401]);
    assert_eq!(sign_in(&verifier, &user, &second).await, [200, 200, 200]);

    // Revocation: gone, and only once.
    assert!(store.revoke_token(&user).await.unwrap());
    assert_eq!(store.credential(&user).await.unwrap(), None);
    assert!(!store.revoke_token(&user).await.unwrap());
    assert_eq!(sign_in(&verifier, &user, &second).await, [401, 401, 401]);
}

pub async fn userhash_lookup(store: &SqlStore, options: &StoreOptions) {
    let user = unique_user("hashed");
    let token = store.issue_token(&user).await.unwrap();
    // The userhash a client computes (RFC 7616 3.4.4) finds the user under
    // each hash function; the one of another hash function does not.
    for (alg, hash) in [
        (Algorithm::Md5, HashFunction::Md5),
        (Algorithm::Sha256, HashFunction::Sha256),
        (Algorithm::Sha512_256, HashFunction::Sha512_256),
    ] {
        let userhash = digest::userhash(alg, &user, &options.realm);
        assert_eq!(userhash, options.userhash(hash, &user));
        let found: Option<Credential> =
            store.credential_by_userhash(hash, &userhash).await.unwrap();
        let found = found.unwrap_or_else(|| panic!("{user} not found by its {alg} userhash"));
        assert_eq!(&*found.username, user);
        assert_eq!(found.secret, Secret::Token(token.as_str().into()));
        let other = if hash == HashFunction::Md5 {
            HashFunction::Sha256
        } else {
            HashFunction::Md5
        };
        assert_eq!(
            store
                .credential_by_userhash(other, &userhash)
                .await
                .unwrap(),
            None
        );
    }
    let h = HashFunction::Sha256;
    // The userhash is of this realm only.
    let elsewhere = digest::userhash(Algorithm::Sha256, &user, "another realm");
    assert_eq!(
        store.credential_by_userhash(h, &elsewhere).await.unwrap(),
        None
    );
    // A rotated token is found under the same userhash; a revoked user is not.
    let rotated = store.issue_token(&user).await.unwrap();
    let found = store
        .credential_by_userhash(h, &options.userhash(h, &user))
        .await
        .unwrap()
        .expect("still found after rotation");
    assert_eq!(found.secret, Secret::Token(rotated.into()));
    assert!(store.revoke_token(&user).await.unwrap());
    assert_eq!(
        store
            .credential_by_userhash(h, &options.userhash(h, &user))
            .await
            .unwrap(),
        None
    );
}

/// Issues a token in HA1-only mode and checks what the store returns;
/// returns (user, token) for a look at the raw row.
pub async fn ha1_only_storage(store: &SqlStore, options: &StoreOptions) -> (String, String) {
    assert!(options.ha1_only);
    let user = unique_user("ha1");
    let token = store.issue_token(&user).await.unwrap();
    let credential = store.credential(&user).await.unwrap().expect("issued");
    assert!(
        matches!(credential.secret, Secret::Ha1 { .. }),
        "the token is stored: {:?}",
        credential.secret
    );
    for alg in [
        Algorithm::Md5,
        Algorithm::Md5Sess,
        Algorithm::Sha256,
        Algorithm::Sha256Sess,
        Algorithm::Sha512_256,
        Algorithm::Sha512_256Sess,
    ] {
        assert_eq!(
            credential.ha1(alg, &options.realm),
            Some(digest::ha1(alg, &user, &options.realm, &token)),
            "{alg}"
        );
    }
    // The user signs in with the token the store no longer has.
    let verifier = verifier(store, options);
    assert_eq!(sign_in(&verifier, &user, &token).await, [200, 200, 200]);
    assert_eq!(
        sign_in(&verifier, &user, &generate_token()).await,
        [401, 401, 401]
    );
    (user, token)
}

pub fn check_raw_ha1_row(row: RawRow, user: &str, token: &str) {
    let (stored_token, md5, sha256, sha512_256) = row;
    assert_eq!(stored_token, None, "the token column must be NULL");
    let expected = Secret::ha1_values(user, REALM, token);
    assert_eq!(md5.as_deref(), Some(expected[0].as_str()));
    assert_eq!(sha256.as_deref(), Some(expected[1].as_str()));
    assert_eq!(sha512_256.as_deref(), Some(expected[2].as_str()));
    assert_eq!(
        expected[1],
        digest::ha1(Algorithm::Sha256, user, REALM, token)
    );
}
