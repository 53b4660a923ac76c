//! SQLite storage: the only module that speaks rusqlite and r2d2.
//!
//! Storage functions are free functions over a `&Conn`, so a use case can
//! compose several of them in one transaction through [`Db::write`]. Every
//! call to the database runs on tokio's blocking pool, never on the async
//! workers.

pub mod audit;
pub mod backup;
pub mod keys;
pub mod lockouts;
pub mod metrics;
pub mod mfa;
pub mod migrations;
pub mod oauth_provider;
pub mod orgs;
pub mod outbox;
pub mod plans;
pub mod sessions;
pub mod settings;
pub mod tokens;
pub mod upstream_sign_outs;
pub mod users;
pub mod web_sessions;
pub mod webhooks;

use r2d2_sqlite::SqliteConnectionManager;
use rusqlite::TransactionBehavior;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub type Conn = rusqlite::Connection;

#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// A UNIQUE constraint failed; the text names `table.column`.
    #[error("unique constraint failed: {0}")]
    Conflict(String),
    #[error("sqlite: {0}")]
    Sqlite(rusqlite::Error),
    #[error("connection pool: {0}")]
    Pool(#[from] r2d2::Error),
    #[error("{0}")]
    Other(String),
}

impl From<rusqlite::Error> for StorageError {
    fn from(e: rusqlite::Error) -> Self {
        if let rusqlite::Error::SqliteFailure(err, Some(msg)) = &e
            && err.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE
        {
            let which = msg.trim_start_matches("UNIQUE constraint failed: ");
            return Self::Conflict(which.to_string());
        }
        Self::Sqlite(e)
    }
}

pub type StorageResult<T> = Result<T, StorageError>;

/// The database: a pool of connections to one SQLite file.
#[derive(Clone)]
pub struct Db {
    pool: r2d2::Pool<SqliteConnectionManager>,
    path: PathBuf,
}

impl std::fmt::Debug for Db {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Db").field("path", &self.path).finish()
    }
}

impl Db {
    /// Opens (creating it owner-only when missing) `data_dir/derp.db` and
    /// applies pending migrations, after copying a database that already
    /// holds some (see [`backup::before_migrating`]).
    pub fn open(data_dir: &Path) -> StorageResult<Self> {
        Self::open_reporting_backup(data_dir).map(|(db, _)| db)
    }

    /// [`Db::open`], also returning the pre-migration backup it wrote, if any.
    pub fn open_reporting_backup(
        data_dir: &Path,
    ) -> StorageResult<(Self, Option<backup::BackupInfo>)> {
        use crate::clock::{Clock, SystemClock};
        let db = Self::open_without_migrating(data_dir)?;
        let mut conn = db.pool.get()?;
        let copy = backup::before_migrating(&conn, &db.path, SystemClock.unix())?;
        migrations::apply(&mut conn)?;
        Ok((db, copy))
    }

    pub fn open_without_migrating(data_dir: &Path) -> StorageResult<Self> {
        create_private_dir(data_dir)?;
        let path = data_dir.join("derp.db");
        create_private_file(&path)?;
        let manager = SqliteConnectionManager::file(&path).with_init(|c| {
            c.execute_batch(
                "PRAGMA busy_timeout = 5000;
                 PRAGMA journal_mode = WAL;
                 PRAGMA synchronous = NORMAL;
                 PRAGMA foreign_keys = ON;
                 PRAGMA temp_store = MEMORY;",
            )
        });
        let pool = r2d2::Pool::builder()
            .max_size(8)
            // A local file does not drop connections: no query per checkout.
            .test_on_check_out(false)
            .connection_timeout(Duration::from_secs(10))
            .build(manager)?;
        Ok(Self { pool, path })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The pool's connections: `(idle, in use)`, for `/metrics`.
    pub fn pool_state(&self) -> (u32, u32) {
        let s = self.pool.state();
        (
            s.idle_connections,
            s.connections.saturating_sub(s.idle_connections),
        )
    }

    /// Runs `f` on a pooled connection, off the async workers.
    pub async fn read<T, E, F>(&self, f: F) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<StorageError> + Send + 'static,
        F: FnOnce(&Conn) -> Result<T, E> + Send + 'static,
    {
        let pool = self.pool.clone();
        tokio::task::spawn_blocking(move || {
            let conn = pool.get().map_err(StorageError::from)?;
            f(&conn)
        })
        .await
        .map_err(|e| E::from(StorageError::Other(format!("blocking task failed: {e}"))))?
    }

    /// Runs `f` in one `BEGIN IMMEDIATE` transaction, off the async workers:
    /// committed when `f` returns `Ok`, rolled back otherwise.
    pub async fn write<T, E, F>(&self, f: F) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<StorageError> + Send + 'static,
        F: FnOnce(&Conn) -> Result<T, E> + Send + 'static,
    {
        let pool = self.pool.clone();
        tokio::task::spawn_blocking(move || {
            let mut conn = pool.get().map_err(StorageError::from)?;
            Self::write_blocking(&mut conn, f)
        })
        .await
        .map_err(|e| E::from(StorageError::Other(format!("blocking task failed: {e}"))))?
    }

    /// The blocking form of [`Db::write`], for the command line.
    pub fn write_sync<T, E, F>(&self, f: F) -> Result<T, E>
    where
        E: From<StorageError>,
        F: FnOnce(&Conn) -> Result<T, E>,
    {
        let mut conn = self.pool.get().map_err(StorageError::from)?;
        Self::write_blocking(&mut conn, f)
    }

    fn write_blocking<T, E, F>(conn: &mut Conn, f: F) -> Result<T, E>
    where
        E: From<StorageError>,
        F: FnOnce(&Conn) -> Result<T, E>,
    {
        let result = (|| {
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(StorageError::from)?;
            let out = f(&tx)?;
            tx.commit().map_err(StorageError::from)?;
            Ok(out)
        })();
        // Committed or rolled back: other connections now see the change.
        sessions::settle();
        webhooks::settle(result.is_ok());
        result
    }

    /// `SELECT 1`, for `/readyz`.
    pub async fn ping(&self) -> StorageResult<()> {
        self.read(|c| {
            c.query_row("SELECT 1", [], |_| Ok(()))
                .map_err(StorageError::from)
        })
        .await
    }
}

fn create_private_dir(dir: &Path) -> StorageResult<()> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    if !dir.exists() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|e| StorageError::Other(format!("cannot create {}: {e}", dir.display())))?;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
            .map_err(|e| StorageError::Other(format!("cannot chmod {}: {e}", dir.display())))?;
    }
    Ok(())
}

/// Creates the database file 0600 before SQLite opens it; SQLite gives its
/// `-wal` and `-shm` files the same mode.
fn create_private_file(path: &Path) -> StorageResult<()> {
    use std::os::unix::fs::OpenOptionsExt;
    if !path.exists() {
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)
            .map_err(|e| StorageError::Other(format!("cannot create {}: {e}", path.display())))?;
    }
    Ok(())
}

/// Maps "no row" to `None`.
pub(crate) fn optional<T>(r: rusqlite::Result<T>) -> StorageResult<Option<T>> {
    match r {
        Ok(v) => Ok(Some(v)),
        Err(rusqlite::Error::QueryReturnedNoRows) => Ok(None),
        Err(e) => Err(e.into()),
    }
}
