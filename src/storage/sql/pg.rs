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
}

impl PgConn {
    pub fn new(client: postgres::Client) -> Self {
        Self {
            client: RefCell::new(Some(client)),
            statements: RefCell::new(HashMap::new()),
            in_transaction: Cell::new(false),
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
        let mut types: Vec<Type> = Vec::new();
        let stmt = loop {
            match self.client().prepare_typed(&translated, &types) {
                Ok(stmt) => break stmt,
                Err(e) => match untyped_parameter(&e) {
                    Some(n) if n > types.len() || types[n - 1] == Type::UNKNOWN => {
                        types.resize(types.len().max(n), Type::UNKNOWN);
                        types[n - 1] = Type::TEXT;
                    }
                    _ => return Err(pg_error(e, &translated)),
                },
            }
        };
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
            .map_err(|e| pg_error(e, sql))
    }

    pub(super) fn execute(&self, sql: &str, params: &[&dyn Param]) -> StorageResult<usize> {
        let stmt = self.statement(sql)?;
        let values: Vec<PgValue<'_>> = params.iter().map(|p| p.pg()).collect();
        let refs: Vec<&(dyn ToSql + Sync)> =
            values.iter().map(|v| v as &(dyn ToSql + Sync)).collect();
        let n = self
            .client()
            .execute(&stmt, &refs)
            .map_err(|e| pg_error(e, sql))?;
        Ok(usize::try_from(n).unwrap_or(usize::MAX))
    }

    pub(super) fn batch(&self, sql: &str) -> StorageResult<()> {
        self.client()
            .batch_execute(sql)
            .map_err(|e| pg_error(e, sql))
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
    } else if s.starts_with("COMMIT") || (s.starts_with("ROLLBACK") && !s.contains(" TO ")) {
        c.in_transaction.set(false);
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

/// The server's message with its detail, where the client's `Display`
/// says only "db error".
pub fn describe(e: &postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => match db.detail() {
            Some(detail) => format!("{} ({detail})", db.message()),
            None => db.message().to_string(),
        },
        None => e.to_string(),
    }
}
