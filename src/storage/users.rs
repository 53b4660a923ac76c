//! The `users` table.
//!
//! About 490 lines: the table's queries, the console's search and paging
//! over it, and their unit tests (insert and conflict, search by email part).

use super::ExecCached as _;
use super::{Conn, Engine, StorageResult, optional};
use crate::clock::from_unix;
use crate::domain::{Role, User};
use crate::storage::{Row, params};

/// A user row with the secret column, for the services that need it.
#[derive(Debug, Clone)]
pub struct UserRecord {
    pub user: User,
    pub password_hash: Option<String>,
}

const COLUMNS: &str = "id, email, email_confirmed_at, role, disabled, created_at, last_sign_in_at, data, password_hash";

fn from_row(r: &Row<'_>) -> crate::storage::StorageResult<UserRecord> {
    let data: String = r.get(7)?;
    let raw_role: String = r.get(3)?;
    let role = Role::parse(&raw_role).ok_or_else(|| {
        rusqlite::Error::FromSqlConversionFailure(
            3,
            rusqlite::types::Type::Text,
            format!("unknown role `{raw_role}`").into(),
        )
    })?;
    Ok(UserRecord {
        user: User {
            id: r.get(0)?,
            email: r.get(1)?,
            email_confirmed_at: r.get::<_, Option<i64>>(2)?.map(from_unix),
            role,
            disabled: r.get(4)?,
            created_at: from_unix(r.get(5)?),
            last_sign_in_at: r.get::<_, Option<i64>>(6)?.map(from_unix),
            data: serde_json::from_str(&data).unwrap_or(serde_json::Value::Null),
        },
        password_hash: r.get(8)?,
    })
}

pub struct NewUser<'a> {
    pub id: &'a str,
    pub email: &'a str,
    pub password_hash: Option<&'a str>,
    pub email_confirmed_at: Option<i64>,
    pub role: Role,
    pub data: &'a serde_json::Value,
    pub now: i64,
}

/// Inserts a user; a taken email is `StorageError::Conflict("users.email")`.
pub fn insert(conn: &Conn, u: &NewUser<'_>) -> StorageResult<()> {
    conn.exec(
        "INSERT INTO users (id, email, password_hash, email_confirmed_at, role, data, created_at, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7)",
        params![
            u.id,
            u.email,
            u.password_hash,
            u.email_confirmed_at,
            u.role.as_str(),
            u.data.to_string(),
            u.now
        ],
    )?;
    super::webhooks::user_event(conn, "user.created", u.id, u.now)
}

pub fn by_email(conn: &Conn, email: &str) -> StorageResult<Option<UserRecord>> {
    let mut stmt = conn.prepare_cached(&by_email_sql())?;
    optional(stmt.query_row([email], from_row))
}

pub fn by_id(conn: &Conn, id: &str) -> StorageResult<Option<UserRecord>> {
    let mut stmt = conn.prepare_cached(&format!("SELECT {COLUMNS} FROM users WHERE id = ?1"))?;
    optional(stmt.query_row([id], from_row))
}

pub fn set_password_hash(conn: &Conn, id: &str, hash: Option<&str>, now: i64) -> StorageResult<()> {
    conn.exec(
        "UPDATE users SET password_hash = ?2, updated_at = ?3 WHERE id = ?1",
        params![id, hash, now],
    )?;
    Ok(())
}

pub fn set_data(conn: &Conn, id: &str, data: &serde_json::Value, now: i64) -> StorageResult<()> {
    conn.exec(
        "UPDATE users SET data = ?2, updated_at = ?3 WHERE id = ?1",
        params![id, data.to_string(), now],
    )?;
    super::webhooks::user_event(conn, "user.updated", id, now)
}

/// Sets `email_confirmed_at` unless it is set already.
pub fn confirm_email(conn: &Conn, id: &str, now: i64) -> StorageResult<()> {
    let n = conn.exec(
        "UPDATE users SET email_confirmed_at = ?2, updated_at = ?2
         WHERE id = ?1 AND email_confirmed_at IS NULL",
        params![id, now],
    )?;
    if n == 1 {
        super::webhooks::user_event(conn, "user.updated", id, now)?;
    }
    Ok(())
}

pub fn unconfirm_email(conn: &Conn, id: &str, now: i64) -> StorageResult<()> {
    conn.exec(
        "UPDATE users SET email_confirmed_at = NULL, updated_at = ?2 WHERE id = ?1",
        params![id, now],
    )?;
    super::webhooks::user_event(conn, "user.updated", id, now)
}

pub fn touch_sign_in(conn: &Conn, id: &str, now: i64) -> StorageResult<()> {
    conn.exec(
        "UPDATE users SET last_sign_in_at = ?2 WHERE id = ?1",
        params![id, now],
    )?;
    Ok(())
}

