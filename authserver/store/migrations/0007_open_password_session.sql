-- A login's session in one statement (authserver/store/login.go): the same steps as the
-- transaction it replaces on the login path (lock the user, compare the verified hash,
-- read the second factors, insert the session and its audit row), in one round trip
-- instead of six (BEGIN, four statements, COMMIT), with plans PL/pgSQL keeps per
-- connection instead of four statements parsed and planned on every login. Each
-- statement below takes its own snapshot (read committed), so the factors are read
-- after the lock, as they were by the transaction: a factor added by a writer that
-- held the lock is seen.
--
-- The caller types every argument and the body names pg_catalog's functions, so that no
-- overload another role may create in a schema of the search path (PostgreSQL 14 and
-- older let every role create in public) is taken for them; the verified hash comes as
-- its SHA-256, so that a statement log never holds a password hash. OR REPLACE: an
-- in-place restore (authserver restore --force) of a backup from before this migration
-- leaves the function in place and migrate runs this file again.
--
-- It returns one row: the user as locked (all NULL when the user is gone) and the
-- session when one was opened (NULL otherwise: the hash changed, or the user has a
-- second factor, which the caller turns into a challenge).
CREATE OR REPLACE FUNCTION open_password_session(
    p_user uuid, p_verified_hash_sha256 bytea, p_token_hash bytea, p_expires_at timestamptz,
    p_ip text, p_user_agent text, p_auth_method text, p_audit_kind text,
    OUT user_id text, OUT email text, OUT password_hash text, OUT email_verified boolean,
    OUT user_created_at timestamptz, OUT session_id text, OUT created_at timestamptz,
    OUT last_seen_at timestamptz, OUT auth_at timestamptz)
LANGUAGE plpgsql AS $$
DECLARE
    has_factor boolean;
BEGIN
    SELECT u.id::text, u.email, u.password_hash, u.email_verified_at IS NOT NULL, u.created_at
        INTO user_id, email, password_hash, email_verified, user_created_at
        FROM users u WHERE u.id = p_user FOR UPDATE;
    IF NOT FOUND OR pg_catalog.sha256(pg_catalog.convert_to(password_hash, 'UTF8')) <> p_verified_hash_sha256 THEN
        RETURN;
    END IF;
    -- store.Factors.Any: a confirmed TOTP secret or a passkey (recovery codes alone are none).
    SELECT EXISTS (SELECT 1 FROM user_totp t WHERE t.user_id = p_user AND t.confirmed_at IS NOT NULL)
        OR EXISTS (SELECT 1 FROM passkeys k WHERE k.user_id = p_user)
        INTO has_factor;
    IF has_factor THEN
        RETURN;
    END IF;
    INSERT INTO sessions AS s (token_hash, user_id, expires_at, ip, user_agent, auth_method)
        VALUES (p_token_hash, p_user, p_expires_at, p_ip, p_user_agent, p_auth_method)
        RETURNING s.id::text, s.created_at, s.last_seen_at, s.auth_at
        INTO session_id, created_at, last_seen_at, auth_at;
    INSERT INTO audit_logs (user_id, kind, ip, user_agent, details)
        VALUES (p_user, p_audit_kind, p_ip, p_user_agent,
                pg_catalog.jsonb_build_object('session_id', session_id, 'method', p_auth_method));
END
$$;
