//! The native backend as a user store: the core trait and every flow but
//! the emailed codes (derp mails links, not codes). Each method hands over
//! to the use case in its own module.

use super::NativeBackend;
use crate::auth::{
    AuthBackend, AuthorizationCodes, CodeGrant, LinkTokens, MagicLinks, PasswordFlows, RequestMeta,
    SessionInfo, SessionList, SessionView, SignInStep, SignUpOutcome, SignUpRequest, TokenPair,
    UserUpdate,
};
use crate::domain::{Email, User};
use crate::error::AuthResult;
use async_trait::async_trait;

#[async_trait]
impl AuthBackend for NativeBackend {
    fn name(&self) -> &'static str {
        "native"
    }

    async fn authenticate(&self, access_token: &str) -> AuthResult<SessionInfo> {
        self.authenticate_impl(access_token).await
    }

    async fn get_user(&self, session: &SessionInfo) -> AuthResult<User> {
        self.get_user_impl(session).await
    }

    async fn sign_out(
        &self,
        session: &SessionInfo,
        everywhere: bool,
        meta: &RequestMeta,
    ) -> AuthResult<()> {
        self.sign_out_impl(session, everywhere, meta).await
    }

    async fn set_active_org(
        &self,
        session: &SessionInfo,
        org_id: Option<String>,
    ) -> AuthResult<TokenPair> {
        self.set_active_org_impl(session, org_id).await
    }

    async fn web_session(&self, session_id: &str) -> AuthResult<SessionInfo> {
        self.web_session_impl(session_id).await
    }

    fn jwks(&self) -> serde_json::Value {
        self.keys.jwks()
    }

    fn password_flows(&self) -> Option<&dyn PasswordFlows> {
        Some(self)
    }

    fn link_tokens(&self) -> Option<&dyn LinkTokens> {
        Some(self)
    }

    fn magic_links(&self) -> Option<&dyn MagicLinks> {
        Some(self)
    }

    fn authorization_codes(&self) -> Option<&dyn AuthorizationCodes> {
        Some(self)
    }

    fn session_list(&self) -> Option<&dyn SessionList> {
        Some(self)
    }
}

#[async_trait]
impl PasswordFlows for NativeBackend {
    async fn sign_up(&self, req: SignUpRequest, meta: &RequestMeta) -> AuthResult<SignUpOutcome> {
        self.sign_up_impl(req, meta).await
    }

    async fn sign_in(
        &self,
        email: Email,
        password: String,
        meta: &RequestMeta,
    ) -> AuthResult<SignInStep> {
        self.sign_in_impl(email, password, meta).await
    }

    async fn refresh(&self, refresh_token: &str, meta: &RequestMeta) -> AuthResult<TokenPair> {
        self.refresh_impl(refresh_token, None, meta).await
    }

    async fn update_user(
        &self,
        session: &SessionInfo,
        update: UserUpdate,
        meta: &RequestMeta,
    ) -> AuthResult<User> {
        self.update_user_impl(session, update, meta).await
    }

    async fn resend_confirmation(
        &self,
        email: Email,
        confirmation_url: Option<String>,
        locale: &str,
    ) -> AuthResult<()> {
        self.resend_confirmation_impl(email, confirmation_url, locale)
            .await
    }

    async fn recover_password(
        &self,
        email: Email,
        reset_url: Option<String>,
        meta: &RequestMeta,
    ) -> AuthResult<()> {
        self.recover_password_impl(email, reset_url, meta).await
    }
}

#[async_trait]
impl LinkTokens for NativeBackend {
    async fn confirm(&self, token: &str, meta: &RequestMeta) -> AuthResult<SignInStep> {
        self.confirm_impl(token, meta).await
    }

    async fn reset_password(
        &self,
        token: &str,
        password: String,
        meta: &RequestMeta,
    ) -> AuthResult<SignInStep> {
        self.reset_password_impl(token, password, meta).await
    }
}

#[async_trait]
impl MagicLinks for NativeBackend {
    async fn send_magic_link(
        &self,
        email: Email,
        magic_link_url: Option<String>,
        meta: &RequestMeta,
    ) -> AuthResult<()> {
        self.send_magic_link_impl(email, magic_link_url, meta).await
    }

    async fn verify_magic_link(&self, token: &str, meta: &RequestMeta) -> AuthResult<SignInStep> {
        self.verify_magic_link_impl(token, meta).await
    }
}

#[async_trait]
impl AuthorizationCodes for NativeBackend {
    async fn issue_code(
        &self,
        grant: CodeGrant<'_>,
        redirect_uri: &str,
        code_challenge: Option<String>,
    ) -> AuthResult<String> {
        let amr = match grant {
            CodeGrant::SignIn(o) => o.amr.clone(),
            CodeGrant::WebSession { session, .. } => session.amr.clone(),
        };
        self.issue_code_impl(grant.user_id(), amr, redirect_uri, code_challenge)
            .await
    }

    async fn exchange_code(
        &self,
        code: &str,
        redirect_uri: &str,
        code_verifier: Option<String>,
        meta: &RequestMeta,
    ) -> AuthResult<SignInStep> {
        self.exchange_code_impl(code, redirect_uri, code_verifier, meta)
            .await
    }
}

#[async_trait]
impl SessionList for NativeBackend {
    async fn list_sessions(&self, session: &SessionInfo) -> AuthResult<Vec<SessionView>> {
        self.list_sessions_impl(session).await
    }

    async fn revoke_session(
        &self,
        session: &SessionInfo,
        id: &str,
        meta: &RequestMeta,
    ) -> AuthResult<()> {
        self.revoke_session_impl(session, id, meta).await
    }
}