pub fn set_disabled(conn: &Conn, id: &str, disabled: bool, now: i64) -> StorageResult<bool> {
    let n = conn.exec(
        "UPDATE users SET disabled = ?2, updated_at = ?3 WHERE id = ?1 AND disabled IS DISTINCT FROM ?2",
        params![id, disabled, now],
    )?;
    if n == 1 {
        let event = if disabled {
            "user.disabled"
        } else {
            "user.updated"
        };
        super::webhooks::user_event(conn, event, id, now)?;
    }
    Ok(n == 1)
}

pub fn set_role(conn: &Conn, id: &str, role: Role, now: i64) -> StorageResult<bool> {
    let n = conn.exec(
        "UPDATE users SET role = ?2, updated_at = ?3 WHERE id = ?1",
        params![id, role.as_str(), now],
    )?;
    if n == 1 {
        super::webhooks::user_event(conn, "user.updated", id, now)?;
    }
    Ok(n == 1)
}

/// Rows the first pass of [`search`] reads in id order before it turns to
/// the trigram index.
const SEARCH_PROBE_ROWS: i64 = 2000;

/// `search`'s first pass: the next [`SEARCH_PROBE_ROWS`] users by id, filtered.
/// Params: pattern, after, probe rows, limit.
pub(crate) fn search_probe_sql() -> String {
    format!(
        "SELECT {COLUMNS} FROM (SELECT * FROM users WHERE id > ?2 ORDER BY id LIMIT ?3) AS probe
         WHERE email LIKE ?1 ESCAPE '\\' ORDER BY id LIMIT ?4"
    )
}

/// Whether users remain past `search`'s first pass. Params: after, probe
/// rows - 1.
pub(crate) fn search_probe_end_sql() -> &'static str {
    "SELECT 1 FROM users WHERE id > ?1 ORDER BY id LIMIT 1 OFFSET ?2"
}

/// `search` through the trigram index. Params: FTS phrase, pattern, after,
/// limit. The LIKE keeps the exact semantics of the scan (the index folds
/// case beyond ASCII, so it finds a superset).
pub(crate) fn search_fts_sql() -> String {
    let columns = COLUMNS
        .split(", ")
        .map(|c| format!("u.{c}"))
        .collect::<Vec<_>>()
        .join(", ");
    format!(
        "SELECT {columns} FROM user_search_fts f
         JOIN user_search s ON s.seq = f.rowid
         JOIN users u ON u.id = s.user_id
         WHERE user_search_fts MATCH ?1 AND u.email LIKE ?2 ESCAPE '\\' AND u.id > ?3
         ORDER BY u.id LIMIT ?4"
    )
}

/// `search` for queries shorter than a trigram: walks users by id.
/// Params: pattern, after, limit.
pub(crate) fn search_scan_sql() -> String {
    format!(
        "SELECT {COLUMNS} FROM users WHERE email LIKE ?1 ESCAPE '\\' AND id > ?2 ORDER BY id LIMIT ?3"
    )
}

pub(crate) fn by_email_sql() -> String {
    format!("SELECT {COLUMNS} FROM users WHERE email = ?1")
}

/// Users whose email contains `q` (all when empty), by id (creation order),
/// after the id `after`.
///
/// Matches are found in up to two steps: the next `SEARCH_PROBE_ROWS` users
/// by id (enough when `q` is common, e.g. a domain); otherwise, for `q` of 3
/// characters or more, the trigram index `user_search_fts`, whose cost
/// follows the number of matches rather than the number of users. Shorter
/// queries that match rarely fall back to walking every user by id.
pub fn search(conn: &Conn, q: &str, after: &str, limit: i64) -> StorageResult<Vec<UserRecord>> {
    // A NUL would end SQLite's LIKE pattern early (`%` alone matches
    // everyone): text with control characters matches nothing.
    if q.chars().any(char::is_control) {
        return Ok(Vec::new());
    }
    let pattern = format!(
        "%{}%",
        q.replace('\\', "\\\\")
            .replace('%', "\\%")
            .replace('_', "\\_")
    );
    let mut stmt = conn.prepare_cached(&search_probe_sql())?;
    let probe: Vec<UserRecord> = stmt
        .query_map(params![pattern, after, SEARCH_PROBE_ROWS, limit], from_row)?
        .collect::<Result<_, _>>()?;
    if probe.len() as i64 >= limit {
        return Ok(probe);
    }
    // Fewer users than the first pass read are left: it saw them all.
    let mut stmt = conn.prepare_cached(search_probe_end_sql())?;
    if !stmt.exists(params![after, SEARCH_PROBE_ROWS - 1])? {
        return Ok(probe);
    }
    // PostgreSQL: the scan below, which the pg_trgm index on users.email
    // serves (migrations/postgres/0007_scale_indexes.sql).
    if q.chars().count() >= 3 && conn.engine() == Engine::Sqlite {
        let phrase = format!("\"{}\"", q.replace('"', "\"\""));
        let mut stmt = conn.prepare_cached(&search_fts_sql())?;
        let rows = stmt.query_map(params![phrase, pattern, after, limit], from_row)?;
        return rows.collect::<Result<_, _>>();
    }
    let mut stmt = conn.prepare_cached(&search_scan_sql())?;
    let rows = stmt.query_map(params![pattern, after, limit], from_row)?;
    rows.collect::<Result<_, _>>()
}

