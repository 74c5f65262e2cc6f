//! What ignite and liftoff tell the user: configuration errors naming the
//! full key, the database's path and key when it cannot be opened, a second
//! attached fairing, and the warnings for setups where no client can log in.

mod common;

use common::app::{base_figment, memory, sqlite};
use common::logs::ignite_errors;
use common::{block_on, logs};
use rocket::figment::Figment;
use rocket::{catch, catchers, Build, Rocket};
use rocket_digest_auth::{DigestAuth, Error};
use serde_json::json;

fn config_error(figment: &Figment) -> String {
    match DigestAuth::config(figment) {
        Ok(config) => panic!("accepted: {config:?}"),
        Err(e) => e.to_string(),
    }
}

/// The warnings the fairing logged at liftoff of `rocket` (run locally).
fn liftoff_warnings(rocket: Rocket<Build>) -> Vec<String> {
    let (client, lines) = logs::capture(|| {
        block_on(rocket::local::asynchronous::Client::untracked(rocket))
            .map(drop)
            .map_err(|e| e.kind().to_string())
    });
    client.expect("the rocket launched");
    lines
        .into_iter()
        .filter(|l| l.starts_with("digest_auth.catcher") || l.starts_with("digest_auth.qop"))
        .collect()
}

#[test]
fn a_short_nonce_lifetime_alone_starts_and_nextnonce_follows_it() {
    let figment = memory(json!({ "nonce_lifetime": 30 }));
    let config = DigestAuth::config(&figment).expect("nonce_lifetime = 30 is valid");
    assert_eq!(config.nextnonce_within(), 6);
    let default = DigestAuth::config(&memory(json!({}))).unwrap();
    assert_eq!(default.nextnonce_within(), 60);
    let (ignited, _) = logs::capture(|| {
        block_on(logs::rocket(figment).attach(DigestAuth::fairing()).ignite())
            .map(drop)
            .map_err(|e| e.kind().to_string())
    });
    ignited.expect("the rocket ignites");
}

#[test]
fn a_nextnonce_within_the_lifetime_contradicts_names_both_keys_and_values() {
    let figment = memory(json!({ "nonce_lifetime": 30, "nextnonce_within": 40 }));
    assert_eq!(
        config_error(&figment),
        "invalid `digest_auth.nextnonce_within`: is 40, but must be less than \
         `digest_auth.nonce_lifetime` (30); lower it, or leave it out to follow nonce_lifetime"
    );
}

#[test]
fn a_figment_error_names_the_full_key() {
    let figment = memory(json!({ "algorithms": ["SHA-1"] }));
    let error = config_error(&figment);
    assert!(
        error.starts_with("invalid `digest_auth.algorithms[0]`: unknown Digest algorithm `SHA-1`"),
        "{error}"
    );
    let error = config_error(&memory(json!({ "algorithms": ["MD5", "SHA-1"] })));
    assert!(
        error.starts_with("invalid `digest_auth.algorithms[1]`"),
        "{error}"
    );
    let error = config_error(&memory(json!({ "realms": "x" })));
    assert!(
        error.starts_with("invalid `digest_auth.realms`: unknown field"),
        "{error}"
    );
    let error = config_error(&memory(json!({ "nonce_lifetime": "long" })));
    assert!(
        error.starts_with("invalid `digest_auth.nonce_lifetime`: invalid type"),
        "{error}"
    );
    assert!(matches!(
        DigestAuth::config(&memory(json!({ "algorithms": ["SHA-1"] }))),
        Err(Error::Figment(_))
    ));
}

#[test]
fn a_sqlite_file_in_a_missing_directory_names_the_path_and_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing");
    let file = missing.join("digest_auth.db");
    let figment =
        sqlite(&dir, json!({})).merge(("databases.digest_auth.url", common::sqlite_url(&file)));
    let errors = ignite_errors(logs::rocket(figment).attach(DigestAuth::fairing()));
    assert_eq!(
        errors,
        [format!(
            "Digest authentication failed to start: cannot use the database of \
             `databases.digest_auth.url`: cannot open the SQLite database `{}`: the directory \
             `{}` does not exist",
            file.display(),
            missing.display()
        )]
    );
}

#[test]
fn attaching_the_fairing_twice_is_an_ignite_error_saying_so() {
    let rocket = logs::rocket(memory(json!({})))
        .attach(DigestAuth::fairing())
        .attach(DigestAuth::fairing());
    assert_eq!(
        ignite_errors(rocket),
        [
            "Digest authentication failed to start: `DigestAuth::fairing()` is attached twice to \
          this Rocket instance: attach it once (one realm, one set of stores and catchers per \
          instance)"
        ]
    );
}

#[catch(401)]
fn own_challenge() -> &'static str {
    "log in"
}

#[test]
fn liftoff_warns_when_no_401_catcher_sends_the_challenge() {
    let without = logs::rocket(memory(json!({ "catcher": false }))).attach(DigestAuth::fairing());
    let warnings = liftoff_warnings(without);
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(
        warnings[0].starts_with("digest_auth.catcher = false and no 401 catcher is registered"),
        "{warnings:?}"
    );
    let own = logs::rocket(memory(json!({ "catcher": false })))
        .attach(DigestAuth::fairing())
        .register("/", catchers![own_challenge]);
    assert_eq!(liftoff_warnings(own), Vec::<String>::new());
    let builtin = logs::rocket(memory(json!({}))).attach(DigestAuth::fairing());
    assert_eq!(liftoff_warnings(builtin), Vec::<String>::new());
}

#[test]
fn liftoff_warns_when_qop_shuts_out_the_common_clients() {
    let auth_int =
        logs::rocket(memory(json!({ "qop": ["auth-int"] }))).attach(DigestAuth::fairing());
    let warnings = liftoff_warnings(auth_int);
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(
        warnings[0].starts_with("digest_auth.qop has no \"auth\": curl, Python requests and httpx"),
        "{warnings:?}"
    );
    let both =
        logs::rocket(memory(json!({ "qop": ["auth", "auth-int"] }))).attach(DigestAuth::fairing());
    assert_eq!(liftoff_warnings(both), Vec::<String>::new());
}

#[test]
fn the_base_figment_alone_launches_without_warnings_but_the_secret() {
    let rocket = logs::rocket(base_figment().merge(("digest_auth.store", "memory")))
        .attach(DigestAuth::fairing());
    assert_eq!(liftoff_warnings(rocket), Vec::<String>::new());
}
