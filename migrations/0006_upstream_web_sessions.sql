-- Hosted-pages sessions of backends whose sign-ins are not rows of their own
-- (Cognito): the upstream tokens behind the page cookie, sealed with a key
-- derived from the cookie's session id, found by that id's SHA-256. The
-- database alone therefore holds nothing usable.
CREATE TABLE upstream_web_sessions (
    id_hash     TEXT PRIMARY KEY,
    user_id     TEXT NOT NULL,
    sealed      TEXT NOT NULL,
    -- The org switched to on the pages; the membership is read again at
    -- every request.
    active_org_id TEXT,
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL
);
CREATE INDEX upstream_web_sessions_user ON upstream_web_sessions (user_id);
CREATE INDEX upstream_web_sessions_expires ON upstream_web_sessions (expires_at);
