-- Users, sessions, tokens, signing keys and the audit log.
-- Times are integer seconds since the epoch (UTC).

CREATE TABLE users (
    id                 TEXT PRIMARY KEY,
    email              TEXT NOT NULL UNIQUE,
    password_hash      TEXT,
    email_confirmed_at INTEGER,
    role               TEXT NOT NULL DEFAULT 'default',
    disabled           INTEGER NOT NULL DEFAULT 0,
    data               TEXT NOT NULL DEFAULT '{}',
    created_at         INTEGER NOT NULL,
    updated_at         INTEGER NOT NULL,
    last_sign_in_at    INTEGER
);

CREATE TABLE identities (
    id          TEXT PRIMARY KEY,
    user_id     TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    provider    TEXT NOT NULL,
    subject     TEXT NOT NULL,
    email       TEXT,
    created_at  INTEGER NOT NULL,
    UNIQUE (provider, subject)
);
CREATE INDEX identities_user ON identities(user_id);

-- One row per login.
CREATE TABLE sessions (
    id             TEXT PRIMARY KEY,
    user_id        TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    created_at     INTEGER NOT NULL,
    last_used_at   INTEGER NOT NULL,
    expires_at     INTEGER NOT NULL,       -- absolute life
    ip             TEXT,
    user_agent     TEXT,
    active_org_id  TEXT,
    revoked_at     INTEGER,
    revoked_reason TEXT
);
CREATE INDEX sessions_user ON sessions(user_id);

-- Opaque refresh tokens, stored as SHA-256 hex. A token is used once.
CREATE TABLE refresh_tokens (
    id          INTEGER PRIMARY KEY,
    session_id  TEXT NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
    token_hash  TEXT NOT NULL UNIQUE,
    parent_id   INTEGER,
    created_at  INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL,          -- idle life
    used_at     INTEGER
);
CREATE INDEX refresh_tokens_session ON refresh_tokens(session_id);

-- Confirmation, magic link, reset, invitation and authorization-code tokens.
CREATE TABLE one_time_tokens (
    token_hash  TEXT PRIMARY KEY,
    purpose     TEXT NOT NULL,
    email       TEXT NOT NULL,
    user_id     TEXT,
    payload     TEXT NOT NULL DEFAULT '{}',
    created_at  INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL,
    used_at     INTEGER
);
CREATE INDEX one_time_tokens_email ON one_time_tokens(email, purpose);

CREATE TABLE signing_keys (
    kid          TEXT PRIMARY KEY,
    alg          TEXT NOT NULL,
    private_der  BLOB NOT NULL,
    created_at   INTEGER NOT NULL,
    retired_at   INTEGER
);

CREATE TABLE audit_log (
    id          INTEGER PRIMARY KEY,
    at          INTEGER NOT NULL,
    action      TEXT NOT NULL,
    actor_id    TEXT,
    user_id     TEXT,
    org_id      TEXT,
    target      TEXT,
    ip          TEXT,
    user_agent  TEXT,
    detail      TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX audit_log_user ON audit_log(user_id, id);
CREATE INDEX audit_log_action ON audit_log(action, id);