pub fn count(conn: &Conn) -> StorageResult<i64> {
    conn.query_row("SELECT COUNT(*) FROM users", (), |r| r.get(0))
}

pub fn count_admins(conn: &Conn) -> StorageResult<i64> {
    conn.query_row(
        "SELECT COUNT(*) FROM users WHERE role = 'admin' AND disabled = 0",
        (),
        |r| r.get(0),
    )
}

pub fn delete(conn: &Conn, id: &str, now: i64) -> StorageResult<bool> {
    let Some(before) = by_id(conn, id)? else {
        return Ok(false);
    };
    super::orgs::remove_user_everywhere(conn, id, now)?;
    // Deleting a user deletes its sessions (ON DELETE CASCADE).
    super::sessions::changed(conn)?;
    let deleted = conn.exec("DELETE FROM users WHERE id = ?1", [id])? == 1;
    super::webhooks::user_deleted(conn, &before.user, now)?;
    Ok(deleted)
}

/// A linked sign-in identity: `(provider, subject, email, created_at)`.
pub type IdentityRow = (String, String, Option<String>, i64);

/// A user's linked identities.
pub fn identities(conn: &Conn, user_id: &str) -> StorageResult<Vec<IdentityRow>> {
    let mut stmt = conn.prepare(
        "SELECT provider, subject, email, created_at FROM identities WHERE user_id = ?1 ORDER BY created_at",
    )?;
    let rows = stmt.query_map([user_id], |r| {
        Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
    })?;
    rows.collect::<Result<_, _>>()
}

/// The user linked to `(provider, subject)`.
pub fn identity_user(conn: &Conn, provider: &str, subject: &str) -> StorageResult<Option<String>> {
    optional(conn.query_row(
        "SELECT user_id FROM identities WHERE provider = ?1 AND subject = ?2",
        params![provider, subject],
        |r| r.get(0),
    ))
}

pub fn link_identity(
    conn: &Conn,
    user_id: &str,
    provider: &str,
    subject: &str,
    email: Option<&str>,
    now: i64,
) -> StorageResult<()> {
    conn.exec(
        "INSERT INTO identities (id, user_id, provider, subject, email, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![uuid::Uuid::now_v7().to_string(), user_id, provider, subject, email, now],
    )?;
    Ok(())
}

