//! Micro-benchmarks: header parsing, a full verification per algorithm,
//! nonce minting and checking, and one nonce-count claim per built-in store.
//!
//! ```text
//! cargo bench --bench digest                        # memory + SQLite
//! cargo bench --bench digest --features postgres    # + PostgreSQL (when reachable)
//! ```
//!
//! PostgreSQL is reached at `DIGEST_AUTH_TEST_POSTGRES_URL` (default
//! `postgres://postgres@127.0.0.1:5432/test`); when it is not reachable its
//! benchmark is skipped with a printed reason.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use rocket::tokio::runtime::Runtime;
use rocket_digest_auth::protocol::{
    Algorithm, Authorization, ClientChallenge, DigestClient, NonceKey,
};
use rocket_digest_auth::store::{MemoryStore, NonceCountStore, StoreOptions, TokenAdmin};
use rocket_digest_auth::verifier::{RequestParts, Verifier};
use rocket_digest_auth::Config;

const SECRET: &str = "benchmark secret of at least thirty-two bytes";

fn runtime() -> Runtime {
    rocket::tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime")
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after 1970")
        .as_secs() as i64
}

/// A verifier over a memory store offering only `alg`, with user `alice`.
fn verifier(rt: &Runtime, alg: Algorithm) -> (Verifier, String) {
    let config = Config::default()
        .with_realm("bench")
        .with_algorithms([alg])
        .with_secret(SECRET);
    let store = Arc::new(MemoryStore::new(StoreOptions::new(&config.realm)));
    let token = rt
        .block_on(store.issue_token("alice"))
        .expect("a token from the memory store");
    let verifier = Verifier::new(config, store.clone(), store).expect("a valid configuration");
    (verifier, token)
}

/// A client on a fresh nonce from `verifier`'s challenge.
fn client(verifier: &Verifier, token: &str) -> DigestClient {
    let challenge = verifier.challenges(false).remove(0);
    let challenge = ClientChallenge::parse(&challenge)
        .expect("a valid challenge")
        .expect("a Digest challenge");
    DigestClient::new("alice", token, challenge)
}

fn header_parse(c: &mut Criterion) {
    let rt = runtime();
    let (verifier, token) = verifier(&rt, Algorithm::Sha256);
    let header = client(&verifier, &token).authorization("GET", "/me");
    c.bench_function("parse Authorization (SHA-256, qop=auth)", |b| {
        b.iter(|| {
            Authorization::parse(std::hint::black_box(&header))
                .expect("parses")
                .expect("Digest")
        })
    });
}

fn verify(c: &mut Criterion) {
    let rt = runtime();
    for alg in [Algorithm::Md5, Algorithm::Sha256, Algorithm::Sha512_256] {
        let (verifier, token) = verifier(&rt, alg);
        let mut client = client(&verifier, &token);
        let mut used = 0u32;
        c.bench_function(&format!("verify GET /me ({alg}, memory store)"), |b| {
            b.iter_batched(
                || {
                    // A fresh nonce now and then keeps the store's per-nonce
                    // record small; every request still has a fresh nc.
                    used += 1;
                    if used.is_multiple_of(10_000) {
                        client = self::client(&verifier, &token);
                    }
                    client.authorization("GET", "/me")
                },
                |header| {
                    let parts = RequestParts::new("GET", "/me", Some(&header));
                    let verified = rt.block_on(verifier.verify(&parts));
                    assert!(verified.is_ok(), "rejected: {verified:?}");
                    verified
                },
                BatchSize::SmallInput,
            )
        });
    }
}

fn nonces(c: &mut Criterion) {
    let key = NonceKey::new(SECRET.as_bytes(), "bench", None);
    let t = now();
    c.bench_function("nonce mint", |b| {
        b.iter(|| key.mint(std::hint::black_box(t)))
    });
    let nonce = key.mint(t);
    c.bench_function("nonce check", |b| {
        b.iter(|| key.check(std::hint::black_box(&nonce), t, 300))
    });
}

/// One accepted claim per iteration: a new nc each time, a new nonce every
/// 1000 claims (as a busy client would see).
fn bench_claims(
    c: &mut Criterion,
    rt: &Runtime,
    name: &str,
    store: Arc<dyn NonceCountStore>,
    expires_at: i64,
) {
    let counter = AtomicU64::new(0);
    let run = format!("{:x}", now());
    c.bench_function(&format!("nonce-count claim ({name})"), |b| {
        b.to_async(rt).iter(|| {
            let n = counter.fetch_add(1, Ordering::Relaxed);
            let store = store.clone();
            let nonce = format!("bench-{run}-{}", n / 1000);
            async move {
                let claim = store
                    .claim(rocket_digest_auth::store::ClaimRequest::new(
                        &nonce,
                        "cnonce",
                        (n % 1000 + 1) as u32,
                        expires_at,
                        rocket_digest_auth::store::DEFAULT_NC_WINDOW,
                    ))
                    .await
                    .expect("the store answers");
                assert_eq!(claim, rocket_digest_auth::store::Claim::Accepted);
            }
        })
    });
}

fn claims(c: &mut Criterion) {
    let rt = runtime();
    let memory = Arc::new(MemoryStore::new(StoreOptions::new("bench")));
    bench_claims(c, &rt, "memory", memory, now() + 3600);

    // Leases (the default) and a row per claim, each in its own file: the
    // choice is recorded per database.
    #[cfg(feature = "sqlite")]
    for (nc_lease, name) in [
        (None, "SQLite file, WAL, nc_lease 256 (default)"),
        (Some(0), "SQLite file, WAL, nc_lease 0"),
    ] {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let url = format!("sqlite://{}/bench.db?mode=rwc", dir.path().display());
        let options = StoreOptions {
            nc_lease,
            ..StoreOptions::new("bench")
        };
        let store = rt
            .block_on(rocket_digest_auth::store::SqlStore::connect_url(
                &url, options,
            ))
            .expect("a SQLite store");
        bench_claims(c, &rt, name, Arc::new(store.clone()), now() + 3600);
        rt.block_on(store.close());
    }

    #[cfg(feature = "postgres")]
    {
        let url = std::env::var("DIGEST_AUTH_TEST_POSTGRES_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
        match rt.block_on(rocket_digest_auth::store::SqlStore::connect_url(
            &url,
            StoreOptions::new("bench"),
        )) {
            Ok(store) => {
                // The database is shared with the test suite: the rows are
                // written already expired (a claim does not look at
                // `expires_at`), so removing the expired rows afterwards
                // takes exactly what this benchmark wrote and nothing live.
                bench_claims(c, &rt, "PostgreSQL", Arc::new(store.clone()), now() - 1);
                let _ = rt.block_on(store.remove_expired(now()));
                rt.block_on(store.close());
            }
            Err(e) => eprintln!("skipping the PostgreSQL claim benchmark: {url}: {e}"),
        }
    }
}

criterion_group!(benches, header_parse, verify, nonces, claims);
criterion_main!(benches);
