//! Sign-in lockouts: consecutive failed password sign-ins per email address.

use super::{Conn, StorageResult, optional};
use rusqlite::{Row, params};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lockout {
    pub email: String,
    pub failures: i64,
    pub first_failure_at: i64,
    pub last_failure_at: i64,
    pub locked_until: Option<i64>,
}

impl Lockout {
    /// Locked at `now`: the seconds left, else `None`.
    pub fn remaining(&self, now: i64) -> Option<i64> {
        self.locked_until.filter(|u| *u > now).map(|u| u - now)
    }
}

const COLUMNS: &str = "email, failures, first_failure_at, last_failure_at, locked_until";

fn row(r: &Row<'_>) -> rusqlite::Result<Lockout> {
    Ok(Lockout {
        email: r.get(0)?,
        failures: r.get(1)?,
        first_failure_at: r.get(2)?,
        last_failure_at: r.get(3)?,
        locked_until: r.get(4)?,
    })
}

pub fn get(conn: &Conn, email: &str) -> StorageResult<Option<Lockout>> {
    optional(conn.query_row(
        &format!("SELECT {COLUMNS} FROM sign_in_lockouts WHERE email = ?1"),
        [email],
        row,
    ))
}

/// Counts one more failure for `email`. Failures older than `window`
/// seconds (counted from the last one) start the count afresh; the
/// `threshold`-th failure locks the address until `now + lock_secs`.
pub fn record_failure(
    conn: &Conn,
    email: &str,
    now: i64,
    window: i64,
    threshold: i64,
    lock_secs: i64,
) -> StorageResult<Lockout> {
    // Forget stale, unlocked rows so the table stays small.
    conn.execute(
        "DELETE FROM sign_in_lockouts
          WHERE last_failure_at < ?1 AND (locked_until IS NULL OR locked_until <= ?2)",
        params![now - window, now],
    )?;
    conn.execute(
        "INSERT INTO sign_in_lockouts (email, failures, first_failure_at, last_failure_at)
         VALUES (?1, 1, ?2, ?2)
         ON CONFLICT (email) DO UPDATE SET
             failures = CASE WHEN locked_until IS NOT NULL AND locked_until <= ?2
                             THEN 1 ELSE failures + 1 END,
             first_failure_at = CASE WHEN locked_until IS NOT NULL AND locked_until <= ?2
                                     THEN ?2 ELSE first_failure_at END,
             locked_until = CASE WHEN locked_until IS NOT NULL AND locked_until <= ?2
                                 THEN NULL ELSE locked_until END,
             last_failure_at = ?2",
        params![email, now],
    )?;
    if threshold > 0 {
        conn.execute(
            "UPDATE sign_in_lockouts SET locked_until = ?2 + ?3
              WHERE email = ?1 AND failures >= ?4 AND locked_until IS NULL",
            params![email, now, lock_secs, threshold],
        )?;
    }
    get(conn, email)?.ok_or_else(|| super::StorageError::Other("lockout row vanished".into()))
}

/// Forgets `email`'s failures and lock; true when there was a row.
pub fn clear(conn: &Conn, email: &str) -> StorageResult<bool> {
    Ok(conn.execute("DELETE FROM sign_in_lockouts WHERE email = ?1", [email])? > 0)
}

/// Addresses locked at `now`, the most recent lock first.
pub fn locked(conn: &Conn, now: i64, limit: i64) -> StorageResult<Vec<Lockout>> {
    let mut stmt = conn.prepare(&format!(
        "SELECT {COLUMNS} FROM sign_in_lockouts
          WHERE locked_until > ?1 ORDER BY locked_until DESC LIMIT ?2"
    ))?;
    let rows = stmt.query_map(params![now, limit], row)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

pub fn count_locked(conn: &Conn, now: i64) -> StorageResult<i64> {
    Ok(conn.query_row(
        "SELECT COUNT(*) FROM sign_in_lockouts WHERE locked_until > ?1",
        [now],
        |r| r.get(0),
    )?)
}
