//! Hosted-pages sessions of upstream backends (`upstream_web_sessions`):
//! sealed token material found by the hash of the cookie's session id.

use super::ExecCached as _;
use super::{Conn, StorageResult, optional};
use crate::storage::params;

#[derive(Debug, Clone)]
pub struct WebSessionRow {
    pub user_id: String,
    pub sealed: String,
    pub expires_at: i64,
    pub active_org_id: Option<String>,
}

pub fn insert(conn: &Conn, id_hash: &str, row: &WebSessionRow, now: i64) -> StorageResult<()> {
    conn.exec(
        "INSERT INTO upstream_web_sessions (id_hash, user_id, sealed, created_at, updated_at, expires_at)
         VALUES (?1, ?2, ?3, ?4, ?4, ?5)",
        params![id_hash, row.user_id, row.sealed, now, row.expires_at],
    )?;
    Ok(())
}

/// The live (unexpired) session with this id hash.
pub fn get(conn: &Conn, id_hash: &str, now: i64) -> StorageResult<Option<WebSessionRow>> {
    optional(conn.query_row(
        "SELECT user_id, sealed, expires_at, active_org_id FROM upstream_web_sessions
         WHERE id_hash = ?1 AND expires_at > ?2",
        params![id_hash, now],
        |r| {
            Ok(WebSessionRow {
                user_id: r.get(0)?,
                sealed: r.get(1)?,
                expires_at: r.get(2)?,
                active_org_id: r.get(3)?,
            })
        },
    ))
}

/// Replaces the sealed material (after a refresh); false when the session
/// is gone meanwhile (signed out), so it is not brought back.
pub fn update(conn: &Conn, id_hash: &str, sealed: &str, now: i64) -> StorageResult<bool> {
    Ok(conn.exec(
        "UPDATE upstream_web_sessions SET sealed = ?2, updated_at = ?3 WHERE id_hash = ?1",
        params![id_hash, sealed, now],
    )? > 0)
}

/// Sets (or clears) the page session's active org; false when it is gone.
pub fn set_org(conn: &Conn, id_hash: &str, org_id: Option<&str>, now: i64) -> StorageResult<bool> {
    Ok(conn.exec(
        "UPDATE upstream_web_sessions SET active_org_id = ?2, updated_at = ?3 WHERE id_hash = ?1",
        params![id_hash, org_id, now],
    )? > 0)
}

pub fn delete(conn: &Conn, id_hash: &str) -> StorageResult<usize> {
    conn.exec(
        "DELETE FROM upstream_web_sessions WHERE id_hash = ?1",
        [id_hash],
    )
}

/// Ends every page session of the user (a sign-out everywhere upstream).
pub fn delete_for_user(conn: &Conn, user_id: &str) -> StorageResult<usize> {
    conn.exec(
        "DELETE FROM upstream_web_sessions WHERE user_id = ?1",
        [user_id],
    )
}

/// Deletes sessions that expired before `before`.
pub fn purge(conn: &Conn, before: i64) -> StorageResult<usize> {
    conn.exec(
        "DELETE FROM upstream_web_sessions WHERE expires_at < ?1",
        [before],
    )
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn rows_are_found_by_hash_until_they_expire_or_their_user_signs_out() {
        let c = Conn::open_in_memory().unwrap();
        crate::storage::migrations::apply(&c).unwrap();
        let row = |user: &str| WebSessionRow {
            user_id: user.into(),
            sealed: "sealed".into(),
            expires_at: 1_000,
            active_org_id: None,
        };
        insert(&c, "h1", &row("u1"), 10).unwrap();
        insert(&c, "h2", &row("u1"), 10).unwrap();
        insert(&c, "h3", &row("u2"), 10).unwrap();
        assert_eq!(get(&c, "h1", 999).unwrap().unwrap().user_id, "u1");
        assert!(get(&c, "h1", 1_000).unwrap().is_none(), "expired");
        assert!(update(&c, "h1", "resealed", 20).unwrap());
        assert!(set_org(&c, "h1", Some("org_1"), 20).unwrap());
        let back = get(&c, "h1", 20).unwrap().unwrap();
        assert_eq!(back.sealed, "resealed");
        assert_eq!(back.active_org_id.as_deref(), Some("org_1"));
        assert_eq!(delete_for_user(&c, "u1").unwrap(), 2);
        assert!(!update(&c, "h1", "again", 30).unwrap(), "not brought back");
        assert!(!set_org(&c, "h2", None, 30).unwrap());
        assert!(
            get(&c, "h3", 30).unwrap().is_some(),
            "other users keep theirs"
        );
        assert_eq!(purge(&c, 1_001).unwrap(), 1);
        assert_eq!(delete(&c, "h3").unwrap(), 0);
    }
}
