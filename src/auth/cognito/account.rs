//! Sign-up and its code (SignUp, ConfirmSignUp, ResendConfirmationCode),
//! password recovery (ForgotPassword, ConfirmForgotPassword) and the user
//! (GetUser, ChangePassword).
//!
//! Cognito's user-facing API does not say when a user was created or
//! confirmed: those times are reported as the Unix epoch, meaning unknown;
//! `email_confirmed_at` is non-null exactly when Cognito's `email_verified`
//! is true, and `last_sign_in_at` is the token's `auth_time`.

use super::CognitoBackend;
use super::api::upstream;
use super::verify::Verified;
use crate::auth::{ConfirmOutcome, SessionInfo, SignUpOutcome, SignUpRequest, UserUpdate};
use crate::clock::from_unix;
use crate::domain::{Email, User};
use crate::error::{AuthError, AuthResult};
use serde_json::{Map, Value, json};
use time::OffsetDateTime;

/// The reason code of a password the user pool's own policy refused.
const POOL_POLICY: &str = "pool_policy";

/// Codes longer than this are not Cognito's.
const MAX_CODE_LEN: usize = 64;

fn check_code(code: &str) -> AuthResult<&str> {
    let code = code.trim();
    if code.is_empty() || code.len() > MAX_CODE_LEN || code.chars().any(char::is_whitespace) {
        return Err(AuthError::field("code", "is not a confirmation code"));
    }
    Ok(code)
}

/// A user from Cognito's attributes (`GetUser`) or, without them, from the
/// verified token alone.
pub(super) fn user_from(v: &Verified, attributes: Option<&Value>) -> User {
    let mut data = Map::new();
    let mut email = None;
    let mut verified_email = false;
    for attr in attributes
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default()
    {
        let (Some(name), Some(value)) = (
            attr.get("Name").and_then(Value::as_str),
            attr.get("Value").and_then(Value::as_str),
        ) else {
            continue;
        };
        match name {
            "sub" => {}
            "email" => email = Some(value.to_string()),
            "email_verified" => verified_email = value == "true",
            _ => {
                data.insert(name.to_string(), Value::String(value.to_string()));
            }
        }
    }
    let email = email.or_else(|| v.session_info().email).unwrap_or_default();
    User {
        id: v.sub.clone(),
        email,
        email_confirmed_at: verified_email.then_some(OffsetDateTime::UNIX_EPOCH),
        role: v.role(),
        disabled: false,
        created_at: OffsetDateTime::UNIX_EPOCH,
        last_sign_in_at: v.auth_time.map(from_unix),
        data: Value::Object(data),
    }
}

impl CognitoBackend {
    /// The user behind `access_token`; from the token alone when GetUser
    /// fails (the sign-in itself succeeded).
    pub(super) async fn user_for_token(&self, access_token: &str, v: &Verified) -> User {
        match self
            .api
            .call("GetUser", &json!({"AccessToken": access_token}))
            .await
        {
            Ok(answer) => user_from(v, answer.get("UserAttributes")),
            Err(e) => {
                tracing::warn!(error = ?upstream("GetUser", e), "cognito GetUser failed; answering from the token");
                user_from(v, None)
            }
        }
    }

    /// The verified token behind `session` (the one its request carried).
    async fn session_token(&self, session: &SessionInfo) -> AuthResult<(String, Verified)> {
        let token = self
            .verifier
            .recent_token(session)
            .ok_or(AuthError::Unauthenticated)?;
        let verified = self.verifier.verify(&token).await?;
        Ok((token, verified))
    }

    pub(super) async fn sign_up_impl(&self, req: SignUpRequest) -> AuthResult<SignUpOutcome> {
        if req.data.as_object().is_some_and(|o| !o.is_empty()) {
            return Err(AuthError::field(
                "data",
                "is not stored by the cognito backend (use the user pool's attributes)",
            ));
        }
        let email = req.email.as_str();
        let body = self.api.user_body(
            email,
            json!({
                "Password": req.password,
                "UserAttributes": [{"Name": "email", "Value": email}],
            }),
        );
        match self.api.call("SignUp", &body).await {
            Ok(answer) if answer.get("UserConfirmed") == Some(&Value::Bool(true)) => {
                // The pool confirmed the user itself (a pre-sign-up trigger).
                let outcome = self.sign_in_impl(email, &req.password).await?;
                Ok(SignUpOutcome::SignedIn(outcome))
            }
            Ok(_) => Ok(SignUpOutcome::ConfirmationRequired { email: req.email }),
            // The same answer as for a new email: sign-up reveals nothing.
            Err(e) if e.is_any(&["UsernameExistsException", "AliasExistsException"]) => {
                Ok(SignUpOutcome::ConfirmationRequired { email: req.email })
            }
            Err(e) if e.is("InvalidPasswordException") => {
                Err(AuthError::WeakPassword(vec![POOL_POLICY]))
            }
            Err(e) if e.is("InvalidParameterException") => {
                if e.message().to_ascii_lowercase().contains("password") {
                    Err(AuthError::WeakPassword(vec![POOL_POLICY]))
                } else {
                    Err(AuthError::InvalidRequest {
                        message: "the user pool refused the sign-up".into(),
                        fields: Default::default(),
                    })
                }
            }
            Err(e) => Err(upstream("SignUp", e)),
        }
    }

