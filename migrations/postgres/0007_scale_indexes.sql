-- PostgreSQL's form of 0007_scale_indexes.sql: the same indexes for the
-- hot queries; the admin user search ("email contains q") goes through a
-- pg_trgm GIN index on users.email instead of SQLite's FTS5 trigram table
-- and its triggers. pg_trgm ships with PostgreSQL and is a trusted
-- extension: the database's owner may create it.

CREATE INDEX org_members_org ON org_members(org_id, seq);

CREATE INDEX audit_log_org ON audit_log(org_id, id);
CREATE INDEX audit_log_actor ON audit_log(actor_id, id);
CREATE INDEX audit_log_target ON audit_log(target, id);

CREATE EXTENSION IF NOT EXISTS pg_trgm;
CREATE INDEX users_email_trgm ON users USING gin (email gin_trgm_ops);
