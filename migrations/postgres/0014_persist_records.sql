-- dns-persist-01: a registration is of a kind. `challenge` answers what its
-- client sends to /update (dns-01, or dns-account-01 with an ACME account URL);
-- `persist` answers one `_validation-persist` record (the issue-value text,
-- `persist_record`; NULL before one is set) that the customer manages in the
-- portal or the account API and that /update never writes.
ALTER TABLE registrations ADD COLUMN kind TEXT NOT NULL DEFAULT 'challenge';
ALTER TABLE registrations ADD COLUMN persist_record TEXT;
-- A persist registration has its own CNAME name (`_validation-persist.<domain>`),
-- so it shares a domain with the dns-01 registration; one per domain and account.
DROP INDEX registrations_domain_per_account;
CREATE UNIQUE INDEX registrations_domain_per_account ON registrations (account_id, domain)
    WHERE domain IS NOT NULL AND acme_account_url IS NULL AND kind = 'challenge';
CREATE UNIQUE INDEX registrations_persist_domain ON registrations (account_id, domain)
    WHERE domain IS NOT NULL AND kind = 'persist';
