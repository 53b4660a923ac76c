//! `[webhooks.<name>]`: endpoints declared in `derp.toml`.

use super::{ConfigError, Secret};
use crate::domain::webhook::{EventFilter, WebhookSecret};
use serde::Deserialize;

/// One endpoint; the table name is its name.
#[derive(Debug, Clone, PartialEq, serde::Serialize, Deserialize)]
pub struct WebhookEndpointConfig {
    pub url: String,
    /// `whsec_` and the base64 of at least 24 bytes.
    pub secret: Secret,
    /// Event patterns: `*`, `user.*`, `org.member.added`… [`["*"]`]
    #[serde(default = "all_events")]
    pub events: Vec<String>,
}

fn all_events() -> Vec<String> {
    vec!["*".into()]
}

/// An endpoint name: lowercase letters, digits, `-` and `_`, 1 to 63 long.
pub fn valid_name(name: &str) -> bool {
    let b = name.as_bytes();
    !b.is_empty()
        && b.len() <= 63
        && b[0].is_ascii_alphanumeric()
        && b.iter()
            .all(|&c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-' || c == b'_')
}

/// An `http://` or `https://` URL with a host, without credentials in it.
pub fn check_url(raw: &str) -> Result<(), String> {
    let url = url::Url::parse(raw).map_err(|e| format!("`{raw}` is not a URL ({e})"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!("`{raw}` must start with http:// or https://"));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(format!("`{raw}` has no host"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(format!("`{raw}` must not carry credentials"));
    }
    Ok(())
}

impl WebhookEndpointConfig {
    pub fn validate(&self, name: &str) -> Result<(), ConfigError> {
        let at = |field: &str, problem: String| {
            ConfigError::Invalid(format!("webhooks.{name}.{field}: {problem}"))
        };
        if !valid_name(name) {
            return Err(ConfigError::Invalid(format!(
                "webhooks.{name}: the name must be 1 to 63 of a-z, 0-9, `-` and `_`"
            )));
        }
        check_url(&self.url).map_err(|e| at("url", e))?;
        WebhookSecret::parse(self.secret.expose()).map_err(|e| at("secret", e))?;
        EventFilter::parse(&self.events).map_err(|e| at("events", e))?;
        Ok(())
    }

    pub fn secret(&self) -> Option<WebhookSecret> {
        WebhookSecret::parse(self.secret.expose()).ok()
    }
}
