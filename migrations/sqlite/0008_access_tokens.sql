-- Personal access tokens for the account API (/api/v1 on the portal): named,
-- scoped, revocable; only the hash of the secret is kept (the id is public).
CREATE TABLE access_tokens (
    id           TEXT PRIMARY KEY NOT NULL,
    account_id   BLOB NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    name         TEXT NOT NULL,
    scope        TEXT NOT NULL CHECK (scope IN ('read', 'read-write')),
    secret_hash  TEXT NOT NULL,
    created_at   TEXT NOT NULL,
    expires_at   TEXT,
    last_used_at TEXT,
    revoked_at   TEXT
);
CREATE INDEX access_tokens_by_account ON access_tokens (account_id);
