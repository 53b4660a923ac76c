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

use crate::auth::secrets::random_token;
use crate::clock::Clock;
use crate::config::{NativeConfig, Secret};
use crate::error::{AuthError, AuthResult};
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{DecodingKey, Validation};
use oauth2::basic::{
    BasicErrorResponse, BasicRevocationErrorResponse, BasicTokenIntrospectionResponse,
    BasicTokenType,
};
use oauth2::reqwest;
use oauth2::{
    AuthUrl, AuthorizationCode, Client, ClientId, ClientSecret, CsrfToken, EndpointNotSet,
    EndpointSet, ExtraTokenFields, PkceCodeChallenge, PkceCodeVerifier, RedirectUrl, Scope,
    StandardRevocableToken, StandardTokenResponse, TokenResponse, TokenUrl,
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

#[derive(Debug, Deserialize)]
struct Discovery {
    issuer: String,
    authorization_endpoint: String,
    token_endpoint: String,
    userinfo_endpoint: Option<String>,
    jwks_uri: String,
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

    async fn provider(&self, name: &str) -> AuthResult<Provider> {
        let source = self
            .sources
            .get(name)
            .ok_or(AuthError::NotFound("provider"))?;
        let (name, display_name, issuer, client_id, client_secret, scopes, redirect_uri) =
            match source {
                Source::Static(p) => return Ok(p.clone()),
                Source::Discovery {
                    name,
                    display_name,
                    issuer,
                    client_id,
                    client_secret,
                    scopes,
                    redirect_uri,
                } => (
                    name,
                    display_name,
                    issuer,
                    client_id,
                    client_secret,
                    scopes,
                    redirect_uri,
                ),
            };
        if let Some((at, p)) = self
            .discovered
            .lock()
            .map_err(AuthError::internal)?
            .get(name)
            && at.elapsed() < Duration::from_secs(3600)
        {
            return Ok(p.clone());
        }
        let url = format!("{issuer}/.well-known/openid-configuration");
        let doc: Discovery = self
            .http
            .get(&url)
            .send()
            .await
            .and_then(|r| r.error_for_status())
            .map_err(|e| upstream("discovery", e))?
            .bytes()
            .await
            .map_err(|e| upstream("discovery document", e))
            .and_then(|b| {
                serde_json::from_slice(&b).map_err(|e| upstream("discovery document", e))
            })?;
        if doc.issuer.trim_end_matches('/') != issuer {
            return Err(AuthError::Upstream(format!(
                "discovery names issuer {} instead of {issuer}",
                doc.issuer
            )));
        }
        let p = Provider {
            name: name.clone(),
            display_name: display_name.clone(),
            client_id: client_id.clone(),
            client_secret: client_secret.clone(),
            authorization_url: doc.authorization_endpoint,
            token_url: doc.token_endpoint,
            userinfo_url: doc.userinfo_endpoint,
            jwks_url: doc.jwks_uri,
            issuer: doc.issuer,
            scopes: scopes.clone(),
            redirect_uri: redirect_uri.clone(),
            kind: Kind::Oidc,
        };
        self.discovered
            .lock()
            .map_err(AuthError::internal)?
            .insert(name.clone(), (Instant::now(), p.clone()));
        Ok(p)
    }

    fn client(p: &Provider, redirect_uri: &str) -> AuthResult<OidcClient> {
        let bad = |what: &str| AuthError::internal(format!("provider {}: bad {what} URL", p.name));
        let mut client = Client::new(ClientId::new(p.client_id.clone()))
            .set_auth_uri(
                AuthUrl::new(p.authorization_url.clone()).map_err(|_| bad("authorization"))?,
            )
            .set_token_uri(TokenUrl::new(p.token_url.clone()).map_err(|_| bad("token"))?)
            .set_redirect_uri(
                RedirectUrl::new(redirect_uri.to_string()).map_err(|_| bad("redirect"))?,
            );
        if let Some(secret) = &p.client_secret {
            client = client.set_client_secret(ClientSecret::new(secret.expose().to_string()));
        }
        if matches!(p.kind, Kind::GitHub { .. }) {
            // GitHub documents client_id and client_secret as parameters
            // of the token request, not HTTP Basic.
            client = client.set_auth_type(oauth2::AuthType::RequestBody);
        }
        Ok(client)
    }

    /// Whether the provider sends the browser back to the app (its
    /// `redirect_uri` is not derp's): the app then signs in with the code
    /// at `POST /oauth/{provider}/sign-in`.
    fn ends_at_app(&self, p: &Provider) -> bool {
        !p.redirect_uri.starts_with(&format!("{}/", self.public_url))
    }

    /// Starts a flow: the provider URL and what the browser must carry back.
    ///
    /// When the browser leg ends at derp's callback, `state` in the URL is
    /// derp's own and the app's `state` and `code_challenge` are for derp's
    /// code, later. When it ends at the app (the original library's
    /// two-step flow), the code the app gets is the provider's, so the
    /// URL carries the app's `state` (or a new one, in the returned
    /// [`Flow`]), and the app's `code_challenge` when given (the app sends
    /// its verifier to sign-in); without one, derp keeps its own verifier
    /// bound to `(provider, state)` for [`Self::sign_in_with_code`].
    pub async fn start(
        &self,
        name: &str,
        redirect_to: Option<String>,
        app_state: Option<String>,
        app_code_challenge: Option<String>,
        login_hint: Option<String>,
    ) -> AuthResult<(String, Flow)> {
        let p = self.provider(name).await?;
        let client = Self::client(&p, &p.redirect_uri)?;
        let at_app = self.ends_at_app(&p);
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let nonce = random_token();
        let state = match (at_app, &app_state) {
            (true, Some(s)) if !s.is_empty() => s.clone(),
            _ => random_token(),
        };
        let state_for_url = state.clone();
        let mut req = client.authorize_url(move || CsrfToken::new(state_for_url));
        if p.kind == Kind::Oidc {
            req = req.add_extra_param("nonce", nonce.clone());
        }
        let app_pkce = at_app && app_code_challenge.is_some();
        req = match (&app_code_challenge, app_pkce) {
            (Some(c), true) => req
                .add_extra_param("code_challenge", c.clone())
                .add_extra_param("code_challenge_method", "S256"),
            _ => req.set_pkce_challenge(challenge),
        };
        for scope in &p.scopes {
            req = req.add_scope(Scope::new(scope.clone()));
        }
        if let Some(hint) = &login_hint {
            req = req.add_extra_param("login_hint", hint.clone());
        }
        let (url, _) = req.url();
        if at_app && !app_pkce {
            self.keep_pending(
                &p.name,
                &state,
                Pending {
                    verifier: verifier.secret().clone(),
                    nonce: nonce.clone(),
                    expires_at: self.clock.unix() + FLOW_TTL,
                },
            )?;
        }
        let flow = Flow {
            provider: p.name.clone(),
            state,
            verifier: verifier.secret().clone(),
            nonce,
            expires_at: self.clock.unix() + FLOW_TTL,
            redirect_to,
            app_state,
            app_code_challenge,
        };
        Ok((url.to_string(), flow))
    }

    /// The browser is back: checks the flow, exchanges the code, verifies the
    /// id_token (with the nonce).
    pub async fn finish(
        &self,
        name: &str,
        code: &str,
        state: &str,
        flow: &Flow,
    ) -> AuthResult<ExternalIdentity> {
        flow.check(name, state, self.clock.unix())?;
        let p = self.provider(name).await?;
        self.exchange(
            &p,
            code,
            Some(flow.verifier.clone()),
            &p.redirect_uri,
            Some(&flow.nonce),
        )
        .await
    }

    fn keep_pending(&self, provider: &str, state: &str, flow: Pending) -> AuthResult<()> {
        let now = self.clock.unix();
        let mut pending = self.pending.lock().map_err(AuthError::internal)?;
        if pending.len() >= MAX_PENDING {
            pending.retain(|_, f| f.expires_at >= now);
        }
        if pending.len() >= MAX_PENDING {
            return Err(AuthError::RateLimited { retry_after: 60 });
        }
        pending.insert((provider.to_string(), state.to_string()), flow);
        Ok(())
    }

    /// The flow derp started for `(provider, state)`, once.
    fn take_pending(&self, provider: &str, state: &str) -> AuthResult<Option<Pending>> {
        let now = self.clock.unix();
        let mut pending = self.pending.lock().map_err(AuthError::internal)?;
        Ok(pending
            .remove(&(provider.to_string(), state.to_string()))
            .filter(|f| f.expires_at >= now))
    }

    /// For apps that run the browser leg themselves (`POST /oauth/{p}/sign-in`):
    /// with the app's own `code_verifier`, or with the `state` of a flow
    /// that derp started (`/oauth/{p}/url`), whose verifier and nonce derp
    /// kept.
    pub async fn sign_in_with_code(
        &self,
        name: &str,
        code: &str,
        state: Option<&str>,
        code_verifier: Option<String>,
        redirect_uri: Option<String>,
    ) -> AuthResult<ExternalIdentity> {
        let p = self.provider(name).await?;
        let redirect = redirect_uri.unwrap_or_else(|| p.redirect_uri.clone());
        let kept = match state.filter(|s| !s.is_empty()) {
            Some(s) => self.take_pending(&p.name, s)?,
            None => None,
        };
        match (kept, code_verifier) {
            (Some(f), None) => {
                self.exchange(&p, code, Some(f.verifier), &redirect, Some(&f.nonce))
                    .await
            }
            (None, None) if state.is_some_and(|s| !s.is_empty()) => Err(AuthError::field(
                "state",
                "no sign-in was started with this state, or it expired (ten minutes) or was used",
            )),
            (_, verifier) => self.exchange(&p, code, verifier, &redirect, None).await,
        }
    }

    async fn exchange(
        &self,
        p: &Provider,
        code: &str,
        verifier: Option<String>,
        redirect_uri: &str,
        nonce: Option<&str>,
    ) -> AuthResult<ExternalIdentity> {
        let client = Self::client(p, redirect_uri)?;
        let mut req = client.exchange_code(AuthorizationCode::new(code.to_string()));
        if let Some(v) = verifier {
            req = req.set_pkce_verifier(PkceCodeVerifier::new(v));
        }
        let token = req.request_async(&self.http).await.map_err(|e| match e {
            oauth2::RequestTokenError::ServerResponse(r) => {
                tracing::warn!(provider = %p.name, error = ?r.error(), "provider refused the code");
                AuthError::InvalidToken
            }
            // A refusal in a shape other than OAuth's (some providers answer a
            // reused code with a problem document): still a refusal.
            oauth2::RequestTokenError::Parse(e, body)
                if !String::from_utf8_lossy(&body).contains("access_token") =>
            {
                tracing::warn!(provider = %p.name, error = %e, "provider refused the code");
                AuthError::InvalidToken
            }
            other => upstream("token endpoint", other),
        })?;
        if let Kind::GitHub { api_url } = &p.kind {
            return self
                .github_identity(p, api_url, token.access_token().secret())
                .await;
        }
        let id_token = token
            .extra_fields()
            .id_token
            .clone()
            .ok_or_else(|| AuthError::Upstream("the provider sent no id_token".into()))?;
        let claims = self.verify_id_token(p, &id_token, nonce).await?;
        let subject = claims["sub"]
            .as_str()
            .ok_or(AuthError::InvalidToken)?
            .to_string();
        let mut email = claims["email"].as_str().map(str::to_lowercase);
        let mut verified = email_verified(&claims["email_verified"]);
        if email.is_none()
            && let Some(userinfo) = &p.userinfo_url
        {
            let info: serde_json::Value = self
                .http
                .get(userinfo)
                .bearer_auth(token.access_token().secret())
                .send()
                .await
                .and_then(|r| r.error_for_status())
                .map_err(|e| upstream("userinfo", e))?
                .bytes()
                .await
                .map_err(|e| upstream("userinfo", e))
                .and_then(|b| serde_json::from_slice(&b).map_err(|e| upstream("userinfo", e)))?;
            if info["sub"].as_str() == Some(subject.as_str()) {
                email = info["email"].as_str().map(str::to_lowercase);
                verified = email_verified(&info["email_verified"]);
            }
        }
        Ok(ExternalIdentity {
            provider: p.name.clone(),
            subject,
            email,
            email_verified: verified,
        })
    }

    /// GitHub's user behind `access_token`: `/user` for the numeric id,
    /// `/user/emails` for the primary address and whether it is verified
    /// (the public `email` of `/user` says nothing of that, so it is not
    /// used; nor is any address but the primary one).
    async fn github_identity(
        &self,
        p: &Provider,
        api_url: &str,
        access_token: &str,
    ) -> AuthResult<ExternalIdentity> {
        let user = self
            .github_get(&format!("{api_url}/user"), access_token)
            .await?;
        let subject = match &user["id"] {
            serde_json::Value::Number(n) => n.to_string(),
            _ => return Err(AuthError::Upstream("GitHub's /user has no id".into())),
        };
        let emails = self
            .github_get(&format!("{api_url}/user/emails"), access_token)
            .await?;
        let primary = emails
            .as_array()
            .ok_or_else(|| AuthError::Upstream("GitHub's /user/emails is not a list".into()))?
            .iter()
            .find(|e| e["primary"].as_bool() == Some(true));
        Ok(ExternalIdentity {
            provider: p.name.clone(),
            subject,
            email: primary.and_then(|e| e["email"].as_str().map(str::to_lowercase)),
            email_verified: primary.is_some_and(|e| e["verified"].as_bool() == Some(true)),
        })
    }

    async fn github_get(&self, url: &str, access_token: &str) -> AuthResult<serde_json::Value> {
        let res = self
            .http
            .get(url)
            .bearer_auth(access_token)
            .header("accept", "application/vnd.github+json")
            .header("x-github-api-version", GITHUB_API_VERSION)
            // GitHub refuses API requests without a User-Agent.
            .header("user-agent", concat!("derp/", env!("CARGO_PKG_VERSION")))
            .send()
            .await
            .map_err(|e| upstream("GitHub API", e))?;
        if matches!(res.status().as_u16(), 401 | 403) {
            tracing::warn!(status = %res.status(), url, "GitHub refused the access token");
            return Err(AuthError::InvalidToken);
        }
        res.error_for_status()
            .map_err(|e| upstream("GitHub API", e))?
            .bytes()
            .await
            .map_err(|e| upstream("GitHub API", e))
            .and_then(|b| serde_json::from_slice(&b).map_err(|e| upstream("GitHub API", e)))
    }

    async fn verify_id_token(
        &self,
        p: &Provider,
        token: &str,
        nonce: Option<&str>,
    ) -> AuthResult<serde_json::Value> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| AuthError::InvalidToken)?;
        let kid = header.kid.clone().unwrap_or_default();
        let set = self.jwks(p, &kid).await?;
        let jwk = match set.find(&kid) {
            Some(k) => k.clone(),
            None if kid.is_empty() && set.keys.len() == 1 => set.keys[0].clone(),
            None => return Err(AuthError::InvalidToken),
        };
        let alg = match header.alg {
            a @ (jsonwebtoken::Algorithm::RS256
            | jsonwebtoken::Algorithm::ES256
            | jsonwebtoken::Algorithm::EdDSA) => a,
            _ => return Err(AuthError::InvalidToken),
        };
        let key = DecodingKey::from_jwk(&jwk).map_err(|_| AuthError::InvalidToken)?;
        let mut v = Validation::new(alg);
        v.set_issuer(&[p.issuer.as_str(), p.issuer.trim_end_matches('/')]);
        v.set_audience(&[p.client_id.as_str()]);
        v.validate_exp = false;
        v.required_spec_claims = ["exp", "iss", "aud", "sub"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let claims: serde_json::Value = jsonwebtoken::decode(token, &key, &v)
            .map_err(|_| AuthError::InvalidToken)?
            .claims;
        let exp = claims["exp"].as_i64().unwrap_or(0);
        if exp + 60 < self.clock.unix() {
            return Err(AuthError::InvalidToken);
        }
        if let Some(expected) = nonce
            && claims["nonce"].as_str() != Some(expected)
        {
            return Err(AuthError::InvalidToken);
        }
        Ok(claims)
    }

    /// The provider's keys; refetched when `kid` is unknown, at most once a minute.
    async fn jwks(&self, p: &Provider, kid: &str) -> AuthResult<JwkSet> {
        let cached = self
            .keys
            .lock()
            .map_err(AuthError::internal)?
            .get(&p.jwks_url)
            .cloned();
        if let Some((at, set)) = &cached
            && (set.find(kid).is_some() || at.elapsed() < Duration::from_secs(60))
        {
            return Ok(set.clone());
        }
        let set: JwkSet = self
            .http
            .get(&p.jwks_url)
            .send()
            .await
            .and_then(|r| r.error_for_status())
            .map_err(|e| upstream("jwks", e))?
            .bytes()
            .await
            .map_err(|e| upstream("jwks", e))
            .and_then(|b| serde_json::from_slice(&b).map_err(|e| upstream("jwks", e)))?;
        self.keys
            .lock()
            .map_err(AuthError::internal)?
            .insert(p.jwks_url.clone(), (Instant::now(), set.clone()));
        Ok(set)
    }
}

