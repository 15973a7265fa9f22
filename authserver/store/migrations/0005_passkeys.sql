-- Passkeys (WebAuthn): credentials, the user handle, and ceremony challenges.

-- The WebAuthn user handle: random, one per account, never the account id
-- (it is stored on authenticators and returned to anyone holding one).
CREATE TABLE webauthn_users (
    user_id uuid PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    handle  bytea NOT NULL,
    CONSTRAINT webauthn_users_handle_key UNIQUE (handle)
);

-- One row per registered passkey. credential_id is unique across every
-- account and relying party: a registration that presents an id already
-- known (someone else's credential, or a replayed registration) is refused.
CREATE TABLE passkeys (
    id                 uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id            uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    rp_id              text NOT NULL,
    credential_id      bytea NOT NULL,
    public_key         bytea NOT NULL,          -- COSE key
    sign_count         bigint NOT NULL DEFAULT 0,
    clone_warning      boolean NOT NULL DEFAULT false,
    transports         text[] NOT NULL DEFAULT '{}',
    aaguid             bytea,
    attestation_type   text NOT NULL DEFAULT '',
    attestation_format text NOT NULL DEFAULT '',
    attachment         text NOT NULL DEFAULT '',
    user_present       boolean NOT NULL DEFAULT false,
    user_verified      boolean NOT NULL DEFAULT false,
    backup_eligible    boolean NOT NULL DEFAULT false,
    backup_state       boolean NOT NULL DEFAULT false,
    name               text NOT NULL DEFAULT '',
    created_at         timestamptz NOT NULL DEFAULT now(),
    last_used_at       timestamptz,
    CONSTRAINT passkeys_credential_id_key UNIQUE (credential_id)
);
CREATE INDEX idx_passkeys_user_id ON passkeys (user_id);

-- Ceremony state between begin and finish, keyed by SHA-256 of the
-- challenge: any replica finishes a ceremony another began, and the first
-- finish deletes the row (single use). user_id binds a registration or a
-- second-factor ceremony to its account; bound_to to the session or the
-- login challenge it was begun for.
CREATE TABLE webauthn_challenges (
    challenge_hash bytea PRIMARY KEY,
    kind           text NOT NULL CHECK (kind IN ('register', 'login', 'second_factor', 'reauthenticate')),
    user_id        uuid REFERENCES users (id) ON DELETE CASCADE,
    bound_to       text NOT NULL DEFAULT '',
    data           jsonb NOT NULL,
    expires_at     timestamptz NOT NULL
);
CREATE INDEX idx_webauthn_challenges_expires_at ON webauthn_challenges (expires_at);