pub fn unlink_identity(conn: &Conn, user_id: &str, provider: &str) -> StorageResult<bool> {
    Ok(conn.exec(
        "DELETE FROM identities WHERE user_id = ?1 AND provider = ?2",
        params![user_id, provider],
    )? > 0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::{StorageError, migrations};

    pub(crate) fn memory() -> Conn {
        let c = Conn::open_in_memory().unwrap();
        c.execute_batch("PRAGMA foreign_keys = ON").unwrap();
        migrations::apply(&c).unwrap();
        c
    }

    #[test]
    fn insert_then_read_and_conflict_on_email() {
        let c = memory();
        let data = serde_json::json!({"plan": "pro"});
        let u = NewUser {
            id: "u1",
            email: "a@example.com",
            password_hash: Some("h"),
            email_confirmed_at: None,
            role: Role::Default,
            data: &data,
            now: 100,
        };
        insert(&c, &u).unwrap();
        let got = by_email(&c, "a@example.com").unwrap().unwrap();
        assert_eq!(got.user.id, "u1");
        assert_eq!(got.user.data["plan"], "pro");
        assert_eq!(got.password_hash.as_deref(), Some("h"));
        let again = insert(&c, &NewUser { id: "u2", ..u });
        assert!(matches!(again, Err(StorageError::Conflict(ref w)) if w == "users.email"));
        confirm_email(&c, "u1", 200).unwrap();
        confirm_email(&c, "u1", 300).unwrap();
        let got = by_id(&c, "u1").unwrap().unwrap();
        assert_eq!(got.user.email_confirmed_at.unwrap().unix_timestamp(), 200);
    }

    fn add(c: &Conn, id: &str, email: &str) {
        let data = serde_json::json!({});
        insert(
            c,
            &NewUser {
                id,
                email,
                password_hash: None,
                email_confirmed_at: None,
                role: Role::Default,
                data: &data,
                now: 1,
            },
        )
        .unwrap();
    }

    fn ids(rows: Vec<UserRecord>) -> Vec<String> {
        rows.into_iter().map(|r| r.user.id).collect()
    }

    /// Sparse matches go through the trigram index past the first pass; the
    /// answers are those of `LIKE '%q%'`, in id order, after the cursor.
    #[test]
    fn search_by_email_part_through_every_path() {
        let c = memory();
        let n = SEARCH_PROBE_ROWS as usize + 50;
        for i in 0..n {
            add(&c, &format!("u{i:05}"), &format!("user{i}@example.com"));
        }
        add(&c, "v00001", "needle_1@example.org");
        add(&c, "v00002", "needlex1@example.org");
        add(&c, "v00003", "Ab\\\"q%@example.org");
        // Dense: the first pass fills the page.
        assert_eq!(search(&c, "example.com", "", 3).unwrap().len(), 3);
        // Sparse, 3 characters or more: the trigram index, LIKE semantics
        // (`_` is literal, not a wildcard).
        assert_eq!(ids(search(&c, "needle_", "", 10).unwrap()), ["v00001"]);
        assert_eq!(
            ids(search(&c, "needle", "", 10).unwrap()),
            ["v00001", "v00002"]
        );
        assert_eq!(ids(search(&c, "needle", "v00001", 10).unwrap()), ["v00002"]);
        assert_eq!(ids(search(&c, "b\\\"q%", "", 10).unwrap()), ["v00003"]);
        assert_eq!(ids(search(&c, "user2049@", "", 10).unwrap()), ["u02049"]);
        // Short: the walk by id.
        assert_eq!(
            ids(search(&c, ".o", "", 10).unwrap()),
            ["v00001", "v00002", "v00003"]
        );
        // The index follows deletes and email changes.
        delete(&c, "v00001", 0).unwrap();
        c.execute(
            "UPDATE users SET email = 'moved@example.net' WHERE id = 'v00002'",
            (),
        )
        .unwrap();
        assert!(search(&c, "needle", "", 10).unwrap().is_empty());
        assert_eq!(ids(search(&c, "moved@", "", 10).unwrap()), ["v00002"]);
    }
}

/// The columns the admin console sorts users by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UserSort {
    Email,
    Created,
    LastSignIn,
}

impl UserSort {
    fn column(self) -> &'static str {
        match self {
            Self::Email => "email",
            Self::Created => "created_at",
            Self::LastSignIn => "COALESCE(last_sign_in_at, 0)",
        }
    }
}

/// Escapes `q` for `LIKE … ESCAPE '\'`, as "contains".
pub(crate) fn contains_pattern(q: &str) -> String {
    format!(
        "%{}%",
        q.replace('\\', "\\\\")
            .replace('%', "\\%")
            .replace('_', "\\_")
    )
}

/// One page of the admin console's user list: users whose email contains
/// `q`, sorted, skipping `offset`; with the number of all matches.
pub fn list_page(
    conn: &Conn,
    q: &str,
    sort: UserSort,
    desc: bool,
    offset: i64,
    limit: i64,
) -> StorageResult<(i64, Vec<UserRecord>)> {
    if q.chars().any(char::is_control) {
        return Ok((0, Vec::new()));
    }
    let pattern = contains_pattern(q);
    let dir = if desc { "DESC" } else { "ASC" };
    let total: i64 = if q.is_empty() {
        conn.query_row("SELECT COUNT(*) FROM users", (), |r| r.get(0))?
    } else {
        conn.query_row(
            "SELECT COUNT(*) FROM users WHERE email LIKE ?1 ESCAPE '\\'",
            [&pattern],
            |r| r.get(0),
        )?
    };
    let sql = format!(
        "SELECT {COLUMNS} FROM users WHERE (?1 = '%%' OR email LIKE ?1 ESCAPE '\\')
         ORDER BY {col} {dir}, id {dir} LIMIT ?2 OFFSET ?3",
        col = sort.column()
    );
    let mut stmt = conn.prepare_cached(&sql)?;
    let rows = stmt.query_map(params![pattern, limit, offset], from_row)?;
    Ok((total, rows.collect::<Result<_, _>>()?))
}

/// `(id, email)` of the users among `ids` that exist.
pub fn emails_of(conn: &Conn, ids: &[String]) -> StorageResult<Vec<(String, String)>> {
    let mut stmt = conn.prepare_cached("SELECT id, email FROM users WHERE id = ?1")?;
    let mut out = Vec::new();
    for id in ids {
        if let Some(row) = optional(stmt.query_row([id], |r| Ok((r.get(0)?, r.get(1)?))))? {
            out.push(row);
        }
    }
    Ok(out)
}
