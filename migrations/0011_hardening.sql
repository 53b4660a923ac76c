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
