//! The user stores behind `AuthBackend` and the flows only some of them
//! have ([`backend`]), the `UserDirectory` through which admins manage
//! upstream users ([`directory`]), the types their methods speak, and the
//! token machinery behind the native backend.

pub mod backend;
pub mod clerk;
pub mod cognito;
pub mod directory;
pub mod jwt;
pub mod lockout;
pub mod native;
pub mod org_context;
pub mod password;
pub mod seal;
pub mod sealer;
pub mod secrets;
pub mod totp;

pub use backend::{
    AuthBackend, AuthorizationCodes, EmailedCodes, LinkTokens, MagicLinks, PasswordFlows,
    SessionList,
};

use crate::domain::{Email, User};
use serde::Serialize;

/// Who is asking: taken from the request by the http layer.
#[derive(Debug, Clone, Default)]
pub struct RequestMeta {
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    /// The language the request asked for (a shipped one, see
    /// `domain::i18n`), for the mail it sends; empty: the default one.
    pub locale: String,
}

/// The token pair body. `expires_at` is the access token's `exp` (epoch
/// seconds), `expires_in` its remaining life in seconds.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct TokenPair {
    pub access_token: String,
    pub refresh_token: String,
    pub token_type: &'static str,
    pub expires_in: i64,
    pub expires_at: i64,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct AuthOutcome {
    pub user: User,
    pub tokens: TokenPair,
    /// The login session the tokens belong to (for the hosted pages' cookie).
    #[serde(skip)]
    pub session_id: String,
    /// How the user proved who they are (RFC 8176 values), as the access
    /// token's `amr` carries them; an authorization code issued on this
    /// sign-in keeps them.
    #[serde(skip)]
    pub amr: Vec<String>,
}

/// What a first factor leads to: a session, or (the user has an active
/// second factor) the second step. Not an error: the transaction that spent
/// a one-time token and stored the `mfa_token` must commit.
#[derive(Debug, Clone)]
pub enum SignInStep {
    Session(AuthOutcome),
    MfaRequired(MfaChallenge),
    /// `[auth.native.mfa] required` and the user has no factor: the token
    /// enrolls one and completes the sign-in. The API answers it as 403
    /// `mfa_enrollment_required` ([`SignInStep::for_api`]).
    MfaEnrollmentRequired {
        enrollment_token: String,
    },
}

impl SignInStep {
    /// The session, or `None` while a step is pending (a second factor to
    /// answer, or one to enroll).
    pub fn session(self) -> Option<AuthOutcome> {
        match self {
            Self::Session(o) => Some(o),
            Self::MfaRequired(_) | Self::MfaEnrollmentRequired { .. } => None,
        }
    }

    /// The step as the JSON API answers it: a pending enrollment is the
    /// error 403 `mfa_enrollment_required` carrying its token (the step
    /// itself was committed before).
    pub fn for_api(self) -> Result<Self, crate::error::AuthError> {
        match self {
            Self::MfaEnrollmentRequired { enrollment_token } => {
                Err(crate::error::AuthError::MfaEnrollmentRequired { enrollment_token })
            }
            other => Ok(other),
        }
    }
}

/// The second step of a sign-in: the `mfa_token` that the challenge takes
/// with a code, and the factors that can answer it.
#[derive(Debug, Clone)]
pub struct MfaChallenge {
    pub mfa_token: String,
    pub factors: Vec<FactorRef>,
}

#[derive(Debug, Clone, Serialize)]
pub struct FactorRef {
    pub id: String,
    #[serde(rename = "type")]
    pub kind: String,
}

/// The API body: `{user, tokens}`, or `{user: null, tokens: null,
/// mfa_required: true, mfa_token, factors}`.
impl Serialize for SignInStep {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        match self {
            Self::Session(o) => o.serialize(s),
            Self::MfaRequired(c) => {
                let mut st = s.serialize_struct("MfaRequired", 5)?;
                st.serialize_field("user", &None::<()>)?;
                st.serialize_field("tokens", &None::<()>)?;
                st.serialize_field("mfa_required", &true)?;
                st.serialize_field("mfa_token", &c.mfa_token)?;
                st.serialize_field("factors", &c.factors)?;
                st.end()
            }
            Self::MfaEnrollmentRequired { enrollment_token } => {
                let mut st = s.serialize_struct("MfaEnrollmentRequired", 4)?;
                st.serialize_field("user", &None::<()>)?;
                st.serialize_field("tokens", &None::<()>)?;
                st.serialize_field("mfa_enrollment_required", &true)?;
                st.serialize_field("enrollment_token", enrollment_token)?;
                st.end()
            }
        }
    }
}

/// What confirming a sign-up code gives: a backend that cannot sign the user
/// in from a code alone (Cognito's `ConfirmSignUp` returns no tokens) answers
/// `Confirmed`, and the client signs in next.
#[derive(Debug, Clone)]
pub enum ConfirmOutcome {
    SignedIn(AuthOutcome),
    Confirmed { email: Email },
}

#[derive(Debug, Clone)]
pub enum SignUpOutcome {
    /// Confirmation is off: the user is signed in.
    SignedIn(AuthOutcome),
    /// Confirmation is on: the answer is the same for new and taken emails.
    ConfirmationRequired { email: Email },
    /// `[auth.native.mfa] required`: the account exists and its sign-in
    /// waits for the first second factor (the token enrolls it).
    MfaEnrollmentRequired {
        email: Email,
        enrollment_token: String,
    },
}

/// The seed's `SessionInfo`: what `GET /session` returns.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct SessionInfo {
    pub user_id: String,
    pub session_id: String,
    pub role: String,
    /// The access token's `exp`, epoch seconds.
    pub expires_at: i64,
    pub org_id: Option<String>,
    pub org_role: Option<String>,
    pub email: Option<String>,
    /// RFC 8176 methods of the sign-in behind the session (native backend;
    /// empty for upstream stores).
    #[serde(default)]
    pub amr: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct SignUpRequest {
    pub email: Email,
    pub password: String,
    pub confirmation_url: Option<String>,
    pub data: serde_json::Value,
}

#[derive(Debug, Clone, Default)]
pub struct UserUpdate {
    pub data: Option<serde_json::Value>,
    pub password: Option<String>,
    pub current_password: Option<String>,
}

/// A session as its owner sees it: no token material.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct SessionView {
    pub id: String,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: time::OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub last_used_at: time::OffsetDateTime,
    pub user_agent: Option<String>,
    pub ip: Option<String>,
    pub current: bool,
}

/// Whom an authorization code is for: a sign-in that just happened (with
/// its tokens, which a backend that cannot mint tokens later hands on), or
/// the user of a live hosted-pages session (`web_session_id` as
/// [`AuthBackend::start_web_session`] returned it).
#[derive(Debug, Clone, Copy)]
pub enum CodeGrant<'a> {
    SignIn(&'a AuthOutcome),
    WebSession {
        session: &'a SessionInfo,
        web_session_id: &'a str,
    },
}

impl CodeGrant<'_> {
    pub fn user_id(&self) -> &str {
        match self {
            Self::SignIn(o) => &o.user.id,
            Self::WebSession { session, .. } => &session.user_id,
        }
    }
}
