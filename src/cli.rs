//! The command line: `derp serve | migrate | validate-config | keys rotate |
//! backup | healthcheck`.

use crate::auth::jwt;
use crate::clock::{Clock, SystemClock};
use crate::config::Config;
use crate::error::AuthError;
use crate::startup::{Application, Overrides};
use crate::storage::{Db, backup, migrations};
use clap::{Parser, Subcommand};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

#[derive(Debug, Parser)]
#[command(name = "derp", version, about = "A self-hosted auth server")]
pub struct Cli {
    /// Configuration file [default: ./derp.toml, or the embedded default when absent]
    #[arg(long, short, global = true, env = "DERP_CONFIG")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the server (the default when no command is given)
    Serve,
    /// Apply pending database migrations
    Migrate {
        /// List pending migrations without applying them
        #[arg(long)]
        dry_run: bool,
    },
    /// Check a configuration file and exit non-zero with the reasons
    ValidateConfig {
        /// The file to check [default: --config or ./derp.toml]
        path: Option<PathBuf>,
    },
    /// Signing keys
    Keys {
        #[command(subcommand)]
        command: KeysCommand,
    },
    /// Copy the database to PATH (0600), consistently, while the server runs
    Backup {
        /// The file to write; an existing one is refused without --force
        path: PathBuf,
        /// Replace PATH if it exists
        #[arg(long)]
        force: bool,
    },
    /// Admin accounts
    Admin {
        #[command(subcommand)]
        command: AdminCommand,
    },
    /// Second factors
    Mfa {
        #[command(subcommand)]
        command: MfaCommand,
    },
    /// OpenID Connect clients of derp as a provider (besides those of
    /// [oidc_provider.clients.*] in derp.toml)
    Clients {
        #[command(subcommand)]
        command: ClientsCommand,
    },
    /// Exit 0 when the running server answers GET /readyz with 200
    Healthcheck {
        /// The URL to ask [default: http://<bind>/readyz from the configuration,
        /// DERP_BIND overriding bind]
        #[arg(long)]
        url: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
enum AdminCommand {
    /// Make EMAIL an admin (creating the user when needed); without
    /// --password, print a one-time link to choose one
    Create {
        #[arg(long)]
        email: String,
        #[arg(long)]
        password: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
enum MfaCommand {
    /// Remove every second factor and recovery code of EMAIL (a user who
    /// lost them): the next sign-in needs only the first factor
    Reset {
        #[arg(long)]
        email: String,
    },
}

#[derive(Debug, Subcommand)]
enum ClientsCommand {
    /// Register a client; prints its id and, once, its secret
    Create {
        /// Shown on the consent page and in /account
        #[arg(long)]
        name: String,
        /// Where the client may be sent back with a code (repeatable)
        #[arg(long = "redirect-uri", required = true)]
        redirect_uris: Vec<String>,
        /// Where RP-initiated logout may send the browser (repeatable)
        #[arg(long = "post-logout-redirect-uri")]
        post_logout_redirect_uris: Vec<String>,
        /// Scopes it may ask for, comma separated [openid,email,profile]
        #[arg(long, value_delimiter = ',')]
        scopes: Option<Vec<String>>,
        /// No secret: a browser or mobile app, which must use PKCE
        #[arg(long)]
        public: bool,
        /// Skip the consent page
        #[arg(long)]
        first_party: bool,
    },
    /// List the clients (derp.toml's and the registered ones)
    List,
    /// A new secret for a registered client (printed once; the old one stops working)
    RotateSecret { client_id: String },
    /// Delete a registered client; its sessions end
    Delete { client_id: String },
}

#[derive(Debug, Subcommand)]
enum KeysCommand {
    /// Start signing with a new key; old keys verify until their tokens expire
    Rotate,
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("derp: {message}");
            ExitCode::FAILURE
        }
    }
}

fn clients_command(config: Option<&PathBuf>, command: ClientsCommand) -> Result<(), String> {
    use crate::services::oidc;
    let config = load(config)?;
    let config_ids: Vec<String> = config
        .oidc_provider
        .as_ref()
        .map(|p| p.clients.keys().cloned().collect())
        .unwrap_or_default();
    let db = Db::open(&config.server.data_dir).map_err(|e| e.to_string())?;
    let now = SystemClock.unix();
    let shown = |e: AuthError| match e {
        AuthError::InvalidRequest { message, .. } => message,
        AuthError::NotFound(what) => {
            format!("no such {what} (clients of derp.toml are changed there)")
        }
        other => other.to_string(),
    };
    match command {
        ClientsCommand::Create {
            name,
            redirect_uris,
            post_logout_redirect_uris,
            scopes,
            public,
            first_party,
        } => {
            let new = oidc::NewClient {
                name,
                redirect_uris,
                post_logout_redirect_uris,
                scopes,
                public,
                first_party,
            };
            let (row, secret) = db
                .write_sync(|conn| oidc::create_client(conn, new, &config_ids, now))
                .map_err(shown)?;
            println!("client_id: {}", row.client_id);
            match secret {
                Some(s) => println!(
                    "client_secret: {s}\n(shown once: derp keeps only its hash; `derp clients rotate-secret {}` makes a new one)",
                    row.client_id
                ),
                None => println!("public client: no secret; it must use PKCE (S256)"),
            }
            if config.oidc_provider.is_none() {
                println!("note: add an [oidc_provider] table to derp.toml to serve OpenID Connect");
            }
            Ok(())
        }
        ClientsCommand::List => {
            for id in &config_ids {
                println!("{id}\tderp.toml");
            }
            for row in oidc::stored_clients(&db).map_err(shown)? {
                let kind = if row.secret_hash.is_some() {
                    "confidential"
                } else {
                    "public"
                };
                println!(
                    "{}\t{}\t{kind}{}\t{}",
                    row.client_id,
                    row.name,
                    if row.first_party { ", first party" } else { "" },
                    row.redirect_uris.join(" ")
                );
            }
            Ok(())
        }
        ClientsCommand::RotateSecret { client_id } => {
            let secret = db
                .write_sync(|conn| oidc::rotate_client_secret(conn, &client_id, now))
                .map_err(shown)?;
            println!("client_secret: {secret}\n(shown once)");
            Ok(())
        }
        ClientsCommand::Delete { client_id } => {
            db.write_sync(|conn| oidc::delete_client(conn, &client_id, now))
                .map_err(shown)?;
            println!("client {client_id} deleted; its sessions ended");
            Ok(())
        }
    }
}

/// Which configuration `Config::load(path)` reads: the file given, else
/// `./derp.toml` when it exists, else the embedded default.
fn config_source(path: Option<&std::path::Path>) -> String {
    match path {
        Some(p) => p.display().to_string(),
        None if std::path::Path::new("derp.toml").exists() => "./derp.toml".into(),
        None => "the embedded default (no ./derp.toml)".into(),
    }
}

fn load(path: Option<&PathBuf>) -> Result<Config, String> {
    Config::load(path.map(PathBuf::as_path)).map_err(|e| e.to_string())
}

fn run(cli: Cli) -> Result<(), String> {
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => {
            let path = cli
                .config
                .clone()
                .or_else(|| Some(PathBuf::from("derp.toml")).filter(|p| p.exists()));
            serve(load(cli.config.as_ref())?, path)
        }
        Command::ValidateConfig { path } => {
            let path = path.or(cli.config);
            let config = load(path.as_ref())?;
            for warning in config.warnings() {
                println!("warning: {warning}");
            }
            println!(
                "configuration OK: backend {:?}, bind {}, algorithm {}",
                config.backend(),
                config.server.bind,
                config.native().jwt.effective_algorithm().as_str()
            );
            Ok(())
        }
        Command::Migrate { dry_run } => {
            let config = load(cli.config.as_ref())?;
            let db =
                Db::open_without_migrating(&config.server.data_dir).map_err(|e| e.to_string())?;
            let pending = db
                .write_sync(migrations::pending)
                .map_err(|e| e.to_string())?;
            if dry_run {
                if pending.is_empty() {
                    println!("no pending migrations");
                }
                for name in pending {
                    println!("pending: {name}");
                }
                return Ok(());
            }
            let (db, copy) =
                Db::open_reporting_backup(&config.server.data_dir).map_err(|e| e.to_string())?;
            drop(db);
            if let Some(copy) = copy {
                println!(
                    "backed up the database to {} before migrating",
                    copy.path.display()
                );
            }
            if pending.is_empty() {
                println!("no pending migrations");
            }
            for name in pending {
                println!("applied: {name}");
            }
            Ok(())
        }
        Command::Keys {
            command: KeysCommand::Rotate,
        } => {
            let config = load(cli.config.as_ref())?;
            let db = Db::open(&config.server.data_dir).map_err(|e| e.to_string())?;
            let alg = config.native().jwt.effective_algorithm();
            let now = SystemClock.unix();
            let sealer = crate::auth::sealer::Sealer::load_or_create(&config.server.data_dir)?;
            let extra = config
                .oidc_provider
                .as_ref()
                .map(|p| p.id_token_algs())
                .unwrap_or_default();
            let kids = db
                .write_sync(|conn| -> Result<Vec<String>, AuthError> {
                    // Keys an older derp left in plaintext are sealed too.
                    jwt::seal_plaintext_keys(conn, &sealer)?;
                    jwt::rotate(conn, alg, &extra, &sealer, now)
                })
                .map_err(|e| e.to_string())?;
            println!(
                "new signing key(s) {}; a running server picks them up within a minute, and old keys keep verifying until their tokens expire",
                kids.join(", ")
            );
            Ok(())
        }
        Command::Admin {
            command: AdminCommand::Create { email, password },
        } => {
            let config = load(cli.config.as_ref())?;
            admin_create(config, &email, password)
        }
        Command::Mfa {
            command: MfaCommand::Reset { email },
        } => {
            let config = load(cli.config.as_ref())?;
            let email = crate::domain::Email::parse(&email).map_err(|p| format!("--email {p}"))?;
            let db = Db::open(&config.server.data_dir).map_err(|e| e.to_string())?;
            let now = SystemClock.unix();
            let done = db
                .write_sync(|conn| {
                    crate::auth::native::mfa::reset_factors(conn, email.as_str(), now)
                })
                .map_err(|e| e.to_string())?;
            match done {
                Some((id, n)) => {
                    println!(
                        "{email}: {n} second factor(s) and the recovery codes removed (user id {id})"
                    );
                    Ok(())
                }
                None => Err(format!("no user with the email {email}")),
            }
        }
        Command::Clients { command } => clients_command(cli.config.as_ref(), command),
        Command::Backup { path, force } => {
            let config = load(cli.config.as_ref())?;
            backup_command(&config.server.data_dir, &path, force)
        }
        Command::Healthcheck { url } => {
            let url = match url {
                Some(url) => url,
                None => readyz_url(load(cli.config.as_ref())?)?,
            };
            healthcheck(&url)
        }
    }
}

fn backup_command(data_dir: &Path, path: &Path, force: bool) -> Result<(), String> {
    let info = backup::backup_data_dir(data_dir, path, force).map_err(|e| e.to_string())?;
    let check = backup::integrity_check(&info.path).map_err(|e| e.to_string())?;
    if check != "ok" {
        return Err(format!(
            "{} was written but fails PRAGMA integrity_check: {}",
            info.path.display(),
            check.replace('\n', "; ")
        ));
    }
    println!(
        "backed up {} to {} ({} bytes, migration {}, integrity ok)",
        backup::database_file(data_dir).display(),
        info.path.display(),
        info.bytes,
        info.version
    );
    Ok(())
}

/// `http://<bind>/readyz`, asking loopback when the server binds every address.
fn readyz_url(mut config: Config) -> Result<String, String> {
    if let Ok(bind) = std::env::var("DERP_BIND") {
        config.server.bind = bind;
    }
    let mut addr = config.bind_addr().map_err(|e| e.to_string())?;
    if addr.ip().is_unspecified() {
        addr.set_ip(match addr {
            SocketAddr::V4(_) => std::net::Ipv4Addr::LOCALHOST.into(),
            SocketAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
        });
    }
    Ok(format!("http://{addr}/readyz"))
}

fn healthcheck(url: &str) -> Result<(), String> {
    match http_status(url, Duration::from_secs(3)) {
        Ok(200) => {
            println!("ready: {url}");
            Ok(())
        }
        Ok(status) => Err(format!("not ready: {url} answered {status}")),
        Err(reason) => Err(format!("not ready: {url}: {reason}")),
    }
}

/// The status code of a plain HTTP/1.1 GET, all within `timeout`. Enough for
/// a loopback health check; no TLS, no redirects.
fn http_status(url: &str, timeout: Duration) -> Result<u16, String> {
    let deadline = Instant::now() + timeout;
    let left = || {
        deadline
            .checked_duration_since(Instant::now())
            .filter(|d| !d.is_zero())
            .ok_or_else(|| format!("no answer within {} s", timeout.as_secs()))
    };
    let parsed = url::Url::parse(url).map_err(|e| format!("invalid URL: {e}"))?;
    if parsed.scheme() != "http" {
        return Err(
            "only http:// URLs are supported (ask the server directly, not its TLS proxy)".into(),
        );
    }
    let host = parsed.host_str().ok_or("the URL has no host")?;
    let port = parsed.port_or_known_default().unwrap_or(80);
    let addrs = parsed
        .socket_addrs(|| Some(80))
        .map_err(|e| format!("cannot resolve {host}: {e}"))?;
    let mut stream = None;
    let mut last = String::from("no address to connect to");
    for addr in addrs {
        match TcpStream::connect_timeout(&addr, left()?) {
            Ok(s) => {
                stream = Some(s);
                break;
            }
            Err(e) => last = format!("cannot connect to {addr}: {e}"),
        }
    }
    let mut stream = stream.ok_or(last)?;
    let mut target = parsed.path().to_string();
    if let Some(q) = parsed.query() {
        target = format!("{target}?{q}");
    }
    let request = format!(
        "GET {target} HTTP/1.1\r\nHost: {host}:{port}\r\nUser-Agent: derp-healthcheck\r\nAccept: */*\r\nConnection: close\r\n\r\n"
    );
    let timed_out = |e: std::io::Error| match e.kind() {
        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut => {
            format!("no answer within {} s", timeout.as_secs())
        }
        _ => e.to_string(),
    };
    stream
        .set_write_timeout(Some(left()?))
        .map_err(|e| e.to_string())?;
    stream.write_all(request.as_bytes()).map_err(timed_out)?;
    let mut head = Vec::new();
    let mut buf = [0u8; 512];
    while !head.windows(2).any(|w| w == b"\r\n") && head.len() < 8192 {
        stream
            .set_read_timeout(Some(left()?))
            .map_err(|e| e.to_string())?;
        let n = stream.read(&mut buf).map_err(timed_out)?;
        if n == 0 {
            break;
        }
        head.extend_from_slice(&buf[..n]);
    }
    let line = String::from_utf8_lossy(&head);
    let line = line.lines().next().unwrap_or_default();
    let mut parts = line.split_whitespace();
    match (
        parts.next(),
        parts.next().and_then(|c| c.parse::<u16>().ok()),
    ) {
        (Some(version), Some(status)) if version.starts_with("HTTP/") => Ok(status),
        _ if head.is_empty() => Err("the connection closed without an answer".into()),
        _ => Err("the answer is not HTTP".into()),
    }
}

fn serve(mut config: Config, path: Option<PathBuf>) -> Result<(), String> {
    let source = config_source(path.as_deref());
    // The environment's bind address wins over the file's (CONFIG.md).
    if let Ok(bind) = std::env::var("DERP_BIND") {
        config.server.bind = bind;
    }
    init_tracing(&config.server.log_format);
    tracing::info!(config = %source, "configuration read from {source}");
    for key in &config.ignored_keys {
        tracing::warn!(
            key = %key,
            "`{key}` is a key of the original library's configuration: ignored"
        );
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    // Drills and tests run the three days of webhook retries in minutes.
    let webhook_retry_unit_ms = match std::env::var("DERP_WEBHOOK_RETRY_UNIT_MS") {
        Ok(v) => Some(
            v.parse::<i64>()
                .ok()
                .filter(|n| (1..=1000).contains(n))
                .ok_or("DERP_WEBHOOK_RETRY_UNIT_MS: must be 1 to 1000")?,
        ),
        Err(_) => None,
    };
    runtime.block_on(async move {
        let overrides = Overrides {
            webhook_retry_unit_ms,
            ..Overrides::default()
        };
        let app = Application::build(config, overrides)
            .await
            .map_err(|e| e.to_string())?;
        let url = app.state().config.public_url();
        if let Ok(Some(link)) = app.state().admin.setup_link(&url).await {
            if app.state().config.server.log_format == "json" {
                // One JSON line like every other, for log collectors.
                tracing::warn!(
                    setup_link = %link,
                    hint = "or run: derp admin create --email you@example.com",
                    "No admin yet. Create the first one with setup_link (it works once, for 24 hours)"
                );
            } else {
                println!("\nNo admin yet. Create the first one (this link works once, for 24 hours):\n\n    {link}\n\nor run: derp admin create --email you@example.com\n");
            }
        }
        reload_on_hangup(app.state().clone(), path)?;
        tracing::info!(port = app.port(), "derp listening on {url}");
        app.run_until_stopped().await.map_err(|e| e.to_string())
    })
}

/// SIGHUP (`systemctl reload`): re-read the configuration file and apply
/// what can change safely (see `startup::reload`). Without a file (the
/// embedded default) there is nothing to re-read. An invalid file changes
/// nothing and is logged.
fn reload_on_hangup(state: crate::state::AppState, path: Option<PathBuf>) -> Result<(), String> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut hangups = signal(SignalKind::hangup()).map_err(|e| e.to_string())?;
    tokio::spawn(async move {
        while hangups.recv().await.is_some() {
            let Some(path) = &path else {
                tracing::info!("SIGHUP: running on the embedded default, nothing to reload");
                continue;
            };
            match crate::startup::reload(&state, path).await {
                Ok(r) => tracing::info!(
                    applied = ?r.applied,
                    needs_restart = ?r.needs_restart,
                    "SIGHUP: configuration reloaded; settings under needs_restart take effect at the next restart"
                ),
                Err(e) => {
                    tracing::error!(error = %e, "SIGHUP: configuration not reloaded, nothing changed")
                }
            }
        }
    });
    Ok(())
}

/// Logs go to stdout (the journal, under systemd). `json`: one JSON object a
/// line, the event's fields at the top level beside `timestamp`, `level`,
/// `target` and `message`. `pretty`: text, coloured only on a terminal.
fn init_tracing(format: &str) {
    use std::io::IsTerminal;
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    let _ = if format == "json" {
        builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .with_span_list(false)
            .try_init()
    } else {
        builder
            .with_ansi(std::io::stdout().is_terminal())
            .try_init()
    };
}

/// `derp admin create`: works on the database directly, server running or not.
fn admin_create(config: Config, email: &str, password: Option<String>) -> Result<(), String> {
    let email = crate::domain::Email::parse(email).map_err(|p| format!("--email {p}"))?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    runtime.block_on(async move {
        let db = Db::open(&config.server.data_dir).map_err(|e| e.to_string())?;
        let admin = crate::services::admin::AdminService {
            db,
            clock: std::sync::Arc::new(SystemClock),
            hasher: crate::auth::password::Hasher::new(),
            policy: crate::domain::PasswordPolicy::new(config.native().password.clone()),
            directory: None,
            mail: None,
            public_url: config.public_url(),
        };
        let made = admin
            .create_admin(email, password, &config.public_url())
            .await
            .map_err(|e| match e {
                AuthError::WeakPassword(r) => format!("--password is too weak: {}", r.join(", ")),
                other => other.to_string(),
            })?;
        let what = if made.promoted {
            "is now an admin"
        } else {
            "is created as an admin"
        };
        println!("{} {what} (user id {})", made.user.email, made.user.id);
        if let Some(link) = made.password_link {
            println!("Choose a password with this one-time link (24 hours):\n\n    {link}\n");
        }
        Ok(())
    })
}
