//! The database store's credentials: lookups by name and by userhash, the
//! credentials version, setting, listing and revoking tokens.

use chrono::{DateTime, TimeZone, Utc};
use sqlx::Row;

use std::sync::{Arc, OnceLock};

use super::{with_pool, Dialect, Pool, SqlStore};
use crate::store::{
    Credential, CredentialStore, HashFunction, Secret, StoreError, TokenAdmin, TokenInfo,
};

/// A credential's `created_at` is when its current token was set: `updated_at`.
const SELECT_CREDENTIAL: &str =
    "SELECT username, token, ha1_md5, ha1_sha256, ha1_sha512_256, updated_at FROM digest_auth_tokens";

const SELECT_INFO: &str = "SELECT username, created_at, updated_at FROM digest_auth_tokens";

const UPSERT_COLUMNS: &str = "INSERT INTO digest_auth_tokens (username, token, ha1_md5, ha1_sha256, \
     ha1_sha512_256, userhash_realm, userhash_md5, userhash_sha256, userhash_sha512_256, created_at, \
     updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)";

/// The columns an upsert replaces (all but the username and `created_at`).
const REPLACED: [&str; 9] = [
    "token",
    "ha1_md5",
    "ha1_sha256",
    "ha1_sha512_256",
    "userhash_realm",
    "userhash_md5",
    "userhash_sha256",
    "userhash_sha512_256",
    "updated_at",
];

/// The credential statements, in one dialect.
pub(super) struct TokenSql {
    credential_by_name: String,
    /// By the userhash of each hash function, in the order of [`HashFunction::ALL`].
    credential_by_userhash: [String; 3],
    upsert_token: String,
    set_userhashes: String,
    count_foreign_ha1_rows: String,
    rows_to_rehash: String,
    revoke: String,
    info_by_name: String,
    list: String,
}

impl TokenSql {
    /// The statements of `dialect`: the one place where they differ.
    fn of(dialect: Dialect) -> &'static TokenSql {
        static STANDARD: OnceLock<TokenSql> = OnceLock::new();
        static MYSQL: OnceLock<TokenSql> = OnceLock::new();
        let cell = match dialect {
            Dialect::Standard => &STANDARD,
            Dialect::MySql => &MYSQL,
        };
        cell.get_or_init(|| {
            let upsert_token = match dialect {
                Dialect::Standard => format!(
                    "{UPSERT_COLUMNS} ON CONFLICT (username) DO UPDATE SET {}",
                    REPLACED.map(|c| format!("{c} = excluded.{c}")).join(", ")
                ),
                // VALUES(c): MariaDB has no row alias, and MySQL 8 still takes it.
                Dialect::MySql => format!(
                    "{UPSERT_COLUMNS} ON DUPLICATE KEY UPDATE {}",
                    REPLACED.map(|c| format!("{c} = VALUES({c})")).join(", ")
                ),
            };
            let sql = |s: &str| dialect.placeholders(s);
            TokenSql {
                credential_by_name: sql(&format!("{SELECT_CREDENTIAL} WHERE username = $1")),
                credential_by_userhash: HashFunction::ALL.map(|h| {
                    sql(&format!(
                        "{SELECT_CREDENTIAL} WHERE {} = $1 AND userhash_realm = $2",
                        userhash_column(h)
                    ))
                }),
                upsert_token: sql(&upsert_token),
                set_userhashes: sql(
                    "UPDATE digest_auth_tokens SET userhash_realm = $1, userhash_md5 = $2, \
                     userhash_sha256 = $3, userhash_sha512_256 = $4 WHERE username = $5",
                ),
                count_foreign_ha1_rows: sql("SELECT COUNT(*) AS n FROM digest_auth_tokens \
                     WHERE token IS NULL AND userhash_realm <> $1"),
                rows_to_rehash: sql("SELECT username FROM digest_auth_tokens \
                     WHERE token IS NOT NULL AND (userhash_realm IS NULL OR userhash_realm <> $1)"),
                revoke: sql("DELETE FROM digest_auth_tokens WHERE username = $1"),
                info_by_name: sql(&format!("{SELECT_INFO} WHERE username = $1")),
                list: SELECT_INFO.to_owned(),
            }
        })
    }
}

fn userhash_column(hash: HashFunction) -> &'static str {
    match hash {
        HashFunction::Md5 => "userhash_md5",
        HashFunction::Sha256 => "userhash_sha256",
        HashFunction::Sha512_256 => "userhash_sha512_256",
    }
}

fn hash_index(hash: HashFunction) -> usize {
    HashFunction::ALL
        .iter()
        .position(|&h| h == hash)
        .unwrap_or_default()
}

impl SqlStore {
    fn token_sql(&self) -> &'static TokenSql {
        TokenSql::of(self.pool.dialect())
    }
}

