-- Billing, part two. Updates per day: each registration counts its TXT writes
-- of the current UTC day (days since the Unix epoch), in the same UPDATE that
-- writes the value, so the count is as durable as the value and costs no extra
-- statement on the /update fast path.
ALTER TABLE registrations ADD COLUMN updates_day BIGINT NOT NULL DEFAULT 0;
ALTER TABLE registrations ADD COLUMN updates_today BIGINT NOT NULL DEFAULT 0;
-- The payment warnings of each failure (keyed by its first failure time, so a
-- later failure starts afresh): claimed by one portal instance before the mail
-- goes out, marked sent after. A claim never marked sent is taken again once
-- its lease ends (the mail may then go twice; it is never skipped).
CREATE TABLE payment_warnings (
    account_id UUID NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    failed_at  BIGINT NOT NULL,
    kind       TEXT NOT NULL,
    claimed_at BIGINT NOT NULL,
    sent_at    BIGINT,
    PRIMARY KEY (account_id, failed_at, kind)
);
-- The reminder task looks at failed payments only.
CREATE INDEX account_billing_payment_failed ON account_billing (payment_failed_at)
    WHERE payment_failed_at IS NOT NULL;
