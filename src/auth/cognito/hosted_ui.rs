//! Cognito's hosted UI: OAuth 2.0 authorization code with PKCE against the
//! user pool's domain (`/oauth2/authorize`, `/oauth2/token`).
//!
//! The oauth2 crate builds the authorization URL (every parameter
//! URL-encoded) and exchanges the code (the client secret, when there is
//! one, in HTTP Basic; `client_id` in the body as well, which Cognito
//! accepts and emulators require). Server-made `state` and the PKCE verifier
//! are handed to the http layer, which binds them to the browser in the same
//! encrypted cookie as the OpenID Connect providers. The access token that
//! comes back is verified like any other (`iss`, `token_use`, `client_id`,
//! RS256 against the pool's JWKS), the id_token, when present, too (`aud`,
//! `token_use = id`, the same `sub`); nothing from the token endpoint is
//! trusted unverified.
//!
//! About 490 lines: the flow is about 340 of them; the rest are unit tests
//! of its URLs, domains and id-token claims.

use super::CognitoBackend;
use super::session::RefreshWrapper;
use super::verify::Verified;
use crate::auth::AuthOutcome;
use crate::auth::secrets::random_token;
use crate::config::{CognitoConfig, Secret};
use crate::error::{AuthError, AuthResult};
use oauth2::basic::{
    BasicErrorResponse, BasicErrorResponseType, BasicRevocationErrorResponse,
    BasicTokenIntrospectionResponse, BasicTokenType,
};
use oauth2::{
    AuthUrl, AuthorizationCode, Client, ClientId, ClientSecret, CsrfToken, EndpointNotSet,
    EndpointSet, ExtraTokenFields, PkceCodeChallenge, PkceCodeVerifier, RedirectUrl, Scope,
    StandardRevocableToken, StandardTokenResponse, TokenResponse, TokenUrl,
};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The provider name in `/oauth/{provider}/…` for the hosted UI.
pub const PROVIDER: &str = "cognito";
/// What the login page's button says.
pub const DISPLAY_NAME: &str = "Amazon Cognito";
const SCOPES: [&str; 3] = ["openid", "email", "profile"];

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct IdTokenField {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id_token: Option<String>,
}
impl ExtraTokenFields for IdTokenField {}

type HostedClient = Client<
    BasicErrorResponse,
    StandardTokenResponse<IdTokenField, BasicTokenType>,
    BasicTokenIntrospectionResponse,
    StandardRevocableToken,
    BasicRevocationErrorResponse,
    EndpointSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointSet,
>;

use crate::domain::redirect::cognito_domain_base as domain_base;

/// The hosted UI's endpoints and the app client.
#[derive(Debug, Clone)]
pub(super) struct HostedUi {
    pub authorize_url: String,
    pub token_url: String,
    pub redirect_uri: String,
    pub client_id: String,
    pub client_secret: Option<Secret>,
}

impl HostedUi {
    /// `None` without `domain`; the redirect URI defaults to derp's callback.
    pub fn from_config(cfg: &CognitoConfig, public_url: &str) -> Result<Option<Self>, String> {
        let Some(domain) = cfg.domain.as_deref().filter(|d| !d.trim().is_empty()) else {
            return Ok(None);
        };
        let base = domain_base(domain)?;
        let redirect_uri = match cfg.redirect_uri.as_deref().map(str::trim) {
            Some(r) if !r.is_empty() => r.to_string(),
            _ => format!(
                "{}/api/v1/auth/oauth/{PROVIDER}/callback",
                public_url.trim_end_matches('/')
            ),
        };
        if RedirectUrl::new(redirect_uri.clone()).is_err()
            || !(redirect_uri.starts_with("http://") || redirect_uri.starts_with("https://"))
        {
            return Err(format!(
                "auth.cognito.redirect_uri: `{redirect_uri}` is not an http(s) URL"
            ));
        }
        Ok(Some(Self {
            authorize_url: format!("{base}/oauth2/authorize"),
            token_url: format!("{base}/oauth2/token"),
            redirect_uri,
            client_id: cfg.client_id.clone(),
            client_secret: cfg.client_secret.clone().filter(|s| !s.expose().is_empty()),
        }))
    }

