-- Sign-in lockout: consecutive failed password sign-ins per email address
-- (known or not, so a lockout tells nothing about whether an account
-- exists). A row is locked while `locked_until` is in the future; admins see
-- and clear locks in the admin UI.
CREATE TABLE sign_in_lockouts (
    email            TEXT PRIMARY KEY,
    failures         INTEGER NOT NULL,
    first_failure_at INTEGER NOT NULL,
    last_failure_at  INTEGER NOT NULL,
    locked_until     INTEGER
);
CREATE INDEX sign_in_lockouts_locked_until ON sign_in_lockouts (locked_until)
    WHERE locked_until IS NOT NULL;
CREATE INDEX sign_in_lockouts_last_failure ON sign_in_lockouts (last_failure_at);
