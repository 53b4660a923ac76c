//! The write connection of [`Db`](super::Db) and its queue: group commit,
//! each write in a savepoint of its own, answers only after the commit.

use super::{Conn, ExecCached as _, StorageError, lock, sessions, webhooks};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, mpsc};
use std::thread::JoinHandle;
use std::time::Duration;

/// The write connection and the writes waiting for it.
pub(super) struct Writer {
    conn: Mutex<Conn>,
    /// PostgreSQL: opens a new write connection when the server dropped
    /// the old one (a restart, a failover, a terminated backend).
    reopen: Option<Reopen>,
    queue: Mutex<Queue>,
    /// Transactions committed so far, for the checkpoint thread.
    commits: Arc<AtomicU64>,
    /// The checkpoint thread: closing the channel stops it.
    checkpoints: Mutex<Option<(mpsc::Sender<()>, JoinHandle<()>)>>,
}

impl Drop for Writer {
    /// Stops the checkpoint thread and waits for it, so that its connection
    /// is closed before the write connection: the last connection to close
    /// copies the log into the database file, as SQLite does.
    fn drop(&mut self) {
        let thread = self
            .checkpoints
            .get_mut()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take();
        if let Some((stop, handle)) = thread {
            drop(stop);
            let _ = handle.join();
        }
    }
}

/// The writes waiting, and whether a task is draining them: at most one
/// runs at a time, so a burst of writes costs one blocking task rather
/// than one each (all but one of them waiting on the connection).
#[derive(Default)]
struct Queue {
    jobs: Vec<Box<dyn Job>>,
    draining: bool,
}

/// At most this many writes share one transaction.
const MAX_BATCH: usize = 256;

/// One queued write: runs inside the batch's transaction and answers its
/// caller, at once when it failed, after the commit when it succeeded.
pub(super) trait Job: Send {
    fn run(self: Box<Self>, conn: &Conn) -> Ran;
    /// Answers with an error without running (no transaction could start).
    fn fail(self: Box<Self>, why: &str);
}

/// Answers a write that succeeded once the commit's outcome is known
/// (`Some` = why the commit failed).
pub(super) type Answer = Box<dyn FnOnce(Option<&str>) + Send>;

pub(super) enum Ran {
    /// Succeeded: answer after the commit.
    Done(Answer),
    /// Failed and answered: roll its savepoint back.
    Failed,
}

pub(super) struct WriteJob<T, E, F> {
    pub(super) f: F,
    pub(super) reply: tokio::sync::oneshot::Sender<Result<T, E>>,
}

impl<T, E, F> Job for WriteJob<T, E, F>
where
    T: Send + 'static,
    E: From<StorageError> + Send + 'static,
    F: FnOnce(&Conn) -> Result<T, E> + Send + 'static,
{
    fn run(self: Box<Self>, conn: &Conn) -> Ran {
        let Self { f, reply } = *self;
        match f(conn) {
            Ok(value) => Ran::Done(Box::new(move |commit_failed: Option<&str>| {
                let answer = match commit_failed {
                    None => Ok(value),
                    Some(why) => Err(E::from(StorageError::Other(why.to_string()))),
                };
                let _ = reply.send(answer);
            })),
            Err(e) => {
                let _ = reply.send(Err(e));
                Ran::Failed
            }
        }
    }

    fn fail(self: Box<Self>, why: &str) {
        let _ = self
            .reply
            .send(Err(E::from(StorageError::Other(why.to_string()))));
    }
}

/// Opens a write connection.
pub(super) type Reopen = Box<dyn Fn() -> Result<Conn, StorageError> + Send + Sync>;

impl Writer {
    pub(super) fn new(conn: Conn, reopen: Option<Reopen>) -> Self {
        Self {
            conn: Mutex::new(conn),
            reopen,
            queue: Mutex::new(Queue::default()),
            commits: Arc::new(AtomicU64::new(0)),
            checkpoints: Mutex::new(None),
        }
    }

