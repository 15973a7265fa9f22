-- The restore drills' canary (authserver backup verify): one password hash, written by
-- `authserver migrate` with the stack's pepper, so a drill can prove that the data in a
-- backup still verifies with the pepper the stack holds. It is deliberately NOT a row of
-- users: no login, reset, passkey or admin path reads this table, so the canary can never
-- be signed in to, enumerated or reset, whoever learns its password.
CREATE TABLE IF NOT EXISTS drill_canary (
    id            smallint PRIMARY KEY DEFAULT 1 CHECK (id = 1),
    password_hash text NOT NULL,
    updated_at    timestamptz NOT NULL DEFAULT now()
);
