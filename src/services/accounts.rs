//! The ways in, as the JSON API and the hosted pages call them: sign-up,
//! sign-in with a password, the mailed links and codes, a provider's
//! identity and the code exchange.
//!
//! This is where the rate limits of `[rate_limit]` apply (per IP and per
//! address), once for both surfaces. Each call then goes to the user store
//! (the `AuthBackend`), whose sign-in pipeline applies the sign-in policy and
//! mints the session (`auth::native::pipeline` for native users). A handler
//! never calls the backend for these itself, so no surface can skip a limit.
//!
//! Every sign-in answers a [`SignInStep`]: a session, or the second step
//! (`mfa_required`) when the user has a second factor; the second step is
//! [`Accounts::mfa_challenge`], limited like a password sign-in.

use crate::auth::{
    AuthBackend, ConfirmOutcome, RequestMeta, SignInStep, SignUpOutcome, SignUpRequest,
};
use crate::domain::{Email, ExternalIdentity};
use crate::error::{AuthError, AuthResult};
use crate::services::rate_limit::{Action, RateLimits};
use std::sync::Arc;

pub struct Accounts {
    backend: Arc<dyn AuthBackend>,
    native: Option<Arc<crate::auth::native::NativeBackend>>,
    limits: Arc<RateLimits>,
}

impl Accounts {
    pub fn new(
        backend: Arc<dyn AuthBackend>,
        native: Option<Arc<crate::auth::native::NativeBackend>>,
        limits: Arc<RateLimits>,
    ) -> Self {
        Self {
            backend,
            native,
            limits,
        }
    }

    /// One mail to `email` (or a guess at a mailed code): limited per IP and
    /// per address.
    fn mail_attempt(&self, email: &Email, meta: &RequestMeta) -> AuthResult<()> {
        self.limits
            .check(Action::Email, meta.ip.as_deref(), Some(email.as_str()))
    }

    pub async fn sign_up(
        &self,
        req: SignUpRequest,
        meta: &RequestMeta,
    ) -> AuthResult<SignUpOutcome> {
        self.limits
            .check(Action::SignUp, meta.ip.as_deref(), None)?;
        self.backend.sign_up(req, meta).await
    }

    pub async fn sign_in_with_password(
        &self,
        email: Email,
        password: String,
        meta: &RequestMeta,
    ) -> AuthResult<SignInStep> {
        self.limits
            .check(Action::SignIn, meta.ip.as_deref(), Some(email.as_str()))?;
        self.backend.sign_in(email, password, meta).await
    }

    /// The confirmation link's token.
    pub async fn confirm(&self, token: &str, meta: &RequestMeta) -> AuthResult<SignInStep> {
        self.backend.confirm(token, meta).await
    }

    /// The code the user store mailed (Cognito).
    pub async fn confirm_code(
        &self,
        email: Email,
        code: &str,
        meta: &RequestMeta,
    ) -> AuthResult<ConfirmOutcome> {
        self.mail_attempt(&email, meta)?;
        self.backend.confirm_code(email, code, meta).await
    }

    pub async fn resend_confirmation(
        &self,
        email: Email,
        confirmation_url: Option<String>,
        meta: &RequestMeta,
    ) -> AuthResult<()> {
        self.mail_attempt(&email, meta)?;
        self.backend
            .resend_confirmation_in(email, confirmation_url, &meta.locale)
            .await
    }

    pub async fn send_magic_link(
        &self,
        email: Email,
        magic_link_url: Option<String>,
        meta: &RequestMeta,
    ) -> AuthResult<()> {
        self.mail_attempt(&email, meta)?;
        self.backend
            .send_magic_link(email, magic_link_url, meta)
            .await
    }

    pub async fn verify_magic_link(
        &self,
        token: &str,
        meta: &RequestMeta,
    ) -> AuthResult<SignInStep> {
        self.backend.verify_magic_link(token, meta).await
    }

    pub async fn recover_password(
        &self,
        email: Email,
        reset_url: Option<String>,
        meta: &RequestMeta,
    ) -> AuthResult<()> {
        self.mail_attempt(&email, meta)?;
        self.backend.recover_password(email, reset_url, meta).await
    }

    /// The reset link's token and the new password.
    pub async fn reset_password(
        &self,
        token: &str,
        password: String,
        meta: &RequestMeta,
    ) -> AuthResult<SignInStep> {
        self.backend.reset_password(token, password, meta).await
    }

    /// The code the user store mailed (Cognito) and the new password.
    pub async fn reset_password_code(
        &self,
        email: Email,
        code: &str,
        password: String,
        meta: &RequestMeta,
    ) -> AuthResult<SignInStep> {
        self.mail_attempt(&email, meta)?;
        self.backend
            .reset_password_code(email, code, password, meta)
            .await
    }

    /// A provider (Google, GitHub, OIDC) vouched for `identity`: native users only.
    pub async fn sign_in_with_identity(
        &self,
        identity: ExternalIdentity,
        meta: &RequestMeta,
    ) -> AuthResult<SignInStep> {
        let native = self
            .native
            .as_ref()
            .ok_or(AuthError::NotSupportedByBackend(self.backend.name()))?;
        native.sign_in_with_identity(identity, meta).await
    }

    /// `POST /token`: an app's backend exchanges the code from its redirect.
    pub async fn exchange_code(
        &self,
        code: &str,
        redirect_uri: &str,
        code_verifier: Option<String>,
        meta: &RequestMeta,
    ) -> AuthResult<SignInStep> {
        self.backend
            .exchange_code(code, redirect_uri, code_verifier, meta)
            .await
    }

    /// `POST /mfa/challenge`: the second step of a sign-in, limited per IP
    /// like a password sign-in (the `mfa_token` itself dies after 5 wrong
    /// codes, and wrong codes count toward the address's lockout).
    pub async fn mfa_challenge(
        &self,
        mfa_token: &str,
        code: &str,
        meta: &RequestMeta,
    ) -> AuthResult<SignInStep> {
        let native = self
            .native
            .as_ref()
            .ok_or(AuthError::NotSupportedByBackend(self.backend.name()))?;
        self.limits
            .check(Action::SignIn, meta.ip.as_deref(), None)?;
        native.mfa_challenge(mfa_token, code, meta).await
    }

    /// `POST /passkeys/sign-in/start`: options for a passkey sign-in, or
    /// (`mfa_token`) for the second step of a pending one. Limited per IP.
    pub async fn passkey_sign_in_start(
        &self,
        email: Option<String>,
        mfa_token: Option<String>,
        meta: &RequestMeta,
    ) -> AuthResult<crate::auth::native::passkeys::PasskeyStart> {
        let native = self
            .native
            .as_ref()
            .ok_or(AuthError::NotSupportedByBackend(self.backend.name()))?;
        self.limits
            .check(Action::SignIn, meta.ip.as_deref(), None)?;
        native.passkey_sign_in_start(email, mfa_token).await
    }

    /// `POST /passkeys/sign-in/finish`: the browser's assertion, limited
    /// per IP like a password sign-in.
    pub async fn passkey_sign_in_finish(
        &self,
        flow_id: &str,
        credential: serde_json::Value,
        meta: &RequestMeta,
    ) -> AuthResult<SignInStep> {
        let native = self
            .native
            .as_ref()
            .ok_or(AuthError::NotSupportedByBackend(self.backend.name()))?;
        self.limits
            .check(Action::SignIn, meta.ip.as_deref(), None)?;
        native
            .passkey_sign_in_finish(flow_id, credential, meta)
            .await
    }
}
