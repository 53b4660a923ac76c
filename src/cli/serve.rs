//! `derp serve` (the default) and `derp healthcheck`, which asks a running
//! server's `/readyz`.

use super::config_source;
use crate::config::Config;
use crate::startup::{Application, Overrides};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::time::{Duration, Instant};

pub(super) fn serve(mut config: Config, path: Option<PathBuf>) -> Result<(), String> {
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

/// `http://<bind>/readyz`, asking loopback when the server binds every address.
pub(super) fn readyz_url(mut config: Config) -> Result<String, String> {
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

pub(super) fn healthcheck(url: &str) -> Result<(), String> {
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
