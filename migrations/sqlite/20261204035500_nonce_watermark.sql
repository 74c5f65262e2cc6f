-- How far nonce records have been deleted: the highest expires_at of any row
-- the cleanup deleted from digest_auth_nonce_counts or digest_auth_nonce_leases,
-- raised in the cleanup's own transaction. A claim (a count row or a lease)
-- for a nonce expiring at or below it is refused inside the claim statement,
-- so a deleted record can never be claimed afresh, whatever an instance's
-- clock says. One row; never lowered.
CREATE TABLE IF NOT EXISTS digest_auth_nonce_watermark (
    id INTEGER PRIMARY KEY NOT NULL CHECK (id = 1),
    deleted_through INTEGER NOT NULL
);
INSERT INTO digest_auth_nonce_watermark (id, deleted_through) VALUES (1, 0) ON CONFLICT DO NOTHING;
