//! Users from an Apache `htdigest` file, reloaded when the file changes.
//!
//! ```text
//! htdigest -c users.htdigest "rocket_digest_auth example" alice
//! cargo run --example htdigest
//! curl --digest -u alice:<password> http://127.0.0.1:8000/me
//! htdigest users.htdigest "rocket_digest_auth example" bob   # live, no restart
//! ```
//! htdigest files hold MD5 HA1 values only, so this example offers MD5 and
//! MD5-sess; offering SHA-256 with such a file is refused at ignite. Point it
//! at another file with `ROCKET_DIGEST_AUTH='{htdigest_file="/path"}'`.

use rocket::figment::providers::Serialized;
use rocket::{get, launch, routes};
use rocket_digest_auth::{DigestAuth, DigestAuthenticated, User};

#[get("/me")]
fn me(user: DigestAuthenticated<User>) -> String {
    format!("hello, {}\n", user.username)
}

#[launch]
fn rocket() -> _ {
    let figment = rocket::Config::figment()
        // Defaults that Rocket.toml or ROCKET_DIGEST_AUTH may override.
        .join(Serialized::default(
            "digest_auth.htdigest_file",
            "users.htdigest",
        ))
        .merge(("digest_auth.algorithms", ["MD5", "MD5-sess"]))
        // Nonce counts still need a store; memory is enough for one process.
        .merge(("digest_auth.store", "memory"));
    rocket::custom(figment)
        .attach(DigestAuth::fairing())
        .mount("/", routes![me])
}
