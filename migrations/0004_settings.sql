-- Server-wide secrets and settings generated at first start (the key that
-- encrypts the hosted pages' cookie). Secret values never leave the server.
CREATE TABLE settings (
    name        TEXT PRIMARY KEY,
    value       BLOB NOT NULL,
    created_at  INTEGER NOT NULL
);
