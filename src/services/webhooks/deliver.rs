//! The webhook deliverer: sends each endpoint's queue in order, one request
//! at a time per endpoint, endpoints side by side.
//!
//! A dispatcher looks at the head (oldest open delivery) of every endpoint's
//! queue and starts a worker for each endpoint whose head is due and that
//! has none running. The worker claims the head (status `sending`, attempt
//! counted, committed before the request), sends it signed, records the
//! answer, and goes on while the next head is due. A failure (no 2xx within
//! 10 s) keeps the delivery at the head until its retry: later events of
//! that endpoint wait behind it, so the receiver sees them in order; other
//! endpoints are not held up. After three days a delivery is given up and
//! the endpoint marked failing; the next events go on being tried.
//!
//! A crash between the request and its record leaves the delivery
//! `sending`; at the next start it is sent again with the same
//! `webhook-id`: delivery is at least once, never lost.

use super::open_secret;
use crate::auth::sealer::Sealer;
use crate::clock::Clock;
use crate::domain::webhook::{ATTEMPT_TIMEOUT_SECONDS, GIVE_UP_AFTER, retry_delay};
use crate::storage::webhooks::{self as store, Attempt, Claimed, EVENTS_WRITTEN};
use crate::storage::{Db, StorageError};
use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::JoinSet;

/// The most of a receiver's answer kept for the console.
const EXCERPT_CHARS: usize = 512;

#[derive(Clone)]
pub struct Deliverer {
    pub db: Db,
    pub clock: Arc<dyn Clock>,
    pub sealer: Sealer,
    pub client: reqwest::Client,
    /// Milliseconds in one second of the retry schedule (1000; tests and
    /// drills shorten it to run three days of retries in minutes).
    pub retry_unit_ms: i64,
    /// How often the queue is looked at when nothing wakes the dispatcher.
    pub poll: Duration,
}

/// Stops a running deliverer; see [`DelivererHandle::stop`].
pub struct DelivererHandle {
    stop: watch::Sender<bool>,
    task: tokio::sync::Mutex<Option<tokio::task::JoinHandle<()>>>,
    db: Db,
    clock: Arc<dyn Clock>,
}

impl DelivererHandle {
    /// Lets requests in flight finish (for up to `grace`) and starts no
    /// more; a delivery still unanswered after that goes back to `pending`.
    pub async fn stop(&self, grace: Duration) {
        self.stop.send_replace(true);
        let Some(mut task) = self.task.lock().await.take() else {
            return;
        };
        if tokio::time::timeout(grace, &mut task).await.is_err() {
            task.abort();
            let _ = task.await;
        }
        let now = self.clock.unix_ms();
        if let Err(e) = self
            .db
            .write(move |c| store::requeue_interrupted(c, now))
            .await
        {
            tracing::error!(error = %e, "webhooks: cannot re-queue interrupted deliveries");
        }
    }
}

