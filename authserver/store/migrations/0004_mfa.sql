-- Second factors: how each session was authenticated, TOTP, recovery codes
-- and the login challenges between the password step and the second factor.

-- How and when a session last proved who it is (password only, password and a
-- second factor, or a passkey on its own): /auth/check passes it upstream and
-- step-up (changing credentials) requires a recent one. Rows of older pods
-- get the defaults ('password', the insert time).
ALTER TABLE sessions
    ADD COLUMN auth_method text NOT NULL DEFAULT 'password'
        CONSTRAINT sessions_auth_method_check CHECK (auth_method IN ('password', 'mfa', 'passkey')),
    ADD COLUMN auth_at timestamptz NOT NULL DEFAULT now();
UPDATE sessions SET auth_at = created_at;

-- One TOTP secret per user, AES-256-GCM encrypted with a key derived from the
-- pepper named by key_id (authserver/mfa). confirmed_at is NULL until a first
-- code proved the authenticator holds it. last_step is the newest time step
-- accepted: a code is accepted only for a later step (replay refused on every
-- replica, by one conditional UPDATE).
CREATE TABLE user_totp (
    user_id      uuid PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    secret_enc   bytea NOT NULL,
    key_id       text NOT NULL,
    confirmed_at timestamptz,
    last_step    bigint NOT NULL DEFAULT 0,
    created_at   timestamptz NOT NULL DEFAULT now()
);

-- Single-use recovery codes, stored as SHA-256 of (user id, code): 80 random
-- bits each, so a fast hash is enough (authserver/DESIGN.md, "Second factors").
CREATE TABLE recovery_codes (
    id         bigserial PRIMARY KEY,
    user_id    uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    code_hash  bytea NOT NULL,
    used_at    timestamptz,
    created_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT recovery_codes_code_hash_key UNIQUE (code_hash)
);
CREATE INDEX idx_recovery_codes_user_id ON recovery_codes (user_id);

-- The state between a correct password and the second factor (or, when a
-- factor is required, its enrolment). Only SHA-256 of the token is stored;
-- password_hash is the hash the password step verified, so a reset or change
-- in between ends the challenge. attempts are claimed before a code is checked.
CREATE TABLE login_challenges (
    id            uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    token_hash    bytea NOT NULL,
    user_id       uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    purpose       text NOT NULL CHECK (purpose IN ('mfa', 'enroll')),
    password_hash text NOT NULL,
    attempts      integer NOT NULL DEFAULT 0,
    created_at    timestamptz NOT NULL DEFAULT now(),
    expires_at    timestamptz NOT NULL,
    used_at       timestamptz,
    CONSTRAINT login_challenges_token_hash_key UNIQUE (token_hash)
);
CREATE INDEX idx_login_challenges_expires_at ON login_challenges (expires_at);
CREATE INDEX idx_login_challenges_user_id ON login_challenges (user_id);
