//! JSON errors: `{"error": {"code", "message", "request_id", …}}`.
//! Causes go to the log with the request id, never to the client.

use crate::error::AuthError;
use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpResponse, ResponseError};
use serde_json::json;

tokio::task_local! {
    /// The id of the request being served, set by the request-id middleware.
    pub static REQUEST_ID: String;
}

pub fn current_request_id() -> String {
    REQUEST_ID.try_with(Clone::clone).unwrap_or_default()
}

#[derive(Debug)]
pub enum ApiError {
    Auth(AuthError),
    /// Protocol-level refusals that are not use-case errors.
    Http {
        status: StatusCode,
        code: &'static str,
        message: String,
    },
}

impl From<AuthError> for ApiError {
    fn from(e: AuthError) -> Self {
        Self::Auth(e)
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Auth(e) => write!(f, "{e}"),
            Self::Http { message, .. } => f.write_str(message),
        }
    }
}

impl ApiError {
    pub fn http(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self::Http {
            status,
            code,
            message: message.into(),
        }
    }

    pub fn not_found() -> Self {
        Self::http(StatusCode::NOT_FOUND, "not_found", "no such resource")
    }
}

/// Status and stable code of each domain error.
pub fn status_and_code(e: &AuthError) -> (StatusCode, &'static str) {
    use AuthError::*;
    match e {
        InvalidRequest { .. } => (StatusCode::BAD_REQUEST, "invalid_request"),
        InvalidCredentials => (StatusCode::UNAUTHORIZED, "invalid_credentials"),
        Unauthenticated => (StatusCode::UNAUTHORIZED, "unauthenticated"),
        InvalidToken => (StatusCode::UNAUTHORIZED, "invalid_token"),
        ReauthenticationRequired => (StatusCode::UNAUTHORIZED, "reauthentication_required"),
        InvalidMfaCode => (StatusCode::UNAUTHORIZED, "invalid_code"),
        PasskeyRejected => (StatusCode::UNAUTHORIZED, "passkey_rejected"),
        PasskeysUnavailable(_) => (StatusCode::NOT_IMPLEMENTED, "passkeys_unavailable"),
        EmailNotConfirmed => (StatusCode::FORBIDDEN, "email_not_confirmed"),
        MfaRequired => (StatusCode::FORBIDDEN, "mfa_required"),
        MfaEnrollmentRequired { .. } => (StatusCode::FORBIDDEN, "mfa_enrollment_required"),
        AccountDisabled => (StatusCode::FORBIDDEN, "account_disabled"),
        Forbidden(_) => (StatusCode::FORBIDDEN, "forbidden"),
        NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
        EmailExists => (StatusCode::CONFLICT, "email_exists"),
        OrgExists => (StatusCode::CONFLICT, "org_exists"),
        MemberExists => (StatusCode::CONFLICT, "member_exists"),
        LastOwner | SoleOwner(_) => (StatusCode::CONFLICT, "last_owner"),
        WeakPassword(_) => (StatusCode::UNPROCESSABLE_ENTITY, "weak_password"),
        SignupDisabled => (StatusCode::FORBIDDEN, "signup_disabled"),
        FeatureDisabled(_) => (StatusCode::NOT_FOUND, "feature_disabled"),
        NotSupportedByBackend(_) | NotConfigured(_) => {
            (StatusCode::NOT_IMPLEMENTED, "not_supported_by_backend")
        }
        RateLimited { .. } => (StatusCode::TOO_MANY_REQUESTS, "rate_limited"),
        Upstream(_) => (StatusCode::BAD_GATEWAY, "upstream_error"),
        Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
    }
}

/// The JSON body for a status without a domain error (404, 405, 413…).
pub fn body_for_status(status: StatusCode) -> serde_json::Value {
    let (code, message) = match status.as_u16() {
        400 => ("invalid_request", "the request is malformed"),
        401 => ("unauthenticated", "authentication required"),
        403 => ("forbidden", "forbidden"),
        404 => ("not_found", "no such resource"),
        405 => ("method_not_allowed", "this method is not allowed here"),
        408 => ("request_timeout", "the request did not arrive in time"),
        413 => ("payload_too_large", "the body is larger than 64 KiB"),
        415 => (
            "unsupported_media_type",
            "content-type: must be application/json",
        ),
        429 => ("rate_limited", "too many requests"),
        s if s >= 500 => ("internal", "internal error"),
        _ => ("invalid_request", "the request was refused"),
    };
    json!({"error": {"code": code, "message": message, "request_id": current_request_id()}})
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            Self::Auth(e) => status_and_code(e).0,
            Self::Http { status, .. } => *status,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let request_id = current_request_id();
        let (status, code, message) = match self {
            Self::Auth(e) => {
                let (status, code) = status_and_code(e);
                let message = match e {
                    AuthError::Internal(cause) | AuthError::Upstream(cause) => {
                        tracing::error!(request_id = %request_id, cause = %cause, "request failed");
                        if matches!(e, AuthError::Internal(_)) {
                            "internal error".to_string()
                        } else {
                            "the upstream service failed".to_string()
                        }
                    }
                    other => other.to_string(),
                };
                (status, code, message)
            }
            Self::Http {
                status,
                code,
                message,
            } => (*status, *code, message.clone()),
        };
        let mut error = json!({"code": code, "message": message, "request_id": request_id});
        let mut builder = HttpResponse::build(status);
        match self {
            Self::Auth(AuthError::InvalidRequest { fields, .. }) if !fields.is_empty() => {
                error["fields"] = json!(fields);
            }
            Self::Auth(AuthError::WeakPassword(reasons)) => error["reasons"] = json!(reasons),
            Self::Auth(AuthError::SoleOwner(orgs)) => error["orgs"] = json!(orgs),
            Self::Auth(AuthError::MfaEnrollmentRequired { enrollment_token }) => {
                error["enrollment_token"] = json!(enrollment_token);
            }
            Self::Auth(AuthError::RateLimited { retry_after }) => {
                error["retry_after"] = json!(retry_after);
                builder.insert_header((header::RETRY_AFTER, retry_after.to_string()));
            }
            Self::Auth(AuthError::Unauthenticated | AuthError::InvalidToken) => {
                builder
                    .insert_header((header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer")));
            }
            _ => {}
        }
        builder.json(json!({ "error": error }))
    }
}
