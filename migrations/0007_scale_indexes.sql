-- Indexes for the hot queries at scale (100,000 users, orgs of 10,000
-- members); each one is checked with EXPLAIN QUERY PLAN by
-- `storage::plans` and its test.

-- An org's members in `seq` order, for the member list and its cursor:
-- without it every page reads all of the org's rows and sorts them.
CREATE INDEX org_members_org ON org_members(org_id, seq);

-- The audit log filtered by org, and by actor or target (the user filter
-- matches user_id, actor_id or target), newest first.
CREATE INDEX audit_log_org ON audit_log(org_id, id);
CREATE INDEX audit_log_actor ON audit_log(actor_id, id);
CREATE INDEX audit_log_target ON audit_log(target, id);

-- The admin user search ("email contains q") through a trigram index: a
-- plain index cannot serve LIKE '%q%'. `user_search` copies each user's
-- email under a stable INTEGER PRIMARY KEY (the FTS rowid; a VACUUM may
-- renumber the implicit rowids of `users`), kept in step by triggers.
CREATE TABLE user_search (
    seq      INTEGER PRIMARY KEY,
    user_id  TEXT NOT NULL UNIQUE,
    email    TEXT NOT NULL
);
CREATE VIRTUAL TABLE user_search_fts USING fts5(
    email, content = 'user_search', content_rowid = 'seq', tokenize = 'trigram'
);

CREATE TRIGGER user_search_fts_insert AFTER INSERT ON user_search BEGIN
    INSERT INTO user_search_fts (rowid, email) VALUES (new.seq, new.email);
END;
CREATE TRIGGER user_search_fts_delete AFTER DELETE ON user_search BEGIN
    INSERT INTO user_search_fts (user_search_fts, rowid, email) VALUES ('delete', old.seq, old.email);
END;
CREATE TRIGGER user_search_fts_update AFTER UPDATE OF email ON user_search BEGIN
    INSERT INTO user_search_fts (user_search_fts, rowid, email) VALUES ('delete', old.seq, old.email);
    INSERT INTO user_search_fts (rowid, email) VALUES (new.seq, new.email);
END;

CREATE TRIGGER users_search_insert AFTER INSERT ON users BEGIN
    INSERT INTO user_search (user_id, email) VALUES (new.id, new.email);
END;
CREATE TRIGGER users_search_delete AFTER DELETE ON users BEGIN
    DELETE FROM user_search WHERE user_id = old.id;
END;
CREATE TRIGGER users_search_update AFTER UPDATE OF email ON users BEGIN
    UPDATE user_search SET email = new.email WHERE user_id = old.id;
END;

INSERT INTO user_search (user_id, email) SELECT id, email FROM users ORDER BY rowid;
