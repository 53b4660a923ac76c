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
//!
//! The flows only some user stores have (`auth::backend`: password flows,
//! link tokens, emailed codes, magic links, authorization codes, the session
//! list) are reached here too, also for the account's own requests (refresh,
//! changes, sessions) and the admin's mails: `Accounts::supported` is the
//! one place where a flow the store lacks becomes 501
//! `not_supported_by_backend`.

use crate::auth::native::NativeBackend;
use crate::auth::{
    AuthBackend, CodeGrant, ConfirmOutcome, RequestMeta, SessionInfo, SessionView, SignInStep,
    SignUpOutcome, SignUpRequest, TokenPair, UserUpdate,
};
use crate::domain::{Email, ExternalIdentity, User};
use crate::error::{AuthError, AuthResult};
use crate::services::rate_limit::{Action, RateLimits};
use std::sync::Arc;

pub struct Accounts {
    backend: Arc<dyn AuthBackend>,
    native: Option<Arc<NativeBackend>>,
    limits: Arc<RateLimits>,
}

/// Which mail an admin sends a user through the store's own flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccountMail {
    Confirmation,
    Recovery,
}

impl Accounts {
    pub fn new(
        backend: Arc<dyn AuthBackend>,
        native: Option<Arc<NativeBackend>>,
        limits: Arc<RateLimits>,
    ) -> Self {
        Self {
            backend,
            native,
            limits,
        }
    }

    /// The store's `flow`, or 501 `not_supported_by_backend` when it has
    /// none (`flow` is one of the store's capability accessors).
    fn supported<'a, T: ?Sized>(&'a self, flow: Option<&'a T>) -> AuthResult<&'a T> {
        flow.ok_or(AuthError::NotSupportedByBackend(self.backend.name()))
    }

    /// The native backend, for what only derp's own users have (providers,
    /// second factors, passkeys), or 501 `not_supported_by_backend`.
    pub fn native(&self) -> AuthResult<&NativeBackend> {
        self.supported(self.native.as_deref())
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
        self.supported(self.backend.password_flows())?
            .sign_up(req, meta)
            .await
    }

    pub async fn sign_in_with_password(
        &self,
        email: Email,
        password: String,
        meta: &RequestMeta,
    ) -> AuthResult<SignInStep> {
        self.limits
            .check(Action::SignIn, meta.ip.as_deref(), Some(email.as_str()))?;
        self.supported(self.backend.password_flows())?
            .sign_in(email, password, meta)
            .await
    }

    /// The first admin, right after the single-use setup link created
    /// them: not limited, like the setup itself.
    pub async fn sign_in_first_admin(
        &self,
        email: Email,
        password: String,
        meta: &RequestMeta,
    ) -> AuthResult<SignInStep> {
        self.supported(self.backend.password_flows())?
            .sign_in(email, password, meta)
            .await
    }

    /// `POST /refresh`: a new token pair (the refresh token rotates).
    pub async fn refresh(&self, refresh_token: &str, meta: &RequestMeta) -> AuthResult<TokenPair> {
        self.supported(self.backend.password_flows())?
            .refresh(refresh_token, meta)
            .await
    }

    /// The user changes their password or data.
    pub async fn update_user(
        &self,
        session: &SessionInfo,
        update: UserUpdate,
        meta: &RequestMeta,
    ) -> AuthResult<User> {
        self.supported(self.backend.password_flows())?
            .update_user(session, update, meta)
            .await
    }

    pub async fn list_sessions(&self, session: &SessionInfo) -> AuthResult<Vec<SessionView>> {
        self.supported(self.backend.session_list())?
            .list_sessions(session)
            .await
    }

    pub async fn revoke_session(
        &self,
        session: &SessionInfo,
        id: &str,
        meta: &RequestMeta,
    ) -> AuthResult<()> {
        self.supported(self.backend.session_list())?
            .revoke_session(session, id, meta)
            .await
    }

    /// The confirmation link's token.
    pub async fn confirm(&self, token: &str, meta: &RequestMeta) -> AuthResult<SignInStep> {
        self.supported(self.backend.link_tokens())?
            .confirm(token, meta)
            .await
    }

