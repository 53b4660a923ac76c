//! `derp.toml` -> typed configuration.
//!
//! Loading is three steps: parse the TOML, replace every string that starts
//! with `$` by that environment variable (an unset one is an error naming it),
//! then deserialize while collecting every key the schema does not know, so
//! that a typo is refused with its full path instead of silently ignored.
//! Secrets are wrapped in [`Secret`], whose `Debug` never shows the value.

mod webhooks;
pub use webhooks::{
    WebhookEndpointConfig, check_url as check_webhook_url, valid_name as valid_webhook_name,
};

use serde::Deserialize;
use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

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
#[derive(Clone, Deserialize, PartialEq, Eq)]
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

#[derive(Debug, Clone, serde::Serialize, Deserialize, Default)]
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
    /// Keys of the original library's configuration that derp accepts and
    /// ignores ([`LEGACY_KEYS`]), as dotted paths, for one warning each.
    #[serde(skip)]
    pub ignored_keys: Vec<String>,
}

/// Keys of the original library's configuration that mean nothing to derp:
/// its database and KV cache (derp keeps everything in its own SQLite). They
/// are accepted with a warning so the original's files load as written;
/// every other unknown key stays an error.
pub const LEGACY_KEYS: &[&str] = &[
    "database",
    "kv.valkey",
    "auth.native.use_kv_cache",
    "auth.native.cache_prefix",
    "auth.native.cache_session_ttl_seconds",
    "auth.native.cache_user_ttl_seconds",
];

/// Takes the [`LEGACY_KEYS`] out of `value`: the ones that were there.
fn strip_legacy_keys(value: &mut toml::Value) -> Vec<String> {
    let mut found = Vec::new();
    for key in LEGACY_KEYS {
        let (parents, last) = match key.rsplit_once('.') {
            Some((p, l)) => (p.split('.').collect::<Vec<_>>(), l),
            None => (Vec::new(), *key),
        };
        let mut table = value.as_table_mut();
        for p in &parents {
            table = table
                .and_then(|t| t.get_mut(*p))
                .and_then(|v| v.as_table_mut());
        }
        if let Some(t) = table
            && t.remove(last).is_some()
        {
            found.push(key.to_string());
        }
    }
    // `[kv]` held only `[kv.valkey]`: nothing is left of it.
    if let Some(root) = value.as_table_mut()
        && root
            .get("kv")
            .and_then(|kv| kv.as_table())
            .is_some_and(|kv| kv.is_empty())
        && found.iter().any(|k| k == "kv.valkey")
    {
        root.remove("kv");
    }
    found
}

#[derive(Debug, Clone, serde::Serialize, Deserialize)]
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

#[derive(Debug, Clone, serde::Serialize, Deserialize, Default)]
#[serde(default)]
pub struct AuthConfig {
    pub native: Option<NativeConfig>,
    pub cognito: Option<CognitoConfig>,
    pub clerk: Option<ClerkConfig>,
    pub org_context_secret: Option<Secret>,
    pub org_context_expire_minutes: Option<u64>,
}

#[derive(Debug, Clone, serde::Serialize, Deserialize)]
#[serde(default)]
pub struct NativeConfig {
    pub enable_signup: bool,
    pub enable_confirmation: bool,
    pub enable_magic_link: bool,
    pub session_expire_days: u64,
    pub refresh_reuse_grace_seconds: u64,
    pub confirmation_token_expire_hours: u64,
    pub magic_link_expire_minutes: u64,
    pub recovery_token_expire_minutes: u64,
    pub invitation_expire_days: u64,
    pub jwt: JwtConfig,
    pub password: PasswordConfig,
    pub google_oauth: Option<GoogleOAuthConfig>,
    pub github_oauth: Option<GitHubOAuthConfig>,
    pub oidc: BTreeMap<String, OidcConfig>,
    pub mfa: MfaConfig,
}

/// `[auth.native.mfa]`: second factors.
#[derive(Debug, Clone, serde::Serialize, Deserialize)]
#[serde(default)]
pub struct MfaConfig {
    /// Offer TOTP enrollment (false: enrollment is refused; factors already
    /// enrolled still protect their accounts).
    pub totp: bool,
    /// Offer passkeys (WebAuthn). They also need a relying party id that is
    /// a domain name (see `rp_id`).
    pub passkeys: bool,
    /// Every user must enroll at the next sign-in: a first factor of a user
    /// without a second factor answers `mfa_enrollment_required` (the pages
    /// walk them through enrolling) instead of a session.
    pub required: bool,
    /// The WebAuthn relying party id (default: the host of `public_url`;
    /// it must be that host or a parent domain, never an IP address).
    pub rp_id: Option<String>,
    /// The issuer shown in authenticator apps (default: `[hosted] product_name`).
    pub issuer_label: Option<String>,
}

impl Default for MfaConfig {
    fn default() -> Self {
        Self {
            totp: true,
            passkeys: true,
            required: false,
            rp_id: None,
            issuer_label: None,
        }
    }
}

impl Default for NativeConfig {
    fn default() -> Self {
        Self {
            enable_signup: true,
            enable_confirmation: true,
            enable_magic_link: false,
            session_expire_days: 30,
            refresh_reuse_grace_seconds: 10,
            confirmation_token_expire_hours: 24,
            magic_link_expire_minutes: 60,
            recovery_token_expire_minutes: 60,
            invitation_expire_days: 7,
            jwt: JwtConfig::default(),
            password: PasswordConfig::default(),
            google_oauth: None,
            github_oauth: None,
            oidc: BTreeMap::new(),
            mfa: MfaConfig::default(),
        }
    }
}

