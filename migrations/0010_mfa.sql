-- Second factors (TOTP), their recovery codes, the pending second step of a
-- sign-in (`mfa_token`), and the methods a login session was proven with.
-- A TOTP secret is stored sealed (AES-256-GCM under `data_dir/secrets.key`,
-- never in this database); recovery codes and mfa tokens only as SHA-256 hex.

CREATE TABLE mfa_factors (
    id              TEXT PRIMARY KEY,
    user_id         TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    type            TEXT NOT NULL CHECK (type IN ('totp')),
    name            TEXT NOT NULL,
    secret_sealed   TEXT NOT NULL,
    created_at      INTEGER NOT NULL,
    confirmed_at    INTEGER,            -- NULL while pending (enrolled, not verified)
    last_used_at    INTEGER,
    last_used_step  INTEGER             -- the newest TOTP time step accepted (replay)
);
CREATE INDEX mfa_factors_user ON mfa_factors(user_id);

CREATE TABLE mfa_recovery_codes (
    id          INTEGER PRIMARY KEY,
    user_id     TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    code_hash   TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    used_at     INTEGER
);
CREATE INDEX mfa_recovery_codes_user ON mfa_recovery_codes(user_id, code_hash);

CREATE TABLE mfa_challenges (
    token_hash  TEXT PRIMARY KEY,
    user_id     TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    method      TEXT NOT NULL,          -- the first factor's audit method
    amr         TEXT NOT NULL,          -- JSON array: the first factor's amr values
    created_at  INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL,
    failures    INTEGER NOT NULL DEFAULT 0,
    used_at     INTEGER
);
CREATE INDEX mfa_challenges_expires ON mfa_challenges(expires_at);

-- RFC 8176 method references of the sign-in that created the session, kept
-- across refresh.
ALTER TABLE sessions ADD COLUMN amr TEXT NOT NULL DEFAULT '[]';