    fn client(&self, redirect_uri: &str) -> AuthResult<HostedClient> {
        let bad = |what: &str| AuthError::internal(format!("cognito hosted UI: bad {what} URL"));
        let mut client = Client::new(ClientId::new(self.client_id.clone()))
            .set_auth_uri(AuthUrl::new(self.authorize_url.clone()).map_err(|_| bad("authorize"))?)
            .set_token_uri(TokenUrl::new(self.token_url.clone()).map_err(|_| bad("token"))?)
            .set_redirect_uri(
                RedirectUrl::new(redirect_uri.to_string())
                    .map_err(|_| AuthError::field("redirect_uri", "is not a URL"))?,
            );
        if let Some(secret) = &self.client_secret {
            client = client.set_client_secret(ClientSecret::new(secret.expose().to_string()));
        }
        Ok(client)
    }

    /// The authorization URL for `state` and a PKCE challenge.
    pub fn authorize(&self, state: &str, challenge: PkceCodeChallenge) -> AuthResult<String> {
        let state = state.to_string();
        let client = self.client(&self.redirect_uri)?;
        let mut req = client
            .authorize_url(move || CsrfToken::new(state))
            .set_pkce_challenge(challenge);
        for scope in SCOPES {
            req = req.add_scope(Scope::new(scope.into()));
        }
        Ok(req.url().0.to_string())
    }
}

/// A started hosted-UI sign-in: where to send the browser, and what the
/// browser must carry back (sealed in its cookie by the http layer).
#[derive(Debug, Clone)]
pub struct Authorization {
    pub url: String,
    pub state: String,
    pub verifier: String,
}

/// A hosted-UI sign-in: the outcome, and the verified id_token's claims
/// (kept with a derp authorization code to describe the user again).
#[derive(Debug, Clone)]
pub struct HostedSignIn {
    pub outcome: AuthOutcome,
    pub id_claims: Option<Value>,
}

/// The claims of a verified id_token that describe the user, as the
/// `Name`/`Value` attributes GetUser returns.
fn attributes_from_id_claims(claims: &Value) -> Value {
    const NOT_ATTRIBUTES: [&str; 13] = [
        "iss",
        "aud",
        "exp",
        "iat",
        "nbf",
        "auth_time",
        "token_use",
        "jti",
        "origin_jti",
        "event_id",
        "nonce",
        "at_hash",
        "cognito:username",
    ];
    let attrs: Vec<Value> = claims
        .as_object()
        .into_iter()
        .flatten()
        .filter(|(k, _)| !NOT_ATTRIBUTES.contains(&k.as_str()) && !k.starts_with("cognito:"))
        .filter_map(|(k, v)| {
            let value = match v {
                Value::String(s) => s.clone(),
                Value::Bool(b) => b.to_string(),
                Value::Number(n) => n.to_string(),
                _ => return None,
            };
            Some(serde_json::json!({"Name": k, "Value": value}))
        })
        .collect();
    Value::Array(attrs)
}

impl CognitoBackend {
    pub fn hosted_ui_enabled(&self) -> bool {
        self.hosted_ui.is_some()
    }

    /// The redirect URI registered with Cognito (derp's callback unless
    /// `redirect_uri` says otherwise).
    pub fn hosted_ui_redirect_uri(&self) -> Option<&str> {
        self.hosted_ui.as_ref().map(|h| h.redirect_uri.as_str())
    }

    fn hosted(&self) -> AuthResult<&HostedUi> {
        self.hosted_ui
            .as_ref()
            .ok_or(AuthError::FeatureDisabled("the cognito hosted UI"))
    }

    /// Starts a hosted-UI sign-in: a new `state` and PKCE pair.
    pub fn hosted_ui_start(&self) -> AuthResult<Authorization> {
        let hosted = self.hosted()?;
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let state = random_token();
        let url = hosted.authorize(&state, challenge)?;
        Ok(Authorization {
            url,
            state,
            verifier: verifier.secret().clone(),
        })
    }

