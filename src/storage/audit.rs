//! The audit log, written in the same transaction as the change it records.

use super::ExecCached as _;
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
    conn.exec(
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

#[derive(Debug, Clone, serde::Serialize)]
pub struct AuditRow {
    pub id: i64,
    pub at: i64,
    pub action: String,
    pub actor_id: Option<String>,
    pub user_id: Option<String>,
    pub org_id: Option<String>,
    pub target: Option<String>,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub detail: String,
}

#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    pub user_id: Option<String>,
    pub org_id: Option<String>,
    pub action: Option<String>,
}

/// The SQL of [`list`] for the filters that are set (a constant
/// `?1 IS NULL OR …` would keep SQLite from using any index). Params: user,
/// org, action, before, limit; the unused ones are bound and ignored.
pub(crate) fn list_sql(f: &AuditFilter, before: i64) -> String {
    let mut clauses = Vec::new();
    if f.user_id.is_some() {
        clauses.push("(user_id = ?1 OR actor_id = ?1 OR target = ?1)");
    }
    if f.org_id.is_some() {
        clauses.push("org_id = ?2");
    }
    if f.action.is_some() {
        clauses.push("action = ?3");
    }
    if before != 0 {
        clauses.push("id < ?4");
    }
    let filter = if clauses.is_empty() {
        "1".to_string()
    } else {
        clauses.join(" AND ")
    };
    format!(
        "SELECT id, at, action, actor_id, user_id, org_id, target, ip, user_agent, detail FROM audit_log
         WHERE {filter} ORDER BY id DESC LIMIT ?5"
    )
}

/// Newest first, before the id `before` (0 = from the newest).
pub fn list(conn: &Conn, f: &AuditFilter, before: i64, limit: i64) -> StorageResult<Vec<AuditRow>> {
    let mut stmt = conn.prepare(&list_sql(f, before))?;
    let rows = stmt.query_map(params![f.user_id, f.org_id, f.action, before, limit], |r| {
        Ok(AuditRow {
            id: r.get(0)?,
            at: r.get(1)?,
            action: r.get(2)?,
            actor_id: r.get(3)?,
            user_id: r.get(4)?,
            org_id: r.get(5)?,
            target: r.get(6)?,
            ip: r.get(7)?,
            user_agent: r.get(8)?,
            detail: r.get(9)?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

pub fn count_since(conn: &Conn, action: &str, since: i64) -> StorageResult<i64> {
    Ok(conn.query_row(
        "SELECT COUNT(*) FROM audit_log WHERE action = ?1 AND at >= ?2",
        params![action, since],
        |r| r.get(0),
    )?)
}
