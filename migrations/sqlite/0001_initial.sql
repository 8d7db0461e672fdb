-- certdns schema, SQLite flavour. The Postgres flavour in ../postgres has the same
-- tables and columns; only the column types differ (UUIDs are 16-byte BLOBs and
-- timestamps RFC 3339 TEXT here, as sqlx encodes them).

CREATE TABLE accounts (
    id            BLOB PRIMARY KEY NOT NULL,
    email         TEXT NOT NULL UNIQUE,
    role          TEXT NOT NULL CHECK (role IN ('customer', 'operator')),
    status        TEXT NOT NULL CHECK (status IN ('active', 'suspended')),
    password_hash TEXT,
    created_at    TEXT NOT NULL
);

CREATE TABLE license_keys (
    id           TEXT PRIMARY KEY NOT NULL,
    account_id   BLOB NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    name         TEXT NOT NULL,
    secret_hash  TEXT NOT NULL,
    created_at   TEXT NOT NULL,
    last_used_at TEXT,
    revoked_at   TEXT
);
CREATE INDEX license_keys_by_account ON license_keys (account_id);

CREATE TABLE registrations (
    id             BLOB PRIMARY KEY NOT NULL,
    account_id     BLOB NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    license_key_id TEXT REFERENCES license_keys (id) ON DELETE SET NULL,
    username       BLOB NOT NULL UNIQUE,
    password_hash  TEXT NOT NULL,
    subdomain      BLOB NOT NULL UNIQUE,
    allow_from     TEXT NOT NULL DEFAULT '[]',
    subject        TEXT,
    txt_version    INTEGER NOT NULL DEFAULT 0,
    created_at     TEXT NOT NULL,
    last_update_at TEXT
);
CREATE INDEX registrations_by_account ON registrations (account_id);

CREATE TABLE txt_values (
    registration_id BLOB NOT NULL REFERENCES registrations (id) ON DELETE CASCADE,
    version         INTEGER NOT NULL,
    value           TEXT NOT NULL,
    PRIMARY KEY (registration_id, version)
) WITHOUT ROWID;

CREATE TABLE audit_log (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    at          TEXT NOT NULL,
    account_id  BLOB REFERENCES accounts (id) ON DELETE CASCADE,
    kind        TEXT NOT NULL,
    client_addr TEXT,
    detail      TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX audit_log_by_account ON audit_log (account_id, id DESC);
