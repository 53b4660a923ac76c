//! The `webhook_endpoints` table.

use crate::storage::ExecCached as _;
use crate::storage::params;
use crate::storage::{Conn, StorageResult, optional};

#[derive(Debug, Clone)]
pub struct EndpointRow {
    pub id: String,
    pub name: String,
    pub url: String,
    pub secret_sealed: String,
    pub events: Vec<String>,
    /// `config` (from `derp.toml`, read-only elsewhere) or `admin`.
    pub source: String,
    pub created_at: i64,
    pub updated_at: i64,
    pub consecutive_failures: i64,
    pub last_success_ms: Option<i64>,
    pub last_failure_ms: Option<i64>,
    /// When a delivery was last given up, until the next success.
    pub failing_since_ms: Option<i64>,
}

const ENDPOINT_COLUMNS: &str =
    "id, name, url, secret_sealed, events, source, created_at, updated_at,
    consecutive_failures, last_success_ms, last_failure_ms, failing_since_ms";

fn endpoint_from(r: &crate::storage::Row<'_>) -> crate::storage::StorageResult<EndpointRow> {
    Ok(EndpointRow {
        id: r.get(0)?,
        name: r.get(1)?,
        url: r.get(2)?,
        secret_sealed: r.get(3)?,
        events: serde_json::from_str(&r.get::<_, String>(4)?).unwrap_or_default(),
        source: r.get(5)?,
        created_at: r.get(6)?,
        updated_at: r.get(7)?,
        consecutive_failures: r.get(8)?,
        last_success_ms: r.get(9)?,
        last_failure_ms: r.get(10)?,
        failing_since_ms: r.get(11)?,
    })
}

pub fn endpoints(conn: &Conn) -> StorageResult<Vec<EndpointRow>> {
    let sql = format!("SELECT {ENDPOINT_COLUMNS} FROM webhook_endpoints ORDER BY name");
    let mut stmt = conn.prepare(&sql)?;
    let rows = stmt.query_map((), endpoint_from)?;
    rows.collect::<Result<_, _>>()
}

/// By id or by name.
pub fn endpoint(conn: &Conn, id_or_name: &str) -> StorageResult<Option<EndpointRow>> {
    let sql =
        format!("SELECT {ENDPOINT_COLUMNS} FROM webhook_endpoints WHERE id = ?1 OR name = ?1");
    optional(conn.query_row(&sql, [id_or_name], endpoint_from))
}

pub struct NewEndpoint<'a> {
    pub id: &'a str,
    pub name: &'a str,
    pub url: &'a str,
    pub secret_sealed: &'a str,
    pub events: &'a [String],
    pub source: &'a str,
}

/// A taken name is `StorageError::Conflict("webhook_endpoints.name")`.
pub fn insert_endpoint(conn: &Conn, e: &NewEndpoint<'_>, now: i64) -> StorageResult<()> {
    conn.exec(
        "INSERT INTO webhook_endpoints (id, name, url, secret_sealed, events, source, created_at, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7)",
        params![
            e.id,
            e.name,
            e.url,
            e.secret_sealed,
            serde_json::to_string(e.events).unwrap_or_else(|_| "[\"*\"]".into()),
            e.source,
            now
        ],
    )?;
    Ok(())
}

pub fn update_endpoint(
    conn: &Conn,
    id: &str,
    url: &str,
    events: &[String],
    source: &str,
    now: i64,
) -> StorageResult<bool> {
    Ok(conn.exec(
        "UPDATE webhook_endpoints SET url = ?2, events = ?3, source = ?4, updated_at = ?5 WHERE id = ?1",
        params![
            id,
            url,
            serde_json::to_string(events).unwrap_or_else(|_| "[\"*\"]".into()),
            source,
            now
        ],
    )? == 1)
}

pub fn set_secret(conn: &Conn, id: &str, secret_sealed: &str, now: i64) -> StorageResult<bool> {
    Ok(conn.exec(
        "UPDATE webhook_endpoints SET secret_sealed = ?2, updated_at = ?3 WHERE id = ?1",
        params![id, secret_sealed, now],
    )? == 1)
}

/// Deletes an endpoint with its deliveries, and the events no endpoint waits for any more.
pub fn delete_endpoint(conn: &Conn, id: &str) -> StorageResult<bool> {
    conn.exec(
        "DELETE FROM webhook_deliveries WHERE endpoint_id = ?1",
        [id],
    )?;
    let n = conn.exec("DELETE FROM webhook_endpoints WHERE id = ?1", [id])?;
    conn.exec(
        "DELETE FROM webhook_events WHERE id NOT IN (SELECT event_id FROM webhook_deliveries)",
        (),
    )?;
    Ok(n == 1)
}
