-- Failed guesses per (user, client address) pair, shared by every instance
-- using this database: `pair` is the 16-byte FailureKey, `window_end` when
-- the pair's current window ends (unix seconds, the database's clock),
-- `locked_at` when its count reached max_failures in that window, so that
-- instances can poll for new locks. Rows go once their windows end.
CREATE TABLE IF NOT EXISTS digest_auth_failures (
    pair BLOB PRIMARY KEY NOT NULL,
    failures BIGINT NOT NULL,
    window_end BIGINT NOT NULL,
    locked_at BIGINT
);
CREATE INDEX IF NOT EXISTS digest_auth_failures_window_end ON digest_auth_failures (window_end);
CREATE INDEX IF NOT EXISTS digest_auth_failures_locked_at ON digest_auth_failures (locked_at);
