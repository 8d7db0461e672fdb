-- Alerts beyond the monitor's e-mail: which events each account has mailed,
-- outgoing webhooks with a durable delivery queue (retries with back-off, the
-- log customers see), bursts of failed authentications per registration or key,
-- and whether a rotated key's previous secret is still in use. Times are Unix
-- seconds (BIGINT), so "due" compares numbers on both backends.

-- Only the choices that differ from the default (every event is mailed).
CREATE TABLE alert_email_settings (
    account_id BLOB NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    event_type TEXT NOT NULL,
    email      BIGINT NOT NULL,
    PRIMARY KEY (account_id, event_type)
);

CREATE TABLE webhook_endpoints (
    id         BLOB PRIMARY KEY NOT NULL,
    account_id BLOB NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    url        TEXT NOT NULL,
    -- The HMAC key deliveries are signed with: certdns signs, so it is kept,
    -- not hashed (it authenticates us to the customer, not them to us).
    secret     TEXT NOT NULL,
    -- The event types sent, separated by spaces.
    events     TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX webhook_endpoints_by_account ON webhook_endpoints (account_id);

CREATE TABLE webhook_deliveries (
    id              BLOB PRIMARY KEY NOT NULL,
    endpoint_id     BLOB NOT NULL REFERENCES webhook_endpoints (id) ON DELETE CASCADE,
    account_id      BLOB NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    event_id        TEXT NOT NULL,
    event_type      TEXT NOT NULL,
    payload         TEXT NOT NULL,
    created_at      BIGINT NOT NULL,
    state           TEXT NOT NULL CHECK (state IN ('pending', 'delivered', 'failed')),
    attempts        BIGINT NOT NULL DEFAULT 0,
    next_attempt_at BIGINT NOT NULL,
    last_attempt_at BIGINT,
    last_status     BIGINT,
    last_error      TEXT NOT NULL DEFAULT ''
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (state, next_attempt_at);
CREATE INDEX webhook_deliveries_by_account ON webhook_deliveries (account_id, created_at);

-- Failed authentications naming a known registration ('registration:<username>')
-- or key ('key:<key id>'): a burst lasts while failures keep coming; its owner
-- is told once per burst.
CREATE TABLE auth_failure_bursts (
    subject    TEXT PRIMARY KEY NOT NULL,
    account_id BLOB NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    first_at   BIGINT NOT NULL,
    last_at    BIGINT NOT NULL,
    failures   BIGINT NOT NULL,
    notified   BIGINT NOT NULL DEFAULT 0
);

-- A previous secret of a rotation was used (when, and the end of its grace),
-- and the grace end its owner was warned about.
ALTER TABLE license_keys ADD COLUMN previous_used_at BIGINT;
ALTER TABLE license_keys ADD COLUMN previous_used_until BIGINT;
ALTER TABLE license_keys ADD COLUMN grace_notified_until BIGINT;
