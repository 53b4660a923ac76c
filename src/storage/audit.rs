//! The audit log, written in the same transaction as the change it records.

use super::ExecCached as _;
use super::{Conn, StorageResult};
use crate::storage::params;

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
    rows.collect::<Result<_, _>>()
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
        "1 = 1".to_string()
    } else {
        clauses.join(" AND ")
    };
    format!(
        "SELECT id, at, action, actor_id, user_id, org_id, target, ip, user_agent, detail FROM audit_log
         WHERE {filter} ORDER BY id DESC LIMIT ?5"
    )
}

/// A row of `SELECT id, at, action, actor_id, user_id, org_id, target, ip,
/// user_agent, detail`.
fn audit_row(r: &crate::storage::Row<'_>) -> crate::storage::StorageResult<AuditRow> {
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
}

/// Newest first, before the id `before` (0 = from the newest).
pub fn list(conn: &Conn, f: &AuditFilter, before: i64, limit: i64) -> StorageResult<Vec<AuditRow>> {
    let mut stmt = conn.prepare(&list_sql(f, before))?;
    let rows = stmt.query_map(
        params![f.user_id, f.org_id, f.action, before, limit],
        audit_row,
    )?;
    rows.collect::<Result<_, _>>()
}

pub fn count_since(conn: &Conn, action: &str, since: i64) -> StorageResult<i64> {
    conn.query_row(
        "SELECT COUNT(*) FROM audit_log WHERE action = ?1 AND at >= ?2",
        params![action, since],
        |r| r.get(0),
    )
}

/// The admin console's audit filter: [`AuditFilter`] and a time range
/// (`from` inclusive, `until` exclusive, unix seconds).
#[derive(Debug, Clone, Default)]
pub struct AuditQuery {
    pub filter: AuditFilter,
    pub from: Option<i64>,
    pub until: Option<i64>,
}

/// One page of the audit log, newest first, skipping `offset`; with the
/// number of all matching events.
pub fn page(
    conn: &Conn,
    q: &AuditQuery,
    offset: i64,
    limit: i64,
) -> StorageResult<(i64, Vec<AuditRow>)> {
    let f = &q.filter;
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
    if q.from.is_some() {
        clauses.push("at >= ?4");
    }
    if q.until.is_some() {
        clauses.push("at < ?5");
    }
    let filter = if clauses.is_empty() {
        "1 = 1".to_string()
    } else {
        clauses.join(" AND ")
    };
    let total: i64 = conn.query_row(
        &format!("SELECT COUNT(*) FROM audit_log WHERE {filter} AND ?6 = ?6 AND ?7 = ?7"),
        params![
            f.user_id, f.org_id, f.action, q.from, q.until, limit, offset
        ],
        |r| r.get(0),
    )?;
    let mut stmt = conn.prepare(&format!(
        "SELECT id, at, action, actor_id, user_id, org_id, target, ip, user_agent, detail FROM audit_log
         WHERE {filter} ORDER BY id DESC LIMIT ?6 OFFSET ?7"
    ))?;
    let rows = stmt.query_map(
        params![
            f.user_id, f.org_id, f.action, q.from, q.until, limit, offset
        ],
        audit_row,
    )?;
    Ok((total, rows.collect::<Result<_, _>>()?))
}

/// The actions the log holds, for the console's filter.
pub fn known_actions(conn: &Conn) -> StorageResult<Vec<String>> {
    let mut stmt = conn.prepare("SELECT DISTINCT action FROM audit_log ORDER BY action")?;
    let rows = stmt.query_map((), |r| r.get(0))?;
    rows.collect::<Result<_, _>>()
}

/// Events of `action` per UTC day since `since`: `(day start, count)`.
pub fn per_day(conn: &Conn, action: &str, since: i64) -> StorageResult<Vec<(i64, i64)>> {
    let mut stmt = conn.prepare(
        "SELECT at - (at % 86400) AS day, COUNT(*) FROM audit_log
         WHERE action = ?1 AND at >= ?2 GROUP BY day ORDER BY day",
    )?;
    let rows = stmt.query_map(params![action, since], |r| Ok((r.get(0)?, r.get(1)?)))?;
    rows.collect::<Result<_, _>>()
}