macro_rules! credential_from_row {
    ($row:expr) => {{
        let row = $row;
        let username: String = row.try_get("username")?;
        let token: Option<String> = row.try_get("token")?;
        let secret = match token {
            Some(token) => Secret::Token(token.into()),
            None => {
                let ha1 = |column| {
                    row.try_get::<Option<String>, _>(column)
                        .map(|h| h.map(Arc::from))
                };
                Secret::Ha1 {
                    md5: ha1("ha1_md5")?,
                    sha256: ha1("ha1_sha256")?,
                    sha512_256: ha1("ha1_sha512_256")?,
                }
            }
        };
        let updated_at: i64 = row.try_get("updated_at")?;
        Credential {
            username: username.into(),
            secret,
            created_at: Utc.timestamp_opt(updated_at, 0).single(),
        }
    }};
}

macro_rules! token_info_from_row {
    ($row:expr) => {{
        let row = $row;
        TokenInfo {
            username: row.try_get("username")?,
            created_at: timestamp(row.try_get("created_at")?),
            updated_at: timestamp(row.try_get("updated_at")?),
        }
    }};
}

/// Seconds since the epoch as written by this store (always in range).
fn timestamp(seconds: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(seconds, 0).single().unwrap_or_default()
}

impl SqlStore {
    /// Recomputes the userhash columns of rows made for another realm.
    pub(super) async fn refresh_userhashes(&self) -> Result<(), StoreError> {
        let realm = self.options.realm.as_str();
        let sql = self.token_sql();
        with_pool!(&self.pool, p => {
            // HA1-only rows were made for their realm and cannot be moved to
            // another: they keep it as evidence and are reported.
            let stale = sqlx::query(&sql.count_foreign_ha1_rows)
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
            let rows = sqlx::query(&sql.rows_to_rehash)
            .bind(realm)
            .fetch_all(p)
            .await?;
            for row in rows {
                let username: String = row.try_get("username")?;
                let [md5, sha256, sha512] =
                    HashFunction::ALL.map(|h| self.options.userhash(h, &username));
                sqlx::query(&sql.set_userhashes)
                    .bind(realm)
                    .bind(md5)
                    .bind(sha256)
                    .bind(sha512)
                    .bind(&username)
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
        let sql = &self.token_sql().credential_by_name;
        with_pool!(&self.pool, p => {
            match sqlx::query(sql).bind(username).fetch_optional(p).await? {
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
        let sql = &self.token_sql().credential_by_userhash[hash_index(hash)];
        with_pool!(&self.pool, p => {
            let row = sqlx::query(sql)
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
    async fn set_token(&self, username: &str, token: &str) -> Result<(), StoreError> {
        let o = &self.options;
        // In HA1-only mode the token is never stored.
        let (stored, [ha1_md5, ha1_sha256, ha1_sha512]) = if o.ha1_only {
            (
                None,
                Secret::ha1_values(username, &o.realm, token).map(Some),
            )
        } else {
            (Some(token), [None, None, None])
        };
        let [uh_md5, uh_sha256, uh_sha512] = HashFunction::ALL.map(|h| o.userhash(h, username));
        let sql = &self.token_sql().upsert_token;
        let now = Utc::now().timestamp();
        with_pool!(&self.pool, p => {
            sqlx::query(sql)
                .bind(username)
                .bind(stored)
                .bind(&ha1_md5)
                .bind(&ha1_sha256)
                .bind(&ha1_sha512)
                .bind(&o.realm)
                .bind(&uh_md5)
                .bind(&uh_sha256)
                .bind(&uh_sha512)
                .bind(now) // created_at, kept by a rotation
                .bind(now) // updated_at
                .execute(p)
                .await?;
        });
        Ok(())
    }

    async fn revoke_token(&self, username: &str) -> Result<bool, StoreError> {
        let sql = &self.token_sql().revoke;
        with_pool!(&self.pool, p => {
            let done = sqlx::query(sql)
                .bind(username)
                .execute(p)
                .await?;
            Ok(done.rows_affected() > 0)
        })
    }

    async fn token_info(&self, username: &str) -> Result<Option<TokenInfo>, StoreError> {
        let sql = &self.token_sql().info_by_name;
        with_pool!(&self.pool, p => {
            let row = sqlx::query(sql).bind(username).fetch_optional(p).await?;
            row.map(|row| Ok(token_info_from_row!(row))).transpose()
        })
    }

    async fn list_tokens(&self) -> Result<Vec<TokenInfo>, StoreError> {
        let sql = &self.token_sql().list;
        let mut list = with_pool!(&self.pool, p => {
            let rows = sqlx::query(sql).fetch_all(p).await?;
            let mut list = Vec::with_capacity(rows.len());
            for row in rows {
                list.push(token_info_from_row!(row));
            }
            list
        });
        // Sorted here: the backends' collations would order names differently.
        list.sort_by(|a, b| a.username.cmp(&b.username));
        Ok(list)
    }
}
