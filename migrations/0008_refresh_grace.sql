-- Refresh token rotation measured in milliseconds, and the retry answer.
-- used_at_ms: when the token was used (used_at keeps whole seconds).
-- child_sealed: the refresh token this one was rotated into, sealed
-- (AES-256-GCM, key from HKDF-SHA256 over this token's own value, which
-- derp never stores), so that a retry within the grace window presenting
-- this token gets the same child back instead of a second live branch.
ALTER TABLE refresh_tokens ADD COLUMN used_at_ms INTEGER;
ALTER TABLE refresh_tokens ADD COLUMN child_sealed TEXT;