#[derive(Debug, Clone, Copy, serde::Serialize, Deserialize, PartialEq, Eq)]
pub enum JwtAlgorithm {
    HS256,
    EdDSA,
    ES256,
    RS256,
}

impl JwtAlgorithm {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::HS256 => "HS256",
            Self::EdDSA => "EdDSA",
            Self::ES256 => "ES256",
            Self::RS256 => "RS256",
        }
    }
}

#[derive(Debug, Clone, serde::Serialize, Deserialize)]
#[serde(default)]
pub struct JwtConfig {
    pub secret: Option<Secret>,
    pub algorithm: Option<JwtAlgorithm>,
    pub access_token_expire_minutes: u64,
    pub refresh_token_expire_days: u64,
    pub issuer: Option<String>,
    pub audience: Option<String>,
}

impl Default for JwtConfig {
    fn default() -> Self {
        Self {
            secret: None,
            algorithm: None,
            access_token_expire_minutes: 15,
            refresh_token_expire_days: 7,
            issuer: None,
            audience: None,
        }
    }
}

impl JwtConfig {
    /// HS256 when a secret is configured and no algorithm is named, else EdDSA.
    pub fn effective_algorithm(&self) -> JwtAlgorithm {
        match (self.algorithm, &self.secret) {
            (Some(alg), _) => alg,
            (None, Some(_)) => JwtAlgorithm::HS256,
            (None, None) => JwtAlgorithm::EdDSA,
        }
    }
}

pub use crate::domain::password::PasswordConfig;

#[derive(Debug, Clone, serde::Serialize, Deserialize)]
#[serde(default)]
pub struct GoogleOAuthConfig {
    pub client_id: String,
    pub client_secret: Option<Secret>,
    pub redirect_uri: Option<String>,
    pub scopes: Vec<String>,
    pub authorization_url: String,
    pub token_url: String,
    pub userinfo_url: String,
    pub jwks_url: String,
    pub issuer: String,
}

impl Default for GoogleOAuthConfig {
    fn default() -> Self {
        Self {
            client_id: String::new(),
            client_secret: None,
            redirect_uri: None,
            scopes: vec!["openid".into(), "email".into(), "profile".into()],
            authorization_url: "https://accounts.google.com/o/oauth2/v2/auth".into(),
            token_url: "https://oauth2.googleapis.com/token".into(),
            userinfo_url: "https://openidconnect.googleapis.com/v1/userinfo".into(),
            jwks_url: "https://www.googleapis.com/oauth2/v3/certs".into(),
            issuer: "https://accounts.google.com".into(),
        }
    }
}

/// `[auth.native.github_oauth]`: sign-in with GitHub (OAuth 2 and GitHub's
/// REST API; GitHub is no OpenID provider). The three URLs default to
/// github.com; GitHub Enterprise Server sets them to its own host
/// (`https://HOST/login/oauth/authorize`, `https://HOST/login/oauth/access_token`,
/// `https://HOST/api/v3`).
#[derive(Debug, Clone, serde::Serialize, Deserialize)]
#[serde(default)]
pub struct GitHubOAuthConfig {
    pub client_id: String,
    pub client_secret: Option<Secret>,
    pub redirect_uri: Option<String>,
    pub scopes: Vec<String>,
    pub authorization_url: String,
    pub token_url: String,
    /// The REST API's base: `{api_url}/user` and `{api_url}/user/emails`.
    pub api_url: String,
}

impl Default for GitHubOAuthConfig {
    fn default() -> Self {
        Self {
            client_id: String::new(),
            client_secret: None,
            redirect_uri: None,
            scopes: vec!["user:email".into()],
            authorization_url: "https://github.com/login/oauth/authorize".into(),
            token_url: "https://github.com/login/oauth/access_token".into(),
            api_url: "https://api.github.com".into(),
        }
    }
}

#[derive(Debug, Clone, serde::Serialize, Deserialize, Default)]
#[serde(default)]
pub struct OidcConfig {
    pub issuer: String,
    pub client_id: String,
    pub client_secret: Option<Secret>,
    pub redirect_uri: Option<String>,
    pub display_name: Option<String>,
    pub scopes: Option<Vec<String>>,
}

#[derive(Debug, Clone, serde::Serialize, Deserialize, Default)]
#[serde(default)]
pub struct CognitoConfig {
    pub user_pool_id: String,
    pub client_id: String,
    pub client_secret: Option<Secret>,
    pub region: String,
    pub domain: Option<String>,
    pub redirect_uri: Option<String>,
    pub access_key_id: Option<String>,
    pub secret_access_key: Option<Secret>,
    pub endpoint: Option<String>,
    pub jwks_url: Option<String>,
    pub issuer: Option<String>,
}

#[derive(Debug, Clone, serde::Serialize, Deserialize, Default)]
#[serde(default)]
pub struct ClerkConfig {
    pub secret_key: Option<Secret>,
    pub jwt_key: Option<String>,
    pub authorized_parties: Vec<String>,
    pub api_url: Option<String>,
    pub sign_in_url: Option<String>,
}

#[derive(Debug, Clone, Copy, serde::Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum SmtpTls {
    Starttls,
    Implicit,
    None,
}

#[derive(Debug, Clone, serde::Serialize, Deserialize)]
#[serde(default)]
pub struct EmailConfig {
    pub site_name: String,
    pub site_url: Option<String>,
    pub from_email: String,
    pub smtp_host: String,
    pub smtp_port: u16,
    pub smtp_user: Option<String>,
    pub smtp_password: Option<Secret>,
    pub tls: Option<SmtpTls>,
    pub use_tls: Option<bool>,
    pub start_tls: Option<bool>,
    pub templates_dir: Option<PathBuf>,
}

