-- Continuous monitoring of every domain-bound registration's CNAME (the portal
-- role's monitor). Times the monitor schedules by are Unix seconds (BIGINT), so
-- "due" compares numbers on both backends.
CREATE TABLE delegation_status (
    registration_id BLOB PRIMARY KEY NOT NULL REFERENCES registrations (id) ON DELETE CASCADE,
    account_id      BLOB NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    -- The domain the status is about (a changed domain is checked again at once).
    domain          TEXT NOT NULL,
    status          TEXT NOT NULL CHECK (status IN ('pending', 'correct', 'missing', 'elsewhere', 'shadowed', 'unknown')),
    detail          TEXT NOT NULL DEFAULT '',
    checked_at      BIGINT NOT NULL DEFAULT 0,
    changed_at      BIGINT NOT NULL DEFAULT 0,
    next_check_at   BIGINT NOT NULL DEFAULT 0,
    -- Checks in a row that did not find the CNAME correct (the back-off).
    failures        INTEGER NOT NULL DEFAULT 0,
    -- registrations.last_update_at as last seen: an update is checked after.
    seen_update_at  TEXT,
    -- The state the customer was last told about (one notice per change).
    notified        TEXT NOT NULL DEFAULT 'none'
);
CREATE INDEX delegation_status_due ON delegation_status (next_check_at);
CREATE INDEX delegation_status_by_account ON delegation_status (account_id);

-- Each change of a registration's delegation status (the recent ones are kept).
CREATE TABLE delegation_history (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    registration_id BLOB NOT NULL REFERENCES registrations (id) ON DELETE CASCADE,
    at              BIGINT NOT NULL,
    status          TEXT NOT NULL,
    detail          TEXT NOT NULL DEFAULT ''
);
CREATE INDEX delegation_history_by_registration ON delegation_history (registration_id, id);
