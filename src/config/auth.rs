//! `[auth]`: which user store derp fronts (exactly one of `[auth.native]`,
//! `[auth.cognito]`, `[auth.clerk]`) and the org context shared by all.

use super::native::NativeConfig;
use super::{ConfigError, Secret};
use serde::Deserialize;

#[derive(Debug, Clone, PartialEq, serde::Serialize, Deserialize, Default)]
#[serde(default)]
pub struct AuthConfig {
    pub native: Option<NativeConfig>,
    pub cognito: Option<CognitoConfig>,
    pub clerk: Option<ClerkConfig>,
    pub org_context_secret: Option<Secret>,
    pub org_context_expire_minutes: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize, Deserialize, Default)]
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

#[derive(Debug, Clone, PartialEq, serde::Serialize, Deserialize, Default)]
#[serde(default)]
pub struct ClerkConfig {
    pub secret_key: Option<Secret>,
    pub jwt_key: Option<String>,
    pub authorized_parties: Vec<String>,
    pub api_url: Option<String>,
    pub sign_in_url: Option<String>,
}

impl AuthConfig {
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        let count = [
            self.native.is_some(),
            self.cognito.is_some(),
            self.clerk.is_some(),
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
        // Without a backend table the native defaults apply, which are valid.
        if let Some(native) = &self.native {
            native.validate()?;
        }
        if let Some(secret) = &self.org_context_secret
            && secret.expose().len() < 32
        {
            return Err(ConfigError::Invalid(
                "auth.org_context_secret: at least 32 bytes are needed".into(),
            ));
        }
        if self.org_context_expire_minutes == Some(0) {
            return Err(ConfigError::Invalid(
                "auth.org_context_expire_minutes: must be at least 1".into(),
            ));
        }
        if let Some(c) = &self.cognito {
            c.validate()?;
        }
        Ok(())
    }
}

impl CognitoConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        if self.user_pool_id.trim().is_empty() || self.client_id.trim().is_empty() {
            return Err(ConfigError::Invalid(
                "auth.cognito: user_pool_id and client_id are required".into(),
            ));
        }
        if self.region.trim().is_empty() && !self.user_pool_id.contains('_') {
            return Err(ConfigError::Invalid(
                "auth.cognito.region: required when user_pool_id has no region prefix".into(),
            ));
        }
        for (key, url) in [
            ("endpoint", &self.endpoint),
            ("jwks_url", &self.jwks_url),
            ("issuer", &self.issuer),
            ("redirect_uri", &self.redirect_uri),
        ] {
            if let Some(url) = url
                && !(url.starts_with("http://") || url.starts_with("https://"))
            {
                return Err(ConfigError::Invalid(format!(
                    "auth.cognito.{key}: `{url}` must start with http:// or https://"
                )));
            }
        }
        if let Some(domain) = self.domain.as_deref().filter(|d| !d.trim().is_empty()) {
            crate::domain::redirect::cognito_domain_base(domain).map_err(ConfigError::Invalid)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use crate::config::Config;

    #[test]
    fn two_backends_are_refused() {
        let err =
            Config::from_toml("[auth.native]\n[auth.clerk]\nsecret_key=\"sk\"\n").unwrap_err();
        assert!(err.to_string().contains("exactly one"));
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
}