    /// Exchanges a hosted-UI code (with the PKCE verifier of its flow) and
    /// signs the user in with the tokens Cognito returns, once verified.
    /// `redirect_uri` is the one the code was issued for (by default the
    /// configured one).
    pub async fn hosted_ui_sign_in(
        &self,
        code: &str,
        code_verifier: Option<String>,
        redirect_uri: Option<&str>,
    ) -> AuthResult<HostedSignIn> {
        let hosted = self.hosted()?;
        let code = code.trim();
        if code.is_empty() || code.len() > 2048 {
            return Err(AuthError::field("code", "is not an authorization code"));
        }
        let client = hosted.client(redirect_uri.unwrap_or(&hosted.redirect_uri))?;
        let mut req = client.exchange_code(AuthorizationCode::new(code.to_string()));
        if hosted.client_secret.is_some() {
            // HTTP Basic carries the id as well, but Cognito also takes it in
            // the body, and emulators look only there.
            req = req.add_extra_param("client_id", hosted.client_id.clone());
        }
        if let Some(v) = code_verifier {
            req = req.set_pkce_verifier(PkceCodeVerifier::new(v));
        }
        let token = req.request_async(&self.http).await.map_err(token_error)?;
        let access = token.access_token().secret().clone();
        let refresh = token
            .refresh_token()
            .map(|r| r.secret().clone())
            .filter(|r| !r.is_empty())
            .ok_or_else(|| {
                AuthError::Upstream("cognito token endpoint: no refresh token".into())
            })?;
        let verified = self.verify_issued(&access).await?;
        let id_claims = match &token.extra_fields().id_token {
            Some(id) => Some(
                self.verifier
                    .verify_id_token(id, &verified.sub)
                    .await
                    .map_err(|_| {
                        AuthError::Upstream(
                            "cognito issued an id_token that does not verify".into(),
                        )
                    })?,
            ),
            None => None,
        };
        let wrapper = RefreshWrapper {
            u: verified
                .username
                .clone()
                .unwrap_or_else(|| verified.sub.clone()),
            t: refresh,
        };
        let user = self
            .hosted_user(&access, &verified, id_claims.as_ref())
            .await;
        let tokens = self.pair(access, wrapper.encode(), &verified);
        Ok(HostedSignIn {
            outcome: AuthOutcome {
                user,
                tokens,
                session_id: verified.session_id,
                amr: Vec::new(),
            },
            id_claims,
        })
    }

    /// The user from the verified id_token's claims, else from GetUser
    /// (which needs the `aws.cognito.signin.user.admin` scope).
    pub(super) async fn hosted_user(
        &self,
        access: &str,
        verified: &Verified,
        id_claims: Option<&Value>,
    ) -> crate::domain::User {
        match id_claims {
            Some(claims) => {
                super::account::user_from(verified, Some(&attributes_from_id_claims(claims)))
            }
            None => self.user_for_token(access, verified).await,
        }
    }
}

