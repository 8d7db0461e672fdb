-- Sessions signed out on one device before they expire ("sign out" of this
-- browser only; "sign out everywhere" bumps accounts.session_version instead).
-- Rows go once their session would have expired anyway.
CREATE TABLE revoked_sessions (
    id         TEXT PRIMARY KEY,
    expires_at INTEGER NOT NULL
);
CREATE INDEX revoked_sessions_expiry ON revoked_sessions (expires_at);
