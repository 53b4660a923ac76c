//! The domain error every use case returns; `http` turns it into JSON or a page.

use std::collections::BTreeMap;

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("{message}")]
    InvalidRequest {
        message: String,
        fields: BTreeMap<String, String>,
    },
    #[error("invalid email or password")]
    InvalidCredentials,
    #[error("authentication required")]
    Unauthenticated,
    #[error("the token is invalid or expired")]
    InvalidToken,
    #[error("sign in again to do this (a sign-in within the last 10 minutes is required)")]
    ReauthenticationRequired,
    #[error("the code is wrong or was already used")]
    InvalidMfaCode,
    /// The org requires a second factor and this session was signed in
    /// without one.
    #[error("this organization requires a second factor: set one up (or sign in with it) first")]
    MfaRequired,
    /// `[auth.native.mfa] required`: the user has no second factor yet; the
    /// token enrolls the first one and completes the sign-in.
    #[error("a second factor is required: enroll one to finish signing in")]
    MfaEnrollmentRequired { enrollment_token: String },
    /// Passkeys are on but the configuration gives WebAuthn no usable
    /// relying party id (an IP address): the reason says what to change.
    #[error("{0}")]
    PasskeysUnavailable(&'static str),
    /// The authenticator's answer did not pass (unknown or foreign
    /// credential, wrong origin or challenge, bad signature, no user
    /// verification, a sign count that did not grow).
    #[error("the passkey was not accepted")]
    PasskeyRejected,
    #[error("the email address is not confirmed")]
    EmailNotConfirmed,
    #[error("the account is disabled")]
    AccountDisabled,
    #[error("{0}")]
    Forbidden(String),
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("an account with this email already exists")]
    EmailExists,
    #[error("an organization with this slug already exists")]
    OrgExists,
    #[error("the user is already a member of this organization")]
    MemberExists,
    #[error("the organization must keep at least one owner")]
    LastOwner,
    /// The user alone owns these orgs (slugs): deleting them would orphan them.
    #[error("the user is the only owner of: {}", .0.join(", "))]
    SoleOwner(Vec<String>),
    #[error("the password does not meet the policy")]
    WeakPassword(Vec<&'static str>),
    #[error("sign-up is disabled")]
    SignupDisabled,
    #[error("{0} is disabled")]
    FeatureDisabled(&'static str),
    #[error("not supported by the {0} backend")]
    NotSupportedByBackend(&'static str),
    /// The backend could do it, but not as configured (the reason says
    /// which setting is missing). Answered like `NotSupportedByBackend`.
    #[error("{0}")]
    NotConfigured(&'static str),
    #[error("too many requests; retry in {retry_after} s")]
    RateLimited { retry_after: u64 },
    #[error("the upstream service failed")]
    Upstream(String),
    #[error("internal error")]
    Internal(String),
}

impl AuthError {
    /// A 400 naming one field.
    pub fn field(field: &str, problem: impl Into<String>) -> Self {
        let problem = problem.into();
        let mut fields = BTreeMap::new();
        fields.insert(field.to_string(), problem.clone());
        Self::InvalidRequest {
            message: format!("{field}: {problem}"),
            fields,
        }
    }

    /// Wraps a cause that must reach the log but never the client.
    pub fn internal(cause: impl std::fmt::Display) -> Self {
        Self::Internal(cause.to_string())
    }
}

pub type AuthResult<T> = Result<T, AuthError>;

/// A storage failure is the server's fault: logged, never shown.
impl From<crate::storage::StorageError> for AuthError {
    fn from(e: crate::storage::StorageError) -> Self {
        AuthError::internal(e)
    }
}
