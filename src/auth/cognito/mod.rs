//! The Cognito backend: users live in an Amazon Cognito user pool; derp
//! calls its user-facing JSON API (no AWS SDK: these operations need only
//! the app client's `SECRET_HASH`; the admin's Admin* calls in
//! [`directory`] are signed with [`sigv4`]) and verifies its access tokens
//! locally against the pool's JWKS. Orgs, invitations and the audit log stay
//! in SQLite, keyed by the Cognito `sub`; the active org travels in the
//! signed `X-Org-Context` header ([`crate::auth::org_context`]).
//!
//! What derp returns:
//! - `access_token`: Cognito's own access token (apps verify it against the
//!   pool's JWKS); `expires_at` is its `exp`.
//! - `refresh_token`: an opaque wrapper, `base64url(JSON {"u": username,
//!   "t": cognito_refresh_token})`. `REFRESH_TOKEN_AUTH` needs the Cognito
//!   username for its `SECRET_HASH`, and a refresh request carries nothing
//!   else, so the wrapper carries it (see `session::RefreshWrapper`).
//! - `session_id`: the token's `origin_jti` (one per sign-in, kept across
//!   refreshes), else its `jti`.
//!
//! The hosted pages keep the sign-in's tokens server-side, sealed, behind
//! their cookie (`web`); members of the Cognito group `admin` have the
//! global role `admin`.
//!
//! With `domain` set, browsers can also sign in through Cognito's hosted UI
//! ([`hosted_ui`], provider name `cognito`); the app then gets a derp
//! authorization code (`code`) that unlocks the same kind of tokens.

mod account;
pub mod api;
mod code;
pub mod directory;
pub mod hosted_ui;
mod session;
pub mod sigv4;
mod verify;
mod web;

pub use hosted_ui::{Authorization, HostedSignIn, PROVIDER};

use crate::auth::org_context::OrgContextSigner;
use crate::auth::{
    AuthBackend, AuthOutcome, AuthorizationCodes, ConfirmOutcome, EmailedCodes, PasswordFlows,
    RequestMeta, SessionInfo, SignInStep, SignUpOutcome, SignUpRequest, TokenPair, UserUpdate,
};
use crate::clock::Clock;
use crate::config::CognitoConfig;
use crate::domain::{Email, User};
use crate::error::AuthResult;
use crate::storage::Db;
use async_trait::async_trait;
use std::sync::Arc;

const NAME: &str = "cognito";

/// The region: `region`, else the prefix of the pool id (`us-east-1_…`).
pub fn region(cfg: &CognitoConfig) -> String {
    if !cfg.region.trim().is_empty() {
        return cfg.region.trim().to_string();
    }
    cfg.user_pool_id
        .split_once('_')
        .map(|(r, _)| r.to_string())
        .unwrap_or_default()
}

/// The cognito-idp API base: `endpoint`, else AWS's regional one.
pub fn endpoint(cfg: &CognitoConfig) -> String {
    match cfg.endpoint.as_deref().map(str::trim) {
        Some(e) if !e.is_empty() => e.to_string(),
        _ => format!("https://cognito-idp.{}.amazonaws.com/", region(cfg)),
    }
}

/// The `iss` of the pool's tokens.
pub fn issuer(cfg: &CognitoConfig) -> String {
    match cfg.issuer.as_deref().map(str::trim) {
        Some(i) if !i.is_empty() => i.trim_end_matches('/').to_string(),
        _ => format!(
            "https://cognito-idp.{}.amazonaws.com/{}",
            region(cfg),
            cfg.user_pool_id
        ),
    }
}

/// The pool's JWKS: `jwks_url`, else under the issuer.
pub fn jwks_url(cfg: &CognitoConfig) -> String {
    match cfg.jwks_url.as_deref().map(str::trim) {
        Some(u) if !u.is_empty() => u.to_string(),
        _ => format!("{}/.well-known/jwks.json", issuer(cfg)),
    }
}

pub struct CognitoBackend {
    api: api::Api,
    http: reqwest::Client,
    /// `/oauth2/*` of the user pool's domain, when `domain` is configured.
    hosted_ui: Option<hosted_ui::HostedUi>,
    verifier: verify::Verifier,
    db: Db,
    clock: Arc<dyn Clock>,
    org_context: OrgContextSigner,
}

pub struct CognitoParts {
    pub cfg: CognitoConfig,
    pub db: Db,
    pub clock: Arc<dyn Clock>,
    pub org_context: OrgContextSigner,
    /// derp's base URL: the default hosted-UI redirect URI is its callback.
    pub public_url: String,
}

impl CognitoBackend {
    pub fn new(p: CognitoParts) -> Result<Self, String> {
        let cfg = &p.cfg;
        if cfg.user_pool_id.trim().is_empty() || cfg.client_id.trim().is_empty() {
            return Err("auth.cognito: user_pool_id and client_id are required".into());
        }
        if region(cfg).is_empty() {
            return Err(
                "auth.cognito.region: required when the user pool id has no region prefix".into(),
            );
        }
        let http = api::http_client()?;
        Ok(Self {
            api: api::Api::new(http.clone(), cfg, endpoint(cfg)),
            hosted_ui: hosted_ui::HostedUi::from_config(cfg, &p.public_url)?,
            http: http.clone(),
            verifier: verify::Verifier::new(
                http,
                jwks_url(cfg),
                issuer(cfg),
                cfg.client_id.clone(),
                p.clock.clone(),
                p.db.clone(),
            )?,
            db: p.db,
            clock: p.clock,
            org_context: p.org_context,
        })
    }