    /// ConfirmSignUp: the user then signs in (Cognito returns no tokens here).
    pub(super) async fn confirm_code_impl(
        &self,
        email: Email,
        code: &str,
    ) -> AuthResult<ConfirmOutcome> {
        let code = check_code(code)?;
        let body = self
            .api
            .user_body(email.as_str(), json!({"ConfirmationCode": code}));
        match self.api.call("ConfirmSignUp", &body).await {
            Ok(_) => Ok(ConfirmOutcome::Confirmed { email }),
            Err(e)
                if e.is_any(&[
                    "CodeMismatchException",
                    "ExpiredCodeException",
                    "UserNotFoundException",
                    "NotAuthorizedException",
                    "AliasExistsException",
                ]) =>
            {
                Err(AuthError::InvalidToken)
            }
            Err(e) => Err(upstream("ConfirmSignUp", e)),
        }
    }

    /// ResendConfirmationCode; answers the same for known and unknown emails.
    pub(super) async fn resend_confirmation_impl(&self, email: Email) -> AuthResult<()> {
        let body = self.api.user_body(email.as_str(), json!({}));
        self.quiet("ResendConfirmationCode", &body).await
    }

    /// ForgotPassword: Cognito mails its code; the same answer for everyone.
    pub(super) async fn recover_password_impl(&self, email: Email) -> AuthResult<()> {
        let body = self.api.user_body(email.as_str(), json!({}));
        self.quiet("ForgotPassword", &body).await
    }

    /// Calls an operation whose refusals must not reveal whether the user
    /// exists: only throttling and upstream failures are errors.
    async fn quiet(&self, op: &'static str, body: &Value) -> AuthResult<()> {
        match self.api.call(op, body).await {
            Ok(_) => Ok(()),
            Err(e)
                if e.is_any(&[
                    "UserNotFoundException",
                    "InvalidParameterException",
                    "NotAuthorizedException",
                    "CodeDeliveryFailureException",
                    "LimitExceededException",
                ]) =>
            {
                tracing::info!(op, error = ?upstream(op, e), "cognito refused quietly");
                Ok(())
            }
            Err(e) => Err(upstream(op, e)),
        }
    }

    /// ConfirmForgotPassword, then a sign-in with the new password.
    pub(super) async fn reset_password_code_impl(
        &self,
        email: Email,
        code: &str,
        password: String,
    ) -> AuthResult<crate::auth::AuthOutcome> {
        let code = check_code(code)?;
        let body = self.api.user_body(
            email.as_str(),
            json!({"ConfirmationCode": code, "Password": password}),
        );
        match self.api.call("ConfirmForgotPassword", &body).await {
            Ok(_) => {}
            Err(e)
                if e.is_any(&[
                    "CodeMismatchException",
                    "ExpiredCodeException",
                    "UserNotFoundException",
                    "NotAuthorizedException",
                ]) =>
            {
                return Err(AuthError::InvalidToken);
            }
            Err(e) if e.is("InvalidPasswordException") => {
                return Err(AuthError::WeakPassword(vec![POOL_POLICY]));
            }
            Err(e) => return Err(upstream("ConfirmForgotPassword", e)),
        }
        self.sign_in_impl(email.as_str(), &password).await
    }

    pub(super) async fn get_user_impl(&self, session: &SessionInfo) -> AuthResult<User> {
        let (token, verified) = self.session_token(session).await?;
        match self
            .api
            .call("GetUser", &json!({"AccessToken": token}))
            .await
        {
            Ok(answer) => Ok(user_from(&verified, answer.get("UserAttributes"))),
            Err(e) if e.is_any(&["NotAuthorizedException", "UserNotFoundException"]) => {
                Err(AuthError::Unauthenticated)
            }
            Err(e) => Err(upstream("GetUser", e)),
        }
    }

    /// A password change (ChangePassword, `current_password` required);
    /// `data` has no place in a user pool.
    pub(super) async fn update_user_impl(
        &self,
        session: &SessionInfo,
        update: UserUpdate,
    ) -> AuthResult<User> {
        if update.data.is_some() {
            return Err(AuthError::NotSupportedByBackend(super::NAME));
        }
        if let Some(password) = update.password {
            let Some(current) = update.current_password else {
                return Err(AuthError::field(
                    "current_password",
                    "is required to change the password",
                ));
            };
            let (token, _) = self.session_token(session).await?;
            let body = json!({
                "AccessToken": token,
                "PreviousPassword": current,
                "ProposedPassword": password,
            });
            match self.api.call("ChangePassword", &body).await {
                Ok(_) => {}
                Err(e) if e.is("NotAuthorizedException") => {
                    return Err(AuthError::field("current_password", "is not correct"));
                }
                Err(e) if e.is_any(&["InvalidPasswordException", "InvalidParameterException"]) => {
                    return Err(AuthError::WeakPassword(vec![POOL_POLICY]));
                }
                Err(e) => return Err(upstream("ChangePassword", e)),
            }
        }
        self.get_user_impl(session).await
    }
}