impl Default for EmailConfig {
    fn default() -> Self {
        Self {
            site_name: "derp".into(),
            site_url: None,
            from_email: "derp <no-reply@localhost>".into(),
            smtp_host: "localhost".into(),
            smtp_port: 587,
            smtp_user: None,
            smtp_password: None,
            tls: None,
            use_tls: None,
            start_tls: None,
            templates_dir: None,
        }
    }
}

impl EmailConfig {
    /// `tls` wins; then the original library's booleans; then the port's custom
    /// (465 implicit TLS, anything else STARTTLS).
    pub fn effective_tls(&self) -> SmtpTls {
        if let Some(tls) = self.tls {
            return tls;
        }
        match (self.use_tls, self.start_tls) {
            (Some(true), _) => SmtpTls::Implicit,
            (_, Some(true)) => SmtpTls::Starttls,
            (Some(false), Some(false)) => SmtpTls::None,
            _ if self.smtp_port == 465 => SmtpTls::Implicit,
            _ => SmtpTls::Starttls,
        }
    }
}

#[derive(Debug, Clone, serde::Serialize, Deserialize)]
#[serde(default)]
pub struct HostedConfig {
    pub allowed_redirect_urls: Vec<String>,
    pub product_name: String,
    pub logo_url: Option<String>,
    pub primary_color: String,
    /// The language of pages and mail when the browser asks for none that
    /// is shipped (`en`, `de`, `fr`).
    pub default_locale: String,
    /// A stylesheet served after derp's own (read at start and on SIGHUP).
    pub custom_css: Option<PathBuf>,
    /// The text of `custom_css`, read with the configuration.
    #[serde(skip)]
    pub custom_css_text: Option<String>,
}

impl Default for HostedConfig {
    fn default() -> Self {
        Self {
            allowed_redirect_urls: Vec::new(),
            product_name: "derp".into(),
            logo_url: None,
            primary_color: "#4f46e5".into(),
            default_locale: "en".into(),
            custom_css: None,
            custom_css_text: None,
        }
    }
}

/// `[oidc_provider]`: apps sign their users in through derp with OpenID
/// Connect.
#[derive(Debug, Clone, serde::Serialize, Deserialize)]
#[serde(default)]
pub struct OidcProviderConfig {
    pub id_token_signing_alg: JwtAlgorithm,
    /// Life of the access tokens issued to clients
    /// ([auth.native.jwt.access_token_expire_minutes] when absent).
    pub access_token_expire_minutes: Option<u64>,
    /// The table name is the `client_id`.
    pub clients: BTreeMap<String, OidcClientConfig>,
}

impl Default for OidcProviderConfig {
    fn default() -> Self {
        Self {
            id_token_signing_alg: JwtAlgorithm::RS256,
            access_token_expire_minutes: None,
            clients: BTreeMap::new(),
        }
    }
}

/// `[oidc_provider.clients.<client_id>]`.
#[derive(Debug, Clone, serde::Serialize, Deserialize, Default)]
#[serde(default)]
pub struct OidcClientConfig {
    /// Shown on the consent page and in /account.
    pub name: Option<String>,
    /// Absent: a public client, which must use PKCE.
    pub secret: Option<Secret>,
    pub redirect_uris: Vec<String>,
    pub post_logout_redirect_uris: Vec<String>,
    /// The scopes the client may ask for ([openid email profile]).
    pub scopes: Option<Vec<String>>,
    /// Skips the consent page.
    pub first_party: bool,
    /// ([oidc_provider.id_token_signing_alg] when absent).
    pub id_token_signing_alg: Option<JwtAlgorithm>,
}

/// The scopes derp's OpenID Connect provider knows.
pub const OIDC_SCOPES: &[&str] = &["openid", "email", "profile", "offline_access", "orgs"];

/// What a redirect URI registered for a client must look like: absolute,
/// http(s) (plain http only for a loopback host), no fragment.
pub fn valid_client_redirect_uri(uri: &str) -> Result<(), String> {
    let url = url::Url::parse(uri).map_err(|_| format!("`{uri}` is not an absolute URL"))?;
    if url.fragment().is_some() {
        return Err(format!("`{uri}` must not have a fragment"));
    }
    let loopback = matches!(url.host_str(), Some("localhost" | "127.0.0.1" | "[::1]"));
    match url.scheme() {
        "https" => Ok(()),
        "http" if loopback => Ok(()),
        "http" => Err(format!(
            "`{uri}` must use https (plain http only for localhost)"
        )),
        other => Err(format!("`{uri}`: scheme {other} is not allowed")),
    }
}

impl OidcProviderConfig {
    /// Every algorithm an id_token may be signed with (each needs a key).
    pub fn id_token_algs(&self) -> Vec<JwtAlgorithm> {
        let mut out = vec![self.id_token_signing_alg];
        for c in self.clients.values() {
            if let Some(a) = c.id_token_signing_alg
                && !out.contains(&a)
            {
                out.push(a);
            }
        }
        out
    }

