//! Numbered SQL migrations embedded from `migrations/`, tracked by
//! `PRAGMA user_version`. Forward-only: an applied file is never edited.

use super::{Conn, StorageError, StorageResult};
use include_dir::{Dir, include_dir};

static MIGRATIONS: Dir<'_> = include_dir!("$CARGO_MANIFEST_DIR/migrations");

/// `(number, name, sql)` sorted by number.
pub fn all() -> Vec<(u32, &'static str, &'static str)> {
    let mut out: Vec<_> = MIGRATIONS
        .files()
        .filter_map(|f| {
            let name = f.path().file_name()?.to_str()?;
            let number: u32 = name.split('_').next()?.parse().ok()?;
            Some((number, name, f.contents_utf8()?))
        })
        .collect();
    out.sort_by_key(|m| m.0);
    out
}

pub fn current_version(conn: &Conn) -> StorageResult<u32> {
    Ok(conn.query_row("PRAGMA user_version", [], |r| r.get(0))?)
}

/// Names of migrations not yet applied.
pub fn pending(conn: &Conn) -> StorageResult<Vec<&'static str>> {
    let version = current_version(conn)?;
    Ok(all()
        .into_iter()
        .filter(|m| m.0 > version)
        .map(|m| m.1)
        .collect())
}

/// Applies every pending migration, each in its own transaction.
pub fn apply(conn: &mut Conn) -> StorageResult<Vec<&'static str>> {
    let version = current_version(conn)?;
    let known = all();
    if let Some(latest) = known.last()
        && version > latest.0
    {
        return Err(StorageError::Other(format!(
            "the database is at migration {version}, newer than this binary knows ({}): refusing to run an older derp on it",
            latest.0
        )));
    }
    let mut applied = Vec::new();
    for (number, name, sql) in known.into_iter().filter(|m| m.0 > version) {
        let tx = conn.transaction()?;
        tx.execute_batch(sql)
            .map_err(|e| StorageError::Other(format!("migration {name} failed: {e}")))?;
        tx.pragma_update(None, "user_version", number)?;
        tx.commit()?;
        applied.push(name);
    }
    Ok(applied)
}