/// The HTTP client for deliveries: rustls, no redirects (a 3xx is an
/// answer, not a success), 10 s per attempt.
pub fn client() -> Result<reqwest::Client, String> {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(ATTEMPT_TIMEOUT_SECONDS))
        .connect_timeout(Duration::from_secs(ATTEMPT_TIMEOUT_SECONDS))
        .user_agent(concat!("derp-webhooks/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| format!("webhook client: {e}"))
}

impl Deliverer {
    pub fn spawn(self) -> DelivererHandle {
        let (stop, stopped) = watch::channel(false);
        let (db, clock) = (self.db.clone(), self.clock.clone());
        let task = tokio::spawn(async move { self.run(stopped).await });
        DelivererHandle {
            stop,
            task: tokio::sync::Mutex::new(Some(task)),
            db,
            clock,
        }
    }

    async fn run(self, mut stopped: watch::Receiver<bool>) {
        let now = self.clock.unix_ms();
        match self
            .db
            .write(move |c| store::requeue_interrupted(c, now))
            .await
        {
            Ok(0) => {}
            Ok(n) => tracing::warn!(
                count = n,
                "webhooks: re-queued deliveries interrupted while sending"
            ),
            Err(e) => {
                tracing::error!(error = %e, "webhooks: cannot re-queue interrupted deliveries")
            }
        }
        let mut running: HashSet<String> = HashSet::new();
        let mut workers: JoinSet<String> = JoinSet::new();
        while !*stopped.borrow() {
            let woken = EVENTS_WRITTEN.notified();
            tokio::pin!(woken);
            woken.as_mut().enable();
            let heads = match self.db.read(store::heads).await {
                Ok(h) => h,
                Err(e) => {
                    tracing::error!(error = %e, "webhooks: cannot read the queue");
                    Vec::new()
                }
            };
            let now = self.clock.unix_ms();
            let mut wait_ms = i64::try_from(self.poll.as_millis()).unwrap_or(i64::MAX);
            for (endpoint, due) in heads {
                if running.contains(&endpoint) {
                    continue;
                }
                if due <= now {
                    running.insert(endpoint.clone());
                    let me = self.clone();
                    let stopped = stopped.clone();
                    workers.spawn(async move {
                        me.work(&endpoint, &stopped).await;
                        endpoint
                    });
                } else {
                    wait_ms = wait_ms.min(due - now);
                }
            }
            let wait = Duration::from_millis(u64::try_from(wait_ms.max(1)).unwrap_or(1));
            tokio::select! {
                _ = &mut woken => {}
                _ = tokio::time::sleep(wait) => {}
                Some(done) = workers.join_next(), if !workers.is_empty() => {
                    if let Ok(endpoint) = done {
                        running.remove(&endpoint);
                    } else {
                        // A worker that panicked: forget every finished one.
                        running.clear();
                    }
                }
                changed = stopped.changed() => if changed.is_err() { break },
            }
        }
        // Let the requests in flight finish; `stop` bounds the wait.
        while workers.join_next().await.is_some() {}
        tracing::debug!("webhooks: deliverer stopped");
    }

    /// Sends the endpoint's due deliveries in order until none is due.
    async fn work(&self, endpoint: &str, stopped: &watch::Receiver<bool>) {
        while !*stopped.borrow() {
            let now = self.clock.unix_ms();
            let id = endpoint.to_string();
            let claimed = match self.db.write(move |c| store::claim_head(c, &id, now)).await {
                Ok(Some(c)) => c,
                Ok(None) => return,
                Err(e) => {
                    tracing::error!(error = %e, "webhooks: cannot claim a delivery");
                    return;
                }
            };
            if let Err(e) = self.attempt(claimed).await {
                tracing::error!(error = %e, "webhooks: cannot record a delivery");
                return;
            }
        }
    }

    async fn attempt(&self, c: Claimed) -> Result<(), StorageError> {
        let outcome = self.send(&c).await;
        let now = self.clock.unix_ms();
        let ok = outcome.status.is_some_and(|s| (200..300).contains(&s));
        if ok {
            tracing::debug!(delivery = c.delivery_id, "webhook delivered");
            return self
                .db
                .write(move |conn| store::mark_delivered(conn, &c, &outcome, now))
                .await;
        }
        let unit = self.retry_unit_ms.max(1);
        let give_up = now.saturating_sub(c.created_ms) >= GIVE_UP_AFTER.saturating_mul(unit);
        let retry_at = (!give_up).then(|| now + retry_delay(c.attempts).saturating_mul(unit));
        tracing::warn!(
            delivery = c.delivery_id,
            endpoint = %c.endpoint_id,
            attempts = c.attempts,
            status = ?outcome.status,
            error = ?outcome.error,
            given_up = give_up,
            "webhook delivery failed"
        );
        self.db
            .write(move |conn| store::mark_failed_attempt(conn, &c, &outcome, retry_at, now))
            .await
    }

    /// One signed POST; what came back.
    async fn send(&self, c: &Claimed) -> Attempt {
        let secret = match open_secret(&self.sealer, &c.endpoint_id, &c.secret_sealed) {
            Ok(s) => s,
            Err(e) => {
                return Attempt {
                    error: Some(format!("the endpoint's secret does not open: {e}")),
                    ..Default::default()
                };
            }
        };
        let timestamp = self.clock.unix();
        let signature = secret.sign(&c.msg_id, timestamp, &c.payload);
        let request = self
            .client
            .post(&c.url)
            .header("content-type", "application/json")
            .header("webhook-id", &c.msg_id)
            .header("webhook-timestamp", timestamp.to_string())
            .header("webhook-signature", signature)
            .body(c.payload.clone());
        let mut response = match request.send().await {
            Ok(r) => r,
            Err(e) => {
                return Attempt {
                    error: Some(describe(&e)),
                    ..Default::default()
                };
            }
        };
        let status = response.status().as_u16();
        let mut body = Vec::new();
        let mut error = None;
        loop {
            match response.chunk().await {
                Ok(Some(chunk)) => {
                    body.extend_from_slice(&chunk);
                    if body.len() >= EXCERPT_CHARS * 4 {
                        break;
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    error = Some(describe(&e));
                    break;
                }
            }
        }
        let excerpt: String = String::from_utf8_lossy(&body)
            .chars()
            .take(EXCERPT_CHARS)
            .collect();
        if !(200..300).contains(&status) && error.is_none() {
            error = Some(format!("the receiver answered {status}"));
        }
        Attempt {
            status: Some(status),
            excerpt: (!excerpt.is_empty()).then_some(excerpt),
            error,
        }
    }
}

fn describe(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        format!("no answer within {ATTEMPT_TIMEOUT_SECONDS} s")
    } else if e.is_connect() {
        "cannot connect".to_string()
    } else {
        format!("request failed: {e}")
    }
}
