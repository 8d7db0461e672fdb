-- Client addresses each license key has been used from, so "key used from a new
-- address" is audited once per address, across restarts and API instances.
CREATE TABLE license_key_addresses (
    license_key_id TEXT NOT NULL REFERENCES license_keys (id) ON DELETE CASCADE,
    client_addr    TEXT NOT NULL,
    first_seen_at  TEXT NOT NULL,
    PRIMARY KEY (license_key_id, client_addr)
) WITHOUT ROWID;
