//! `[auth.native]`: derp's own user store: sessions and tokens, passwords,
//! second factors and the sign-in providers.

use super::{ConfigError, Secret};
use serde::Deserialize;
use std::collections::BTreeMap;

#[derive(Debug, Clone, PartialEq, serde::Serialize, Deserialize)]
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
#[derive(Debug, Clone, PartialEq, serde::Serialize, Deserialize)]
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

#[derive(Debug, Clone, PartialEq, serde::Serialize, Deserialize)]
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

#[derive(Debug, Clone, PartialEq, serde::Serialize, Deserialize)]
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
#[derive(Debug, Clone, PartialEq, serde::Serialize, Deserialize)]
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

#[derive(Debug, Clone, PartialEq, serde::Serialize, Deserialize, Default)]
#[serde(default)]
pub struct OidcConfig {
    pub issuer: String,
    pub client_id: String,
    pub client_secret: Option<Secret>,
    pub redirect_uri: Option<String>,
    pub display_name: Option<String>,
    pub scopes: Option<Vec<String>>,
}

impl NativeConfig {
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        self.jwt.validate()?;
        if self.jwt.refresh_token_expire_days == 0 || self.session_expire_days == 0 {
            return Err(ConfigError::Invalid(
                "auth.native: session_expire_days and jwt.refresh_token_expire_days must be at least 1"
                    .into(),
            ));
        }
        self.mfa.validate()?;
        if let Some(g) = &self.github_oauth {
            g.validate()?;
        }
        for (name, taken) in [
            ("google", self.google_oauth.is_some()),
            ("github", self.github_oauth.is_some()),
        ] {
            if taken && self.oidc.contains_key(name) {
                return Err(ConfigError::Invalid(format!(
                    "auth.native.oidc.{name}: the name is taken by [auth.native.{name}_oauth]"
                )));
            }
        }
        let pw = &self.password;
        if pw.min_length == 0 || pw.min_length > pw.max_length || pw.max_length > 1024 {
            return Err(ConfigError::Invalid(
                "auth.native.password: need 1 <= min_length <= max_length <= 1024".into(),
            ));
        }
        Ok(())
    }
}

impl JwtConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        match (self.effective_algorithm(), &self.secret) {
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
        if self.access_token_expire_minutes == 0 {
            return Err(ConfigError::Invalid(
                "auth.native.jwt.access_token_expire_minutes: must be at least 1".into(),
            ));
        }
        Ok(())
    }
}

impl MfaConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        if let Some(label) = &self.issuer_label
            && (label.trim().is_empty() || label.contains(':'))
        {
            return Err(ConfigError::Invalid(
                "auth.native.mfa.issuer_label: must not be empty or contain `:` (authenticator apps split on it)".into(),
            ));
        }
        if self.required && !self.totp {
            return Err(ConfigError::Invalid(
                "auth.native.mfa.required: needs totp = true (the one factor every browser and client can enroll; passkeys are offered beside it where available)"
                    .into(),
            ));
        }
        if let Some(rp) = &self.rp_id
            && (rp.is_empty() || rp.contains('/') || rp.contains(':'))
        {
            return Err(ConfigError::Invalid(
                "auth.native.mfa.rp_id: must be a host name (no scheme, port or path)".into(),
            ));
        }
        Ok(())
    }
}

impl GitHubOAuthConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        if self.client_id.trim().is_empty() || self.client_secret.is_none() {
            return Err(ConfigError::Invalid(
                "auth.native.github_oauth: client_id and client_secret are required".into(),
            ));
        }
        for (key, url) in [
            ("authorization_url", &self.authorization_url),
            ("token_url", &self.token_url),
            ("api_url", &self.api_url),
        ] {
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                return Err(ConfigError::Invalid(format!(
                    "auth.native.github_oauth.{key}: `{url}` must start with http:// or https://"
                )));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use crate::config::Config;

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
    fn short_hs256_secret_is_refused() {
        let err = Config::from_toml("[auth.native.jwt]\nsecret = \"short\"\n").unwrap_err();
        assert!(err.to_string().contains("32 bytes"), "{err}");
    }
}
