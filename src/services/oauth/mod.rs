//! Sign-in with Google, GitHub and any OpenID Connect provider (native backend).
//!
//! The oauth2 crate builds the authorization URL (server-made `state`, PKCE
//! S256, an OIDC `nonce`) and exchanges the code. The id_token is verified
//! here: signature against the provider's JWKS (cached, refetched on an
//! unknown `kid` at most once a minute), `iss`, `aud`, `exp`, `nonce`.
//! GitHub is no OpenID provider: its access token reads the REST API's
//! `/user` (the subject: the numeric id) and `/user/emails`, whose primary
//! address is the identity's email, verified only when GitHub says so.
//! Generic providers are found by discovery (`/.well-known/openid-configuration`),
//! cached for an hour. Every outbound call has a timeout; a provider that is
//! down is a clean 502.
//!
//! By step: `discovery` (which provider a name means), `flow` (the
//! authorization URL and its `state`), `exchange` (the code turned into a
//! verified identity).

mod discovery;
mod exchange;
mod flow;

use crate::clock::Clock;
use crate::config::{NativeConfig, Secret};
use crate::error::{AuthError, AuthResult};
use jsonwebtoken::jwk::JwkSet;
use oauth2::basic::{
    BasicErrorResponse, BasicRevocationErrorResponse, BasicTokenIntrospectionResponse,
    BasicTokenType,
};
use oauth2::reqwest;
use oauth2::{
    Client, EndpointNotSet, EndpointSet, ExtraTokenFields, StandardRevocableToken,
    StandardTokenResponse,
};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct IdTokenFields {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id_token: Option<String>,
}
impl ExtraTokenFields for IdTokenFields {}

type TokenResponseWithId = StandardTokenResponse<IdTokenFields, BasicTokenType>;
type OidcClient = Client<
    BasicErrorResponse,
    TokenResponseWithId,
    BasicTokenIntrospectionResponse,
    StandardRevocableToken,
    BasicRevocationErrorResponse,
    EndpointSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointSet,
>;

/// A provider's endpoints and credentials, resolved.
#[derive(Debug, Clone)]
pub struct Provider {
    pub name: String,
    pub display_name: String,
    pub client_id: String,
    pub client_secret: Option<Secret>,
    pub authorization_url: String,
    pub token_url: String,
    pub userinfo_url: Option<String>,
    pub jwks_url: String,
    pub issuer: String,
    pub scopes: Vec<String>,
    pub redirect_uri: String,
    pub kind: Kind,
}

/// What the provider's access token leads to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    /// OpenID Connect: a verified id_token (and userinfo).
    Oidc,
    /// GitHub: the REST API at this base URL.
    GitHub { api_url: String },
}

/// The version of GitHub's REST API derp speaks.
const GITHUB_API_VERSION: &str = "2022-11-28";

/// How a provider is known: fully configured, or by discovery.
#[derive(Debug, Clone)]
enum Source {
    Static(Provider),
    Discovery {
        name: String,
        display_name: String,
        issuer: String,
        client_id: String,
        client_secret: Option<Secret>,
        scopes: Vec<String>,
        redirect_uri: String,
    },
}

pub use crate::domain::ExternalIdentity;

/// What the browser carries between the start of the flow and the callback
/// (sealed in an encrypted cookie by the http layer).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Flow {
    pub provider: String,
    pub state: String,
    pub verifier: String,
    pub nonce: String,
    pub expires_at: i64,
    /// Where to send the browser afterwards (an allow-listed app, or none).
    pub redirect_to: Option<String>,
    pub app_state: Option<String>,
    pub app_code_challenge: Option<String>,
}

/// A flow lives ten minutes.
pub const FLOW_TTL: i64 = 600;

impl Flow {
    /// The callback belongs to this flow: same provider, not expired, and
    /// the `state` this browser was given (compared in constant time).
    pub fn check(&self, provider: &str, state: &str, now: i64) -> AuthResult<()> {
        if self.provider != provider
            || self.expires_at < now
            || !crate::auth::secrets::constant_time_eq(self.state.as_bytes(), state.as_bytes())
        {
            return Err(AuthError::field(
                "state",
                "does not match this browser's sign-in (expired or tampered)",
            ));
        }
        Ok(())
    }
}