/// The token endpoint's refusal of the code (used, expired, wrong verifier
/// or redirect URI: `invalid_grant`) is 401, an incomplete request 400; a
/// misconfigured client or an unreachable or garbled endpoint is 502,
/// details in the log only.
fn token_error<RE: std::error::Error + 'static>(
    e: oauth2::RequestTokenError<RE, BasicErrorResponse>,
) -> AuthError {
    match e {
        oauth2::RequestTokenError::ServerResponse(r)
            if *r.error() == BasicErrorResponseType::InvalidGrant =>
        {
            tracing::warn!(error = ?r.error(), "cognito refused the authorization code");
            AuthError::InvalidToken
        }
        // What the caller sent is incomplete (typically no `code_verifier`
        // for a code issued with a challenge).
        oauth2::RequestTokenError::ServerResponse(r)
            if *r.error() == BasicErrorResponseType::InvalidRequest =>
        {
            tracing::warn!(error = ?r.error(), "cognito refused the code exchange request");
            AuthError::field(
                "code",
                "Cognito refused the exchange as incomplete (is code_verifier missing?)",
            )
        }
        // invalid_client, unauthorized_client, …: derp's configuration.
        oauth2::RequestTokenError::ServerResponse(r) => {
            AuthError::Upstream(format!("cognito token endpoint: {:?}", r.error()))
        }
        oauth2::RequestTokenError::Request(e) => {
            AuthError::Upstream(format!("cognito token endpoint: {e}"))
        }
        oauth2::RequestTokenError::Parse(e, _) => {
            AuthError::Upstream(format!("cognito token endpoint: unreadable answer: {e}"))
        }
        oauth2::RequestTokenError::Other(e) => {
            AuthError::Upstream(format!("cognito token endpoint: {e}"))
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use std::collections::HashMap;

    fn hosted(domain: &str, redirect_uri: Option<&str>) -> HostedUi {
        let cfg = CognitoConfig {
            user_pool_id: "us-east-1_abc".into(),
            client_id: "client id&x".into(),
            domain: Some(domain.into()),
            redirect_uri: redirect_uri.map(str::to_string),
            ..Default::default()
        };
        HostedUi::from_config(&cfg, "https://auth.example.com/")
            .unwrap()
            .unwrap()
    }

    #[test]
    fn the_authorize_url_is_encoded_and_built_from_a_bare_domain() {
        let h = hosted(
            "myapp.auth.us-east-1.amazoncognito.com",
            Some("https://app.example.com/cb?next=/a b&x=1"),
        );
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let challenge_text = challenge.as_str().to_string();
        let url = h.authorize("st&te=1 2", challenge).unwrap();
        assert!(
            url.starts_with("https://myapp.auth.us-east-1.amazoncognito.com/oauth2/authorize?"),
            "{url}"
        );
        assert!(url.contains("scope=openid+email+profile"), "{url}");
        assert!(url.contains("response_type=code"), "{url}");
        assert!(url.contains("code_challenge_method=S256"), "{url}");
        assert!(
            url.contains("redirect_uri=https%3A%2F%2Fapp.example.com%2Fcb%3Fnext%3D%2Fa+b%26x%3D1"),
            "{url}"
        );
        assert!(url.contains("client_id=client+id%26x"), "{url}");
        assert!(url.contains("state=st%26te%3D1+2"), "{url}");
        assert!(!url.contains(verifier.secret()), "the verifier stays here");
        let u = url::Url::parse(&url).unwrap();
        let q: HashMap<String, String> = u.query_pairs().into_owned().collect();
        assert_eq!(q.len(), 7, "{q:?}");
        assert_eq!(
            q["redirect_uri"],
            "https://app.example.com/cb?next=/a b&x=1"
        );
        assert_eq!(q["client_id"], "client id&x");
        assert_eq!(q["state"], "st&te=1 2");
        assert_eq!(q["scope"], "openid email profile");
        assert_eq!(q["code_challenge"], challenge_text);
        assert_eq!(
            h.token_url,
            "https://myapp.auth.us-east-1.amazoncognito.com/oauth2/token"
        );
    }

    #[test]
    fn an_http_domain_is_used_as_given_and_the_callback_is_derps_by_default() {
        let h = hosted("http://127.0.0.1:9229/", None);
        assert_eq!(h.authorize_url, "http://127.0.0.1:9229/oauth2/authorize");
        assert_eq!(h.token_url, "http://127.0.0.1:9229/oauth2/token");
        assert_eq!(
            h.redirect_uri,
            "https://auth.example.com/api/v1/auth/oauth/cognito/callback"
        );
        let (challenge, _) = PkceCodeChallenge::new_random_sha256();
        let url = h.authorize("s", challenge).unwrap();
        assert!(
            url.starts_with("http://127.0.0.1:9229/oauth2/authorize?"),
            "{url}"
        );
        assert!(
            url.contains(
                "redirect_uri=https%3A%2F%2Fauth.example.com%2Fapi%2Fv1%2Fauth%2Foauth%2Fcognito%2Fcallback"
            ),
            "{url}"
        );
        let h = hosted("https://login.example.com/tenant", None);
        assert_eq!(
            h.authorize_url,
            "https://login.example.com/tenant/oauth2/authorize"
        );
    }

    #[test]
    fn domains_that_are_not_hosts_or_urls_are_refused() {
        assert_eq!(
            domain_base("myapp.auth.eu-west-1.amazoncognito.com").unwrap(),
            "https://myapp.auth.eu-west-1.amazoncognito.com"
        );
        assert_eq!(
            domain_base("localhost:9229").unwrap(),
            "https://localhost:9229"
        );
        for bad in [
            "",
            "host/path",
            "ftp://host",
            "https://user:pw@host",
            "https://host/?q=1",
            "two words",
            "https://",
        ] {
            assert!(domain_base(bad).is_err(), "{bad}");
        }
        let cfg = CognitoConfig {
            domain: Some("host".into()),
            redirect_uri: Some("app.example.com/cb".into()),
            ..Default::default()
        };
        assert!(HostedUi::from_config(&cfg, "https://a.example.com").is_err());
        let cfg = CognitoConfig::default();
        assert!(
            HostedUi::from_config(&cfg, "https://a.example.com")
                .unwrap()
                .is_none()
        );
    }

    #[test]
    fn id_token_claims_become_attributes() {
        let claims = serde_json::json!({
            "sub": "s", "email": "a@example.com", "email_verified": true,
            "aud": "c", "iss": "i", "cognito:username": "u", "cognito:groups": ["g"],
            "name": "Ann", "exp": 1,
        });
        let attrs = attributes_from_id_claims(&claims);
        let names: Vec<&str> = attrs
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["Name"].as_str().unwrap())
            .collect();
        let mut names = names;
        names.sort_unstable();
        assert_eq!(names, ["email", "email_verified", "name", "sub"]);
        assert!(
            attrs
                .as_array()
                .unwrap()
                .contains(&serde_json::json!({"Name": "email_verified", "Value": "true"}))
        );
    }
}
