//! `[server]`: where derp listens, where it keeps its data, and the limits
//! of one connection.

use super::ConfigError;
use serde::Deserialize;
use std::net::SocketAddr;
use std::path::PathBuf;

#[derive(Debug, Clone, PartialEq, serde::Serialize, Deserialize)]
#[serde(default)]
pub struct ServerConfig {
    pub bind: String,
    pub public_url: Option<String>,
    pub data_dir: PathBuf,
    pub trusted_proxies: Vec<String>,
    /// `json` or `pretty` (ours; not in the original library).
    pub log_format: String,
    /// Seconds a client has to send a request's head and then its body;
    /// a request still incomplete by then is answered 408 and its
    /// connection closed.
    pub request_timeout_seconds: u64,
    /// Open connections served at once; beyond it new connections wait in
    /// the listen backlog until one closes.
    pub max_connections: usize,
    /// `Strict-Transport-Security: max-age=…` on every answer when
    /// `public_url` is https; 0 sends no header.
    pub hsts_max_age_seconds: u64,
}

/// Bounds of the `[server]` limits, checked by `validate`.
pub const MAX_REQUEST_TIMEOUT_SECONDS: u64 = 3600;
pub const MAX_CONNECTIONS: usize = 1_000_000;
/// Two years: the longest max-age browsers' preload lists ask for.
pub const MAX_HSTS_MAX_AGE_SECONDS: u64 = 2 * 365 * 24 * 3600;

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            bind: "127.0.0.1:8080".into(),
            public_url: None,
            data_dir: PathBuf::from("./data"),
            trusted_proxies: Vec::new(),
            log_format: "pretty".into(),
            request_timeout_seconds: 10,
            max_connections: 10_000,
            hsts_max_age_seconds: 31_536_000,
        }
    }
}

impl ServerConfig {
    pub fn bind_addr(&self) -> Result<SocketAddr, ConfigError> {
        self.bind.parse().map_err(|_| {
            ConfigError::Invalid(format!(
                "server.bind: `{}` is not an address:port",
                self.bind
            ))
        })
    }

    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        self.bind_addr()?;
        if let Some(url) = &self.public_url
            && !(url.starts_with("http://") || url.starts_with("https://"))
        {
            return Err(ConfigError::Invalid(format!(
                "server.public_url: `{url}` must start with http:// or https://"
            )));
        }
        for proxy in &self.trusted_proxies {
            parse_proxy(proxy)?;
        }
        if !matches!(self.log_format.as_str(), "json" | "pretty") {
            return Err(ConfigError::Invalid(
                "server.log_format: must be `json` or `pretty`".into(),
            ));
        }
        let timeout = self.request_timeout_seconds;
        if !(1..=MAX_REQUEST_TIMEOUT_SECONDS).contains(&timeout) {
            return Err(ConfigError::Invalid(format!(
                "server.request_timeout_seconds: must be 1 to {MAX_REQUEST_TIMEOUT_SECONDS}, got {timeout}"
            )));
        }
        let max = self.max_connections;
        if !(1..=MAX_CONNECTIONS).contains(&max) {
            return Err(ConfigError::Invalid(format!(
                "server.max_connections: must be 1 to {MAX_CONNECTIONS}, got {max}"
            )));
        }
        let hsts = self.hsts_max_age_seconds;
        if hsts > MAX_HSTS_MAX_AGE_SECONDS {
            return Err(ConfigError::Invalid(format!(
                "server.hsts_max_age_seconds: must be 0 (off) to {MAX_HSTS_MAX_AGE_SECONDS}, got {hsts}"
            )));
        }
        Ok(())
    }
}

pub fn parse_proxy(proxy: &str) -> Result<ipnet::IpNet, ConfigError> {
    proxy
        .parse::<ipnet::IpNet>()
        .or_else(|_| proxy.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
        .map_err(|_| {
            ConfigError::Invalid(format!(
                "server.trusted_proxies: `{proxy}` is not an address or CIDR range"
            ))
        })
}

#[cfg(test)]
mod tests {
    use crate::config::{Config, EMBEDDED_DEFAULT};

    #[test]
    fn server_limits_have_defaults_and_are_checked() {
        let c = Config::from_toml(EMBEDDED_DEFAULT).unwrap();
        assert_eq!(c.server.request_timeout_seconds, 10);
        assert_eq!(c.server.max_connections, 10_000);
        assert_eq!(c.server.hsts_max_age_seconds, 31_536_000);
        let c = Config::from_toml(
            "[server]\nrequest_timeout_seconds = 2\nmax_connections = 500\nhsts_max_age_seconds = 0\n",
        )
        .unwrap();
        assert_eq!(c.server.request_timeout_seconds, 2);
        assert_eq!(c.server.max_connections, 500);
        assert_eq!(c.server.hsts_max_age_seconds, 0);
        for (toml, key) in [
            (
                "request_timeout_seconds = 0",
                "server.request_timeout_seconds",
            ),
            (
                "request_timeout_seconds = 99999",
                "server.request_timeout_seconds",
            ),
            ("max_connections = 0", "server.max_connections"),
            (
                "hsts_max_age_seconds = 999999999",
                "server.hsts_max_age_seconds",
            ),
        ] {
            let err = Config::from_toml(&format!("[server]\n{toml}\n")).unwrap_err();
            assert!(err.to_string().contains(key), "{toml}: {err}");
        }
        let err = Config::from_toml("[server]\nmax_connections = -1\n").unwrap_err();
        assert!(err.to_string().contains("max_connections"), "{err}");
    }
}
