//! Builds the application from a configuration: opens the database, loads
//! the signing keys, picks the backend, binds the listener (port 0 works, so
//! tests start the real server in-process) and starts background tasks.

use crate::auth::AuthBackend;
use crate::auth::directory::UserDirectory;
use crate::auth::jwt::{Keyring, KeyringSettings};
use crate::auth::native::{Links, NativeBackend, NativeParts};
use crate::auth::password::Hasher;
use crate::clock::{Clock, SystemClock};
use crate::config::{BackendKind, Config, JwtAlgorithm, parse_proxy};
use crate::domain::redirect::AllowedUrls;
use crate::error::AuthError;
use crate::mail::queue::MailQueue;
use crate::mail::smtp::SmtpMailer;
use crate::mail::templates::{Site, Templates};
use crate::mail::{DevMailer, Mailer, SwappableMailer};
use crate::services::orgs::OrgService;
use crate::services::outbox::{Sender, SenderHandle};
use crate::services::rate_limit::RateLimits;
use crate::state::AppState;
use crate::storage::Db;
use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

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
    /// Milliseconds in one second of the webhook retry schedule [1000];
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

/// How long the mail sender may take to finish the message it is sending
/// once the HTTP server has stopped.
const MAIL_GRACE: Duration = Duration::from_secs(10);

/// What runs after the HTTP server has stopped (SIGTERM, SIGINT, or
/// [`AppHandle::stop`]): the mail sender finishes its message, housekeeping
/// ends, the write-ahead log is checkpointed into the database file.
struct Shutdown {
    sender: SenderHandle,
    deliverer: crate::services::webhooks::deliver::DelivererHandle,
    housekeeping: tokio::task::AbortHandle,
    db: Db,
    done: tokio::sync::Mutex<bool>,
}

