//! What one derp instance learns of the others' writes, on PostgreSQL.
//!
//! A process keeps two things about the database in memory: the session
//! epoch that the `/session` cache trusts ([`super::sessions::epoch`]) and
//! the signing keys. On SQLite, every writer is in this process and moves
//! the epoch itself. On PostgreSQL, another instance may revoke a session
//! or rotate keys: each change sends a notification (`NOTIFY`, delivered at
//! commit, dropped with a rollback), and a thread of each instance listens
//! on a connection of its own. A session change moves the epoch; a key
//! change calls back the keyring. While the listening connection is down,
//! the epoch moves every [`WHILE_DEAF`], so the cache keeps nothing longer
//! than that; when it is back, the epoch moves once more and the keys are
//! reloaded.

use super::{Conn, Engine, StorageResult};
use postgres::fallible_iterator::FallibleIterator as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// Sessions were revoked, or an active org, user or org changed.
pub(super) const SESSIONS: &str = "derp_sessions";
/// A signing key was added or retired.
pub(super) const KEYS: &str = "derp_keys";

/// How often the epoch moves while the listener is not connected.
const WHILE_DEAF: Duration = Duration::from_millis(200);

/// Tells the other instances, at commit, that `channel` changed. Nothing on
/// SQLite: the process is the only writer.
pub(super) fn notify(conn: &Conn, channel: &str) -> StorageResult<()> {
    if conn.engine() == Engine::Postgres {
        conn.execute_batch(&format!("NOTIFY {channel}"))?;
    }
    Ok(())
}

/// Stops the listening thread when the last clone of the database handle
/// is dropped.
pub(super) struct Listener {
    stop: Arc<AtomicBool>,
}

impl Drop for Listener {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

/// Starts listening with `config`; `on_keys` runs (on the listening
/// thread) when another instance changed the signing keys, and after each
/// reconnection.
pub(super) fn listen(
    config: postgres::Config,
    on_keys: Box<dyn Fn() + Send + Sync>,
) -> std::io::Result<Listener> {
    let stop = Arc::new(AtomicBool::new(false));
    let stopped = stop.clone();
    std::thread::Builder::new()
        .name("derp-pg-listen".into())
        .spawn(move || run(&config, &*on_keys, &stopped))?;
    Ok(Listener { stop })
}

fn run(config: &postgres::Config, on_keys: &(dyn Fn() + Send + Sync), stop: &AtomicBool) {
    let mut was_connected = true;
    while !stop.load(Ordering::SeqCst) {
        let connected = config.connect(postgres::NoTls).and_then(|mut client| {
            client.batch_execute(&format!("LISTEN {SESSIONS}; LISTEN {KEYS}"))?;
            Ok(client)
        });
        let mut client = match connected {
            Ok(client) => client,
            Err(e) => {
                if was_connected {
                    tracing::warn!(error = %super::sql::describe(&e), "cannot listen for other instances' changes; retrying");
                    was_connected = false;
                }
                super::sessions::changed_elsewhere();
                std::thread::sleep(WHILE_DEAF);
                continue;
            }
        };
        if !was_connected {
            tracing::info!("listening for other instances' changes again");
        }
        was_connected = true;
        // Whatever changed while nobody listened.
        super::sessions::changed_elsewhere();
        on_keys();
        while !stop.load(Ordering::SeqCst) {
            // Each notification acts at once; the timeout only lets the
            // loop look at `stop` and at the connection.
            let mut lost = false;
            {
                let mut notifications = client.notifications();
                let mut waiting = notifications.timeout_iter(Duration::from_millis(500));
                while !stop.load(Ordering::SeqCst) {
                    match waiting.next() {
                        Ok(Some(n)) if n.channel() == KEYS => on_keys(),
                        Ok(Some(_)) => super::sessions::changed_elsewhere(),
                        Ok(None) => break,
                        Err(_) => {
                            lost = true;
                            break;
                        }
                    }
                }
            }
            if lost || client.is_closed() {
                super::sessions::changed_elsewhere();
                break;
            }
        }
    }
}
