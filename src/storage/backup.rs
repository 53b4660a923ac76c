//! Online backups of the database through SQLite's backup API: `derp backup`
//! while the server serves, and the automatic copy taken before migrating.
//!
//! The copy is made in one backup step, inside one read transaction on the
//! source: in WAL mode a reader does not block writers, so the server keeps
//! serving, and the copy is the database as of one commit. (Copying a few
//! pages at a time would restart from scratch after every write by another
//! connection, and might never finish under load.) The copy is written to a
//! temporary file beside the destination, created 0600, switched to a
//! rollback journal so that it is one self-contained file, synced, and only
//! then moved to its name, so a half-written backup never carries it.

use super::{Conn, StorageError, StorageResult, migrations};
use rusqlite::OpenFlags;
use rusqlite::backup::{Backup, StepResult};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The database file inside a data directory.
pub fn database_file(data_dir: &Path) -> PathBuf {
    data_dir.join("derp.db")
}

/// What a backup wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackupInfo {
    pub path: PathBuf,
    pub bytes: u64,
    /// The migration the copy is at (`PRAGMA user_version`).
    pub version: u32,
}

/// Copies the database `data_dir/derp.db` to `dest` while it may be in use.
/// Refuses to overwrite `dest` unless `overwrite`, and never creates a
/// database where there was none.
pub fn backup_data_dir(data_dir: &Path, dest: &Path, overwrite: bool) -> StorageResult<BackupInfo> {
    let source = database_file(data_dir);
    if !source.is_file() {
        return Err(StorageError::Other(format!(
            "no database at {} (check data_dir in the configuration)",
            source.display()
        )));
    }
    if same_file(&source, dest) {
        return Err(StorageError::Other(format!(
            "{} is the live database itself; choose another path",
            dest.display()
        )));
    }
    // Without SQLITE_OPEN_CREATE: a missing file is an error, not a new database.
    let conn = rusqlite::Connection::open_with_flags(
        &source,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    conn.busy_timeout(Duration::from_secs(5))?;
    backup_connection(&Conn::Sqlite(conn), dest, overwrite)
}

/// Copies the database behind `source` to `dest` (see the module comment).
pub fn backup_connection(source: &Conn, dest: &Path, overwrite: bool) -> StorageResult<BackupInfo> {
    let Some(source) = source.sqlite() else {
        return Err(StorageError::Other(
            "derp backup copies SQLite files; back PostgreSQL up with pg_dump".into(),
        ));
    };
    if dest.is_dir() {
        return Err(StorageError::Other(format!(
            "{} is a directory; name the file to write",
            dest.display()
        )));
    }
    if !overwrite && dest.symlink_metadata().is_ok() {
        return Err(StorageError::Other(format!(
            "{} already exists; pass --force to overwrite it",
            dest.display()
        )));
    }
    let dir = match dest.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let name = dest
        .file_name()
        .ok_or_else(|| StorageError::Other(format!("{} is not a file name", dest.display())))?;
    let mut tmp_name = name.to_os_string();
    tmp_name.push(format!(".tmp-{}", std::process::id()));
    let tmp = TempFile(dir.join(tmp_name));
    create_private(&tmp.0)?;

    let mut target = rusqlite::Connection::open(&tmp.0)?;
    copy_all(source, &mut target)?;
    // A self-contained file: no -wal beside it to lose when it is copied.
    let mode: String = target.query_row("PRAGMA journal_mode = DELETE", (), |r| r.get(0))?;
    if !mode.eq_ignore_ascii_case("delete") {
        return Err(StorageError::Other(format!(
            "the backup stayed in journal mode {mode}"
        )));
    }
    let version: u32 = target.query_row("PRAGMA user_version", (), |r| r.get(0))?;
    target.close().map_err(|(_, e)| StorageError::from(e))?;
    sync_file(&tmp.0)?;

    publish(&tmp.0, dest, overwrite)?;
    drop(tmp); // already moved: nothing left to remove
    sync_dir(&dir);
    let bytes = std::fs::metadata(dest)
        .map(|m| m.len())
        .map_err(|e| io(dest, e))?;
    Ok(BackupInfo {
        path: dest.to_path_buf(),
        bytes,
        version,
    })
}

/// Before `Db::open` migrates a database that already holds migrations, it
/// keeps a copy beside it: `derp.db.pre-<N>-<unix time>.bak`, where `N` is
/// the first migration about to be applied (the copy is at `N - 1`).
pub fn before_migrating(
    conn: &Conn,
    db_path: &Path,
    now: i64,
) -> StorageResult<Option<BackupInfo>> {
    if conn.sqlite().is_none() {
        return Ok(None); // PostgreSQL: the team's own dumps and replicas
    }
    let version = migrations::current_version(conn)?;
    let Some(first) = migrations::all()
        .into_iter()
        .map(|m| m.0)
        .find(|n| *n > version)
    else {
        return Ok(None);
    };
    if version == 0 {
        return Ok(None); // a new database: nothing to keep
    }
    let mut name = db_path
        .file_name()
        .map(|n| n.to_os_string())
        .unwrap_or_else(|| "derp.db".into());
    name.push(format!(".pre-{first}-{now}.bak"));
    let dest = db_path.with_file_name(name);
    let info = backup_connection(conn, &dest, false)?;
    tracing::info!(
        backup = %info.path.display(),
        from_version = version,
        "copied the database before migrating"
    );
    Ok(Some(info))
}

/// `PRAGMA integrity_check` on a database file: `"ok"` or SQLite's findings.
pub fn integrity_check(path: &Path) -> StorageResult<String> {
    let conn = Conn::Sqlite(rusqlite::Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?);
    let mut stmt = conn.prepare("PRAGMA integrity_check")?;
    let lines = stmt
        .query_map((), |r| r.get::<_, String>(0))?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(lines.join("\n"))
}

/// Every page in one step, retrying while the source is busy.
fn copy_all(source: &rusqlite::Connection, target: &mut rusqlite::Connection) -> StorageResult<()> {
    let backup = Backup::new(source, target)?;
    let mut waits = 0;
    loop {
        match backup.step(-1)? {
            StepResult::Done => return Ok(()),
            StepResult::More => {}
            // Busy or Locked (`StepResult` is non-exhaustive): wait and retry.
            _ => {
                waits += 1;
                if waits > 200 {
                    return Err(StorageError::Other(
                        "the database stayed locked for 10 s; try again".into(),
                    ));
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    }
}

/// Moves the finished copy to its name: atomically replacing `dest` when
/// `overwrite`, otherwise through a hard link, which fails if `dest` appeared
/// in the meantime.
fn publish(tmp: &Path, dest: &Path, overwrite: bool) -> StorageResult<()> {
    if overwrite {
        return std::fs::rename(tmp, dest).map_err(|e| io(dest, e));
    }
    match std::fs::hard_link(tmp, dest) {
        Ok(()) => std::fs::remove_file(tmp).map_err(|e| io(tmp, e)),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            Err(StorageError::Other(format!(
                "{} already exists; pass --force to overwrite it",
                dest.display()
            )))
        }
        // File systems without hard links: check, then rename.
        Err(_) if dest.symlink_metadata().is_err() => {
            std::fs::rename(tmp, dest).map_err(|e| io(dest, e))
        }
        Err(e) => Err(io(dest, e)),
    }
}

fn create_private(path: &Path) -> StorageResult<()> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| io(path, e))?;
    // The umask can only take bits away; say it anyway.
    file.set_permissions(std::fs::Permissions::from_mode(0o600))
        .map_err(|e| io(path, e))
}

fn sync_file(path: &Path) -> StorageResult<()> {
    std::fs::File::open(path)
        .and_then(|f| f.sync_all())
        .map_err(|e| io(path, e))
}

/// Makes the new directory entry durable; best effort.
fn sync_dir(dir: &Path) {
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
}

fn same_file(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    }
}

fn io(path: &Path, e: std::io::Error) -> StorageError {
    StorageError::Other(format!("{}: {e}", path.display()))
}

/// Removed on drop: no half-written copy stays behind.
struct TempFile(PathBuf);

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
        let mut journal = self.0.clone().into_os_string();
        journal.push("-journal");
        let _ = std::fs::remove_file(journal);
    }
}
