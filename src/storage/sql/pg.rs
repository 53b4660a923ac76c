//! The PostgreSQL side of a connection: the blocking client with its
//! prepared statements, and PostgreSQL's errors as storage errors.

use super::{Param, PgValue, translate};
use crate::storage::{StorageError, StorageResult};
use postgres::types::{ToSql, Type};
use std::cell::{Cell, RefCell};
use std::collections::HashMap;

/// A PostgreSQL client with its prepared statements, keyed by their SQLite
/// text, and whether a transaction is open on it.
pub struct PgConn {
    /// `None` only while dropping (see the `Drop` impl).
    client: RefCell<Option<postgres::Client>>,
    statements: RefCell<HashMap<String, postgres::Statement>>,
    pub(super) in_transaction: Cell<bool>,
    /// A statement failed inside the open transaction: PostgreSQL refuses
    /// every other one and turns `COMMIT` into a rollback, until `ROLLBACK
    /// [TO SAVEPOINT]`. The writer reads it so that no write is answered
    /// as committed when it was not.
    pub(super) aborted: Cell<bool>,
}

impl PgConn {
    pub fn new(client: postgres::Client) -> Self {
        Self {
            client: RefCell::new(Some(client)),
            statements: RefCell::new(HashMap::new()),
            in_transaction: Cell::new(false),
            aborted: Cell::new(false),
        }
    }

    fn client(&self) -> std::cell::RefMut<'_, postgres::Client> {
        std::cell::RefMut::map(self.client.borrow_mut(), |c| {
            c.as_mut()
                .expect("a PostgreSQL connection is used only before it is dropped")
        })
    }

    fn statement(&self, sql: &str) -> StorageResult<postgres::Statement> {
        if let Some(s) = self.statements.borrow().get(sql) {
            return Ok(s.clone());
        }
        let translated = translate(sql);
        // A placeholder PostgreSQL cannot type (unused in this variant of
        // a statement, or only in `?1 IS NULL`) is declared text; values
        // bound to it are written as text.
        // Inside a transaction, a failed attempt would abort it: the
        // attempts run in a savepoint of their own.
        let guarded = self.in_transaction.get();
        if guarded {
            self.batch("SAVEPOINT derp_prepare")?;
        }
        let mut types: Vec<Type> = Vec::new();
        let prepared = loop {
            match self.client().prepare_typed(&translated, &types) {
                Ok(stmt) => break Ok(stmt),
                Err(e) => match untyped_parameter(&e) {
                    Some(n) if n > types.len() || types[n - 1] == Type::UNKNOWN => {
                        if guarded {
                            self.batch("ROLLBACK TO SAVEPOINT derp_prepare")?;
                        }
                        types.resize(types.len().max(n), Type::UNKNOWN);
                        types[n - 1] = Type::TEXT;
                    }
                    _ => break Err(pg_error(e, &translated)),
                },
            }
        };
        if guarded {
            if prepared.is_err() {
                self.batch("ROLLBACK TO SAVEPOINT derp_prepare")?;
            }
            self.batch("RELEASE SAVEPOINT derp_prepare")?;
        }
        let stmt = prepared?;
        let mut cache = self.statements.borrow_mut();
        // Dynamic statements (the console's sorted lists) are few; a bound
        // keeps a long-lived connection from growing without end.
        if cache.len() >= 512 {
            cache.clear();
        }
        cache.insert(sql.to_string(), stmt.clone());
        Ok(stmt)
    }

    pub(super) fn query(
        &self,
        sql: &str,
        params: &[&dyn Param],
    ) -> StorageResult<Vec<postgres::Row>> {
        let stmt = self.statement(sql)?;
        let values: Vec<PgValue<'_>> = params.iter().map(|p| p.pg()).collect();
        let refs: Vec<&(dyn ToSql + Sync)> =
            values.iter().map(|v| v as &(dyn ToSql + Sync)).collect();
        self.client()
            .query(&stmt, &refs)
            .map_err(|e| self.failed(pg_error(e, sql)))
    }

    pub(super) fn execute(&self, sql: &str, params: &[&dyn Param]) -> StorageResult<usize> {
        let stmt = self.statement(sql)?;
        let values: Vec<PgValue<'_>> = params.iter().map(|p| p.pg()).collect();
        let refs: Vec<&(dyn ToSql + Sync)> =
            values.iter().map(|v| v as &(dyn ToSql + Sync)).collect();
        let n = self
            .client()
            .execute(&stmt, &refs)
            .map_err(|e| self.failed(pg_error(e, sql)))?;
        Ok(usize::try_from(n).unwrap_or(usize::MAX))
    }

    pub(super) fn batch(&self, sql: &str) -> StorageResult<()> {
        self.client()
            .batch_execute(sql)
            .map_err(|e| self.failed(pg_error(e, sql)))
    }

    /// Notes a failed statement (see `aborted`).
    fn failed(&self, e: StorageError) -> StorageError {
        if self.in_transaction.get() {
            self.aborted.set(true);
        }
        e
    }

    pub fn is_closed(&self) -> bool {
        self.client
            .borrow()
            .as_ref()
            .is_none_or(postgres::Client::is_closed)
    }
}

