//! The write connection of [`Db`](super::Db) and its queue: group commit,
//! each write in a savepoint of its own, answers only after the commit.

use super::{Conn, ExecCached as _, StorageError, lock, sessions, webhooks};
use std::sync::Mutex;

/// The write connection and the writes waiting for it.
pub(super) struct Writer {
    pub(super) conn: Mutex<Conn>,
    queue: Mutex<Queue>,
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

impl Writer {
    pub(super) fn new(conn: Conn) -> Self {
        Self {
            conn: Mutex::new(conn),
            queue: Mutex::new(Queue::default()),
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
        let conn = lock(&self.conn);
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
            run_batch(&conn, batch);
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
fn run_batch(conn: &Conn, jobs: Vec<Box<dyn Job>>) {
    let mut jobs = jobs.into_iter();
    let mut done: Vec<Answer> = Vec::new();
    if !conn.is_autocommit() {
        // Left open by a panic outside any write: nothing in it was answered.
        let _ = conn.execute_batch("ROLLBACK");
    }
    'transaction: loop {
        if let Err(e) = conn.exec("BEGIN IMMEDIATE", []) {
            let why = format!("cannot start a write transaction: {e}");
            for job in jobs.by_ref() {
                job.fail(&why);
            }
            break 'transaction;
        }
        for job in jobs.by_ref() {
            if let Err(e) = conn.exec("SAVEPOINT write", []) {
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
                Ok(Ran::Done(answer)) => {
                    done.push(answer);
                    if let Err(e) = conn.exec("RELEASE write", []) {
                        tracing::error!(error = %e, "cannot release a savepoint");
                    }
                }
                // Failed, or panicked (its caller sees the reply dropped).
                Ok(Ran::Failed) | Err(_) => {
                    if let Err(e) = conn
                        .exec("ROLLBACK TO write", [])
                        .and_then(|_| conn.exec("RELEASE write", []))
                    {
                        tracing::error!(error = %e, "cannot roll back a savepoint");
                    }
                }
            }
        }
        let committed = conn.exec("COMMIT", []);
        if committed.is_err() && !conn.is_autocommit() {
            let _ = conn.execute_batch("ROLLBACK");
        }
        // Committed or rolled back: other connections now see the change.
        sessions::settle();
        webhooks::settle(committed.is_ok());
        let why = committed.err().map(|e| format!("cannot commit: {e}"));
        for answer in done.drain(..) {
            answer(why.as_deref());
        }
        break 'transaction;
    }
}
