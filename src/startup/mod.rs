//! Builds the application from a configuration, step by step: bind the
//! listener (port 0 works, so tests start the real server in-process), set
//! up mail (`mail.rs`), open the database and keys (`stores.rs`), pick the
//! backend (`backends.rs`), wire the services into the state
//! (`services.rs`), start the background tasks (`tasks.rs`) and the HTTP
//! server. [`reload`] applies a changed file to the running application.

mod backends;
mod mail;
mod reload;
mod services;
mod stores;
mod tasks;

pub use reload::{ReloadReport, reload};

use crate::auth::lockout::LockoutPolicy;
use crate::auth::password::Hasher;
use crate::clock::{Clock, SystemClock};
use crate::config::Config;
use crate::domain::OrgRoles;
use crate::domain::redirect::AllowedUrls;
use crate::mail::Mailer;
use crate::state::AppState;
use backends::Shared;
use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;
use tasks::Shutdown;

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("configuration: {0}")]
    Config(String),
    #[error("database: {0}")]
    Storage(String),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: String,
        source: std::io::Error,
    },
    #[error("{0}")]
    Other(String),
}

/// Replaceable parts, for tests.
#[derive(Default)]
pub struct Overrides {
    pub clock: Option<Arc<dyn Clock>>,
    pub mailer: Option<Arc<dyn Mailer>>,
    pub hasher: Option<Hasher>,
    pub workers: Option<usize>,
    /// How often the mail sender looks for due mail [5 s].
    pub outbox_poll: Option<Duration>,
    /// Milliseconds in one second of the webhook retry schedule \[1000\];
    /// `derp serve` reads `DERP_WEBHOOK_RETRY_UNIT_MS`.
    pub webhook_retry_unit_ms: Option<i64>,
}

pub struct Application {
    port: u16,
    server: crate::http::server::Server,
    state: AppState,
    shutdown: Arc<Shutdown>,
}

/// Stops a running application: the HTTP server (finishing in-flight
/// requests) and then its background tasks.
#[derive(Clone)]
pub struct AppHandle {
    server: crate::http::server::ServerHandle,
    shutdown: Arc<Shutdown>,
}

impl AppHandle {
    pub async fn stop(&self) {
        self.server.stop(true).await;
        self.shutdown.finish().await;
    }
}

impl Application {
    pub async fn build(mut config: Config, overrides: Overrides) -> Result<Self, StartError> {
        let (listener, port) = listen(&mut config)?;
        let clock = overrides
            .clock
            .clone()
            .unwrap_or_else(|| Arc::new(SystemClock));
        let mail = mail::Mail::new(&config, overrides.mailer.clone())?;
        let stores = stores::Stores::open(&config, clock.unix()).await?;
        let shared = Shared {
            clock,
            allowed: AllowedUrls::new(&config.public_url(), &config.hosted.allowed_redirect_urls),
            mail: mail.queue.clone(),
            lockout: Arc::new(LockoutPolicy::new(&config.rate_limit)),
            org_roles: OrgRoles::new(&config.orgs.roles),
        };
        let hasher = overrides.hasher.clone().unwrap_or_default();
        let state = services::app_state(config, &stores, &mail, hasher, shared).await?;
        let shutdown = tasks::start(
            &state,
            stores.keys,
            stores.alg,
            stores.secrets,
            mail.waker,
            &overrides,
        )?;
        let server = serve(state.clone(), listener, overrides.workers)?;
        Ok(Self {
            port,
            server,
            state,
            shutdown: Arc::new(shutdown),
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn handle(&self) -> AppHandle {
        AppHandle {
            server: self.server.handle(),
            shutdown: self.shutdown.clone(),
        }
    }

    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Serves until the server is stopped (SIGTERM: in-flight requests are
    /// finished, for up to 10 s), then stops the background work.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let result = self.server.await;
        self.shutdown.finish().await;
        result
    }
}

/// Binds `[server] bind`. Port 0 resolves now: without a configured
/// `public_url`, links and the issuer name the real port.
fn listen(config: &mut Config) -> Result<(TcpListener, u16), StartError> {
    let addr = config
        .bind_addr()
        .map_err(|e| StartError::Config(e.to_string()))?;
    let listener = TcpListener::bind(addr).map_err(|source| StartError::Bind {
        addr: addr.to_string(),
        source,
    })?;
    let port = listener
        .local_addr()
        .map_err(|e| StartError::Other(e.to_string()))?
        .port();
    if config.server.public_url.is_none() {
        config.server.public_url = Some(format!("http://{}:{port}", addr.ip()));
    }
    Ok((listener, port))
}

/// Starts the HTTP server on `listener` with one worker per core (or `workers`).
fn serve(
    state: AppState,
    listener: TcpListener,
    workers: Option<usize>,
) -> Result<crate::http::server::Server, StartError> {
    let workers =
        workers.unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get()));
    crate::http::server::start(state, listener, workers)
        .map_err(|e| StartError::Other(e.to_string()))
}