/// The blocking client's `Drop` says goodbye to the server by blocking on
/// its own runtime, which panics on a thread that drives async tasks (a
/// pool dropped at shutdown, or a test's runtime ending): inside a runtime,
/// the client is dropped on a thread of its own.
impl Drop for PgConn {
    fn drop(&mut self) {
        let Some(client) = self.client.get_mut().take() else {
            return;
        };
        if tokio::runtime::Handle::try_current().is_ok() {
            let _ = std::thread::Builder::new()
                .name("derp-pg-close".into())
                .spawn(move || drop(client));
        } else {
            drop(client);
        }
    }
}

/// The advisory lock that stands for SQLite's one-writer lock.
pub(super) const WRITE_LOCK: i64 = 0x6465_7270_7772; // "derpwr"

pub(super) fn track_transaction(c: &PgConn, sql: &str) {
    let s = sql.trim_start().to_ascii_uppercase();
    if s.starts_with("BEGIN") {
        c.in_transaction.set(true);
        c.aborted.set(false);
    } else if s.starts_with("COMMIT") || (s.starts_with("ROLLBACK") && !s.contains(" TO ")) {
        c.in_transaction.set(false);
        c.aborted.set(false);
    } else if s.starts_with("ROLLBACK") {
        c.aborted.set(false); // back to a savepoint: usable again
    }
}

/// A PostgreSQL error as a storage error: a unique violation becomes
/// [`StorageError::Conflict`] naming `table.column` as SQLite does.
pub(super) fn pg_error(e: postgres::Error, sql: &str) -> StorageError {
    if let Some(db) = e.as_db_error()
        && *db.code() == postgres::error::SqlState::UNIQUE_VIOLATION
    {
        let table = db.table().unwrap_or("?");
        // "Key (email, source)=(…) already exists."
        let columns = db
            .detail()
            .and_then(|d| d.strip_prefix("Key ("))
            .and_then(|d| d.split(")=").next())
            .unwrap_or("?");
        let which = columns
            .split(", ")
            .map(|c| format!("{table}.{c}"))
            .collect::<Vec<_>>()
            .join(", ");
        return StorageError::Conflict(which);
    }
    if e.as_db_error().is_some() && !sql.is_empty() {
        return StorageError::Other(format!("postgres: {} in `{sql}`", describe(&e)));
    }
    StorageError::Postgres(e)
}

/// `n` when PostgreSQL could not determine the type of `$n`.
fn untyped_parameter(e: &postgres::Error) -> Option<usize> {
    let db = e.as_db_error()?;
    if *db.code() != postgres::error::SqlState::INDETERMINATE_DATATYPE {
        return None;
    }
    db.message()
        .rsplit('$')
        .next()
        .and_then(|n| n.trim().parse().ok())
}

/// The server's message, its SQLSTATE and constraint, where the client's
/// `Display` says only "db error". The detail is left out: PostgreSQL puts row values there ("Failing row
/// contains …", key values), which must not reach the logs.
pub fn describe(e: &postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => {
            let mut out = format!("{} [{}]", db.message(), db.code().code());
            if let Some(c) = db.constraint() {
                out.push_str(&format!(" constraint {c}"));
            }
            out
        }
        None => e.to_string(),
    }
}
