-- Sign-in lockouts per address and source: a row per (email, source) counts
-- the failures from one source (an IPv4 address or an IPv6 /64), and the row
-- with source '*' is the slower per-address brake that counts failures from
-- every source. Rows carried over from the per-address table become '*' rows,
-- so a lock in force stays in force until it ends.
CREATE TABLE sign_in_lockouts_new (
    email            TEXT NOT NULL,
    source           TEXT NOT NULL,
    failures         INTEGER NOT NULL,
    first_failure_at INTEGER NOT NULL,
    last_failure_at  INTEGER NOT NULL,
    locked_until     INTEGER,
    PRIMARY KEY (email, source)
);
INSERT INTO sign_in_lockouts_new
    (email, source, failures, first_failure_at, last_failure_at, locked_until)
    SELECT email, '*', failures, first_failure_at, last_failure_at, locked_until
      FROM sign_in_lockouts;
DROP TABLE sign_in_lockouts;
ALTER TABLE sign_in_lockouts_new RENAME TO sign_in_lockouts;
CREATE INDEX sign_in_lockouts_locked_until ON sign_in_lockouts (locked_until)
    WHERE locked_until IS NOT NULL;
CREATE INDEX sign_in_lockouts_last_failure ON sign_in_lockouts (last_failure_at);

-- Sign-outs through an upstream backend (Cognito) whose access tokens derp
-- verifies locally: the user's tokens issued before `signed_out_at`, and
-- every token of the signed-out session, are refused until `expires_at` (the
-- longest life such a token can have), across restarts.
CREATE TABLE upstream_sign_outs (
    kind          TEXT NOT NULL CHECK (kind IN ('user', 'session')),
    id            TEXT NOT NULL,
    signed_out_at INTEGER NOT NULL,
    expires_at    INTEGER NOT NULL,
    PRIMARY KEY (kind, id)
);
CREATE INDEX upstream_sign_outs_expires_at ON upstream_sign_outs (expires_at);
