//! The database store's credentials: lookups by name and by userhash, the
//! credentials version, issuing and revoking tokens.

use chrono::{TimeZone, Utc};
use sqlx::Row;

use super::{with_pool, Pool, SqlStore};
use crate::store::{
    generate_token, Credential, CredentialStore, HashFunction, Secret, StoreError, TokenAdmin,
};

const SELECT_CREDENTIAL: &str =
    "SELECT username, token, ha1_md5, ha1_sha256, ha1_sha512_256, created_at FROM digest_auth_tokens";

const UPSERT_TOKEN: &str = "INSERT INTO digest_auth_tokens (username, token, ha1_md5, ha1_sha256, \
     ha1_sha512_256, userhash_realm, userhash_md5, userhash_sha256, userhash_sha512_256, created_at) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) \
     ON CONFLICT (username) DO UPDATE SET token = excluded.token, ha1_md5 = excluded.ha1_md5, \
     ha1_sha256 = excluded.ha1_sha256, ha1_sha512_256 = excluded.ha1_sha512_256, \
     userhash_realm = excluded.userhash_realm, userhash_md5 = excluded.userhash_md5, \
     userhash_sha256 = excluded.userhash_sha256, userhash_sha512_256 = excluded.userhash_sha512_256, \
     created_at = excluded.created_at";

const SET_USERHASHES: &str =
    "UPDATE digest_auth_tokens SET userhash_realm = $2, userhash_md5 = $3, \
     userhash_sha256 = $4, userhash_sha512_256 = $5 WHERE username = $1";

fn userhash_column(hash: HashFunction) -> &'static str {
    match hash {
        HashFunction::Md5 => "userhash_md5",
        HashFunction::Sha256 => "userhash_sha256",
        HashFunction::Sha512_256 => "userhash_sha512_256",
    }
}

macro_rules! credential_from_row {
    ($row:expr) => {{
        let row = $row;
        let username: String = row.try_get("username")?;
        let token: Option<String> = row.try_get("token")?;
        let secret = match token {
            Some(token) => Secret::Token(token),
            None => Secret::Ha1 {
                md5: row.try_get("ha1_md5")?,
                sha256: row.try_get("ha1_sha256")?,
                sha512_256: row.try_get("ha1_sha512_256")?,
            },
        };
        let created_at: i64 = row.try_get("created_at")?;
        Credential {
            username,
            secret,
            created_at: Utc.timestamp_opt(created_at, 0).single(),
        }
    }};
}

impl SqlStore {
    /// Recomputes the userhash columns of rows made for another realm.
    pub(super) async fn refresh_userhashes(&self) -> Result<(), StoreError> {
        let realm = self.options.realm.as_str();
        with_pool!(&self.pool, p => {
            // HA1-only rows were made for their realm and cannot be moved to
            // another: they keep it as evidence and are reported.
            let stale = sqlx::query(
                "SELECT COUNT(*) AS n FROM digest_auth_tokens \
                 WHERE token IS NULL AND userhash_realm <> $1",
            )
            .bind(realm)
            .fetch_one(p)
            .await?
            .try_get::<i64, _>("n")?;
            if stale > 0 {
                rocket::warn!(
                    "digest_auth: {stale} user(s) have HA1-only secrets made for another realm \
                     than `{realm}`; they cannot sign in until their tokens are issued again"
                );
            }
            let rows = sqlx::query(
                "SELECT username FROM digest_auth_tokens \
                 WHERE token IS NOT NULL AND (userhash_realm IS NULL OR userhash_realm <> $1)",
            )
            .bind(realm)
            .fetch_all(p)
            .await?;
            for row in rows {
                let username: String = row.try_get("username")?;
                let [md5, sha256, sha512] =
                    HashFunction::ALL.map(|h| self.options.userhash(h, &username));
                sqlx::query(SET_USERHASHES)
                    .bind(&username)
                    .bind(realm)
                    .bind(md5)
                    .bind(sha256)
                    .bind(sha512)
                    .execute(p)
                    .await?;
            }
            Ok(())
        })
    }
}

#[rocket::async_trait]
impl CredentialStore for SqlStore {
    async fn credential(&self, username: &str) -> Result<Option<Credential>, StoreError> {
        with_pool!(&self.pool, p => {
            let sql = format!("{SELECT_CREDENTIAL} WHERE username = $1");
            match sqlx::query(&sql).bind(username).fetch_optional(p).await? {
                Some(row) => Ok(Some(credential_from_row!(row))),
                None => Ok(None),
            }
        })
    }

    async fn credentials_version(&self) -> Result<Option<i64>, StoreError> {
        with_pool!(&self.pool, p => {
            let version: i64 = sqlx::query_scalar(
                "SELECT version FROM digest_auth_tokens_version WHERE id = 1",
            )
            .fetch_one(p)
            .await?;
            Ok(Some(version))
        })
    }

    async fn credential_by_userhash(
        &self,
        hash: HashFunction,
        userhash: &str,
    ) -> Result<Option<Credential>, StoreError> {
        let sql = format!(
            "{SELECT_CREDENTIAL} WHERE {} = $1 AND userhash_realm = $2",
            userhash_column(hash)
        );
        with_pool!(&self.pool, p => {
            let row = sqlx::query(&sql)
                .bind(userhash)
                .bind(&self.options.realm)
                .fetch_optional(p)
                .await?;
            match row {
                Some(row) => Ok(Some(credential_from_row!(row))),
                None => Ok(None),
            }
        })
    }
}

#[rocket::async_trait]
impl TokenAdmin for SqlStore {
    async fn issue_token(&self, username: &str) -> Result<String, StoreError> {
        let token = generate_token();
        let o = &self.options;
        // In HA1-only mode the token is returned once and never stored.
        let (stored, [ha1_md5, ha1_sha256, ha1_sha512]) = if o.ha1_only {
            (
                None,
                Secret::ha1_values(username, &o.realm, &token).map(Some),
            )
        } else {
            (Some(token.clone()), [None, None, None])
        };
        let [uh_md5, uh_sha256, uh_sha512] = HashFunction::ALL.map(|h| o.userhash(h, username));
        with_pool!(&self.pool, p => {
            sqlx::query(UPSERT_TOKEN)
                .bind(username)
                .bind(&stored)
                .bind(&ha1_md5)
                .bind(&ha1_sha256)
                .bind(&ha1_sha512)
                .bind(&o.realm)
                .bind(&uh_md5)
                .bind(&uh_sha256)
                .bind(&uh_sha512)
                .bind(Utc::now().timestamp())
                .execute(p)
                .await?;
        });
        Ok(token)
    }

    async fn revoke_token(&self, username: &str) -> Result<bool, StoreError> {
        with_pool!(&self.pool, p => {
            let done = sqlx::query("DELETE FROM digest_auth_tokens WHERE username = $1")
                .bind(username)
                .execute(p)
                .await?;
            Ok(done.rows_affected() > 0)
        })
    }
}