pub struct OAuthService {
    sources: BTreeMap<String, Source>,
    http: reqwest::Client,
    clock: Arc<dyn Clock>,
    discovered: Mutex<HashMap<String, (Instant, Provider)>>,
    keys: Mutex<HashMap<String, (Instant, JwkSet)>>,
    public_url: String,
    /// Flows whose browser leg ends at the app (the provider's
    /// `redirect_uri` is the app's): derp's PKCE verifier and nonce, by
    /// `(provider, state)`, until the app signs in with the code and the
    /// `state` ([`OAuthService::sign_in_with_code`]). In memory: a restart
    /// forgets them (they live ten minutes anyway).
    pending: Mutex<HashMap<(String, String), Pending>>,
}

#[derive(Debug, Clone)]
struct Pending {
    verifier: String,
    nonce: String,
    expires_at: i64,
}

/// At most this many app-run flows wait at once (each is a few hundred
/// bytes); past it, starting one is refused until some finish or expire.
const MAX_PENDING: usize = 10_000;

impl std::fmt::Debug for OAuthService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OAuthService")
            .field("providers", &self.sources.keys())
            .finish()
    }
}

fn upstream(what: &str, e: impl std::fmt::Display) -> AuthError {
    tracing::warn!(error = %e, "{what} failed");
    AuthError::Upstream(format!("{what}: {e}"))
}

impl OAuthService {
    pub fn new(cfg: &NativeConfig, public_url: &str, clock: Arc<dyn Clock>) -> AuthResult<Self> {
        let callback = |name: &str| format!("{public_url}/api/v1/auth/oauth/{name}/callback");
        let mut sources = BTreeMap::new();
        if let Some(g) = &cfg.google_oauth {
            sources.insert(
                "google".to_string(),
                Source::Static(Provider {
                    name: "google".into(),
                    display_name: "Google".into(),
                    client_id: g.client_id.clone(),
                    client_secret: g.client_secret.clone(),
                    authorization_url: g.authorization_url.clone(),
                    token_url: g.token_url.clone(),
                    userinfo_url: Some(g.userinfo_url.clone()),
                    jwks_url: g.jwks_url.clone(),
                    issuer: g.issuer.clone(),
                    scopes: g.scopes.clone(),
                    redirect_uri: g.redirect_uri.clone().unwrap_or_else(|| callback("google")),
                    kind: Kind::Oidc,
                }),
            );
        }
        if let Some(g) = &cfg.github_oauth {
            sources.insert(
                "github".to_string(),
                Source::Static(Provider {
                    name: "github".into(),
                    display_name: "GitHub".into(),
                    client_id: g.client_id.clone(),
                    client_secret: g.client_secret.clone(),
                    authorization_url: g.authorization_url.clone(),
                    token_url: g.token_url.clone(),
                    userinfo_url: None,
                    jwks_url: String::new(),
                    issuer: String::new(),
                    scopes: g.scopes.clone(),
                    redirect_uri: g.redirect_uri.clone().unwrap_or_else(|| callback("github")),
                    kind: Kind::GitHub {
                        api_url: g.api_url.trim_end_matches('/').to_string(),
                    },
                }),
            );
        }
        for (name, o) in &cfg.oidc {
            sources.insert(
                name.clone(),
                Source::Discovery {
                    name: name.clone(),
                    display_name: o.display_name.clone().unwrap_or_else(|| name.clone()),
                    issuer: o.issuer.trim_end_matches('/').to_string(),
                    client_id: o.client_id.clone(),
                    client_secret: o.client_secret.clone(),
                    scopes: o
                        .scopes
                        .clone()
                        .unwrap_or_else(|| vec!["openid".into(), "email".into(), "profile".into()]),
                    redirect_uri: o.redirect_uri.clone().unwrap_or_else(|| callback(name)),
                },
            );
        }
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(10))
            .connect_timeout(Duration::from_secs(5))
            .build()
            .map_err(AuthError::internal)?;
        Ok(Self {
            sources,
            http,
            clock,
            discovered: Mutex::new(HashMap::new()),
            keys: Mutex::new(HashMap::new()),
            public_url: public_url.trim_end_matches('/').to_string(),
            pending: Mutex::new(HashMap::new()),
        })
    }

    /// `(name, display name)` of every configured provider, for buttons.
    pub fn providers(&self) -> Vec<(String, String)> {
        self.sources
            .iter()
            .map(|(name, s)| match s {
                Source::Static(p) => (name.clone(), p.display_name.clone()),
                Source::Discovery { display_name, .. } => (name.clone(), display_name.clone()),
            })
            .collect()
    }

    pub fn is_configured(&self, name: &str) -> bool {
        self.sources.contains_key(name)
    }
}
