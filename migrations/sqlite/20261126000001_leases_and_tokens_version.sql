-- Blocks of counts [first_nc, last_nc] of one nonce, each leased to one
-- process (`owner`, random per process), which then decides those counts in
-- its memory. After a restart the old owner is gone and the block's counts
-- are refused (stale=true). Rows live until their nonce expires.
CREATE TABLE IF NOT EXISTS digest_auth_nonce_leases (
    nonce TEXT NOT NULL,
    first_nc INTEGER NOT NULL,
    last_nc INTEGER NOT NULL,
    owner INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    PRIMARY KEY (nonce, first_nc)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS digest_auth_nonce_leases_expires_at ON digest_auth_nonce_leases (expires_at);

-- Settings every instance sharing this database must agree on (`nc_lease`).
CREATE TABLE IF NOT EXISTS digest_auth_settings (
    name TEXT PRIMARY KEY NOT NULL,
    value INTEGER NOT NULL
);

-- A number every change to digest_auth_tokens bumps (by trigger, whoever
-- makes it: an instance, `create-token`, SQL by hand), so that a credential
-- cache can check one row instead of re-reading every user.
CREATE TABLE IF NOT EXISTS digest_auth_tokens_version (
    id INTEGER PRIMARY KEY NOT NULL CHECK (id = 1),
    version INTEGER NOT NULL
);
INSERT INTO digest_auth_tokens_version (id, version) VALUES (1, 0) ON CONFLICT DO NOTHING;
CREATE TRIGGER IF NOT EXISTS digest_auth_tokens_version_insert AFTER INSERT ON digest_auth_tokens
BEGIN UPDATE digest_auth_tokens_version SET version = version + 1; END;
CREATE TRIGGER IF NOT EXISTS digest_auth_tokens_version_update AFTER UPDATE ON digest_auth_tokens
BEGIN UPDATE digest_auth_tokens_version SET version = version + 1; END;
CREATE TRIGGER IF NOT EXISTS digest_auth_tokens_version_delete AFTER DELETE ON digest_auth_tokens
BEGIN UPDATE digest_auth_tokens_version SET version = version + 1; END;
