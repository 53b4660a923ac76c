//! Background work beside the HTTP server: the mail sender, the webhook
//! deliverer and the minute's housekeeping, and how they stop.

use super::{Overrides, StartError};
use crate::auth::jwt::Keyring;
use crate::clock::Clock;
use crate::config::JwtAlgorithm;
use crate::error::AuthError;
use crate::services::outbox::{Sender, SenderHandle};
use crate::services::rate_limit::RateLimits;
use crate::services::webhooks::deliver::{Deliverer, DelivererHandle};
use crate::state::AppState;
use crate::storage::Db;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;

/// How long the mail sender may take to finish the message it is sending
/// once the HTTP server has stopped.
const MAIL_GRACE: Duration = Duration::from_secs(10);

/// What runs after the HTTP server has stopped (SIGTERM, SIGINT, or
/// [`AppHandle::stop`]): the mail sender finishes its message, housekeeping
/// ends, the write-ahead log is checkpointed into the database file.
pub(super) struct Shutdown {
    sender: SenderHandle,
    deliverer: DelivererHandle,
    housekeeping: tokio::task::AbortHandle,
    db: Db,
    done: tokio::sync::Mutex<bool>,
}

impl Shutdown {
    pub(super) async fn finish(&self) {
        let mut done = self.done.lock().await;
        if *done {
            return;
        }
        // Both finish what they are sending, side by side.
        tokio::join!(
            self.sender.stop(MAIL_GRACE),
            self.deliverer.stop(MAIL_GRACE)
        );
        self.housekeeping.abort();
        match self.db.read(crate::storage::metrics::checkpoint).await {
            Ok(true) => tracing::debug!("database checkpointed"),
            Ok(false) => tracing::warn!("database checkpoint incomplete: the database was busy"),
            Err(e) => tracing::error!(error = %e, "database checkpoint failed"),
        }
        *done = true;
        tracing::info!("derp stopped");
    }
}

/// Starts the mail sender, the webhook deliverer and the housekeeping.
pub(super) fn start(
    state: &AppState,
    keys: Keyring,
    alg: JwtAlgorithm,
    sealer: crate::auth::sealer::Sealer,
    waker: Arc<Notify>,
    overrides: &Overrides,
) -> Result<Shutdown, StartError> {
    let db = state.db.clone();
    let sender = Sender {
        db: db.clone(),
        mailer: state.mailer.clone(),
        clock: state.clock.clone(),
        waker,
        poll: overrides.outbox_poll.unwrap_or(Duration::from_secs(5)),
    }
    .spawn();
    let deliverer = Deliverer {
        db: db.clone(),
        clock: state.clock.clone(),
        sealer,
        client: crate::services::webhooks::deliver::client().map_err(StartError::Other)?,
        retry_unit_ms: overrides.webhook_retry_unit_ms.unwrap_or(1000),
        poll: Duration::from_secs(1),
    }
    .spawn();
    // PostgreSQL: other instances' revocations and key changes (nothing
    // to hear on SQLite).
    let keys_changed = Arc::new(Notify::new());
    let ping = keys_changed.clone();
    db.listen(Box::new(move || ping.notify_one()))
        .map_err(|e| StartError::Storage(e.to_string()))?;
    let housekeeping = spawn_housekeeping(
        db.clone(),
        keys,
        state.limits.clone(),
        state.clock.clone(),
        alg,
        keys_changed,
    );
    Ok(Shutdown {
        sender,
        deliverer,
        housekeeping,
        db,
        done: tokio::sync::Mutex::new(false),
    })
}

/// Every minute: reload signing keys (picks up `derp keys rotate`), prune
/// rate-limit state and purge spent one-time tokens and expired mfa tokens.
/// On PostgreSQL, also reload the keys as soon as another instance (or the
/// command line) changed them (`keys_changed`).
fn spawn_housekeeping(
    db: Db,
    keys: Keyring,
    limits: Arc<RateLimits>,
    clock: Arc<dyn Clock>,
    alg: JwtAlgorithm,
    keys_changed: Arc<Notify>,
) -> tokio::task::AbortHandle {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(60));
        tick.tick().await;
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                () = keys_changed.notified() => {
                    if alg != JwtAlgorithm::HS256 {
                        let keys = keys.clone();
                        let now = clock.unix();
                        let reloaded = db
                            .read(move |conn| -> Result<(), AuthError> { keys.reload(conn, now) })
                            .await;
                        if let Err(e) = reloaded {
                            tracing::warn!(error = ?e, "reloading the signing keys failed");
                        }
                    }
                    continue;
                }
            }
            limits.prune();
            let now = clock.unix();
            let keys = keys.clone();
            let result = db
                .write(move |conn| -> Result<(), AuthError> {
                    if alg != JwtAlgorithm::HS256 {
                        keys.reload(conn, now)?;
                    }
                    crate::storage::tokens::purge(conn, now - 86_400)?;
                    crate::storage::web_sessions::purge(conn, now)?;
                    crate::storage::mfa::prune_challenges(conn, now - 3600)?;
                    crate::storage::mfa::prune_passkey_flows(conn, now - 3600)?;
                    crate::storage::webhooks::purge_finished(
                        conn,
                        (now - crate::storage::webhooks::KEEP_FINISHED_SECONDS) * 1000,
                    )?;
                    Ok(())
                })
                .await;
            if let Err(e) = result {
                tracing::warn!(error = ?e, "housekeeping failed");
            }
        }
    })
    .abort_handle()
}
