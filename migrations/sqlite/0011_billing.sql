-- Billing: each account's plan and Stripe state (no row: the free plan, never
-- billed), and the Stripe webhook events already processed (a replay changes
-- nothing). Times are Unix seconds, compared to order Stripe's events.
CREATE TABLE account_billing (
    account_id          BLOB PRIMARY KEY NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    plan                TEXT,
    plan_override       TEXT,
    stripe_customer_id  TEXT UNIQUE,
    subscription_id     TEXT,
    subscription_status TEXT,
    subscription_at     BIGINT NOT NULL DEFAULT 0,
    payment_at          BIGINT NOT NULL DEFAULT 0,
    payment_failed_at   BIGINT,
    warnings_sent       BIGINT NOT NULL DEFAULT 0,
    last_warning_at     BIGINT
);
CREATE TABLE stripe_events (
    id          TEXT PRIMARY KEY NOT NULL,
    type        TEXT NOT NULL,
    received_at BIGINT NOT NULL
);
