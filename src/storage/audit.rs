//! The audit log, written in the same transaction as the change it records.

use super::{Conn, StorageResult};
use rusqlite::params;

#[derive(Debug, Clone, Default)]
pub struct AuditEvent<'a> {
    pub action: &'a str,
    pub actor_id: Option<&'a str>,
    pub user_id: Option<&'a str>,
    pub org_id: Option<&'a str>,
    pub target: Option<&'a str>,
    pub ip: Option<&'a str>,
    pub user_agent: Option<&'a str>,
    pub detail: serde_json::Value,
}

pub fn record(conn: &Conn, at: i64, e: &AuditEvent<'_>) -> StorageResult<()> {
    let detail = if e.detail.is_null() {
        "{}".to_string()
    } else {
        e.detail.to_string()
    };
    conn.execute(
        "INSERT INTO audit_log (at, action, actor_id, user_id, org_id, target, ip, user_agent, detail)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
        params![at, e.action, e.actor_id, e.user_id, e.org_id, e.target, e.ip, e.user_agent, detail],
    )?;
    Ok(())
}

/// `(action, user_id, detail)` of a user's events, oldest first (tests, admin).
pub fn actions_for_user(conn: &Conn, user_id: &str) -> StorageResult<Vec<(String, String)>> {
    let mut stmt =
        conn.prepare("SELECT action, detail FROM audit_log WHERE user_id = ?1 ORDER BY id")?;
    let rows = stmt.query_map([user_id], |r| Ok((r.get(0)?, r.get(1)?)))?;
    Ok(rows.collect::<Result<_, _>>()?)
}
