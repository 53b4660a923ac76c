//! Storage: the only module that speaks SQL, rusqlite, postgres and r2d2.
//!
//! About 570 lines: the database handle ([`Db`]) with the opening of both
//! engines, the write path every use case goes through, and its unit tests
//! (group commit, a panicking write, the checkpoint thread).
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
pub mod sql;
pub mod tokens;
pub mod transfer;
pub mod upstream_sign_outs;
pub mod users;
mod watch;
pub mod web_sessions;
pub mod webhooks;
mod writer;

use r2d2_sqlite::SqliteConnectionManager;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use writer::{WriteJob, Writer};

pub use crate::derp_sql_params as params;
pub use sql::{Conn, Engine, ExecCached, Row};

#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// A UNIQUE constraint failed; the text names `table.column`.
    #[error("unique constraint failed: {0}")]
    Conflict(String),
    #[error("sqlite: {0}")]
    Sqlite(rusqlite::Error),
    #[error("postgres: {}", sql::describe(.0))]
    Postgres(postgres::Error),
    /// A statement that had to return a row returned none.
    #[error("no row")]
    NoRows,
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
        if let rusqlite::Error::QueryReturnedNoRows = e {
            return Self::NoRows;
        }
        Self::Sqlite(e)
    }
}

pub type StorageResult<T> = Result<T, StorageError>;

/// The database: a pool of connections to one SQLite file for reads, and
/// one connection of its own for writes.
///
/// SQLite lets one transaction write at a time, and a commit costs more than
/// the few statements of a typical write. Writes therefore queue: whoever
/// holds the write connection takes every write waiting and runs them in
/// one `BEGIN IMMEDIATE` transaction, each inside a savepoint of its own (a
/// write that fails is rolled back alone, as if it had run by itself), then
/// commits once and only then answers each of them (group commit). Under
/// light load a batch holds one write; under many concurrent writes, one
/// commit serves many. Writers of this process never race for SQLite's lock
/// (whose busy handler sleeps whole milliseconds); other processes (the
/// command line beside a running server) still meet the busy timeout.
#[derive(Clone)]
pub struct Db {
    pool: r2d2::Pool<Manager>,
    writer: Arc<Writer>,
    path: PathBuf,
    engine: Engine,
    /// PostgreSQL: the connection settings, and the thread that listens
    /// for the other instances' changes once [`Db::listen`] started it.
    postgres: Option<Arc<PostgresSide>>,
}

struct PostgresSide {
    config: postgres::Config,
    listener: Mutex<Option<watch::Listener>>,
}

/// Opens the pool's connections, of either engine.
pub enum Manager {
    Sqlite(SqliteConnectionManager),
    Postgres(Box<postgres::Config>),
}

impl r2d2::ManageConnection for Manager {
    type Connection = Conn;
    type Error = StorageError;

    fn connect(&self) -> Result<Conn, StorageError> {
        match self {
            Self::Sqlite(m) => Ok(Conn::Sqlite(r2d2::ManageConnection::connect(m)?)),
            Self::Postgres(config) => Ok(Conn::Postgres(sql::PgConn::new(
                config
                    .connect(postgres::NoTls)
                    .map_err(StorageError::Postgres)?,
            ))),
        }
    }

    fn is_valid(&self, conn: &mut Conn) -> Result<(), StorageError> {
        conn.execute_batch("SELECT 1")
    }

