-- The public status page: each running instance of a role (api, portal) notes
-- that it is alive, when, and what it measured (its checks and the time its
-- /update writes took to reach every DNS responder), as JSON. Times are Unix
-- seconds. Rows of instances gone for long are deleted by the writers.
CREATE TABLE service_heartbeats (
    instance_id TEXT PRIMARY KEY,
    role        TEXT NOT NULL,
    name        TEXT NOT NULL,
    started_at  INTEGER NOT NULL,
    seen_at     INTEGER NOT NULL,
    detail      TEXT NOT NULL DEFAULT '{}'
);
-- Why the operator suspended an account, shown to its owner; cleared on reactivation.
ALTER TABLE accounts ADD COLUMN suspension_reason TEXT;
