-- Revoked sessions, kept while a cached copy of them could still exist in
-- Redis (authserver/session: every replica loads them and refuses a cached
-- session found here, whatever Redis lost or kept).
CREATE TABLE session_revocations (
    token_hash bytea PRIMARY KEY,
    revoked_at timestamptz NOT NULL DEFAULT now(),
    keep_until timestamptz NOT NULL
);
CREATE INDEX idx_session_revocations_revoked_at ON session_revocations (revoked_at);
CREATE INDEX idx_session_revocations_keep_until ON session_revocations (keep_until);

-- Outbox: a lease token per claim (a message is marked only by the worker
-- holding its lease) and the expiry of the link a message carries.
ALTER TABLE outbox ADD COLUMN lease_token uuid, ADD COLUMN expires_at timestamptz;
