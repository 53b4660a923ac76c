//! What a user store is: the core trait [`AuthBackend`], which every store
//! (native, Cognito, Clerk) implements in full, and one trait per flow that
//! only some stores have. A store offers a flow by answering its accessor
//! (`Some(self)`); the default `None` means it has none, so an unsupported
//! operation is known from the type, never from a stub deep inside.
//! `services::accounts` is the one place that turns a missing flow into
//! 501 `not_supported_by_backend`.
//!
//! | flow | native | Cognito | Clerk |
//! |---|---|---|---|
//! | [`PasswordFlows`] (sign-up, sign-in, refresh, account changes, mails) | ✓ | ✓ | |
//! | [`LinkTokens`] (confirm and reset with a mailed link) | ✓ | | |
//! | [`EmailedCodes`] (confirm and reset with a code the store mailed) | | ✓ | |
//! | [`MagicLinks`] | ✓ | | |
//! | [`AuthorizationCodes`] (`/token`) | ✓ | ✓ | |
//! | [`SessionList`] (`/sessions`) | ✓ | | ✓ |

use super::{
    AuthOutcome, CodeGrant, ConfirmOutcome, RequestMeta, SessionInfo, SessionView, SignInStep,
    SignUpOutcome, SignUpRequest, TokenPair, UserUpdate,
};
use crate::domain::{Email, User};
use crate::error::AuthResult;
use async_trait::async_trait;

/// The user store: native (SQLite), Cognito or Clerk, chosen at start.
/// Every store verifies tokens, reads its user, ends sessions and keeps the
/// active org; the rest are the flows behind the accessors below.
#[async_trait]
pub trait AuthBackend: Send + Sync + 'static {
    fn name(&self) -> &'static str;
    /// Verifies a bearer access token: the seed's `authenticate(request)`.
    async fn authenticate(&self, access_token: &str) -> AuthResult<SessionInfo>;
    /// `authenticate` plus the `X-Org-Context` header of backends whose
    /// access tokens cannot carry derp's org claims (Cognito, Clerk). A
    /// context that does not verify is ignored: the session has no org.
    async fn authenticate_with_org(
        &self,
        access_token: &str,
        org_context: Option<&str>,
    ) -> AuthResult<SessionInfo> {
        let _ = org_context;
        self.authenticate(access_token).await
    }
    async fn get_user(&self, session: &SessionInfo) -> AuthResult<User>;
    async fn sign_out(
        &self,
        session: &SessionInfo,
        everywhere: bool,
        meta: &RequestMeta,
    ) -> AuthResult<()>;
    /// The seed's `set_active_org`: new tokens carrying the org (or none).
    async fn set_active_org(
        &self,
        session: &SessionInfo,
        org_id: Option<String>,
    ) -> AuthResult<TokenPair>;
    /// The hosted pages' session for a sign-in that just happened: the id
    /// their cookie names. Backends whose sign-ins are login-session rows
    /// (native) answer that row's id; a backend that cannot read a session
    /// back from its id alone (Cognito) keeps what it needs and answers an
    /// id of its own.
    async fn start_web_session(&self, outcome: &AuthOutcome) -> AuthResult<String> {
        Ok(outcome.session_id.clone())
    }
    /// Switches the page session `web_session_id` of `session` to an org
    /// (or none) after checking the membership. By default the login
    /// session itself carries the org ([`Self::set_active_org`]); a backend
    /// with page sessions of its own keeps it there.
    async fn set_web_session_org(
        &self,
        session: &SessionInfo,
        web_session_id: &str,
        org_id: Option<String>,
    ) -> AuthResult<()> {
        let _ = web_session_id;
        self.set_active_org(session, org_id).await.map(|_| ())
    }
    /// The live session `session_id` as `SessionInfo` (the hosted pages'
    /// cookie names a session, not a token).
    async fn web_session(&self, session_id: &str) -> AuthResult<SessionInfo>;
    /// The public keys for `/.well-known/jwks.json`.
    fn jwks(&self) -> serde_json::Value;

    /// Sign-up, password sign-in and the rest of a password account.
    fn password_flows(&self) -> Option<&dyn PasswordFlows> {
        None
    }
    /// Confirming and resetting with the tokens of links derp mails.
    fn link_tokens(&self) -> Option<&dyn LinkTokens> {
        None
    }
    /// Confirming and resetting with a code the user store mails itself
    /// (Cognito). The hosted pages ask for the code when this is `Some`.
    fn emailed_codes(&self) -> Option<&dyn EmailedCodes> {
        None
    }
    fn magic_links(&self) -> Option<&dyn MagicLinks> {
        None
    }
    fn authorization_codes(&self) -> Option<&dyn AuthorizationCodes> {
        None
    }
    fn session_list(&self) -> Option<&dyn SessionList> {
        None
    }
}

