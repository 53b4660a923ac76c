//! `derp.toml` -> typed configuration, one submodule per table.
//!
//! Loading (`load.rs`) is three steps: parse the TOML, replace every string
//! that starts with `$` by that environment variable (an unset one is an
//! error naming it), then deserialize while collecting every key the schema
//! does not know, so that a typo is refused with its full path instead of
//! silently ignored. Each table then validates itself (its `validate`,
//! called in turn from `Config::validate`). Secrets are wrapped in [`Secret`], whose
//! `Debug` never shows the value.

mod admin;
mod auth;
mod email;
mod hosted;
mod load;
mod native;
mod oidc_provider;
mod orgs;
mod rate_limit;
mod server;
mod storage;
mod webhooks;

pub use admin::AdminConfig;
pub use auth::{AuthConfig, ClerkConfig, CognitoConfig};
pub use email::{EmailConfig, SmtpTls};
pub use hosted::HostedConfig;
pub use load::LEGACY_KEYS;
pub use native::{
    GitHubOAuthConfig, GoogleOAuthConfig, JwtAlgorithm, JwtConfig, MfaConfig, NativeConfig,
    OidcConfig, PasswordConfig,
};
pub use oidc_provider::{
    OIDC_SCOPES, OidcClientConfig, OidcProviderConfig, valid_client_redirect_uri,
};
pub use orgs::OrgsConfig;
pub use rate_limit::RateLimitConfig;
pub use server::{
    MAX_CONNECTIONS, MAX_HSTS_MAX_AGE_SECONDS, MAX_REQUEST_TIMEOUT_SECONDS, ServerConfig,
    parse_proxy,
};
pub use storage::{StorageConfig, StorageEngine};
pub use webhooks::{
    WebhookEndpointConfig, check_url as check_webhook_url, valid_name as valid_webhook_name,
};

use serde::Deserialize;
use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;

/// The configuration used when no file exists: native auth, SQLite under
/// `./data`, a generated signing key, the dev mailer.
pub const EMBEDDED_DEFAULT: &str = "# embedded default: native auth, dev mailer\n[auth.native]\n";

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("{0}")]
    Parse(String),
    #[error("unknown key `{key}` in table [{table}]")]
    UnknownKey { key: String, table: String },
    #[error("environment variable `{var}` (for `{key}`) is not set")]
    UnsetVariable { var: String, key: String },
    #[error("{0}")]
    Invalid(String),
}

/// A secret string: compared and used, never printed.
#[derive(Clone, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

/// A secret serializes as `"set"`, never its value: the admin console's
/// configuration summary is made from the serialized configuration.
impl serde::Serialize for Secret {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(SECRET_SET)
    }
}

/// What a [`Secret`] serializes as.
pub const SECRET_SET: &str = "(secret, set)";

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("\"[redacted]\"")
    }
}

/// Equal when the values are: a reload sees a changed secret. The bytes are
/// compared in constant time (only the lengths may show).
impl PartialEq for Secret {
    fn eq(&self, other: &Self) -> bool {
        let (a, b) = (self.0.as_bytes(), other.0.as_bytes());
        a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
    }
}

impl Eq for Secret {}

#[derive(Debug, Clone, PartialEq, serde::Serialize, Deserialize, Default)]
#[serde(default)]
pub struct Config {
    pub server: ServerConfig,
    pub auth: AuthConfig,
    pub email: Option<EmailConfig>,
    pub hosted: HostedConfig,
    pub admin: AdminConfig,
    pub rate_limit: RateLimitConfig,
    /// `[webhooks.<name>]`: endpoints that receive events.
    pub webhooks: BTreeMap<String, WebhookEndpointConfig>,
    /// derp as an OpenID Connect provider for other apps (native users only).
    pub oidc_provider: Option<OidcProviderConfig>,
    pub orgs: OrgsConfig,
    /// `[storage]`: SQLite (the default) or PostgreSQL.
    pub storage: StorageConfig,
    /// Keys of the original library's configuration that derp accepts and
    /// ignores ([`LEGACY_KEYS`]), as dotted paths, for one warning each.
    #[serde(skip)]
    pub ignored_keys: Vec<String>,
}

/// Which user store the configuration selects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BackendKind {
    Native,
    Cognito,
    Clerk,
}