    fn has_broken(&self, conn: &mut Conn) -> bool {
        match conn {
            Conn::Sqlite(_) => false,
            Conn::Postgres(c) => c.is_closed(),
        }
    }
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
        let conn = db.pool.get()?;
        let copy = backup::before_migrating(&conn, &db.path, SystemClock.unix())?;
        migrations::apply(&conn)?;
        Ok((db, copy))
    }

    pub fn open_without_migrating(data_dir: &Path) -> StorageResult<Self> {
        create_private_dir(data_dir)?;
        let path = data_dir.join("derp.db");
        create_private_file(&path)?;
        let manager =
            Manager::Sqlite(SqliteConnectionManager::file(&path).with_init(|c| configure(c)));
        // The write connection first: it turns a new file to WAL before the
        // pool opens its connections, which would otherwise race to do it
        // ("database is locked" on a fresh data directory).
        let writer = rusqlite::Connection::open(&path)?;
        configure(&writer)?;
        // The checkpoint thread copies the log as it grows; the write
        // connection checkpoints itself only past this many pages (SQLite's
        // default is 1,000), which also lets the log restart from its
        // beginning when the thread could never catch up with the writes.
        writer.pragma_update(None, "wal_autocheckpoint", WRITER_CHECKPOINT_PAGES)?;
        let checkpoints = rusqlite::Connection::open(&path)?;
        configure(&checkpoints)?;
        let pool = r2d2::Pool::builder()
            .max_size(8)
            // A local file does not drop connections: no query per checkout.
            .test_on_check_out(false)
            .connection_timeout(Duration::from_secs(10))
            .build(manager)?;
        Ok(Self {
            pool,
            writer: {
                let writer = Arc::new(Writer::new(Conn::Sqlite(writer), None));
                writer.start_checkpoints(checkpoints, CHECKPOINT_EVERY);
                writer
            },
            path,
            engine: Engine::Sqlite,
            postgres: None,
        })
    }

    /// Connects to PostgreSQL at `url` (a `postgres://` URL or a
    /// `key=value` string) and applies pending migrations, one instance at
    /// a time (see [`migrations::apply`]).
    pub fn open_postgres(url: &str) -> StorageResult<Self> {
        let db = Self::open_postgres_without_migrating(url)?;
        let conn = db.pool.get()?;
        migrations::apply(&conn)?;
        Ok(db)
    }

    pub fn open_postgres_without_migrating(url: &str) -> StorageResult<Self> {
        let mut config: postgres::Config = url
            .parse()
            .map_err(|e| StorageError::Other(format!("storage.url: {e}")))?;
        // A server that vanished without closing (a dead host, a dropped
        // NAT entry) is noticed in seconds, not TCP's hours, unless the URL
        // says otherwise: every connection (writes, reads, the listener)
        // then fails and is opened anew.
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(Duration::from_secs(5));
        }
        if config.get_keepalives_interval().is_none() {
            config
                .keepalives_idle(Duration::from_secs(10))
                .keepalives_interval(Duration::from_secs(5))
                .keepalives_retries(3);
        }
        if config.get_tcp_user_timeout().is_none() {
            config.tcp_user_timeout(Duration::from_secs(30));
        }
        let writer = config
            .connect(postgres::NoTls)
            .map_err(StorageError::Postgres)?;
        let pool = r2d2::Pool::builder()
            .max_size(8)
            // Opened as needed: several instances share the server's limit.
            .min_idle(Some(1))
            .connection_timeout(Duration::from_secs(10))
            .build(Manager::Postgres(Box::new(config.clone())))?;
        Ok(Self {
            pool,
            writer: Arc::new(Writer::new(Conn::Postgres(sql::PgConn::new(writer)), {
                let config = config.clone();
                Some(Box::new(move || {
                    let client = config
                        .connect(postgres::NoTls)
                        .map_err(StorageError::Postgres)?;
                    Ok(Conn::Postgres(sql::PgConn::new(client)))
                }))
            })),
            path: PathBuf::new(),
            engine: Engine::Postgres,
            postgres: Some(Arc::new(PostgresSide {
                config,
                listener: Mutex::new(None),
            })),
        })
    }

    /// PostgreSQL: starts listening for the changes other instances commit
    /// (see `watch`): revocations move the session epoch at once, and
    /// `on_keys` runs when the signing keys changed. Nothing on SQLite. The
    /// listening stops when the last clone of this handle is dropped.
    pub fn listen(&self, on_keys: Box<dyn Fn() + Send + Sync>) -> StorageResult<()> {
        let Some(pg) = &self.postgres else {
            return Ok(());
        };
        let listener = watch::listen(pg.config.clone(), on_keys)
            .map_err(|e| StorageError::Other(format!("cannot start the listener: {e}")))?;
        *lock(&pg.listener) = Some(listener);
        Ok(())
    }

    /// Opens the store `[storage]` names: a PostgreSQL database when
    /// `postgres_url` is given, else the SQLite file under `data_dir`.
    pub fn open_store(postgres_url: Option<&str>, data_dir: &Path) -> StorageResult<Self> {
        match postgres_url {
            Some(url) => {
                // The key files (secrets.key, the cookie key) stay in data_dir.
                create_private_dir(data_dir)?;
                Self::open_postgres(url)
            }
            None => Self::open(data_dir),
        }
    }

    pub fn engine(&self) -> Engine {
        self.engine
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

    /// Runs `f` in a write transaction, off the async workers: its changes
    /// are committed when `f` returns `Ok` (and the answer comes after the
    /// commit), rolled back otherwise. Writes made at the same time may
    /// share the transaction (see [`Db`]); each sees the ones before it.
    pub async fn write<T, E, F>(&self, f: F) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<StorageError> + Send + 'static,
        F: FnOnce(&Conn) -> Result<T, E> + Send + 'static,
    {
        let (reply, answer) = tokio::sync::oneshot::channel();
        if self.writer.push(Box::new(WriteJob { f, reply })) {
            // No drain is running: start one. It takes this write and every
            // write queued while it runs.
            let writer = self.writer.clone();
            drop(tokio::task::spawn_blocking(move || writer.drain()));
        }
        match answer.await {
            Ok(result) => result,
            // Its reply was dropped: the write panicked (and was rolled
            // back), or the drain did outside any write.
            Err(_) => Err(E::from(StorageError::Other(
                "the write panicked".to_string(),
            ))),
        }
    }

    /// The blocking form of [`Db::write`], for the command line.
    pub fn write_sync<T, E, F>(&self, f: F) -> Result<T, E>
    where
        T: Send,
        E: From<StorageError> + Send,
        F: FnOnce(&Conn) -> Result<T, E> + Send,
    {
        let run = || {
            let mut conn = self.writer.connection();
            if !conn.is_autocommit() {
                // Left open by a write that panicked: nothing in it stands.
                let _ = conn.rollback();
            }
            self.writer.begin(&mut conn)?;
            Self::write_blocking(&mut conn, f)
        };
        if self.engine == Engine::Postgres && tokio::runtime::Handle::try_current().is_ok() {
            // PostgreSQL's blocking client cannot block a thread that
            // drives async tasks: the write runs on a thread of its own.
            return std::thread::scope(|s| s.spawn(run).join()).unwrap_or_else(|_| {
                Err(E::from(StorageError::Other("the write panicked".into())))
            });
        }
        run()
    }

    /// `f` in the transaction that the caller opened on `conn`.
    fn write_blocking<T, E, F>(conn: &mut Conn, f: F) -> Result<T, E>
    where
        E: From<StorageError>,
        F: FnOnce(&Conn) -> Result<T, E>,
    {
        let result = (|| match f(conn) {
            // It went on after a failed statement (PostgreSQL): a COMMIT
            // would silently roll back.
            Ok(_) if conn.is_aborted() => {
                let _ = conn.rollback();
                Err(E::from(StorageError::Other(
                    "a statement failed inside the write".into(),
                )))
            }
            Ok(out) => {
                conn.commit()?;
                Ok(out)
            }
            Err(e) => {
                let _ = conn.rollback();
                Err(e)
            }
        })();
        if !conn.is_autocommit() {
            let _ = conn.rollback();
        }
        // Committed or rolled back: other connections now see the change.
        sessions::settle();
        webhooks::settle(result.is_ok());
        result
    }

    /// `SELECT 1`, for `/readyz`.
    pub async fn ping(&self) -> StorageResult<()> {
        self.read(|c| c.query_row("SELECT 1", (), |_| Ok(()))).await
    }
}

