-- When each user's current token was set (issued, rotated or imported);
-- created_at keeps when the user first got a token. Rows made before this
-- column existed had created_at reset on every rotation, so it is their
-- best value for both. The UPDATE bumps digest_auth_tokens_version through
-- the existing trigger, which is harmless.
ALTER TABLE digest_auth_tokens ADD COLUMN updated_at INTEGER NOT NULL DEFAULT 0;
UPDATE digest_auth_tokens SET updated_at = created_at;
