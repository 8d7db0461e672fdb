-- Personal access tokens for the account API (/api/v1 on the portal): named,
-- scoped, revocable; only the hash of the secret is kept (the id is public).
CREATE TABLE access_tokens (
    id           TEXT PRIMARY KEY NOT NULL,
    account_id   UUID NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    name         TEXT NOT NULL,
    scope        TEXT NOT NULL CHECK (scope IN ('read', 'read-write')),
    secret_hash  TEXT NOT NULL,
    created_at   TIMESTAMPTZ NOT NULL,
    expires_at   TIMESTAMPTZ,
    last_used_at TIMESTAMPTZ,
    revoked_at   TIMESTAMPTZ
);
CREATE INDEX access_tokens_by_account ON access_tokens (account_id);