/// How often the checkpoint thread copies new commits from the log into
/// the database file (see [`writer::Writer::start_checkpoints`]).
const CHECKPOINT_EVERY: Duration = Duration::from_millis(200);

/// The log size (in pages of 4 KiB, about 40 MB) past which the write
/// connection checkpoints itself after a commit.
const WRITER_CHECKPOINT_PAGES: i64 = 10_000;

/// The pragmas of every connection: WAL (readers never wait for the
/// writer), `synchronous = NORMAL` (a crash of derp loses no commit; a power
/// cut may lose the last ones, never corrupt the file), foreign keys, and a
/// busy timeout for other processes' locks.
fn configure(c: &rusqlite::Connection) -> rusqlite::Result<()> {
    c.execute_batch(
        "PRAGMA busy_timeout = 5000;
         PRAGMA journal_mode = WAL;
         PRAGMA synchronous = NORMAL;
         PRAGMA foreign_keys = ON;
         PRAGMA temp_store = MEMORY;",
    )?;
    // Room for every statement of the write paths (the default keeps 16).
    c.set_prepared_statement_cache_capacity(256);
    Ok(())
}

/// A write that panicked was rolled back (its savepoint, or its whole
/// transaction), so a poisoned lock is still usable.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
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
pub(crate) fn optional<T>(r: StorageResult<T>) -> StorageResult<Option<T>> {
    match r {
        Ok(v) => Ok(Some(v)),
        Err(StorageError::NoRows) => Ok(None),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn count(db: &Db) -> i64 {
        let conn = db.pool.get().unwrap();
        conn.query_row("SELECT COUNT(*) FROM settings", (), |r| r.get(0))
            .unwrap()
    }

    /// Writes made at once share commits, yet each one that fails is rolled
    /// back alone and each one that succeeds is answered after its commit.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_writes_commit_together_and_fail_alone() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(dir.path()).unwrap();
        let before = count(&db);
        let mut tasks = Vec::new();
        for i in 0..200 {
            let db = db.clone();
            tasks.push(tokio::spawn(async move {
                let outcome = db
                    .write(move |conn| -> StorageResult<i64> {
                        conn.exec(
                            "INSERT INTO settings (name, value, created_at) VALUES (?1, 'v', 0)",
                            [format!("group-commit-{i}")],
                        )?;
                        if i % 3 == 0 {
                            return Err(StorageError::Other(format!("write {i} fails")));
                        }
                        if i % 7 == 0 {
                            // A failing statement inside a write that goes on.
                            assert!(conn.exec("INSERT INTO nowhere VALUES (1)", ()).is_err());
                        }
                        Ok(i)
                    })
                    .await;
                // A success is visible to the pool's readers once answered.
                if outcome.is_ok() {
                    let conn = db.pool.get().unwrap();
                    let seen: i64 = conn
                        .query_row(
                            "SELECT COUNT(*) FROM settings WHERE name = ?1",
                            [format!("group-commit-{i}")],
                            |r| r.get(0),
                        )
                        .unwrap();
                    assert_eq!(seen, 1, "write {i} answered before its commit");
                }
                (i, outcome.is_ok())
            }));
        }
        for t in tasks {
            let (i, ok) = t.await.unwrap();
            assert_eq!(ok, i % 3 != 0, "write {i}");
        }
        let failed = (0..200).filter(|i| i % 3 == 0).count() as i64;
        assert_eq!(count(&db) - before, 200 - failed);
    }

    #[tokio::test]
    async fn a_panicking_write_is_rolled_back_and_the_next_ones_run() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(dir.path()).unwrap();
        let before = count(&db);
        let db2 = db.clone();
        let panicked = tokio::spawn(async move {
            db2.write(|conn| -> StorageResult<()> {
                conn.exec(
                    "INSERT INTO settings (name, value, created_at) VALUES ('boom', 'v', 0)",
                    (),
                )?;
                panic!("a bug in a write");
            })
            .await
        })
        .await
        .unwrap();
        assert!(panicked.is_err());
        db.write(|conn| -> StorageResult<()> {
            conn.exec(
                "INSERT INTO settings (name, value, created_at) VALUES ('after', 'v', 0)",
                (),
            )?;
            Ok(())
        })
        .await
        .unwrap();
        assert_eq!(count(&db) - before, 1);
    }

    /// Commits reach the database file without waiting for the log to
    /// reach the write connection's own checkpoint size.
    #[tokio::test]
    async fn the_checkpoint_thread_copies_commits_into_the_database_file() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(dir.path()).unwrap();
        let file = dir.path().join("derp.db");
        // A checkpoint of its own leaves no page of the migrations in the log.
        let conn = db.pool.get().unwrap();
        conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", (), |_| Ok(()))
            .unwrap();
        let size = || std::fs::metadata(&file).unwrap().len();
        let before = size();
        db.write(|conn| -> StorageResult<()> {
            for i in 0..200 {
                conn.exec(
                    "INSERT INTO settings (name, value, created_at) VALUES (?1, ?2, 0)",
                    crate::storage::params![format!("checkpoint-{i}"), "v".repeat(500)],
                )?;
            }
            Ok(())
        })
        .await
        .unwrap();
        assert_eq!(size(), before, "the commit itself goes to the log");
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while size() == before {
            assert!(
                std::time::Instant::now() < deadline,
                "no checkpoint within 10 s"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}