    /// The write connection, opened anew first if the server dropped it.
    pub(super) fn connection(&self) -> MutexGuard<'_, Conn> {
        let mut conn = lock(&self.conn);
        if let Some(reopen) = &self.reopen
            && conn.is_broken()
        {
            reconnect(&mut conn, reopen);
        }
        conn
    }

    /// Opens a write transaction. When the server dropped the connection
    /// (it says so only when used), nothing ran yet: a new connection
    /// takes over and the transaction opens there, so no write fails.
    pub(super) fn begin(&self, conn: &mut Conn) -> Result<(), StorageError> {
        match conn.begin_write() {
            Err(_) if conn.is_broken() && self.reopen.is_some() => {
                if let Some(reopen) = &self.reopen {
                    reconnect(conn, reopen);
                }
                conn.begin_write()
            }
            other => other,
        }
    }

    /// Queues a write. `true`: no task is draining the queue, and the
    /// caller must start one ([`Writer::drain`]); the queue now counts it
    /// as started.
    pub(super) fn push(&self, job: Box<dyn Job>) -> bool {
        let mut queue = lock(&self.queue);
        queue.jobs.push(job);
        !std::mem::replace(&mut queue.draining, true)
    }

    /// Runs every queued write, in batches, on the write connection, until
    /// the queue is empty; a write queued meanwhile joins a later batch of
    /// the same call. Started by the write that found no drain running.
    pub(super) fn drain(&self) {
        let mut conn = self.connection();
        let unwinding = Unwinding(self);
        loop {
            let batch: Vec<Box<dyn Job>> = {
                let mut queue = lock(&self.queue);
                if queue.jobs.is_empty() {
                    // Under the queue's lock: the next write starts a drain.
                    queue.draining = false;
                    std::mem::forget(unwinding);
                    return;
                }
                let n = queue.jobs.len().min(MAX_BATCH);
                queue.jobs.drain(..n).collect()
            };
            if let Some(reopen) = &self.reopen
                && conn.is_broken()
            {
                reconnect(&mut conn, reopen);
            }
            if run_batch(&mut conn, batch, |c| self.begin(c)) {
                self.commits.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// Starts the thread that copies the write-ahead log into the database
    /// file (a passive checkpoint: it never waits for a lock, and writers
    /// and readers never wait for it) every `every` when something was
    /// committed since, on a connection of its own, so that the writes
    /// waiting for the write connection do not wait for that copy and its
    /// `fsync`. It ends when the writer is dropped.
    pub(super) fn start_checkpoints(&self, conn: rusqlite::Connection, every: Duration) {
        let commits = self.commits.clone();
        let (stop, stopped) = mpsc::channel::<()>();
        let spawned = std::thread::Builder::new()
            .name("derp-checkpoint".to_string())
            .spawn(move || {
                let mut seen = 0;
                while let Err(mpsc::RecvTimeoutError::Timeout) = stopped.recv_timeout(every) {
                    let now = commits.load(Ordering::Relaxed);
                    if now == seen {
                        continue;
                    }
                    seen = now;
                    if let Err(e) = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", (), |_| Ok(()))
                    {
                        tracing::debug!(error = %e, "passive checkpoint failed");
                    }
                }
            });
        match spawned {
            Ok(handle) => *lock(&self.checkpoints) = Some((stop, handle)),
            Err(e) => tracing::warn!(
                error = %e,
                "cannot start the checkpoint thread: the write connection checkpoints alone"
            ),
        }
    }
}

/// Replaces a dropped write connection; when the server cannot be reached
/// yet, the writes fail (their callers get the error) and the next ones try
/// again.
fn reconnect(conn: &mut Conn, reopen: &Reopen) {
    match reopen() {
        Ok(fresh) => {
            tracing::info!("the database dropped the write connection: reconnected");
            *conn = fresh;
        }
        Err(e) => {
            tracing::warn!(error = %e, "the database dropped the write connection; cannot reconnect yet")
        }
    }
}

/// Armed while a drain runs: should it panic outside any write (each write
/// catches its own), the writes still queued are dropped, so their callers
/// get an error instead of waiting forever, and the next write starts a
/// new drain.
struct Unwinding<'a>(&'a Writer);

impl Drop for Unwinding<'_> {
    fn drop(&mut self) {
        let mut queue = lock(&self.0.queue);
        queue.jobs.clear();
        queue.draining = false;
    }
}

/// One transaction for a batch of writes; see [`Db`].
fn run_batch(
    conn: &mut Conn,
    jobs: Vec<Box<dyn Job>>,
    begin: impl Fn(&mut Conn) -> Result<(), StorageError>,
) -> bool {
    let mut jobs = jobs.into_iter();
    let mut done: Vec<Answer> = Vec::new();
    if !conn.is_autocommit() {
        // Left open by a panic outside any write: nothing in it was answered.
        let _ = conn.execute_batch("ROLLBACK");
    }
    'transaction: loop {
        if let Err(e) = begin(conn) {
            let why = format!("cannot start a write transaction: {e}");
            for job in jobs.by_ref() {
                job.fail(&why);
            }
            break 'transaction false;
        }
        for job in jobs.by_ref() {
            if let Err(e) = conn.exec("SAVEPOINT write", ()) {
                job.fail(&format!("cannot start a savepoint: {e}"));
                continue;
            }
            webhooks::begin_write();
            let ran = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| job.run(conn)));
            if conn.is_autocommit() {
                // SQLite ended the whole transaction (an I/O error, a full
                // disk): the writes before this one are lost with it.
                let why = "the write transaction was rolled back";
                for answer in done.drain(..) {
                    answer(Some(why));
                }
                if let Ok(Ran::Done(answer)) = ran {
                    answer(Some(why));
                }
                sessions::settle();
                webhooks::settle(false);
                continue 'transaction;
            }
            match ran {
                // It went on after a failed statement (PostgreSQL): nothing
                // it did stands, so it is answered as failed, alone.
                Ok(Ran::Done(answer)) if conn.is_aborted() => {
                    if let Err(e) = conn
                        .exec("ROLLBACK TO write", ())
                        .and_then(|_| conn.exec("RELEASE write", ()))
                    {
                        tracing::error!(error = %e, "cannot roll back a savepoint");
                    }
                    answer(Some("a statement failed inside the write"));
                }
                Ok(Ran::Done(answer)) => {
                    done.push(answer);
                    if let Err(e) = conn.exec("RELEASE write", ()) {
                        tracing::error!(error = %e, "cannot release a savepoint");
                    }
                }
                // Failed, or panicked (its caller sees the reply dropped).
                Ok(Ran::Failed) | Err(_) => {
                    if let Err(e) = conn
                        .exec("ROLLBACK TO write", ())
                        .and_then(|_| conn.exec("RELEASE write", ()))
                    {
                        tracing::error!(error = %e, "cannot roll back a savepoint");
                    }
                }
            }
        }
        let committed = conn.exec("COMMIT", ());
        if committed.is_err() && !conn.is_autocommit() {
            let _ = conn.execute_batch("ROLLBACK");
        }
        // Committed or rolled back: other connections now see the change.
        sessions::settle();
        webhooks::settle(committed.is_ok());
        let ok = committed.is_ok();
        let why = committed.err().map(|e| format!("cannot commit: {e}"));
        for answer in done.drain(..) {
            answer(why.as_deref());
        }
        break 'transaction ok;
    }
}
