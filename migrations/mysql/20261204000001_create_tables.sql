-- The same tables as on SQLite and PostgreSQL, for MySQL 8 and MariaDB 10.6+.
-- Text columns are utf8mb4_bin: compared byte for byte (a username is not
-- another's in other case), and sized for what the verifier lets through:
-- a cnonce of up to 256 bytes, nonces of 56, the key of
-- digest_auth_nonce_counts under InnoDB's 3072-byte limit.

-- One token per user: the token is the Digest "password" agreed with the client.
-- When HA1-only storage is on, `token` is NULL and the ha1_* columns hold the secrets.
CREATE TABLE IF NOT EXISTS digest_auth_tokens (
    username VARCHAR(255) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL PRIMARY KEY,
    token VARCHAR(255) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin,
    ha1_md5 VARCHAR(128) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin,
    ha1_sha256 VARCHAR(128) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin,
    ha1_sha512_256 VARCHAR(128) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin,
    -- userhash values (RFC 7616 3.4.4) for `userhash_realm`, so `userhash=true` resolves by index.
    userhash_realm VARCHAR(255) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin,
    userhash_md5 VARCHAR(128) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin,
    userhash_sha256 VARCHAR(128) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin,
    userhash_sha512_256 VARCHAR(128) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin,
    created_at BIGINT NOT NULL,
    KEY digest_auth_tokens_userhash_md5 (userhash_md5),
    KEY digest_auth_tokens_userhash_sha256 (userhash_sha256),
    KEY digest_auth_tokens_userhash_sha512_256 (userhash_sha512_256)
) ENGINE = InnoDB;

-- Every (nonce, cnonce, nc) accepted once; rows live until their nonce expires.
-- The key starts with (nonce, nc) so MAX(nc) per nonce is one index seek.
-- `grp`: the group commit that inserted the row, so that the group can read
-- back which of its rows are its own (MySQL has no INSERT ... RETURNING).
CREATE TABLE IF NOT EXISTS digest_auth_nonce_counts (
    nonce VARCHAR(255) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
    nc BIGINT NOT NULL,
    cnonce VARCHAR(256) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
    expires_at BIGINT NOT NULL,
    grp BIGINT NOT NULL,
    PRIMARY KEY (nonce, nc, cnonce),
    KEY digest_auth_nonce_counts_expires_at (expires_at),
    KEY digest_auth_nonce_counts_grp (grp)
) ENGINE = InnoDB;

-- Blocks of counts [first_nc, last_nc] of one nonce, each leased to one
-- process (`owner`, random per process), which then decides those counts in
-- its memory. After a restart the old owner is gone and the block's counts
-- are refused (stale=true). Rows live until their nonce expires.
CREATE TABLE IF NOT EXISTS digest_auth_nonce_leases (
    nonce VARCHAR(255) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
    first_nc BIGINT NOT NULL,
    last_nc BIGINT NOT NULL,
    owner BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    PRIMARY KEY (nonce, first_nc),
    KEY digest_auth_nonce_leases_expires_at (expires_at)
) ENGINE = InnoDB;

-- Settings every instance sharing this database must agree on (`nc_lease`).
CREATE TABLE IF NOT EXISTS digest_auth_settings (
    name VARCHAR(64) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL PRIMARY KEY,
    value BIGINT NOT NULL
) ENGINE = InnoDB;

-- A number every change to digest_auth_tokens bumps (by trigger, whoever
-- makes it: an instance, `create-token`, SQL by hand), so that a credential
-- cache can check one row instead of re-reading every user. MySQL triggers
-- fire per row: a statement changing n rows bumps it n times, which is as good.
CREATE TABLE IF NOT EXISTS digest_auth_tokens_version (
    id INTEGER NOT NULL PRIMARY KEY CHECK (id = 1),
    version BIGINT NOT NULL
) ENGINE = InnoDB;
INSERT IGNORE INTO digest_auth_tokens_version (id, version) VALUES (1, 0);
CREATE TRIGGER digest_auth_tokens_version_insert AFTER INSERT ON digest_auth_tokens
FOR EACH ROW UPDATE digest_auth_tokens_version SET version = version + 1;
CREATE TRIGGER digest_auth_tokens_version_update AFTER UPDATE ON digest_auth_tokens
FOR EACH ROW UPDATE digest_auth_tokens_version SET version = version + 1;
CREATE TRIGGER digest_auth_tokens_version_delete AFTER DELETE ON digest_auth_tokens
FOR EACH ROW UPDATE digest_auth_tokens_version SET version = version + 1;

-- How far nonce records have been deleted: the highest expires_at of any row
-- the cleanup deleted from digest_auth_nonce_counts or digest_auth_nonce_leases,
-- raised in the cleanup's own transaction. A claim (a count row or a lease)
-- for a nonce expiring at or below it is refused inside the claim statement,
-- so a deleted record can never be claimed afresh, whatever an instance's
-- clock says. One row; never lowered.
CREATE TABLE IF NOT EXISTS digest_auth_nonce_watermark (
    id INTEGER NOT NULL PRIMARY KEY CHECK (id = 1),
    deleted_through BIGINT NOT NULL
) ENGINE = InnoDB;
INSERT IGNORE INTO digest_auth_nonce_watermark (id, deleted_through) VALUES (1, 0);