impl Shutdown {
    async fn finish(&self) {
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

impl Application {
    pub async fn build(config: Config, overrides: Overrides) -> Result<Self, StartError> {
        let mut config = config;
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
            // Port 0 resolves now: links and the issuer name the real port.
            config.server.public_url = Some(format!("http://{}:{port}", addr.ip()));
        }
        let clock = overrides.clock.unwrap_or_else(|| Arc::new(SystemClock));
        let (mailer, swappable): (Arc<dyn Mailer>, Option<Arc<SwappableMailer>>) =
            match overrides.mailer {
                Some(m) => (m, None),
                None => {
                    let s = Arc::new(SwappableMailer::new(
                        mailer_for(config.email.as_ref()).map_err(StartError::Config)?,
                    ));
                    (s.clone(), Some(s))
                }
            };
        // One allow-list shared by everything that checks URLs, so a reload reaches all.
        let allowed = AllowedUrls::new(&config.public_url(), &config.hosted.allowed_redirect_urls);
        let templates = Arc::new(
            Templates::load(
                site(&config),
                config
                    .email
                    .as_ref()
                    .and_then(|e| e.templates_dir.as_deref()),
            )
            .map_err(StartError::Config)?,
        );
        let hasher = overrides.hasher.unwrap_or_default();
        let data_dir = config.server.data_dir.clone();
        let db = tokio::task::spawn_blocking(move || Db::open(&data_dir))
            .await
            .map_err(|e| StartError::Other(e.to_string()))?
            .map_err(|e| StartError::Storage(e.to_string()))?;
        let native = config.native();
        let alg = native.jwt.effective_algorithm();
        // `data_dir/secrets.key` seals TOTP secrets, private signing keys
        // and webhook secrets.
        let secrets = {
            let dir = config.server.data_dir.clone();
            tokio::task::spawn_blocking(move || crate::auth::sealer::Sealer::load_or_create(&dir))
                .await
                .map_err(|e| StartError::Other(e.to_string()))?
                .map_err(StartError::Storage)?
        };
        let key_sealer = (config.backend() == BackendKind::Native || alg != JwtAlgorithm::HS256)
            .then(|| secrets.clone());
        let issuer = config.issuer();
        let settings = KeyringSettings {
            alg,
            secret: native
                .jwt
                .secret
                .as_ref()
                .map(|s| s.expose().as_bytes().to_vec()),
            issuer: issuer.clone(),
            audience: native.jwt.audience.clone(),
            // Retired keys verify for as long as the longest token lives.
            access_ttl_seconds: (native.jwt.access_token_expire_minutes as i64 * 60)
                .max(client_access_ttl(&config)),
            sealer: key_sealer.clone(),
            extra_algs: config
                .oidc_provider
                .as_ref()
                .map(|p| p.id_token_algs())
                .unwrap_or_default(),
        };
        let now = clock.unix();
        let keys = db
            .write(move |conn| Keyring::load(conn, settings, now))
            .await
            .map_err(|e: AuthError| match e {
                AuthError::Internal(m) => StartError::Other(format!("signing keys: {m}")),
                other => StartError::Other(format!("signing keys: {other:?}")),
            })?;
        let waker = Arc::new(tokio::sync::Notify::new());
        let mail = MailQueue {
            templates,
            domain: message_domain(&config),
            waker: waker.clone(),
        };
        let org_roles = crate::domain::OrgRoles::new(&config.orgs.roles);
        let orgs = Arc::new(OrgService {
            db: db.clone(),
            clock: clock.clone(),
            mail: mail.clone(),
            public_url: config.public_url(),
            allowed: allowed.clone(),
            invitation_ttl: native.invitation_expire_days as i64 * 86_400,
            roles: org_roles.clone(),
        });
        let admin_hasher = hasher.clone();
        let admin_mail = mail.clone();
        let lockout = Arc::new(crate::auth::lockout::LockoutPolicy::new(&config.rate_limit));
        let sealer = match config.backend() {
            BackendKind::Native => key_sealer,
            _ => None,
        };
        let native_backend = sealer.map(|sealer| {
            Arc::new(NativeBackend::new(NativeParts {
                db: db.clone(),
                clock: clock.clone(),
                keys: keys.clone(),
                hasher,
                mail,
                cfg: native.clone(),
                links: Links {
                    allowed: allowed.clone(),
                    public_url: config.public_url(),
                },
                lockout: lockout.clone(),
                sealer,
                mfa_issuer_default: config.hosted.product_name.clone(),
                client_access_ttl: client_access_ttl(&config),
                org_roles: org_roles.clone(),
            }))
        });
        let oauth = match &native_backend {
            Some(_)
                if native.google_oauth.is_some()
                    || native.github_oauth.is_some()
                    || !native.oidc.is_empty() =>
            {
                Some(Arc::new(
                    crate::services::oauth::OAuthService::new(
                        &native,
                        &config.public_url(),
                        clock.clone(),
                    )
                    .map_err(|e| StartError::Config(format!("{e:?}")))?,
                ))
            }
            _ => None,
        };
        // `[auth]` with the org context secret, generated when absent.
        let org_auth = match (config.backend(), &config.auth.org_context_secret) {
            (BackendKind::Native, _) | (_, Some(_)) => config.auth.clone(),
            _ => {
                let mut auth = config.auth.clone();
                auth.org_context_secret = Some(kept_org_context_secret(&config.server.data_dir)?);
                auth
            }
        };
        let mut directory: Option<Arc<dyn UserDirectory>> = None;
        let cognito_backend = match config.backend() {
            BackendKind::Cognito => {
                use crate::auth::cognito::{CognitoBackend, CognitoParts};
                let cfg = config.auth.cognito.clone().unwrap_or_default();
                let org_context =
                    crate::auth::org_context::OrgContextSigner::from_config(&org_auth)
                        .map_err(StartError::Config)?
                        .with_roles(org_roles.clone());
                directory = Some(
                    crate::auth::cognito::directory::directory(&cfg, clock.clone())
                        .map_err(StartError::Config)?,
                );
                Some(Arc::new(
                    CognitoBackend::new(CognitoParts {
                        cfg,
                        db: db.clone(),
                        clock: clock.clone(),
                        org_context,
                        public_url: config.public_url(),
                    })
                    .map_err(StartError::Config)?,
                ))
            }
            _ => None,
        };
        let backend: Arc<dyn AuthBackend> = match config.backend() {
            BackendKind::Native => native_backend
                .clone()
                .ok_or_else(|| StartError::Other("native backend".into()))?,
            BackendKind::Cognito => cognito_backend
                .clone()
                .ok_or_else(|| StartError::Other("cognito backend".into()))?,
            BackendKind::Clerk => {
                let cfg = config.auth.clerk.clone().unwrap_or_default();
                let org_context =
                    crate::auth::org_context::OrgContextSigner::from_config(&org_auth)
                        .map_err(StartError::Config)?
                        .with_roles(org_roles.clone());
                let clerk = Arc::new(
                    crate::auth::clerk::ClerkBackend::new(
                        cfg,
                        clock.clone(),
                        db.clone(),
                        Some(org_context),
                    )
                    .map_err(StartError::Config)?,
                );
                directory = Some(clerk.clone());
                clerk
            }
        };
        let admin = Arc::new(crate::services::admin::AdminService {
            db: db.clone(),
            clock: clock.clone(),
            hasher: admin_hasher,
            policy: crate::domain::PasswordPolicy::new(native.password.clone()),
            directory,
            mail: Some(admin_mail),
            public_url: config.public_url(),
        });
        let cookie_key = db
            .write(move |conn| {
                crate::storage::settings::get_or_create(conn, "cookie_key", now, || {
                    let mut key = vec![0u8; 64];
                    rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut key);
                    key
                })
            })
            .await
            .map_err(|e| StartError::Storage(e.to_string()))?;
        let hosted = Arc::new(std::sync::RwLock::new(config.hosted.clone()));
        let trusted: Vec<ipnet::IpNet> = config
            .server
            .trusted_proxies
            .iter()
            .map(|p| parse_proxy(p))
            .collect::<Result<_, _>>()
            .map_err(|e| StartError::Config(e.to_string()))?;
        let limits = Arc::new(RateLimits::new(&config.rate_limit));
        let webhooks = Arc::new(crate::services::webhooks::WebhookService {
            db: db.clone(),
            clock: clock.clone(),
            sealer: secrets.clone(),
        });
        webhooks
            .sync_config(&config.webhooks)
            .await
            .map_err(|e| StartError::Storage(format!("webhook endpoints: {e:?}")))?;
        let accounts = Arc::new(crate::services::accounts::Accounts::new(
            backend.clone(),
            native_backend.clone(),
            limits.clone(),
        ));
        let oidc = match (&config.oidc_provider, &native_backend) {
            (Some(p), Some(native)) => Some(Arc::new(crate::services::oidc::OidcProvider::new(
                p.clone(),
                native.clone(),
                db.clone(),
                clock.clone(),
            ))),
            _ => None,
        };
        let state = AppState {
            oidc,
            config: Arc::new(config),
            backend,
            accounts,
            db: db.clone(),
            mailer,
            limits: limits.clone(),
            lockout,
            orgs,
            admin: admin.clone(),
            oauth,
            native: native_backend,
            cognito: cognito_backend,
            clock: clock.clone(),
            trusted_proxies: trusted.into(),
            issuer,
            algorithm: alg.as_str(),
            allowed: allowed.clone(),
            hosted,
            swappable_mailer: swappable,
            cookie_key: cookie_key.into(),
            metrics: Arc::new(crate::services::metrics::Metrics::new()),
            webhooks,
        };
        let sender = Sender {
            db: db.clone(),
            mailer: state.mailer.clone(),
            clock: clock.clone(),
            waker,
            poll: overrides.outbox_poll.unwrap_or(Duration::from_secs(5)),
        }
        .spawn();
        let deliverer = crate::services::webhooks::deliver::Deliverer {
            db: db.clone(),
            clock: clock.clone(),
            sealer: secrets,
            client: crate::services::webhooks::deliver::client().map_err(StartError::Other)?,
            retry_unit_ms: overrides.webhook_retry_unit_ms.unwrap_or(1000),
            poll: Duration::from_secs(1),
        }
        .spawn();
        let housekeeping = spawn_housekeeping(db.clone(), keys, limits, clock, alg);
        let workers = overrides
            .workers
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get()));
        let server = crate::http::server::start(state.clone(), listener, workers)
            .map_err(|e| StartError::Other(e.to_string()))?;
        Ok(Self {
            port,
            server,
            state,
            shutdown: Arc::new(Shutdown {
                sender,
                deliverer,
                housekeeping,
                db,
                done: tokio::sync::Mutex::new(false),
            }),
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

/// Site name and URL in mail: `[email]` when set, else the hosted branding.
fn site(config: &Config) -> Site {
    let public_url = config.public_url();
    match &config.email {
        Some(e) => Site {
            name: e.site_name.clone(),
            url: e.site_url.clone().unwrap_or(public_url),
            primary_color: config.hosted.primary_color.clone(),
            default_locale: config.hosted.default_locale.clone(),
        },
        None => Site {
            name: config.hosted.product_name.clone(),
            url: public_url,
            primary_color: config.hosted.primary_color.clone(),
            default_locale: config.hosted.default_locale.clone(),
        },
    }
}

/// The domain of Message-IDs: the sender's, else the public URL's host.
fn message_domain(config: &Config) -> String {
    let from = config.email.as_ref().and_then(|e| {
        e.from_email
            .rsplit_once('@')
            .map(|(_, d)| d.trim_end_matches('>').trim().to_string())
    });
    from.filter(|d| !d.is_empty())
        .or_else(|| {
            url::Url::parse(&config.public_url())
                .ok()
                .and_then(|u| u.host_str().map(str::to_string))
        })
        .unwrap_or_else(|| "derp.local".into())
}

/// Every minute: reload signing keys (picks up `derp keys rotate`), prune
/// rate-limit state and purge spent one-time tokens and expired mfa tokens.
fn spawn_housekeeping(
    db: Db,
    keys: Keyring,
    limits: Arc<RateLimits>,
    clock: Arc<dyn Clock>,
    alg: JwtAlgorithm,
) -> tokio::task::AbortHandle {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(60));
        tick.tick().await;
        loop {
            tick.tick().await;
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

/// SMTP when `[email]` is set, else the dev mailer.
fn mailer_for(email: Option<&crate::config::EmailConfig>) -> Result<Arc<dyn Mailer>, String> {
    Ok(match email {
        Some(e) => Arc::new(SmtpMailer::new(e)?),
        None => Arc::new(DevMailer::new()),
    })
}

/// The org context secret kept in `<data_dir>/org_context_secret` (0600),
/// made at the first start without `[auth] org_context_secret`: 32 random
/// bytes, hex. Like the signing keys, it lives with the data, so restarts
/// keep X-Org-Context values valid; instances that share users need the
/// same configured secret instead.
fn kept_org_context_secret(
    data_dir: &std::path::Path,
) -> Result<crate::config::Secret, StartError> {
    use rand::RngCore;
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let path = data_dir.join("org_context_secret");
    match std::fs::read_to_string(&path) {
        Ok(text) if text.trim().len() >= 32 => {
            tracing::warn!(
                path = %path.display(),
                "[auth] org_context_secret is not set: using the one derp generated"
            );
            return Ok(crate::config::Secret::new(text.trim()));
        }
        Ok(_) => {
            return Err(StartError::Config(format!(
                "{} is shorter than 32 bytes: remove it or set [auth] org_context_secret",
                path.display()
            )));
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(StartError::Other(format!("{}: {e}", path.display()))),
    }
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    let secret = hex::encode(bytes);
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path)
        .and_then(|mut f| f.write_all(secret.as_bytes()).map(|()| f))
        .map_err(|e| StartError::Other(format!("cannot write {}: {e}", path.display())))?;
    file.flush()
        .map_err(|e| StartError::Other(format!("{}: {e}", path.display())))?;
    tracing::warn!(
        path = %path.display(),
        "[auth] org_context_secret is not set: generated one and kept it there"
    );
    Ok(crate::config::Secret::new(secret))
}

/// What a configuration reload did.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ReloadReport {
    pub applied: Vec<&'static str>,
    pub needs_restart: Vec<&'static str>,
}

/// SIGHUP: re-reads the file and applies what can change safely (rate
/// limits, the redirect allow-list and branding in `[hosted]`, SMTP in
/// `[email]`); changes elsewhere are reported as needing a restart. An
/// invalid file changes nothing. Recorded in the audit log.
pub async fn reload(state: &AppState, path: &std::path::Path) -> Result<ReloadReport, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let new = Config::from_toml(&text).map_err(|e| e.to_string())?;
    let old = &state.config;
    let mut report = ReloadReport {
        applied: vec![],
        needs_restart: vec![],
    };
    let differs =
        |a: &dyn std::fmt::Debug, b: &dyn std::fmt::Debug| format!("{a:?}") != format!("{b:?}");
    if differs(&old.rate_limit, &new.rate_limit) {
        state.limits.reconfigure(&new.rate_limit);
        state.lockout.reconfigure(&new.rate_limit);
        report.applied.push("rate_limit");
    }
    let current_hosted = state
        .hosted
        .read()
        .map(|h| h.clone())
        .map_err(|_| "lock poisoned".to_string())?;
    if differs(&current_hosted, &new.hosted) {
        state
            .allowed
            .replace(&old.public_url(), &new.hosted.allowed_redirect_urls);
        if let Ok(mut h) = state.hosted.write() {
            *h = new.hosted.clone();
        }
        report.applied.push("hosted");
    }
    // The SMTP password prints as "[redacted]": rebuild the mailer whenever
    // `[email]` is there, so a changed secret is picked up too.
    if new.email.is_some() || differs(&old.email, &new.email) {
        match &state.swappable_mailer {
            Some(m) => {
                m.replace(mailer_for(new.email.as_ref())?);
                report.applied.push("email");
            }
            None => report.needs_restart.push("email"),
        }
    }
    if differs(&old.server, &new.server) {
        report.needs_restart.push("server");
    }
    if differs(&old.auth, &new.auth) {
        report.needs_restart.push("auth");
    }
    if differs(&old.admin, &new.admin) {
        report.needs_restart.push("admin");
    }
    // Secrets print as "[redacted]": sync whenever endpoints are declared.
    if !new.webhooks.is_empty() || differs(&old.webhooks, &new.webhooks) {
        state
            .webhooks
            .sync_config(&new.webhooks)
            .await
            .map_err(|e| format!("webhook endpoints: {e}"))?;
        report.applied.push("webhooks");
    }
    if differs(&old.oidc_provider, &new.oidc_provider) {
        report.needs_restart.push("oidc_provider");
    }
    let actor = crate::services::orgs::Actor {
        user_id: "system".into(),
        ip: None,
        user_agent: Some("SIGHUP".into()),
        admin: true,
    };
    let detail = serde_json::to_value(&report).unwrap_or_default();
    state
        .admin
        .note(actor, "config.reloaded", None, None, detail)
        .await
        .map_err(|e| e.to_string())?;
    Ok(report)
}

/// Life of the access tokens issued to OpenID Connect clients, in seconds.
fn client_access_ttl(config: &Config) -> i64 {
    let minutes = config
        .oidc_provider
        .as_ref()
        .and_then(|p| p.access_token_expire_minutes)
        .unwrap_or(config.native().jwt.access_token_expire_minutes);
    minutes as i64 * 60
}
