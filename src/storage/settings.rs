//! Server-wide generated secrets and settings.

use super::ExecCached as _;
use super::{Conn, StorageResult, optional};
use crate::storage::params;

/// The value of `name`, created with `make()` on first use.
pub fn get_or_create(
    conn: &Conn,
    name: &str,
    now: i64,
    make: impl FnOnce() -> Vec<u8>,
) -> StorageResult<Vec<u8>> {
    if let Some(v) = optional(conn.query_row(
        "SELECT value FROM settings WHERE name = ?1",
        [name],
        |r| r.get(0),
    ))? {
        return Ok(v);
    }
    let value = make();
    conn.exec(
        "INSERT INTO settings (name, value, created_at) VALUES (?1, ?2, ?3)",
        params![name, value, now],
    )?;
    Ok(value)
}
