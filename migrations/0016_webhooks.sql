-- Webhooks: endpoints, the events derp wrote for them, and one delivery row
-- per (event, endpoint). An event and its deliveries are written in the same
-- transaction as the change they report.
CREATE TABLE webhook_endpoints (
    id                    TEXT PRIMARY KEY,
    name                  TEXT NOT NULL UNIQUE,
    url                   TEXT NOT NULL,
    secret_sealed         TEXT NOT NULL,          -- whsec_… sealed under secrets.key
    events                TEXT NOT NULL,          -- JSON array of patterns
    source                TEXT NOT NULL,          -- config | admin
    created_at            INTEGER NOT NULL,
    updated_at            INTEGER NOT NULL,
    consecutive_failures  INTEGER NOT NULL DEFAULT 0,
    last_success_ms       INTEGER,
    last_failure_ms       INTEGER,
    failing_since_ms      INTEGER                 -- set when a delivery is given up
);

CREATE TABLE webhook_events (
    id          INTEGER PRIMARY KEY,
    msg_id      TEXT NOT NULL UNIQUE,   -- the webhook-id header, the same on every attempt
    type        TEXT NOT NULL,
    payload     TEXT NOT NULL,          -- the exact body sent
    created_ms  INTEGER NOT NULL
);

CREATE TABLE webhook_deliveries (
    id               INTEGER PRIMARY KEY,
    event_id         INTEGER NOT NULL REFERENCES webhook_events(id) ON DELETE CASCADE,
    endpoint_id      TEXT NOT NULL REFERENCES webhook_endpoints(id) ON DELETE CASCADE,
    status           TEXT NOT NULL DEFAULT 'pending',  -- pending | sending | delivered | failed
    attempts         INTEGER NOT NULL DEFAULT 0,
    created_ms       INTEGER NOT NULL,
    next_attempt_ms  INTEGER NOT NULL,
    last_attempt_ms  INTEGER,
    response_status  INTEGER,
    response_excerpt TEXT,
    last_error       TEXT,
    delivered_ms     INTEGER
);
-- The head of each endpoint's queue: its oldest open delivery.
CREATE INDEX webhook_deliveries_open ON webhook_deliveries(endpoint_id, id)
    WHERE status IN ('pending', 'sending');
CREATE INDEX webhook_deliveries_endpoint ON webhook_deliveries(endpoint_id, id);
CREATE INDEX webhook_deliveries_event ON webhook_deliveries(event_id);
