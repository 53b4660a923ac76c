//! `derp migrate-store --from sqlite --to postgres`: copies every row of a
//! SQLite installation into an empty PostgreSQL database at the same
//! migration, in one PostgreSQL transaction (all or nothing).
//!
//! Tables are copied parents first (SQLite's foreign keys give the order),
//! each in its rows' insertion order, through the same loose values as the
//! dialect layer; identity counters then continue after the largest id.
//! SQLite's own search tables (`user_search*`) have no PostgreSQL
//! counterpart and are skipped.

use super::{Conn, Db, Engine, StorageError, StorageResult, migrations, sql::Param};
use rusqlite::types::Value;

impl Param for Value {
    fn pg(&self) -> super::sql::PgValue<'_> {
        use super::sql::PgValue;
        match self {
            Value::Null => PgValue::Null,
            Value::Integer(i) => PgValue::Int(*i),
            Value::Real(f) => PgValue::Real(*f),
            Value::Text(s) => PgValue::Text(s),
            Value::Blob(b) => PgValue::Bytes(b),
        }
    }
}

/// Copies `from` (SQLite) into `to` (PostgreSQL): `(table, rows)` copied.
/// Refuses unless both are at the same migration and `to` holds no user.
pub fn sqlite_to_postgres(from: &Db, to: &Db) -> StorageResult<Vec<(String, usize)>> {
    if from.engine() != Engine::Sqlite || to.engine() != Engine::Postgres {
        return Err(StorageError::Other(
            "copies from SQLite to PostgreSQL only".into(),
        ));
    }
    let version = migrations::current_version(&*from.pool.get()?)?;
    let path = from.path().to_path_buf();
    to.write_sync(move |pg| -> StorageResult<Vec<(String, usize)>> {
        let sqlite = rusqlite::Connection::open_with_flags(
            &path,
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        let sqlite = &sqlite;
        let tables = tables_in_order(sqlite)?;
        let target = migrations::current_version(pg)?;
        if target != version {
            return Err(StorageError::Other(format!(
                "SQLite is at migration {version} and PostgreSQL at {target}: run `derp migrate` on both first"
            )));
        }
        let users: i64 = pg.query_row("SELECT COUNT(*) FROM users", (), |r| r.get(0))?;
        if users > 0 {
            return Err(StorageError::Other(format!(
                "the PostgreSQL database already holds {users} users: copy into an empty one"
            )));
        }
        let mut copied = Vec::new();
        // Rows the migrations themselves wrote (defaults) give way to the copy.
        for table in tables.iter().rev() {
            if exists_in(pg, table)? {
                pg.execute_batch(&format!("DELETE FROM {table}"))?;
            }
        }
        for table in &tables {
            if !exists_in(pg, table)? {
                continue;
            }
            let n = copy_table(sqlite, pg, table)?;
            continue_identity(pg, table)?;
            copied.push((table.clone(), n));
        }
        Ok(copied)
    })
}

/// The tables worth copying, each after the tables it refers to.
fn tables_in_order(c: &rusqlite::Connection) -> StorageResult<Vec<String>> {
    let mut stmt = c.prepare(
        "SELECT name FROM sqlite_master WHERE type = 'table'
         AND name NOT LIKE 'sqlite_%' AND name NOT LIKE 'user_search%' ORDER BY name",
    )?;
    let mut left: Vec<String> = stmt
        .query_map([], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    let mut parents = std::collections::HashMap::new();
    for t in &left {
        let mut fk = c.prepare(&format!("PRAGMA foreign_key_list({t})"))?;
        let refs: Vec<String> = fk
            .query_map([], |r| r.get::<_, String>(2))?
            .collect::<Result<_, _>>()?;
        parents.insert(t.clone(), refs);
    }
    let mut ordered: Vec<String> = Vec::new();
    while !left.is_empty() {
        let before = left.len();
        left.retain(|t| {
            let ready = parents[t]
                .iter()
                .all(|p| p == t || ordered.contains(p) || !parents.contains_key(p));
            if ready {
                ordered.push(t.clone());
            }
            !ready
        });
        if left.len() == before {
            return Err(StorageError::Other(format!(
                "foreign keys form a cycle among {left:?}"
            )));
        }
    }
    Ok(ordered)
}

fn exists_in(pg: &Conn, table: &str) -> StorageResult<bool> {
    pg.query_row(
        "SELECT to_regclass(?1) IS NOT NULL",
        [format!("public.{table}")],
        |r| r.get(0),
    )
}

/// Copies one table's rows (the columns both sides have), oldest first.
fn copy_table(sqlite: &rusqlite::Connection, pg: &Conn, table: &str) -> StorageResult<usize> {
    let mut info = sqlite.prepare(&format!("PRAGMA table_info({table})"))?;
    let sqlite_columns: Vec<String> = info
        .query_map([], |r| r.get(1))?
        .collect::<Result<_, _>>()?;
    let mut pg_columns = pg.prepare(
        "SELECT column_name FROM information_schema.columns
         WHERE table_schema = 'public' AND table_name = ?1",
    )?;
    let known: Vec<String> = pg_columns
        .query_map([table], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    let columns: Vec<&String> = sqlite_columns
        .iter()
        .filter(|c| known.contains(c))
        .collect();
    let list = columns
        .iter()
        .map(|c| c.as_str())
        .collect::<Vec<_>>()
        .join(", ");
    let marks = (1..=columns.len())
        .map(|i| format!("?{i}"))
        .collect::<Vec<_>>()
        .join(", ");
    let insert = format!("INSERT INTO {table} ({list}) VALUES ({marks})");
    let mut select = sqlite.prepare(&format!("SELECT {list} FROM {table} ORDER BY rowid"))?;
    let mut rows = select.query([])?;
    let mut n = 0;
    while let Some(row) = rows.next()? {
        let values: Vec<Value> = (0..columns.len())
            .map(|i| row.get::<_, Value>(i))
            .collect::<Result<_, _>>()?;
        let refs: Vec<&dyn Param> = values.iter().map(|v| v as &dyn Param).collect();
        pg.prepare_cached(&insert)?.execute(refs.as_slice())?;
        n += 1;
    }
    Ok(n)
}

/// Identity columns continue after the largest id copied.
fn continue_identity(pg: &Conn, table: &str) -> StorageResult<()> {
    let mut stmt = pg.prepare(
        "SELECT column_name FROM information_schema.columns
         WHERE table_schema = 'public' AND table_name = ?1 AND is_identity = 'YES'",
    )?;
    let identity: Vec<String> = stmt
        .query_map([table], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    for column in identity {
        pg.execute_batch(&format!(
            "SELECT setval(pg_get_serial_sequence('{table}', '{column}'),
                           COALESCE((SELECT MAX({column}) FROM {table}), 0) + 1, false)"
        ))?;
    }
    Ok(())
}
