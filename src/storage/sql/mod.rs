//! The dialect layer: one connection type over the two engines.
//!
//! Storage modules write their SQL once, in SQLite's dialect (`?N`
//! parameters, `INSERT OR IGNORE`, `LIKE` folding ASCII case). On SQLite it
//! runs as written, through rusqlite's statement cache. On PostgreSQL each
//! statement is translated once per connection ([`translate`]) and prepared,
//! and values cross through two loose types ([`PgValue`] in, [`PgAny`] out)
//! that follow whatever column type the server reports, as SQLite's dynamic
//! typing did. The few statements that no rewrite can carry (full-text
//! search, JSON functions, collations) ask [`Conn::engine`] and choose.

mod dialect;
mod pg;
mod values;

pub use pg::{PgConn, describe};
use pg::{WRITE_LOCK, pg_error, track_transaction};

pub use dialect::{translate, translate_migration};
pub use values::{FromValue, Param, PgAny, PgValue};

use super::{StorageError, StorageResult};

/// Which engine a connection speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    Sqlite,
    Postgres,
}

/// A connection of either engine. Not `Sync`: one thread uses it at a time.
pub enum Conn {
    Sqlite(rusqlite::Connection),
    Postgres(PgConn),
}

impl Conn {
    pub fn engine(&self) -> Engine {
        match self {
            Self::Sqlite(_) => Engine::Sqlite,
            Self::Postgres(_) => Engine::Postgres,
        }
    }

    /// A private SQLite database in memory (tests, dry runs).
    pub fn open_in_memory() -> StorageResult<Self> {
        Ok(Self::Sqlite(rusqlite::Connection::open_in_memory()?))
    }

    /// The SQLite connection, for what only SQLite has (pragmas, backups).
    pub fn sqlite(&self) -> Option<&rusqlite::Connection> {
        match self {
            Self::Sqlite(c) => Some(c),
            Self::Postgres(_) => None,
        }
    }

    pub fn prepare_cached(&self, sql: &str) -> StorageResult<Stmt<'_>> {
        Ok(match self {
            Self::Sqlite(c) => Stmt::SqliteCached(c.prepare_cached(sql)?),
            Self::Postgres(c) => Stmt::Postgres(c, sql.to_string()),
        })
    }

    /// A statement built at run time (sorted lists): SQLite does not keep it
    /// in the cache of the hot statements.
    pub fn prepare(&self, sql: &str) -> StorageResult<Stmt<'_>> {
        Ok(match self {
            Self::Sqlite(c) => Stmt::Sqlite(c.prepare(sql)?),
            Self::Postgres(c) => Stmt::Postgres(c, sql.to_string()),
        })
    }

    pub fn query_row<T, P, F>(&self, sql: &str, params: P, f: F) -> StorageResult<T>
    where
        P: Params,
        F: FnOnce(&Row<'_>) -> StorageResult<T>,
    {
        self.prepare_cached(sql)?.query_row(params, f)
    }

    pub fn execute<P: Params>(&self, sql: &str, params: P) -> StorageResult<usize> {
        self.prepare_cached(sql)?.execute(params)
    }

    /// Several statements without parameters (migrations, transaction
    /// control).
    pub fn execute_batch(&self, sql: &str) -> StorageResult<()> {
        match self {
            Self::Sqlite(c) => Ok(c.execute_batch(sql)?),
            Self::Postgres(c) => {
                c.batch(sql)?;
                track_transaction(c, sql);
                Ok(())
            }
        }
    }

    /// The server dropped the connection (PostgreSQL only): it must be
    /// opened anew.
    pub fn is_broken(&self) -> bool {
        match self {
            Self::Sqlite(_) => false,
            Self::Postgres(c) => c.is_closed(),
        }
    }

    /// A statement failed in the open transaction and PostgreSQL refuses the
    /// rest of it until a rollback (SQLite goes on: never).
    pub fn is_aborted(&self) -> bool {
        match self {
            Self::Sqlite(_) => false,
            Self::Postgres(c) => c.aborted.get(),
        }
    }

    /// No transaction is open (SQLite's autocommit mode). On PostgreSQL, a
    /// lost connection counts as one whose transaction ended.
    pub fn is_autocommit(&self) -> bool {
        match self {
            Self::Sqlite(c) => c.is_autocommit(),
            Self::Postgres(c) => !c.in_transaction.get() || c.is_closed(),
        }
    }

    /// Opens a write transaction. SQLite: `BEGIN IMMEDIATE`, its one
    /// writer lock. PostgreSQL: the same one-writer rule across every
    /// instance, through a transaction-scoped advisory lock, so a write sees
    /// every write committed before it, as on SQLite (reuse detection, the
    /// outbox's claims and key rotation rely on it).
    pub fn begin_write(&self) -> StorageResult<()> {
        match self {
            Self::Sqlite(c) => Ok(c.execute_batch("BEGIN IMMEDIATE")?),
            Self::Postgres(c) => {
                c.batch("BEGIN")?;
                c.in_transaction.set(true);
                c.aborted.set(false);
                c.batch(&format!("SELECT pg_advisory_xact_lock({WRITE_LOCK})"))
            }
        }
    }

    pub fn commit(&self) -> StorageResult<()> {
        self.execute_batch("COMMIT")
    }

    pub fn rollback(&self) -> StorageResult<()> {
        self.execute_batch("ROLLBACK")
    }
}