impl Config {
    /// What `serve` logs and `validate-config` prints as warnings: each
    /// ignored key of the original library, and a missing
    /// `org_context_secret` that derp generates.
    pub fn warnings(&self) -> Vec<String> {
        let mut out: Vec<String> = self
            .ignored_keys
            .iter()
            .map(|k| format!("`{k}` is a key of the original library's configuration: ignored"))
            .collect();
        if self.backend() != BackendKind::Native && self.auth.org_context_secret.is_none() {
            out.push(
                "[auth] org_context_secret is not set: derp generates one and keeps it in \
                 <data_dir>/org_context_secret (set it to share X-Org-Context between instances)"
                    .into(),
            );
        }
        if let Some(primary) = crate::domain::color::Rgb::parse(&self.hosted.primary_color) {
            let best = [crate::domain::color::WHITE, crate::domain::color::INK]
                .map(|text| crate::domain::color::contrast(primary, text))
                .into_iter()
                .fold(0.0, f64::max);
            if best < crate::domain::color::AA {
                out.push(format!(
                    "[hosted] primary_color `{}` reaches only {best:.2}:1 with white or dark \
                     text (WCAG AA needs 4.5:1): buttons get black text; a darker or lighter \
                     colour reads better",
                    self.hosted.primary_color
                ));
            }
        }
        out
    }

    pub fn backend(&self) -> BackendKind {
        if self.auth.cognito.is_some() {
            BackendKind::Cognito
        } else if self.auth.clerk.is_some() {
            BackendKind::Clerk
        } else {
            BackendKind::Native
        }
    }

    /// The native settings, or their defaults when no backend table is given.
    pub fn native(&self) -> NativeConfig {
        self.auth.native.clone().unwrap_or_default()
    }

    pub fn bind_addr(&self) -> Result<SocketAddr, ConfigError> {
        self.server.bind_addr()
    }

    /// Base URL for links and the default issuer.
    pub fn public_url(&self) -> String {
        match &self.server.public_url {
            Some(url) => url.trim_end_matches('/').to_string(),
            None => format!("http://{}", self.server.bind),
        }
    }

    pub fn issuer(&self) -> String {
        self.native()
            .jwt
            .issuer
            .unwrap_or_else(|| self.public_url())
    }

    /// Every table checks itself; the first problem found is the error.
    fn validate(&self) -> Result<(), ConfigError> {
        for (name, endpoint) in &self.webhooks {
            endpoint.validate(name)?;
        }
        self.auth.validate()?;
        self.server.validate()?;
        self.rate_limit.validate()?;
        self.orgs.validate()?;
        self.storage.validate()?;
        self.admin.validate()?;
        self.hosted.validate()?;
        if let Some(p) = &self.oidc_provider {
            if self.backend() != BackendKind::Native {
                return Err(ConfigError::Invalid(
                    "oidc_provider: derp is an OpenID Connect provider for its native users only"
                        .into(),
                ));
            }
            p.validate()?;
        }
        if let Some(email) = &self.email {
            email.validate()?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_default_is_native_eddsa() {
        let c = Config::from_toml(EMBEDDED_DEFAULT).unwrap();
        assert_eq!(c.backend(), BackendKind::Native);
        assert_eq!(c.native().jwt.effective_algorithm(), JwtAlgorithm::EdDSA);
        assert_eq!(c.server.bind, "127.0.0.1:8080");
    }

    #[test]
    fn secrets_are_redacted_in_debug() {
        let c = Config::from_toml(
            "[auth.native.jwt]\nsecret = \"0123456789abcdef0123456789abcdef-s3cr3t\"\n",
        )
        .unwrap();
        let dbg = format!("{c:?}");
        assert!(!dbg.contains("s3cr3t"));
        assert!(dbg.contains("[redacted]"));
    }

    #[test]
    fn secrets_compare_by_value_and_tables_by_every_field() {
        assert_eq!(Secret::new("same-value"), Secret::new("same-value"));
        assert_ne!(Secret::new("same-value"), Secret::new("same-valuf"));
        assert_ne!(Secret::new("same-value"), Secret::new("same-value-longer"));
        let jwt =
            |s: &str| Config::from_toml(&format!("[auth.native.jwt]\nsecret = \"{s}\"\n")).unwrap();
        let a = jwt("0123456789abcdef0123456789abcdef-one");
        assert_eq!(a, jwt("0123456789abcdef0123456789abcdef-one"));
        // Both print alike, yet differ: a reload sees the new secret.
        let b = jwt("0123456789abcdef0123456789abcdef-two");
        assert_eq!(format!("{:?}", a.auth), format!("{:?}", b.auth));
        assert_ne!(a.auth, b.auth);
    }
}