    /// The code the user store mailed (Cognito). A store that mails links
    /// instead (native) takes a code for a request error, not a missing
    /// feature: the client sent the wrong shape.
    pub async fn confirm_code(
        &self,
        email: Email,
        code: &str,
        meta: &RequestMeta,
    ) -> AuthResult<ConfirmOutcome> {
        self.mail_attempt(&email, meta)?;
        if self.backend.emailed_codes().is_none() && self.backend.link_tokens().is_some() {
            return Err(AuthError::field(
                "code",
                "this server confirms addresses with the mailed link's token: send {\"token\"} (email and code are for the Cognito backend)",
            ));
        }
        self.supported(self.backend.emailed_codes())?
            .confirm_code(email, code, meta)
            .await
    }

    pub async fn resend_confirmation(
        &self,
        email: Email,
        confirmation_url: Option<String>,
        meta: &RequestMeta,
    ) -> AuthResult<()> {
        self.mail_attempt(&email, meta)?;
        self.supported(self.backend.password_flows())?
            .resend_confirmation(email, confirmation_url, &meta.locale)
            .await
    }

    pub async fn send_magic_link(
        &self,
        email: Email,
        magic_link_url: Option<String>,
        meta: &RequestMeta,
    ) -> AuthResult<()> {
        self.mail_attempt(&email, meta)?;
        self.supported(self.backend.magic_links())?
            .send_magic_link(email, magic_link_url, meta)
            .await
    }

    pub async fn verify_magic_link(
        &self,
        token: &str,
        meta: &RequestMeta,
    ) -> AuthResult<SignInStep> {
        self.supported(self.backend.magic_links())?
            .verify_magic_link(token, meta)
            .await
    }

    pub async fn recover_password(
        &self,
        email: Email,
        reset_url: Option<String>,
        meta: &RequestMeta,
    ) -> AuthResult<()> {
        self.mail_attempt(&email, meta)?;
        self.supported(self.backend.password_flows())?
            .recover_password(email, reset_url, meta)
            .await
    }

    /// An admin has the store send its confirmation or recovery mail to a
    /// user (not limited: the admin API and pages are the admin's own).
    pub async fn send_account_mail(
        &self,
        email: Email,
        mail: AccountMail,
        meta: &RequestMeta,
    ) -> AuthResult<()> {
        let flows = self.supported(self.backend.password_flows())?;
        match mail {
            AccountMail::Recovery => flows.recover_password(email, None, meta).await,
            AccountMail::Confirmation => flows.resend_confirmation(email, None, &meta.locale).await,
        }
    }

    /// The reset link's token and the new password.
    pub async fn reset_password(
        &self,
        token: &str,
        password: String,
        meta: &RequestMeta,
    ) -> AuthResult<SignInStep> {
        self.supported(self.backend.link_tokens())?
            .reset_password(token, password, meta)
            .await
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
        self.supported(self.backend.emailed_codes())?
            .reset_password_code(email, code, password, meta)
            .await
    }

    /// A provider (Google, GitHub, OIDC) vouched for `identity`: native users only.
    pub async fn sign_in_with_identity(
        &self,
        identity: ExternalIdentity,
        meta: &RequestMeta,
    ) -> AuthResult<SignInStep> {
        self.native()?.sign_in_with_identity(identity, meta).await
    }

    /// A code for the app at `redirect_uri` (hosted sign-in, provider
    /// callback), which its backend exchanges at `POST /token`.
    pub async fn issue_code(
        &self,
        grant: CodeGrant<'_>,
        redirect_uri: &str,
        code_challenge: Option<String>,
    ) -> AuthResult<String> {
        self.supported(self.backend.authorization_codes())?
            .issue_code(grant, redirect_uri, code_challenge)
            .await
    }

    /// `POST /token`: an app's backend exchanges the code from its redirect.
    pub async fn exchange_code(
        &self,
        code: &str,
        redirect_uri: &str,
        code_verifier: Option<String>,
        meta: &RequestMeta,
    ) -> AuthResult<SignInStep> {
        self.supported(self.backend.authorization_codes())?
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
        let native = self.native()?;
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
        let native = self.native()?;
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
        let native = self.native()?;
        self.limits
            .check(Action::SignIn, meta.ip.as_deref(), None)?;
        native
            .passkey_sign_in_finish(flow_id, credential, meta)
            .await
    }
}
