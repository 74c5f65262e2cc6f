-- One token per user: the token is the Digest "password" agreed with the client.
-- When HA1-only storage is on, `token` is NULL and the ha1_* columns hold the secrets.
CREATE TABLE IF NOT EXISTS digest_auth_tokens (
    username TEXT PRIMARY KEY NOT NULL,
    token TEXT,
    ha1_md5 TEXT,
    ha1_sha256 TEXT,
    ha1_sha512_256 TEXT,
    -- userhash values (RFC 7616 3.4.4) for `userhash_realm`, so `userhash=true` resolves by index.
    userhash_realm TEXT,
    userhash_md5 TEXT,
    userhash_sha256 TEXT,
    userhash_sha512_256 TEXT,
    created_at BIGINT NOT NULL
);
CREATE INDEX IF NOT EXISTS digest_auth_tokens_userhash_md5 ON digest_auth_tokens (userhash_md5);
CREATE INDEX IF NOT EXISTS digest_auth_tokens_userhash_sha256 ON digest_auth_tokens (userhash_sha256);
CREATE INDEX IF NOT EXISTS digest_auth_tokens_userhash_sha512_256 ON digest_auth_tokens (userhash_sha512_256);

-- Every (nonce, cnonce, nc) accepted once; rows live until their nonce expires.
-- The key starts with (nonce, nc) so MAX(nc) per nonce is one index seek.
CREATE TABLE IF NOT EXISTS digest_auth_nonce_counts (
    nonce TEXT NOT NULL,
    nc BIGINT NOT NULL,
    cnonce TEXT NOT NULL,
    expires_at BIGINT NOT NULL,
    PRIMARY KEY (nonce, nc, cnonce)
);
CREATE INDEX IF NOT EXISTS digest_auth_nonce_counts_expires_at ON digest_auth_nonce_counts (expires_at);
