-- Passkeys (WebAuthn) as second factors and as a sign-in of their own.
-- A passkey is a row of mfa_factors of type 'passkey': its credential (the
-- public key, sign count, flags) is stored sealed in `secret_sealed` like a
-- TOTP secret; its credential id (public, sent by the browser) in the clear
-- and unique, so a discoverable sign-in finds its owner and no credential
-- is registered to two accounts. SQLite cannot change a CHECK: the table is
-- rebuilt with the same rows.

CREATE TABLE mfa_factors_new (
    id              TEXT PRIMARY KEY,
    user_id         TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    type            TEXT NOT NULL CHECK (type IN ('totp', 'passkey')),
    name            TEXT NOT NULL,
    secret_sealed   TEXT NOT NULL,
    created_at      INTEGER NOT NULL,
    confirmed_at    INTEGER,            -- NULL while pending (enrolled, not verified)
    last_used_at    INTEGER,
    last_used_step  INTEGER,            -- the newest TOTP time step accepted (replay)
    credential_id   TEXT                -- passkeys: base64url credential id
);
INSERT INTO mfa_factors_new (id, user_id, type, name, secret_sealed, created_at,
                             confirmed_at, last_used_at, last_used_step)
    SELECT id, user_id, type, name, secret_sealed, created_at,
           confirmed_at, last_used_at, last_used_step FROM mfa_factors;
DROP TABLE mfa_factors;
ALTER TABLE mfa_factors_new RENAME TO mfa_factors;
CREATE INDEX mfa_factors_user ON mfa_factors(user_id);
CREATE UNIQUE INDEX mfa_factors_credential ON mfa_factors(credential_id)
    WHERE credential_id IS NOT NULL;

-- A WebAuthn ceremony in progress: the relying party's state (challenge,
-- policy) kept on the server, keyed by the SHA-256 of the `flow_id` handed
-- to the browser. Short-lived and spent once.
CREATE TABLE passkey_flows (
    flow_hash       TEXT PRIMARY KEY,
    kind            TEXT NOT NULL CHECK (kind IN ('register', 'sign_in', 'second_factor')),
    user_id         TEXT REFERENCES users(id) ON DELETE CASCADE,  -- register, second_factor
    mfa_token_hash  TEXT,               -- second_factor: the pending sign-in it finishes
    name            TEXT,               -- register: the passkey's name
    state           TEXT NOT NULL,      -- the ceremony state (JSON)
    created_at      INTEGER NOT NULL,
    expires_at      INTEGER NOT NULL,
    used_at         INTEGER
);
CREATE INDEX passkey_flows_expires ON passkey_flows(expires_at);
