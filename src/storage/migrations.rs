//! Numbered SQL migrations embedded from `migrations/`, tracked by
//! `PRAGMA user_version`. Forward-only: an applied file is never edited.

use super::{Conn, Engine, StorageError, StorageResult};
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

/// The number of the last migration applied: SQLite's `PRAGMA
/// user_version`; on PostgreSQL, the one row of `derp_schema`.
pub fn current_version(conn: &Conn) -> StorageResult<u32> {
    match conn.engine() {
        Engine::Sqlite => conn.query_row("PRAGMA user_version", (), |r| r.get(0)),
        Engine::Postgres => {
            let exists: bool =
                conn.query_row("SELECT to_regclass('derp_schema') IS NOT NULL", (), |r| {
                    r.get(0)
                })?;
            if !exists {
                return Ok(0);
            }
            conn.query_row("SELECT version FROM derp_schema", (), |r| r.get(0))
        }
    }
}

/// A migration's text for `conn`'s engine: the file itself on SQLite; on
/// PostgreSQL, `migrations/postgres/<name>` where one exists (a step no
/// rewrite can carry: SQLite's full-text index), else the file translated
/// by [`sql::translate_migration`](super::sql::translate_migration).
fn text_for(conn: &Conn, name: &str, sql: &'static str) -> String {
    match conn.engine() {
        Engine::Sqlite => sql.to_string(),
        Engine::Postgres => MIGRATIONS
            .get_file(format!("postgres/{name}"))
            .and_then(|f| f.contents_utf8())
            .map_or_else(|| super::sql::translate_migration(sql), str::to_string),
    }
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

/// The session-level advisory lock that lets one instance at a time
/// migrate a PostgreSQL database.
const MIGRATION_LOCK: i64 = 0x6465_7270_6d67; // "derpmg"

/// Applies every pending migration, each in its own transaction. On
/// PostgreSQL, instances starting together take turns: each waits for the
/// migration lock, then finds the work done or does it.
pub fn apply(conn: &Conn) -> StorageResult<Vec<&'static str>> {
    if conn.engine() == Engine::Postgres {
        conn.execute_batch(&format!("SELECT pg_advisory_lock({MIGRATION_LOCK})"))?;
        let applied = apply_locked(conn);
        let unlocked = conn.execute_batch(&format!("SELECT pg_advisory_unlock({MIGRATION_LOCK})"));
        let applied = applied?;
        unlocked?;
        return Ok(applied);
    }
    apply_locked(conn)
}

fn apply_locked(conn: &Conn) -> StorageResult<Vec<&'static str>> {
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
    if version == 0 && conn.engine() == Engine::Postgres {
        conn.execute_batch("CREATE TABLE IF NOT EXISTS derp_schema (version BIGINT NOT NULL)")?;
    }
    let mut applied = Vec::new();
    for (number, name, sql) in known.into_iter().filter(|m| m.0 > version) {
        conn.begin_write()?;
        let step = (|| {
            conn.execute_batch(&text_for(conn, name, sql))
                .map_err(|e| StorageError::Other(format!("migration {name} failed: {e}")))?;
            match conn.engine() {
                Engine::Sqlite => conn.execute_batch(&format!("PRAGMA user_version = {number}")),
                Engine::Postgres => conn.execute_batch(&format!(
                    "DELETE FROM derp_schema; INSERT INTO derp_schema (version) VALUES ({number});"
                )),
            }
        })();
        match step {
            Ok(()) => conn.commit()?,
            Err(e) => {
                let _ = conn.rollback();
                return Err(e);
            }
        }
        applied.push(name);
    }
    Ok(applied)
}
