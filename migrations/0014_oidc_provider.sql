-- derp as an OpenID Connect provider.
-- Clients created with `derp clients create` (those of derp.toml live in the
-- configuration). The secret is stored as its SHA-256 hex (it is 256 random
-- bits, shown once); a public client has none.
CREATE TABLE oauth_clients (
    client_id                 TEXT PRIMARY KEY,
    name                      TEXT NOT NULL,
    secret_hash               TEXT,
    redirect_uris             TEXT NOT NULL,            -- JSON array
    post_logout_redirect_uris TEXT NOT NULL DEFAULT '[]',
    scopes                    TEXT NOT NULL,            -- JSON array
    first_party               INTEGER NOT NULL DEFAULT 0,
    created_at                INTEGER NOT NULL
);

-- What a user allowed a client (scopes space separated), remembered.
CREATE TABLE oauth_consents (
    user_id    TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    client_id  TEXT NOT NULL,
    scopes     TEXT NOT NULL,
    granted_at INTEGER NOT NULL,
    PRIMARY KEY (user_id, client_id)
);

-- Authorization codes of the provider, as SHA-256 hex. A used code keeps its
-- row until it expires, so that a second use is recognised and what the
-- first use issued (session_id) is revoked.
CREATE TABLE oauth_codes (
    code_hash  TEXT PRIMARY KEY,
    client_id  TEXT NOT NULL,
    user_id    TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    payload    TEXT NOT NULL,                            -- JSON
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    used_at    INTEGER,
    session_id TEXT
);

-- A session minted for a client at the token endpoint: its tokens are the
-- client's (RFC 9068 access tokens with client_id and scope).
ALTER TABLE sessions ADD COLUMN client_id TEXT;
ALTER TABLE sessions ADD COLUMN scope TEXT;
CREATE INDEX sessions_client ON sessions(user_id, client_id) WHERE client_id IS NOT NULL;
