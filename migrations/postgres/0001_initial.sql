-- certdns schema, Postgres flavour. The SQLite flavour in ../sqlite has the same
-- tables and columns; only the column types differ.

CREATE TABLE accounts (
    id            UUID PRIMARY KEY,
    email         TEXT NOT NULL UNIQUE,
    role          TEXT NOT NULL CHECK (role IN ('customer', 'operator')),
    status        TEXT NOT NULL CHECK (status IN ('active', 'suspended')),
    password_hash TEXT,
    created_at    TIMESTAMPTZ NOT NULL
);

CREATE TABLE license_keys (
    id           TEXT PRIMARY KEY,
    account_id   UUID NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    name         TEXT NOT NULL,
    secret_hash  TEXT NOT NULL,
    created_at   TIMESTAMPTZ NOT NULL,
    last_used_at TIMESTAMPTZ,
    revoked_at   TIMESTAMPTZ
);
CREATE INDEX license_keys_by_account ON license_keys (account_id);

CREATE TABLE registrations (
    id             UUID PRIMARY KEY,
    account_id     UUID NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    license_key_id TEXT REFERENCES license_keys (id) ON DELETE SET NULL,
    username       UUID NOT NULL UNIQUE,
    password_hash  TEXT NOT NULL,
    subdomain      UUID NOT NULL UNIQUE,
    allow_from     TEXT NOT NULL DEFAULT '[]',
    subject        TEXT,
    -- Bumped by one on every TXT write; the version carried to the DNS replicas.
    txt_version    BIGINT NOT NULL DEFAULT 0,
    created_at     TIMESTAMPTZ NOT NULL,
    last_update_at TIMESTAMPTZ
);
CREATE INDEX registrations_by_account ON registrations (account_id);

-- The most recent TXT values of a registration, one row per write. Versions of a
-- registration are contiguous, so "keep the N most recent" is a range delete.
CREATE TABLE txt_values (
    registration_id UUID NOT NULL REFERENCES registrations (id) ON DELETE CASCADE,
    version         BIGINT NOT NULL,
    value           TEXT NOT NULL,
    PRIMARY KEY (registration_id, version)
);

CREATE TABLE audit_log (
    id          BIGSERIAL PRIMARY KEY,
    at          TIMESTAMPTZ NOT NULL,
    account_id  UUID REFERENCES accounts (id) ON DELETE CASCADE,
    kind        TEXT NOT NULL,
    client_addr TEXT,
    detail      TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX audit_log_by_account ON audit_log (account_id, id DESC);