    fn validate(&self) -> Result<(), ConfigError> {
        if self.id_token_signing_alg == JwtAlgorithm::HS256 {
            return Err(ConfigError::Invalid(
                "oidc_provider.id_token_signing_alg: must be RS256, ES256 or EdDSA".into(),
            ));
        }
        if self.access_token_expire_minutes == Some(0) {
            return Err(ConfigError::Invalid(
                "oidc_provider.access_token_expire_minutes: must be at least 1".into(),
            ));
        }
        for (id, c) in &self.clients {
            let at = format!("oidc_provider.clients.{id}");
            if id.is_empty()
                || id.len() > 128
                || !id
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
            {
                return Err(ConfigError::Invalid(format!(
                    "{at}: a client id is 1-128 letters, digits, `-`, `_` or `.`"
                )));
            }
            if c.redirect_uris.is_empty() {
                return Err(ConfigError::Invalid(format!(
                    "{at}.redirect_uris: at least one is needed"
                )));
            }
            for uri in c.redirect_uris.iter().chain(&c.post_logout_redirect_uris) {
                valid_client_redirect_uri(uri)
                    .map_err(|e| ConfigError::Invalid(format!("{at}: {e}")))?;
            }
            if let Some(secret) = &c.secret
                && secret.expose().len() < 16
            {
                return Err(ConfigError::Invalid(format!(
                    "{at}.secret: at least 16 bytes are needed (leave it out for a public client)"
                )));
            }
            for scope in c.scopes.iter().flatten() {
                if !OIDC_SCOPES.contains(&scope.as_str()) {
                    return Err(ConfigError::Invalid(format!(
                        "{at}.scopes: unknown scope `{scope}` (known: {})",
                        OIDC_SCOPES.join(", ")
                    )));
                }
            }
            if c.id_token_signing_alg == Some(JwtAlgorithm::HS256) {
                return Err(ConfigError::Invalid(format!(
                    "{at}.id_token_signing_alg: must be RS256, ES256 or EdDSA"
                )));
            }
        }
        Ok(())
    }
}

/// `[orgs]`: organizations.
#[derive(Debug, Clone, serde::Serialize, Deserialize, Default)]
#[serde(default)]
pub struct OrgsConfig {
    /// Custom member roles by name (for example `billing`), next to the
    /// built-in `owner`, `admin` and `member`: each has a member's rights in
    /// derp and is carried by name in `org_role` for apps to check.
    pub roles: Vec<String>,
}

#[derive(Debug, Clone, serde::Serialize, Deserialize, Default)]
#[serde(default)]
pub struct AdminConfig {
    pub service_keys: Vec<Secret>,
}

#[derive(Debug, Clone, serde::Serialize, Deserialize)]
#[serde(default)]
pub struct RateLimitConfig {
    pub sign_in_per_ip: u32,
    pub sign_in_per_account: u32,
    pub sign_up_per_ip: u32,
    pub email_per_address: u32,
    /// Consecutive failed sign-ins for one email address from one source
    /// that lock it for that source (0 turns lockout off).
    pub lockout_after: u32,
    /// Failed sign-ins for one email address from all sources within
    /// `lockout_minutes` that lock it for everyone: the slower brake on
    /// distributed guessing (0 turns it off; otherwise above
    /// `lockout_after`, so that one source alone never reaches it).
    pub lockout_address_after: u32,
    /// How long a lock lasts; failures further apart than this start the
    /// count afresh.
    pub lockout_minutes: u32,
}

impl Default for RateLimitConfig {
    fn default() -> Self {
        Self {
            sign_in_per_ip: 20,
            sign_in_per_account: 10,
            sign_up_per_ip: 10,
            email_per_address: 5,
            lockout_after: 10,
            lockout_address_after: 100,
            lockout_minutes: 15,
        }
    }
}

/// Which user store the configuration selects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BackendKind {
    Native,
    Cognito,
    Clerk,
}

impl Config {
    /// Reads `path`; when `path` is the default and no file exists, returns the
    /// embedded default.
    pub fn load(path: Option<&Path>) -> Result<Self, ConfigError> {
        match path {
            Some(p) => {
                let text = std::fs::read_to_string(p).map_err(|source| ConfigError::Read {
                    path: p.display().to_string(),
                    source,
                })?;
                Self::from_toml(&text)
            }
            None => {
                let default = Path::new("derp.toml");
                if default.exists() {
                    Self::load(Some(default))
                } else {
                    Self::from_toml(EMBEDDED_DEFAULT)
                }
            }
        }
    }

    pub fn from_toml(text: &str) -> Result<Self, ConfigError> {
        let mut value: toml::Value =
            toml::from_str(text).map_err(|e| ConfigError::Parse(e.to_string()))?;
        substitute_env(&mut value, &mut Vec::new())?;
        let ignored_keys = strip_legacy_keys(&mut value);
        let mut unknown: Option<String> = None;
        let mut config: Config = serde_ignored::deserialize(value, |path| {
            if unknown.is_none() {
                // serde_ignored marks `Option` layers with `?`: not part of the key.
                let segments: Vec<String> = path
                    .to_string()
                    .split('.')
                    .filter(|s| *s != "?")
                    .map(str::to_string)
                    .collect();
                unknown = Some(segments.join("."));
            }
        })
        .map_err(|e| ConfigError::Parse(e.to_string()))?;
        if let Some(path) = unknown {
            let (table, key) = match path.rsplit_once('.') {
                Some((t, k)) => (t.to_string(), k.to_string()),
                None => ("root".to_string(), path),
            };
            return Err(ConfigError::UnknownKey { key, table });
        }
        config.ignored_keys = ignored_keys;
        config.validate()?;
        if let Some(path) = &config.hosted.custom_css {
            let css = std::fs::read_to_string(path).map_err(|e| {
                ConfigError::Invalid(format!(
                    "hosted.custom_css: cannot read `{}`: {e}",
                    path.display()
                ))
            })?;
            config.hosted.custom_css_text = Some(css);
        }
        Ok(config)
    }

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
        self.server.bind.parse().map_err(|_| {
            ConfigError::Invalid(format!(
                "server.bind: `{}` is not an address:port",
                self.server.bind
            ))
        })
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

