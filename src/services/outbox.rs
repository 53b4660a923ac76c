//! The background sender: delivers queued mail from the outbox with retries
//! and exponential backoff, and survives restarts.
//!
//! Each message is claimed (status `sending`, attempt counted) in one
//! transaction before it is sent, and marked `sent`, re-queued or `failed`
//! after. A crash between the send and the mark leaves it `sending`; at the
//! next start it is queued again. Auth mail is better delivered twice than
//! lost, and the Message-ID stays the same, so a duplicate is recognisable.
//!
//! Messages are claimed one at a time, so that when the server stops
//! ([`SenderHandle::stop`]) only the message being sent is in flight: the
//! sender finishes it and claims no more; one still unsent when the grace
//! period ends goes back to `queued` rather than staying `sending`.

use crate::clock::Clock;
use crate::mail::{Mail, MailError, Mailer};
use crate::storage::outbox::{self, OutboxRow};
use crate::storage::{Db, StorageError};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{Notify, watch};

/// After this many attempts a temporary failure becomes permanent.
pub const MAX_ATTEMPTS: i64 = 10;

/// Seconds to wait after the `attempts`-th failed attempt: 30 s, 1 min, 2 min… capped at 1 h.
pub fn backoff_seconds(attempts: i64) -> i64 {
    let exp = attempts.clamp(1, 8) - 1;
    (30_i64 << exp).min(3600)
}

pub struct Sender {
    pub db: Db,
    pub mailer: Arc<dyn Mailer>,
    pub clock: Arc<dyn Clock>,
    pub waker: Arc<Notify>,
    /// How often queued mail is looked at when nothing wakes the sender.
    pub poll: Duration,
}

/// Most messages one call of [`Sender::deliver_due`] sends before it
/// returns (it is called again at once while there is more).
const BATCH: usize = 20;

/// Stops a running sender; see [`SenderHandle::stop`].
pub struct SenderHandle {
    stop: watch::Sender<bool>,
    task: tokio::sync::Mutex<Option<tokio::task::JoinHandle<()>>>,
    db: Db,
    clock: Arc<dyn Clock>,
}

impl SenderHandle {
    /// Lets the message being sent finish (for up to `grace`) and claims no
    /// more. A message still unsent after `grace` is abandoned and goes back
    /// to `queued` (sent again at the next start), never left `sending`.
    /// Calling it again does nothing.
    pub async fn stop(&self, grace: Duration) {
        self.stop.send_replace(true);
        let Some(mut task) = self.task.lock().await.take() else {
            return;
        };
        if tokio::time::timeout(grace, &mut task).await.is_err() {
            tracing::warn!(
                grace_seconds = grace.as_secs(),
                "outbox: a message was still being sent at shutdown; it stays queued"
            );
            task.abort();
            let _ = task.await;
        }
        requeue_interrupted(&self.db, self.clock.as_ref(), "shutdown").await;
    }
}

/// Puts mail left `sending` (by a stop past its grace, or a crash) back in
/// the queue, and says how much in the log.
async fn requeue_interrupted(db: &Db, clock: &dyn Clock, by: &'static str) {
    let now = clock.unix();
    match db.write(move |c| outbox::requeue_interrupted(c, now)).await {
        Ok(0) => {}
        Ok(n) => tracing::warn!(count = n, "outbox: re-queued mail interrupted by {by}"),
        Err(e) => tracing::error!(error = %e, "outbox: cannot re-queue interrupted mail"),
    }
}

impl Sender {
    pub fn spawn(self) -> SenderHandle {
        let (stop, stopped) = watch::channel(false);
        let db = self.db.clone();
        let clock = self.clock.clone();
        let task = tokio::spawn(async move { self.run(stopped).await });
        SenderHandle {
            stop,
            task: tokio::sync::Mutex::new(Some(task)),
            db,
            clock,
        }
    }

    async fn run(self, mut stopped: watch::Receiver<bool>) {
        requeue_interrupted(&self.db, self.clock.as_ref(), "a stop or a crash").await;
        while !*stopped.borrow() {
            match self.deliver_due_unless(Some(&stopped)).await {
                Ok(0) | Err(_) => {
                    tokio::select! {
                        _ = self.waker.notified() => {}
                        _ = tokio::time::sleep(self.poll) => {}
                        // An error: the handle was dropped with the application.
                        changed = stopped.changed() => if changed.is_err() { break },
                    }
                }
                Ok(_) => {}
            }
        }
        tracing::debug!("outbox: sender stopped");
    }

    /// Sends due messages, one claimed at a time, up to a batch; returns
    /// how many were claimed.
    pub async fn deliver_due(&self) -> Result<usize, StorageError> {
        self.deliver_due_unless(None).await
    }

    async fn deliver_due_unless(
        &self,
        stopped: Option<&watch::Receiver<bool>>,
    ) -> Result<usize, StorageError> {
        let mut count = 0;
        while count < BATCH && !stopped.is_some_and(|s| *s.borrow()) {
            let now = self.clock.unix();
            let claimed = self
                .db
                .write(move |c| outbox::claim_due(c, now, 1))
                .await
                .inspect_err(|e| {
                    tracing::error!(error = %e, "outbox: cannot claim mail");
                })?;
            let Some(row) = claimed.into_iter().next() else {
                break;
            };
            count += 1;
            self.deliver(row).await?;
        }
        Ok(count)
    }

    async fn deliver(&self, row: OutboxRow) -> Result<(), StorageError> {
        let mail = Mail {
            to: row.to_addr.clone(),
            subject: row.subject.clone(),
            text: row.text_body.clone(),
            html: row.html_body.clone(),
            kind: row.kind.clone(),
            message_id: Some(row.message_id.clone()),
        };
        let result = self.mailer.send(&mail).await;
        let now = self.clock.unix();
        let (id, attempts) = (row.id, row.attempts);
        match result {
            Ok(()) => {
                tracing::info!(outbox_id = id, kind = %row.kind, "mail delivered");
                self.db.write(move |c| outbox::mark_sent(c, id, now)).await
            }
            Err(MailError::Temporary(e)) if attempts < MAX_ATTEMPTS => {
                let next = now + backoff_seconds(attempts);
                tracing::warn!(outbox_id = id, attempts, error = %e, "mail delivery failed; will retry");
                self.db
                    .write(move |c| outbox::mark_retry(c, id, next, &e))
                    .await
            }
            Err(e) => {
                let reason = match e {
                    MailError::Temporary(e) => format!("gave up after {attempts} attempts: {e}"),
                    MailError::Permanent(e) => e,
                };
                tracing::error!(outbox_id = id, error = %reason, "mail delivery failed for good");
                self.db
                    .write(move |c| outbox::mark_failed(c, id, &reason))
                    .await
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::backoff_seconds;

    #[test]
    fn backoff_doubles_and_caps() {
        assert_eq!(backoff_seconds(1), 30);
        assert_eq!(backoff_seconds(2), 60);
        assert_eq!(backoff_seconds(3), 120);
        assert_eq!(backoff_seconds(8), 3600);
        assert_eq!(backoff_seconds(20), 3600);
    }
}
