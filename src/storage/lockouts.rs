//! Sign-in lockouts: failed sign-ins counted per email address and source
//! (one row per pair), and per address from every source (the row whose
//! source is [`ADDRESS`]).

use super::ExecCached as _;
use super::{Conn, StorageResult, optional};
use crate::storage::{Row, params};

/// The source of the per-address row, which counts failures from everywhere.
pub const ADDRESS: &str = "*";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lockout {
    pub email: String,
    /// The client the failures came from, or [`ADDRESS`] for the brake.
    pub source: String,
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

    /// The per-address brake rather than one source's count.
    pub fn is_address_wide(&self) -> bool {
        self.source == ADDRESS
    }
}

/// How much [`record_failure`] counts and when it locks.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Failures from one source that lock the address for that source.
    pub per_source: i64,
    /// Failures from all sources that lock the address for everyone
    /// (0: no per-address brake).
    pub per_address: i64,
    /// How long a lock lasts; also the window that failures are counted in.
    pub lock_secs: i64,
}

/// What one failure did: the source's row, and the address's when counted.
#[derive(Debug, Clone)]
pub struct Counted {
    pub source: Lockout,
    pub address: Option<Lockout>,
}

const COLUMNS: &str = "email, source, failures, first_failure_at, last_failure_at, locked_until";

fn row(r: &Row<'_>) -> crate::storage::StorageResult<Lockout> {
    Ok(Lockout {
        email: r.get(0)?,
        source: r.get(1)?,
        failures: r.get(2)?,
        first_failure_at: r.get(3)?,
        last_failure_at: r.get(4)?,
        locked_until: r.get(5)?,
    })
}

fn one(conn: &Conn, email: &str, source: &str) -> StorageResult<Option<Lockout>> {
    optional(conn.query_row(
        &format!("SELECT {COLUMNS} FROM sign_in_lockouts WHERE email = ?1 AND source = ?2"),
        [email, source],
        row,
    ))
}

/// The rows that bear on a sign-in to `email` from `source`: that pair's
/// and the per-address brake's.
pub fn for_source(conn: &Conn, email: &str, source: &str) -> StorageResult<Vec<Lockout>> {
    let mut stmt = conn.prepare(&format!(
        "SELECT {COLUMNS} FROM sign_in_lockouts
          WHERE email = ?1 AND source IN (?2, '*')"
    ))?;
    let rows = stmt.query_map([email, source], row)?;
    rows.collect::<Result<_, _>>()
}

/// Every row of `email`, locked or not.
pub fn of_address(conn: &Conn, email: &str) -> StorageResult<Vec<Lockout>> {
    let mut stmt = conn.prepare(&format!(
        "SELECT {COLUMNS} FROM sign_in_lockouts WHERE email = ?1 ORDER BY source"
    ))?;
    let rows = stmt.query_map([email], row)?;
    rows.collect::<Result<_, _>>()
}

/// The longest lock among `rows` at `now`, in seconds.
pub fn remaining(rows: &[Lockout], now: i64) -> Option<i64> {
    rows.iter().filter_map(|l| l.remaining(now)).max()
}

