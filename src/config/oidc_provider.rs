//! `[oidc_provider]`: derp as an OpenID Connect provider for other apps,
//! with its registered clients.

use super::native::JwtAlgorithm;
use super::{ConfigError, Secret};
use serde::Deserialize;
use std::collections::BTreeMap;

/// `[oidc_provider]`: apps sign their users in through derp with OpenID
/// Connect.
#[derive(Debug, Clone, PartialEq, serde::Serialize, Deserialize)]
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
#[derive(Debug, Clone, PartialEq, serde::Serialize, Deserialize, Default)]
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

    pub(super) fn validate(&self) -> Result<(), ConfigError> {
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

#[cfg(test)]
mod tests {
    use crate::config::{Config, JwtAlgorithm};

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
