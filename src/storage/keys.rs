//! Signing keys for access tokens.

use super::ExecCached as _;
use super::{Conn, StorageResult};
use crate::storage::params;

#[derive(Clone)]
pub struct KeyRow {
    pub kid: String,
    pub alg: String,
    pub private_der: Vec<u8>,
    pub created_at: i64,
    pub retired_at: Option<i64>,
}

impl std::fmt::Debug for KeyRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyRow")
            .field("kid", &self.kid)
            .field("alg", &self.alg)
            .finish_non_exhaustive()
    }
}

pub fn insert(conn: &Conn, k: &KeyRow) -> StorageResult<()> {
    conn.exec(
        "INSERT INTO signing_keys (kid, alg, private_der, created_at, retired_at) VALUES (?1, ?2, ?3, ?4, ?5)",
        params![k.kid, k.alg, k.private_der, k.created_at, k.retired_at],
    )?;
    super::watch::notify(conn, super::watch::KEYS)
}

/// Every key retired after `retired_after` or not retired, newest first.
pub fn usable(conn: &Conn, retired_after: i64) -> StorageResult<Vec<KeyRow>> {
    let mut stmt = conn.prepare(
        "SELECT kid, alg, private_der, created_at, retired_at FROM signing_keys
         WHERE retired_at IS NULL OR retired_at > ?1
         ORDER BY created_at DESC, (retired_at IS NULL) DESC, retired_at DESC",
    )?;
    let rows = stmt.query_map([retired_after], |r| {
        Ok(KeyRow {
            kid: r.get(0)?,
            alg: r.get(1)?,
            private_der: r.get(2)?,
            created_at: r.get(3)?,
            retired_at: r.get(4)?,
        })
    })?;
    rows.collect::<Result<_, _>>()
}

/// Retires every active key (they keep verifying until their tokens expire).
pub fn retire_all(conn: &Conn, now: i64) -> StorageResult<usize> {
    let n = conn.exec(
        "UPDATE signing_keys SET retired_at = ?1 WHERE retired_at IS NULL",
        [now],
    )?;
    super::watch::notify(conn, super::watch::KEYS)?;
    Ok(n)
}

/// Every key, retired or not, as stored (the private part may be sealed),
/// oldest first.
pub fn all(conn: &Conn) -> StorageResult<Vec<(String, Vec<u8>)>> {
    let mut stmt =
        conn.prepare("SELECT kid, private_der FROM signing_keys ORDER BY created_at, kid")?;
    let rows = stmt.query_map((), |r| Ok((r.get(0)?, r.get(1)?)))?;
    rows.collect::<Result<_, _>>()
}

/// Replaces the stored private part of `kid`.
pub fn set_private(conn: &Conn, kid: &str, private: &[u8]) -> StorageResult<()> {
    conn.exec(
        "UPDATE signing_keys SET private_der = ?2 WHERE kid = ?1",
        params![kid, private],
    )?;
    Ok(())
}