/// Counts one more failure for `email` from `source`.
///
/// The source's count slides: failures more than `lock_secs` apart start it
/// afresh, and its `per_source`-th failure locks the pair. The address's
/// count runs in fixed windows of `lock_secs` from its first failure, so a
/// single source (at most `per_source` failures per window, as its own lock
/// lasts a window) cannot reach a `per_address` above `per_source`.
pub fn record_failure(
    conn: &Conn,
    email: &str,
    source: &str,
    now: i64,
    limits: Limits,
) -> StorageResult<Counted> {
    let window = limits.lock_secs;
    // Forget stale, unlocked rows so the table stays small.
    conn.exec(
        "DELETE FROM sign_in_lockouts
          WHERE last_failure_at < ?1 AND (locked_until IS NULL OR locked_until <= ?2)",
        params![now - window, now],
    )?;
    conn.exec(
        "INSERT INTO sign_in_lockouts AS l (email, source, failures, first_failure_at, last_failure_at)
         VALUES (?1, ?2, 1, ?3, ?3)
         ON CONFLICT (email, source) DO UPDATE SET
             failures = CASE WHEN l.locked_until IS NOT NULL AND l.locked_until <= ?3
                             THEN 1 ELSE l.failures + 1 END,
             first_failure_at = CASE WHEN l.locked_until IS NOT NULL AND l.locked_until <= ?3
                                     THEN ?3 ELSE l.first_failure_at END,
             locked_until = CASE WHEN l.locked_until IS NOT NULL AND l.locked_until <= ?3
                                 THEN NULL ELSE l.locked_until END,
             last_failure_at = ?3",
        params![email, source, now],
    )?;
    lock_at(
        conn,
        email,
        source,
        now,
        limits.per_source,
        limits.lock_secs,
    )?;
    let address = if limits.per_address > 0 {
        conn.exec(
            "INSERT INTO sign_in_lockouts AS l (email, source, failures, first_failure_at, last_failure_at)
             VALUES (?1, '*', 1, ?2, ?2)
             ON CONFLICT (email, source) DO UPDATE SET
                 failures = CASE WHEN (l.locked_until IS NOT NULL AND l.locked_until <= ?2)
                                   OR (l.locked_until IS NULL AND l.first_failure_at <= CAST(?2 AS BIGINT) - CAST(?3 AS BIGINT))
                                 THEN 1 ELSE l.failures + 1 END,
                 first_failure_at = CASE WHEN (l.locked_until IS NOT NULL AND l.locked_until <= ?2)
                                           OR (l.locked_until IS NULL AND l.first_failure_at <= CAST(?2 AS BIGINT) - CAST(?3 AS BIGINT))
                                         THEN ?2 ELSE l.first_failure_at END,
                 locked_until = CASE WHEN l.locked_until IS NOT NULL AND l.locked_until <= ?2
                                     THEN NULL ELSE l.locked_until END,
                 last_failure_at = ?2",
            params![email, now, window],
        )?;
        lock_at(
            conn,
            email,
            ADDRESS,
            now,
            limits.per_address,
            limits.lock_secs,
        )?;
        one(conn, email, ADDRESS)?
    } else {
        None
    };
    let source = one(conn, email, source)?
        .ok_or_else(|| super::StorageError::Other("lockout row vanished".into()))?;
    Ok(Counted { source, address })
}

fn lock_at(
    conn: &Conn,
    email: &str,
    source: &str,
    now: i64,
    threshold: i64,
    lock_secs: i64,
) -> StorageResult<()> {
    if threshold > 0 {
        conn.exec(
            "UPDATE sign_in_lockouts SET locked_until = CAST(?3 AS BIGINT) + CAST(?4 AS BIGINT)
              WHERE email = ?1 AND source = ?2 AND failures >= ?5 AND locked_until IS NULL",
            params![email, source, now, lock_secs, threshold],
        )?;
    }
    Ok(())
}

/// Forgets the failures of `email` from `source` (a sign-in from there
/// passed); the per-address brake keeps counting. True when there was a row.
pub fn clear_source(conn: &Conn, email: &str, source: &str) -> StorageResult<bool> {
    Ok(conn.exec(
        "DELETE FROM sign_in_lockouts WHERE email = ?1 AND source = ?2",
        [email, source],
    )? > 0)
}

/// Forgets every failure and lock of `email`; true when there was a row.
pub fn clear(conn: &Conn, email: &str) -> StorageResult<bool> {
    Ok(conn.exec("DELETE FROM sign_in_lockouts WHERE email = ?1", [email])? > 0)
}

/// Locks in force at `now` (per source and per address), the most recent
/// lock first.
pub fn locked(conn: &Conn, now: i64, limit: i64) -> StorageResult<Vec<Lockout>> {
    let mut stmt = conn.prepare(&format!(
        "SELECT {COLUMNS} FROM sign_in_lockouts
          WHERE locked_until > ?1 ORDER BY locked_until DESC, email, source LIMIT ?2"
    ))?;
    let rows = stmt.query_map(params![now, limit], row)?;
    rows.collect::<Result<_, _>>()
}

/// How many addresses have a lock in force at `now` (from any source).
pub fn count_locked(conn: &Conn, now: i64) -> StorageResult<i64> {
    conn.query_row(
        "SELECT COUNT(DISTINCT email) FROM sign_in_lockouts WHERE locked_until > ?1",
        [now],
        |r| r.get(0),
    )
}