/// `execute` through the statement cache: the write paths run the same few
/// statements thousands of times a second, and preparing one costs more
/// than running it.
pub trait ExecCached {
    fn exec<P: Params>(&self, sql: &str, params: P) -> StorageResult<usize>;
}

impl ExecCached for Conn {
    fn exec<P: Params>(&self, sql: &str, params: P) -> StorageResult<usize> {
        match self {
            Self::Postgres(c) if is_transaction_control(sql) => {
                c.batch(sql)?;
                track_transaction(c, sql);
                Ok(0)
            }
            _ => self.execute(sql, params),
        }
    }
}

fn is_transaction_control(sql: &str) -> bool {
    let s = sql.trim_start().to_ascii_uppercase();
    ["BEGIN", "COMMIT", "ROLLBACK", "SAVEPOINT", "RELEASE"]
        .iter()
        .any(|k| s.starts_with(k))
}

/// A prepared statement.
pub enum Stmt<'c> {
    SqliteCached(rusqlite::CachedStatement<'c>),
    Sqlite(rusqlite::Statement<'c>),
    Postgres(&'c PgConn, String),
}

impl<'c> Stmt<'c> {
    fn sqlite(&mut self) -> Option<&mut rusqlite::Statement<'c>> {
        match self {
            Self::SqliteCached(s) => Some(s),
            Self::Sqlite(s) => Some(s),
            Self::Postgres(..) => None,
        }
    }

    pub fn query_row<T, P, F>(&mut self, params: P, f: F) -> StorageResult<T>
    where
        P: Params,
        F: FnOnce(&Row<'_>) -> StorageResult<T>,
    {
        if let Self::Postgres(c, sql) = self {
            let rows = params.with(|p| c.query(sql, p))?;
            let row = rows.first().ok_or(StorageError::NoRows)?;
            return f(&Row::Postgres(row));
        }
        let Some(stmt) = self.sqlite() else {
            return Err(StorageError::NoRows);
        };
        let mut rows = params.with(|p| stmt.query(rusqlite::params_from_iter(sqlite_params(p))))?;
        match rows.next()? {
            Some(r) => f(&Row::Sqlite(r)),
            None => Err(StorageError::NoRows),
        }
    }

    /// Every row, mapped; the result iterates, as rusqlite's does.
    pub fn query_map<T, P, F>(
        &mut self,
        params: P,
        mut f: F,
    ) -> StorageResult<std::vec::IntoIter<StorageResult<T>>>
    where
        P: Params,
        F: FnMut(&Row<'_>) -> StorageResult<T>,
    {
        let mut out = Vec::new();
        if let Self::Postgres(c, sql) = self {
            let rows = params.with(|p| c.query(sql, p))?;
            for r in &rows {
                out.push(f(&Row::Postgres(r)));
            }
            return Ok(out.into_iter());
        }
        if let Some(stmt) = self.sqlite() {
            let mut rows =
                params.with(|p| stmt.query(rusqlite::params_from_iter(sqlite_params(p))))?;
            while let Some(r) = rows.next()? {
                out.push(f(&Row::Sqlite(r)));
            }
        }
        Ok(out.into_iter())
    }

    pub fn execute<P: Params>(&mut self, params: P) -> StorageResult<usize> {
        if let Self::Postgres(c, sql) = self {
            return params.with(|p| c.execute(sql, p));
        }
        match self.sqlite() {
            Some(stmt) => {
                Ok(params.with(|p| stmt.execute(rusqlite::params_from_iter(sqlite_params(p))))?)
            }
            None => Ok(0),
        }
    }

    pub fn exists<P: Params>(&mut self, params: P) -> StorageResult<bool> {
        if let Self::Postgres(c, sql) = self {
            return Ok(!params.with(|p| c.query(sql, p))?.is_empty());
        }
        match self.sqlite() {
            Some(stmt) => {
                Ok(params.with(|p| stmt.exists(rusqlite::params_from_iter(sqlite_params(p))))?)
            }
            None => Ok(false),
        }
    }
}

fn sqlite_params<'a>(p: &'a [&'a dyn Param]) -> impl Iterator<Item = &'a dyn rusqlite::ToSql> {
    p.iter().map(|v| *v as &dyn rusqlite::ToSql)
}

/// One result row.
pub enum Row<'a> {
    Sqlite(&'a rusqlite::Row<'a>),
    Postgres(&'a postgres::Row),
}

impl Row<'_> {
    /// Column `idx` as `T`. The first type parameter is the index's, as in
    /// rusqlite (`r.get::<_, Option<i64>>(2)`).
    pub fn get<I: RowIndex, T: FromValue>(&self, idx: I) -> StorageResult<T> {
        let idx = idx.index();
        match self {
            Self::Sqlite(r) => Ok(r.get::<usize, T>(idx)?),
            Self::Postgres(r) => {
                let v: PgAny = r.try_get(idx).map_err(|e| pg_error(e, ""))?;
                T::from_pg(v).map_err(|why| StorageError::Other(format!("column {idx}: {why}")))
            }
        }
    }
}

/// A column's position.
pub trait RowIndex {
    fn index(self) -> usize;
}

impl RowIndex for usize {
    fn index(self) -> usize {
        self
    }
}

/// Parameters: an array of one type (`[id]`), `()` for none, or a mixed
/// list from [`params!`](crate::storage::params).
pub trait Params {
    fn with<R>(self, f: impl FnOnce(&[&dyn Param]) -> R) -> R;
}

impl Params for () {
    fn with<R>(self, f: impl FnOnce(&[&dyn Param]) -> R) -> R {
        f(&[])
    }
}

impl Params for &[&dyn Param] {
    fn with<R>(self, f: impl FnOnce(&[&dyn Param]) -> R) -> R {
        f(self)
    }
}

impl<T: Param, const N: usize> Params for [T; N] {
    fn with<R>(self, f: impl FnOnce(&[&dyn Param]) -> R) -> R {
        let refs: Vec<&dyn Param> = self.iter().map(|v| v as &dyn Param).collect();
        f(&refs)
    }
}

impl<T: Param, const N: usize> Params for &[T; N] {
    fn with<R>(self, f: impl FnOnce(&[&dyn Param]) -> R) -> R {
        let refs: Vec<&dyn Param> = self.iter().map(|v| v as &dyn Param).collect();
        f(&refs)
    }
}

/// A mixed parameter list: `params![id, now, maybe_text]`.
#[macro_export]
macro_rules! derp_sql_params {
    () => {
        &[] as &[&dyn $crate::storage::sql::Param]
    };
    ($($p:expr),+ $(,)?) => {
        &[$(&$p as &dyn $crate::storage::sql::Param),+] as &[&dyn $crate::storage::sql::Param]
    };
}