    fn validate(&self) -> Result<(), ConfigError> {
        for (name, endpoint) in &self.webhooks {
            endpoint.validate(name)?;
        }
        let count = [
            self.auth.native.is_some(),
            self.auth.cognito.is_some(),
            self.auth.clerk.is_some(),
        ]
        .iter()
        .filter(|b| **b)
        .count();
        if count > 1 {
            return Err(ConfigError::Invalid(
                "exactly one of [auth.native], [auth.cognito], [auth.clerk] may be configured"
                    .into(),
            ));
        }
        self.bind_addr()?;
        if let Some(url) = &self.server.public_url
            && !(url.starts_with("http://") || url.starts_with("https://"))
        {
            return Err(ConfigError::Invalid(format!(
                "server.public_url: `{url}` must start with http:// or https://"
            )));
        }
        for proxy in &self.server.trusted_proxies {
            parse_proxy(proxy)?;
        }
        let rl = &self.rate_limit;
        if rl.lockout_address_after != 0 && rl.lockout_address_after <= rl.lockout_after {
            return Err(ConfigError::Invalid(format!(
                "rate_limit.lockout_address_after: must be 0 or above lockout_after ({}), got {}",
                rl.lockout_after, rl.lockout_address_after
            )));
        }
        if !matches!(self.server.log_format.as_str(), "json" | "pretty") {
            return Err(ConfigError::Invalid(
                "server.log_format: must be `json` or `pretty`".into(),
            ));
        }
        let timeout = self.server.request_timeout_seconds;
        if !(1..=MAX_REQUEST_TIMEOUT_SECONDS).contains(&timeout) {
            return Err(ConfigError::Invalid(format!(
                "server.request_timeout_seconds: must be 1 to {MAX_REQUEST_TIMEOUT_SECONDS}, got {timeout}"
            )));
        }
        let max = self.server.max_connections;
        if !(1..=MAX_CONNECTIONS).contains(&max) {
            return Err(ConfigError::Invalid(format!(
                "server.max_connections: must be 1 to {MAX_CONNECTIONS}, got {max}"
            )));
        }
        let hsts = self.server.hsts_max_age_seconds;
        if hsts > MAX_HSTS_MAX_AGE_SECONDS {
            return Err(ConfigError::Invalid(format!(
                "server.hsts_max_age_seconds: must be 0 (off) to {MAX_HSTS_MAX_AGE_SECONDS}, got {hsts}"
            )));
        }
        let native = self.native();
        let jwt = &native.jwt;
        match (jwt.effective_algorithm(), &jwt.secret) {
            (JwtAlgorithm::HS256, None) => {
                return Err(ConfigError::Invalid(
                    "auth.native.jwt.secret: HS256 needs a secret of at least 32 bytes".into(),
                ));
            }
            (JwtAlgorithm::HS256, Some(secret)) if secret.expose().len() < 32 => {
                return Err(ConfigError::Invalid(format!(
                    "auth.native.jwt.secret: at least 32 bytes are needed for HS256, got {}",
                    secret.expose().len()
                )));
            }
            (alg, Some(_)) if alg != JwtAlgorithm::HS256 => {
                return Err(ConfigError::Invalid(format!(
                    "auth.native.jwt.secret: only used with HS256, but algorithm is {}",
                    alg.as_str()
                )));
            }
            _ => {}
        }
        if jwt.access_token_expire_minutes == 0 {
            return Err(ConfigError::Invalid(
                "auth.native.jwt.access_token_expire_minutes: must be at least 1".into(),
            ));
        }
        if jwt.refresh_token_expire_days == 0 || native.session_expire_days == 0 {
            return Err(ConfigError::Invalid(
                "auth.native: session_expire_days and jwt.refresh_token_expire_days must be at least 1"
                    .into(),
            ));
        }
        if let Some(label) = &native.mfa.issuer_label
            && (label.trim().is_empty() || label.contains(':'))
        {
            return Err(ConfigError::Invalid(
                "auth.native.mfa.issuer_label: must not be empty or contain `:` (authenticator apps split on it)".into(),
            ));
        }
        if native.mfa.required && !native.mfa.totp {
            return Err(ConfigError::Invalid(
                "auth.native.mfa.required: needs totp = true (no other factor can be enrolled yet)"
                    .into(),
            ));
        }
        if let Some(rp) = &native.mfa.rp_id
            && (rp.is_empty() || rp.contains('/') || rp.contains(':'))
        {
            return Err(ConfigError::Invalid(
                "auth.native.mfa.rp_id: must be a host name (no scheme, port or path)".into(),
            ));
        }
        if let Some(g) = &native.github_oauth {
            if g.client_id.trim().is_empty() || g.client_secret.is_none() {
                return Err(ConfigError::Invalid(
                    "auth.native.github_oauth: client_id and client_secret are required".into(),
                ));
            }
            for (key, url) in [
                ("authorization_url", &g.authorization_url),
                ("token_url", &g.token_url),
                ("api_url", &g.api_url),
            ] {
                if !(url.starts_with("http://") || url.starts_with("https://")) {
                    return Err(ConfigError::Invalid(format!(
                        "auth.native.github_oauth.{key}: `{url}` must start with http:// or https://"
                    )));
                }
            }
        }
        for (name, taken) in [
            ("google", native.google_oauth.is_some()),
            ("github", native.github_oauth.is_some()),
        ] {
            if taken && native.oidc.contains_key(name) {
                return Err(ConfigError::Invalid(format!(
                    "auth.native.oidc.{name}: the name is taken by [auth.native.{name}_oauth]"
                )));
            }
        }
        let pw = &native.password;
        if pw.min_length == 0 || pw.min_length > pw.max_length || pw.max_length > 1024 {
            return Err(ConfigError::Invalid(
                "auth.native.password: need 1 <= min_length <= max_length <= 1024".into(),
            ));
        }
        if let Some(secret) = &self.auth.org_context_secret
            && secret.expose().len() < 32
        {
            return Err(ConfigError::Invalid(
                "auth.org_context_secret: at least 32 bytes are needed".into(),
            ));
        }
        if self.auth.org_context_expire_minutes == Some(0) {
            return Err(ConfigError::Invalid(
                "auth.org_context_expire_minutes: must be at least 1".into(),
            ));
        }
        if let Some(c) = &self.auth.cognito {
            if c.user_pool_id.trim().is_empty() || c.client_id.trim().is_empty() {
                return Err(ConfigError::Invalid(
                    "auth.cognito: user_pool_id and client_id are required".into(),
                ));
            }
            if c.region.trim().is_empty() && !c.user_pool_id.contains('_') {
                return Err(ConfigError::Invalid(
                    "auth.cognito.region: required when user_pool_id has no region prefix".into(),
                ));
            }
            for (key, url) in [
                ("endpoint", &c.endpoint),
                ("jwks_url", &c.jwks_url),
                ("issuer", &c.issuer),
                ("redirect_uri", &c.redirect_uri),
            ] {
                if let Some(url) = url
                    && !(url.starts_with("http://") || url.starts_with("https://"))
                {
                    return Err(ConfigError::Invalid(format!(
                        "auth.cognito.{key}: `{url}` must start with http:// or https://"
                    )));
                }
            }
            if let Some(domain) = c.domain.as_deref().filter(|d| !d.trim().is_empty()) {
                crate::domain::redirect::cognito_domain_base(domain)
                    .map_err(ConfigError::Invalid)?;
            }
        }
        for (i, role) in self.orgs.roles.iter().enumerate() {
            crate::domain::org::valid_role_name(role)
                .map_err(|e| ConfigError::Invalid(format!("orgs.roles: `{role}` {e}")))?;
            if self.orgs.roles[..i].contains(role) {
                return Err(ConfigError::Invalid(format!(
                    "orgs.roles: `{role}` is listed twice"
                )));
            }
        }
        for key in &self.admin.service_keys {
            if key.expose().len() < 32 {
                return Err(ConfigError::Invalid(
                    "admin.service_keys: every key needs at least 32 bytes".into(),
                ));
            }
        }
        let color = &self.hosted.primary_color;
        let hex_ok = color.len() == 4 || color.len() == 7;
        if !(hex_ok && color.starts_with('#') && color[1..].chars().all(|c| c.is_ascii_hexdigit()))
        {
            return Err(ConfigError::Invalid(format!(
                "hosted.primary_color: `{color}` must be a colour like #4f46e5"
            )));
        }
        if crate::domain::i18n::shipped(&self.hosted.default_locale).is_none() {
            return Err(ConfigError::Invalid(format!(
                "hosted.default_locale: `{}` is not a shipped language (one of: {})",
                self.hosted.default_locale,
                crate::domain::i18n::locales().join(", ")
            )));
        }
        if let Some(path) = &self.hosted.custom_css
            && !path.is_file()
        {
            return Err(ConfigError::Invalid(format!(
                "hosted.custom_css: `{}` is not a readable file",
                path.display()
            )));
        }
        for url in &self.hosted.allowed_redirect_urls {
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                return Err(ConfigError::Invalid(format!(
                    "hosted.allowed_redirect_urls: `{url}` must be an absolute http(s) URL"
                )));
            }
        }
        if let Some(p) = &self.oidc_provider {
            if self.backend() != BackendKind::Native {
                return Err(ConfigError::Invalid(
                    "oidc_provider: derp is an OpenID Connect provider for its native users only"
                        .into(),
                ));
            }
            p.validate()?;
        }
        if let Some(email) = &self.email
            && (email.smtp_host.is_empty() || email.from_email.is_empty())
        {
            return Err(ConfigError::Invalid(
                "email: smtp_host and from_email are required".into(),
            ));
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

/// Replaces `"$NAME"` strings by the environment variable `NAME`.
fn substitute_env(value: &mut toml::Value, path: &mut Vec<String>) -> Result<(), ConfigError> {
    match value {
        toml::Value::String(s) => {
            if let Some(var) = s.strip_prefix('$')
                && !var.is_empty()
            {
                *s = std::env::var(var).map_err(|_| ConfigError::UnsetVariable {
                    var: var.to_string(),
                    key: path.join("."),
                })?;
            }
        }
        toml::Value::Array(items) => {
            for (i, item) in items.iter_mut().enumerate() {
                path.push(i.to_string());
                substitute_env(item, path)?;
                path.pop();
            }
        }
        toml::Value::Table(table) => {
            for (k, v) in table.iter_mut() {
                path.push(k.clone());
                substitute_env(v, path)?;
                path.pop();
            }
        }
        _ => {}
    }
    Ok(())
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
    fn unknown_key_is_named_with_its_table() {
        let err = Config::from_toml("[auth.native.jwt]\nsecrett = \"x\"\n").unwrap_err();
        assert_eq!(
            err.to_string(),
            "unknown key `secrett` in table [auth.native.jwt]"
        );
    }

    #[test]
    fn mfa_keys_are_read_checked_and_unknown_ones_refused() {
        let c = Config::from_toml(
            "[auth.native.mfa]\ntotp = false\npasskeys = false\nrequired = false\nrp_id = \"auth.example.com\"\nissuer_label = \"Acme\"\n",
        )
        .unwrap();
        let m = c.native().mfa;
        assert!(!m.totp && !m.passkeys && !m.required);
        assert_eq!(m.issuer_label.as_deref(), Some("Acme"));
        let d = Config::from_toml("").unwrap().native().mfa;
        assert!(d.totp && d.passkeys && !d.required && d.issuer_label.is_none());
        let err = Config::from_toml("[auth.native.mfa]\ntotpp = true\n").unwrap_err();
        assert_eq!(
            err.to_string(),
            "unknown key `totpp` in table [auth.native.mfa]"
        );
        assert!(Config::from_toml("[auth.native.mfa]\nissuer_label = \"A:B\"\n").is_err());
        assert!(Config::from_toml("[auth.native.mfa]\nrp_id = \"https://x\"\n").is_err());
        // Required, with nothing that could be enrolled: refused at load.
        let err = Config::from_toml("[auth.native.mfa]\nrequired = true\ntotp = false\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("auth.native.mfa.required"), "{err}");
        assert!(
            Config::from_toml("[auth.native.mfa]\nrequired = true\n")
                .unwrap()
                .native()
                .mfa
                .required
        );
    }

    #[test]
    fn custom_org_roles_are_checked() {
        let c = Config::from_toml("[orgs]\nroles = [\"billing\", \"org:support\"]\n").unwrap();
        assert_eq!(c.orgs.roles, ["billing", "org:support"]);
        for (bad, says) in [
            ("[\"owner\"]", "built-in"),
            ("[\"Billing\"]", "a-z"),
            ("[\"billing\", \"billing\"]", "twice"),
            ("[\"\"]", "a-z"),
        ] {
            let err = Config::from_toml(&format!("[orgs]\nroles = {bad}\n")).unwrap_err();
            assert!(err.to_string().contains(says), "{bad}: {err}");
            assert!(err.to_string().contains("orgs.roles"), "{err}");
        }
        let err = Config::from_toml("[orgs]\nrole = [\"x\"]\n").unwrap_err();
        assert!(err.to_string().contains("role"), "{err}");
    }

    #[test]
    fn github_oauth_is_checked() {
        let gh = |rest: &str| Config::from_toml(&format!("[auth.native.github_oauth]\n{rest}"));
        let err = gh("client_id = \"a\"\n").unwrap_err();
        assert!(err.to_string().contains("client_secret"), "{err}");
        let err = gh("client_id = \"a\"\nclient_secret = \"b\"\napi_url = \"api.example.com\"\n")
            .unwrap_err();
        assert!(err.to_string().contains("github_oauth.api_url"), "{err}");
        let err = gh("client_id = \"a\"\nclient_secret = \"b\"\napi_urll = \"x\"\n").unwrap_err();
        assert!(err.to_string().contains("api_urll"), "{err}");
        let err = gh("client_id = \"a\"\nclient_secret = \"b\"\n\
                      [auth.native.oidc.github]\nissuer = \"https://x.example.com\"\nclient_id = \"c\"\n")
            .unwrap_err();
        assert!(err.to_string().contains("auth.native.oidc.github"), "{err}");
        let c = gh("client_id = \"a\"\nclient_secret = \"b\"\n\
                    api_url = \"https://ghe.example.com/api/v3\"\n")
        .unwrap();
        let g = c.native().github_oauth.unwrap();
        assert_eq!(g.api_url, "https://ghe.example.com/api/v3");
        assert_eq!(g.token_url, "https://github.com/login/oauth/access_token");
    }

    #[test]
    fn the_original_librarys_leftover_keys_are_ignored_with_a_warning_each() {
        let c = Config::from_toml(
            "[database]\nurl = \"postgresql://x\"\n\
             [kv.valkey]\naddresses = [[\"localhost\", 6379]]\n\
             [auth.native]\nuse_kv_cache = true\ncache_prefix = \"derp:auth\"\n\
             cache_session_ttl_seconds = 300\ncache_user_ttl_seconds = 300\n\
             enable_magic_link = true\n\
             [auth.native.github_oauth]\nclient_id = \"a\"\nclient_secret = \"b\"\n\
             redirect_uri = \"http://localhost/cb\"\n",
        )
        .unwrap();
        assert_eq!(c.ignored_keys.len(), 6, "{:?}", c.ignored_keys);
        let warnings = c.warnings();
        for key in LEGACY_KEYS {
            assert!(
                warnings.iter().any(|w| w.contains(&format!("`{key}`"))),
                "{key}: {warnings:?}"
            );
        }
        assert!(c.native().enable_magic_link);
        // GitHub sign-in is derp's too: the original's table configures it.
        let gh = c.native().github_oauth.unwrap();
        assert_eq!(gh.client_id, "a");
        assert_eq!(gh.redirect_uri.as_deref(), Some("http://localhost/cb"));
        assert_eq!(gh.scopes, ["user:email"]);
        assert!(!c.ignored_keys.iter().any(|k| k.contains("github")));
        // Anything else stays an error, next to the ignored keys too.
        let err = Config::from_toml("[kv.valkey]\nmode = \"standalone\"\n[kv.redis]\nx = 1\n")
            .unwrap_err();
        // (`[kv]` is no table of derp's: what is left of it is the unknown key.)
        assert_eq!(err.to_string(), "unknown key `kv` in table [root]");
        let err = Config::from_toml("[auth.native]\ncache_everything = true\n").unwrap_err();
        assert!(err.to_string().contains("cache_everything"), "{err}");
    }

    #[test]
    fn unset_variable_is_named() {
        let err = Config::from_toml("[auth.native.jwt]\nsecret = \"$DERP_TEST_SURELY_UNSET\"\n")
            .unwrap_err();
        assert!(err.to_string().contains("DERP_TEST_SURELY_UNSET"));
        assert!(err.to_string().contains("auth.native.jwt.secret"));
    }

    #[test]
    fn short_hs256_secret_is_refused() {
        let err = Config::from_toml("[auth.native.jwt]\nsecret = \"short\"\n").unwrap_err();
        assert!(err.to_string().contains("32 bytes"), "{err}");
    }

    #[test]
    fn two_backends_are_refused() {
        let err =
            Config::from_toml("[auth.native]\n[auth.clerk]\nsecret_key=\"sk\"\n").unwrap_err();
        assert!(err.to_string().contains("exactly one"));
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
    fn cognito_domain_and_redirect_uri_are_checked() {
        let cognito = |extra: &str| {
            Config::from_toml(&format!(
                "[auth]\norg_context_secret = \"0123456789abcdef0123456789abcdef\"\n\
                 [auth.cognito]\nuser_pool_id = \"us-east-1_abc\"\nclient_id = \"c\"\n{extra}"
            ))
        };
        assert!(cognito("domain = \"myapp.auth.us-east-1.amazoncognito.com\"\n").is_ok());
        assert!(cognito("domain = \"http://127.0.0.1:9229\"\n").is_ok());
        let err = cognito("domain = \"myapp.example.com/oauth2\"\n").unwrap_err();
        assert!(err.to_string().contains("auth.cognito.domain"), "{err}");
        let err = cognito("domain = \"h.example.com\"\nredirect_uri = \"app.example.com/cb\"\n")
            .unwrap_err();
        assert!(
            err.to_string().contains("auth.cognito.redirect_uri"),
            "{err}"
        );
    }

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

    #[test]
    fn the_per_address_brake_must_be_off_or_above_the_per_source_lock() {
        let c = Config::from_toml(EMBEDDED_DEFAULT).unwrap();
        assert_eq!(c.rate_limit.lockout_after, 10);
        assert_eq!(c.rate_limit.lockout_address_after, 100);
        for ok in ["lockout_address_after = 0", "lockout_address_after = 11"] {
            Config::from_toml(&format!("[rate_limit]\n{ok}\n")).unwrap();
        }
        for bad in ["lockout_address_after = 10", "lockout_address_after = 3"] {
            let err = Config::from_toml(&format!("[rate_limit]\n{bad}\n")).unwrap_err();
            assert!(
                err.to_string().contains("rate_limit.lockout_address_after"),
                "{bad}: {err}"
            );
        }
    }

    #[test]
    fn smtp_tls_follows_port_and_original_booleans() {
        let mut e = EmailConfig::default();
        assert_eq!(e.effective_tls(), SmtpTls::Starttls);
        e.smtp_port = 465;
        assert_eq!(e.effective_tls(), SmtpTls::Implicit);
        e.use_tls = Some(false);
        e.start_tls = Some(false);
        assert_eq!(e.effective_tls(), SmtpTls::None);
        e.tls = Some(SmtpTls::Starttls);
        assert_eq!(e.effective_tls(), SmtpTls::Starttls);
    }

    #[test]
    fn oidc_provider_clients_are_validated() {
        let ok = "[oidc_provider.clients.grafana]\nname = \"Grafana\"\nsecret = \"0123456789abcdef\"\nredirect_uris = [\"https://grafana.example.com/login/generic_oauth\"]\nscopes = [\"openid\", \"orgs\"]\n";
        let c = Config::from_toml(ok).unwrap();
        let p = c.oidc_provider.unwrap();
        assert_eq!(p.id_token_signing_alg, JwtAlgorithm::RS256);
        assert_eq!(p.id_token_algs(), vec![JwtAlgorithm::RS256]);
        assert!(p.clients["grafana"].secret.is_some());
        let refused = |toml: &str, needle: &str| {
            let err = Config::from_toml(toml).unwrap_err().to_string();
            assert!(err.contains(needle), "{err}");
        };
        let client = "[oidc_provider.clients.app]\n";
        refused(
            &format!("{client}redirect_uris = [\"http://app.example.com/cb\"]\n"),
            "https",
        );
        refused(
            &format!("{client}redirect_uris = [\"https://app.example.com/cb#x\"]\n"),
            "fragment",
        );
        refused(&format!("{client}redirect_uris = []\n"), "at least one");
        refused(
            &format!("{client}redirect_uris = [\"https://a.example/cb\"]\nscopes = [\"admin\"]\n"),
            "unknown scope",
        );
        refused(
            &format!("{client}redirect_uris = [\"https://a.example/cb\"]\nsecret = \"short\"\n"),
            "16 bytes",
        );
        refused(
            &format!("{client}redirect_uris = [\"https://a.example/cb\"]\nfirst = true\n"),
            "unknown key `first`",
        );
        refused(
            "[oidc_provider]\nid_token_signing_alg = \"HS256\"\n",
            "RS256, ES256 or EdDSA",
        );
        refused(
            "[oidc_provider]\n[auth.cognito]\nuser_pool_id = \"eu-west-1_x\"\nclient_id = \"c\"\n",
            "native users only",
        );
        // Loopback may use plain http (development).
        assert!(
            Config::from_toml(&format!(
                "{client}redirect_uris = [\"http://127.0.0.1:3000/cb\"]\n"
            ))
            .is_ok()
        );
    }
}
