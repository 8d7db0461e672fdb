-- The web portal: session revocation, e-mail verification, one-time tokens
-- (e-mail verification, password reset), per-key usage per day and portal
-- settings. Same tables and columns as ../sqlite/0004_portal.sql.

-- Bumped on logout-everywhere and password change; a session carries the version
-- it was issued under and is refused once it differs.
ALTER TABLE accounts ADD COLUMN session_version BIGINT NOT NULL DEFAULT 0;
ALTER TABLE accounts ADD COLUMN email_verified_at TIMESTAMPTZ;

-- Only the SHA-256 of a token is kept; a token is deleted when used.
CREATE TABLE portal_tokens (
    token_hash TEXT PRIMARY KEY,
    kind       TEXT NOT NULL CHECK (kind IN ('verify_email', 'reset_password')),
    account_id UUID NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    created_at TIMESTAMPTZ NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX portal_tokens_by_account ON portal_tokens (account_id);

-- Successful /update calls per license key per UTC day (`day` is YYYY-MM-DD).
CREATE TABLE license_key_usage (
    license_key_id TEXT NOT NULL REFERENCES license_keys (id) ON DELETE CASCADE,
    day            TEXT NOT NULL,
    updates        BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (license_key_id, day)
);

-- Small key/value settings of the portal (the generated session secret).
CREATE TABLE portal_settings (
    name  TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

CREATE INDEX registrations_by_key ON registrations (license_key_id);
