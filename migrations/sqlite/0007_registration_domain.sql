-- A registration knows the domain it proves control of (the A-label form, no
-- final dot), unique within an account: the acmeproxy dialect and lego's HTTP
-- storage find the registration by it.
ALTER TABLE registrations ADD COLUMN domain TEXT;
CREATE UNIQUE INDEX registrations_domain_per_account ON registrations (account_id, domain)
    WHERE domain IS NOT NULL;
-- The registration's password sealed with the server's credentials key (never
-- stored in the database), kept only where a key with storage access may give
-- it back.
ALTER TABLE registrations ADD COLUMN password_sealed TEXT;
-- Storage access: the key may read its registrations' credentials. Off by default.
ALTER TABLE license_keys ADD COLUMN storage_access INTEGER NOT NULL DEFAULT 0;
