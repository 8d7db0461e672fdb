-- dns-account-01: a registration may answer for one ACME account (the URL the
-- CA gave it), at `_<label>._acme-challenge.<domain>`. Several ACME accounts can
-- then hold the same domain in one account, each with its own registration, so
-- the domain is unique per (account, ACME account) instead of per account; the
-- plain dns-01 bindings (no ACME account) stay unique per account as before.
ALTER TABLE registrations ADD COLUMN acme_account_url TEXT;
DROP INDEX registrations_domain_per_account;
CREATE UNIQUE INDEX registrations_domain_per_account ON registrations (account_id, domain)
    WHERE domain IS NOT NULL AND acme_account_url IS NULL;
CREATE UNIQUE INDEX registrations_domain_per_acme_account ON registrations (account_id, domain, acme_account_url)
    WHERE domain IS NOT NULL AND acme_account_url IS NOT NULL;