/// A store that holds passwords: it signs users up and in, refreshes their
/// tokens, lets them change their password (and data, where it keeps any),
/// and mails the confirmation and recovery messages.
#[async_trait]
pub trait PasswordFlows: Send + Sync {
    async fn sign_up(&self, req: SignUpRequest, meta: &RequestMeta) -> AuthResult<SignUpOutcome>;
    async fn sign_in(
        &self,
        email: Email,
        password: String,
        meta: &RequestMeta,
    ) -> AuthResult<SignInStep>;
    async fn refresh(&self, refresh_token: &str, meta: &RequestMeta) -> AuthResult<TokenPair>;
    async fn update_user(
        &self,
        session: &SessionInfo,
        update: UserUpdate,
        meta: &RequestMeta,
    ) -> AuthResult<User>;
    /// Mails the confirmation again (in `locale` where derp writes the mail).
    async fn resend_confirmation(
        &self,
        email: Email,
        confirmation_url: Option<String>,
        locale: &str,
    ) -> AuthResult<()>;
    /// Mails a reset link or code; answers the same whether or not the
    /// email is known.
    async fn recover_password(
        &self,
        email: Email,
        reset_url: Option<String>,
        meta: &RequestMeta,
    ) -> AuthResult<()>;
}

/// `POST /confirm {token}` and `POST /password/reset {token, password}`:
/// the tokens of the links derp mailed (native).
#[async_trait]
pub trait LinkTokens: Send + Sync {
    async fn confirm(&self, token: &str, meta: &RequestMeta) -> AuthResult<SignInStep>;
    async fn reset_password(
        &self,
        token: &str,
        password: String,
        meta: &RequestMeta,
    ) -> AuthResult<SignInStep>;
}

/// `POST /confirm {email, code}` and `POST /password/reset {email, code,
/// password}`: the code the user pool mailed (Cognito).
#[async_trait]
pub trait EmailedCodes: Send + Sync {
    async fn confirm_code(
        &self,
        email: Email,
        code: &str,
        meta: &RequestMeta,
    ) -> AuthResult<ConfirmOutcome>;
    async fn reset_password_code(
        &self,
        email: Email,
        code: &str,
        password: String,
        meta: &RequestMeta,
    ) -> AuthResult<SignInStep>;
}

#[async_trait]
pub trait MagicLinks: Send + Sync {
    /// Mails a sign-in link; answers the same whether or not the email is known.
    async fn send_magic_link(
        &self,
        email: Email,
        magic_link_url: Option<String>,
        meta: &RequestMeta,
    ) -> AuthResult<()>;
    async fn verify_magic_link(&self, token: &str, meta: &RequestMeta) -> AuthResult<SignInStep>;
}

/// derp's own authorization codes, for an app whose backend signs the user
/// in at `POST /token`.
#[async_trait]
pub trait AuthorizationCodes: Send + Sync {
    /// A single-use authorization code for the user `grant` names, bound to
    /// the redirect URI and the PKCE challenge, for the app's backend to
    /// exchange.
    async fn issue_code(
        &self,
        grant: CodeGrant<'_>,
        redirect_uri: &str,
        code_challenge: Option<String>,
    ) -> AuthResult<String>;
    /// `POST /token`: the code for the user and a new session's tokens.
    async fn exchange_code(
        &self,
        code: &str,
        redirect_uri: &str,
        code_verifier: Option<String>,
        meta: &RequestMeta,
    ) -> AuthResult<SignInStep>;
}

/// The user's own sessions, as `GET /sessions` lists them.
#[async_trait]
pub trait SessionList: Send + Sync {
    async fn list_sessions(&self, session: &SessionInfo) -> AuthResult<Vec<SessionView>>;
    async fn revoke_session(
        &self,
        session: &SessionInfo,
        id: &str,
        meta: &RequestMeta,
    ) -> AuthResult<()>;
}