    fn now(&self) -> i64 {
        self.clock.unix()
    }
}

#[async_trait]
impl AuthBackend for CognitoBackend {
    fn name(&self) -> &'static str {
        NAME
    }

    async fn authenticate(&self, access_token: &str) -> AuthResult<SessionInfo> {
        Ok(self.verifier.verify(access_token).await?.session_info())
    }

    async fn authenticate_with_org(
        &self,
        access_token: &str,
        org_context: Option<&str>,
    ) -> AuthResult<SessionInfo> {
        let mut info = self.authenticate(access_token).await?;
        if let Some(ctx) = org_context.and_then(|value| {
            self.org_context
                .verify(value, &info.user_id, &info.session_id, self.now())
        }) {
            info.org_id = Some(ctx.org_id);
            info.org_role = Some(ctx.org_role);
        }
        Ok(info)
    }

    async fn get_user(&self, session: &SessionInfo) -> AuthResult<User> {
        self.get_user_impl(session).await
    }

    async fn sign_out(
        &self,
        session: &SessionInfo,
        _everywhere: bool,
        _meta: &RequestMeta,
    ) -> AuthResult<()> {
        self.sign_out_impl(session).await
    }

    async fn set_active_org(
        &self,
        session: &SessionInfo,
        org_id: Option<String>,
    ) -> AuthResult<TokenPair> {
        self.set_active_org_impl(session, org_id).await
    }

    /// The sign-in's tokens, kept sealed server-side for the page cookie
    /// (see `web`).
    async fn start_web_session(&self, outcome: &AuthOutcome) -> AuthResult<String> {
        self.start_web_session_impl(outcome).await
    }

    async fn web_session(&self, session_id: &str) -> AuthResult<SessionInfo> {
        self.web_session_impl(session_id).await
    }

    async fn set_web_session_org(
        &self,
        session: &SessionInfo,
        web_session_id: &str,
        org_id: Option<String>,
    ) -> AuthResult<()> {
        self.set_web_session_org_impl(session, web_session_id, org_id)
            .await
    }

    /// Apps verify Cognito's tokens against the pool's own JWKS.
    fn jwks(&self) -> serde_json::Value {
        serde_json::json!({"keys": []})
    }

    fn password_flows(&self) -> Option<&dyn PasswordFlows> {
        Some(self)
    }

    /// Cognito mails its own codes for ConfirmSignUp and
    /// ConfirmForgotPassword.
    fn emailed_codes(&self) -> Option<&dyn EmailedCodes> {
        Some(self)
    }

    fn authorization_codes(&self) -> Option<&dyn AuthorizationCodes> {
        Some(self)
    }
}

#[async_trait]
impl PasswordFlows for CognitoBackend {
    async fn sign_up(&self, req: SignUpRequest, _meta: &RequestMeta) -> AuthResult<SignUpOutcome> {
        self.sign_up_impl(req).await
    }

    async fn sign_in(
        &self,
        email: Email,
        password: String,
        _meta: &RequestMeta,
    ) -> AuthResult<SignInStep> {
        self.sign_in_impl(email.as_str(), &password)
            .await
            .map(SignInStep::Session)
    }

    async fn refresh(&self, refresh_token: &str, _meta: &RequestMeta) -> AuthResult<TokenPair> {
        self.refresh_impl(refresh_token).await
    }

    async fn update_user(
        &self,
        session: &SessionInfo,
        update: UserUpdate,
        _meta: &RequestMeta,
    ) -> AuthResult<User> {
        self.update_user_impl(session, update).await
    }

    /// Cognito writes and mails the code itself (no URL, no locale).
    async fn resend_confirmation(
        &self,
        email: Email,
        _confirmation_url: Option<String>,
        _locale: &str,
    ) -> AuthResult<()> {
        self.resend_confirmation_impl(email).await
    }

    async fn recover_password(
        &self,
        email: Email,
        _reset_url: Option<String>,
        _meta: &RequestMeta,
    ) -> AuthResult<()> {
        self.recover_password_impl(email).await
    }
}

#[async_trait]
impl EmailedCodes for CognitoBackend {
    async fn confirm_code(
        &self,
        email: Email,
        code: &str,
        _meta: &RequestMeta,
    ) -> AuthResult<ConfirmOutcome> {
        self.confirm_code_impl(email, code).await
    }

    async fn reset_password_code(
        &self,
        email: Email,
        code: &str,
        password: String,
        _meta: &RequestMeta,
    ) -> AuthResult<SignInStep> {
        self.reset_password_code_impl(email, code, password)
            .await
            .map(SignInStep::Session)
    }
}

#[async_trait]
impl AuthorizationCodes for CognitoBackend {
    async fn issue_code(
        &self,
        grant: crate::auth::CodeGrant<'_>,
        redirect_uri: &str,
        code_challenge: Option<String>,
    ) -> AuthResult<String> {
        self.issue_code_impl(grant, redirect_uri, code_challenge)
            .await
    }

    /// Codes come from [`Self::issue_code`] and the hosted-UI callback
    /// ([`CognitoBackend::issue_code_for`]).
    async fn exchange_code(
        &self,
        code: &str,
        redirect_uri: &str,
        code_verifier: Option<String>,
        meta: &RequestMeta,
    ) -> AuthResult<SignInStep> {
        self.exchange_code_impl(code, redirect_uri, code_verifier, meta)
            .await
            .map(SignInStep::Session)
    }
}