/// Google sends `email_verified` as a boolean, some providers as a string.
fn email_verified(v: &serde_json::Value) -> bool {
    v.as_bool().unwrap_or_else(|| v.as_str() == Some("true"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::SystemClock;
    use crate::config::GoogleOAuthConfig;

    #[tokio::test]
    async fn the_authorization_url_carries_state_pkce_nonce_and_encoded_scopes() {
        let cfg = NativeConfig {
            google_oauth: Some(GoogleOAuthConfig {
                client_id: "client id&x".into(),
                ..Default::default()
            }),
            ..Default::default()
        };
        let svc =
            OAuthService::new(&cfg, "https://auth.example.com", Arc::new(SystemClock)).unwrap();
        let (url, flow) = svc
            .start("google", None, None, None, Some("a b@x.io".into()))
            .await
            .unwrap();
        let u = url::Url::parse(&url).unwrap();
        assert_eq!(u.host_str(), Some("accounts.google.com"));
        let q: HashMap<String, String> = u.query_pairs().into_owned().collect();
        assert_eq!(q["client_id"], "client id&x");
        assert_eq!(q["response_type"], "code");
        assert_eq!(q["scope"], "openid email profile");
        assert_eq!(q["state"], flow.state);
        assert_eq!(q["nonce"], flow.nonce);
        assert_eq!(q["code_challenge_method"], "S256");
        assert_eq!(q["login_hint"], "a b@x.io");
        assert_eq!(
            q["redirect_uri"],
            "https://auth.example.com/api/v1/auth/oauth/google/callback"
        );
        assert!(
            url.contains("client+id%26x") || url.contains("client%20id%26x"),
            "encoded: {url}"
        );
        assert!(
            !url.contains(&flow.verifier),
            "the verifier never leaves the server"
        );
        assert!(svc.start("gitlab", None, None, None, None).await.is_err());
    }

    #[tokio::test]
    async fn the_github_url_asks_for_the_email_scope_with_pkce_and_no_nonce() {
        let cfg = NativeConfig {
            github_oauth: Some(crate::config::GitHubOAuthConfig {
                client_id: "gh-client".into(),
                client_secret: Some(Secret::new("gh-secret")),
                ..Default::default()
            }),
            ..Default::default()
        };
        let svc =
            OAuthService::new(&cfg, "https://auth.example.com", Arc::new(SystemClock)).unwrap();
        assert_eq!(svc.providers(), [("github".into(), "GitHub".into())]);
        let (url, flow) = svc.start("github", None, None, None, None).await.unwrap();
        let u = url::Url::parse(&url).unwrap();
        assert_eq!(u.host_str(), Some("github.com"));
        assert_eq!(u.path(), "/login/oauth/authorize");
        let q: HashMap<String, String> = u.query_pairs().into_owned().collect();
        assert_eq!(q["client_id"], "gh-client");
        assert_eq!(q["scope"], "user:email");
        assert_eq!(q["state"], flow.state);
        assert_eq!(q["code_challenge_method"], "S256");
        assert!(!q.contains_key("nonce"), "GitHub is no OpenID provider");
        assert_eq!(
            q["redirect_uri"],
            "https://auth.example.com/api/v1/auth/oauth/github/callback"
        );
    }
}
