-- tls.acme: certdns's own certificate, per ACME directory (the scope). One API
-- instance orders at a time (the lease: who, and until when, in unix seconds);
-- every instance serves what is stored here. The ACME account and the
-- certificate's private key are sealed with api.credentials_key (never stored in
-- the database), so a dump alone gives neither away.
CREATE TABLE tls_acme (
    scope        TEXT PRIMARY KEY,
    lease_holder TEXT NOT NULL DEFAULT '',
    lease_until  BIGINT NOT NULL DEFAULT 0,
    account      TEXT,
    certificate  TEXT,
    updated_at   BIGINT NOT NULL DEFAULT 0
);
