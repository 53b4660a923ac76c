-- The durable mail outbox: a message is written here in the same transaction
-- as the state change that caused it, and delivered by the background sender.
CREATE TABLE outbox (
    id               INTEGER PRIMARY KEY,
    message_id       TEXT NOT NULL UNIQUE,    -- the Message-ID header, stable across retries
    kind             TEXT NOT NULL,           -- confirm, magic_link, reset, …
    to_addr          TEXT NOT NULL,
    subject          TEXT NOT NULL,
    text_body        TEXT NOT NULL,
    html_body        TEXT,
    status           TEXT NOT NULL DEFAULT 'queued',   -- queued | sending | sent | failed
    attempts         INTEGER NOT NULL DEFAULT 0,
    next_attempt_at  INTEGER NOT NULL,
    last_error       TEXT,
    created_at       INTEGER NOT NULL,
    sent_at          INTEGER
);
CREATE INDEX outbox_due ON outbox(status, next_attempt_at);
CREATE INDEX outbox_to ON outbox(to_addr, created_at);
