//! `/api/v1/auth/mfa`: second factors of the signed-in user (TOTP and
//! recovery codes), and the challenge that finishes a sign-in whose first
//! factor answered `mfa_required`; `/api/v1/auth/passkeys`: registering a
//! passkey and signing in with one (alone, or as that second step). Native
//! users only.

use crate::auth::native::NativeBackend;
use crate::auth::native::mfa::Verified;
use crate::error::AuthError;
use crate::http::error::ApiError;
use crate::http::extract::{ApiJson, ClientMeta, CurrentSession};
use crate::http::openapi::{self as doc, Errors};
use crate::state::AppState;
use actix_web::{HttpResponse, web};
use serde::Deserialize;
use serde_json::json;
use utoipa::ToSchema;

type Result<T> = std::result::Result<T, ApiError>;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/mfa/factors").get(list_factors))
        .service(web::resource("/mfa/factors/{id}").delete(remove_factor))
        .service(web::resource("/mfa/totp/enroll").post(enroll_totp))
        .service(web::resource("/mfa/totp/verify").post(verify_totp))
        .service(web::resource("/mfa/recovery-codes").post(new_recovery_codes))
        .service(web::resource("/mfa/challenge").post(challenge))
        .service(web::resource("/passkeys/register/start").post(passkey_register_start))
        .service(web::resource("/passkeys/register/finish").post(passkey_register_finish))
        .service(web::resource("/passkeys/sign-in/start").post(passkey_sign_in_start))
        .service(web::resource("/passkeys/sign-in/finish").post(passkey_sign_in_finish));
}

fn native(state: &AppState) -> std::result::Result<&NativeBackend, AuthError> {
    state.accounts.native()
}

#[utoipa::path(
    get,
    path = "/api/v1/auth/mfa/factors",
    tag = "mfa",
    operation_id = "mfa_factors",
    responses((status = 200, description = "The user's second factors", body = doc::FactorList), Errors),
    security(("bearer" = []))
)]
async fn list_factors(
    state: web::Data<AppState>,
    CurrentSession(session): CurrentSession,
) -> Result<HttpResponse> {
    let factors = native(&state)?.mfa_factors(&session).await?;
    Ok(HttpResponse::Ok().json(json!({ "factors": factors })))
}

#[derive(Debug, Deserialize, Default, ToSchema)]
#[serde(deny_unknown_fields)]
struct EnrollBody {
    name: Option<String>,
    /// In place of a Bearer token: the `enrollment_token` of a sign-in
    /// answered 403 `mfa_enrollment_required`.
    enrollment_token: Option<String>,
}

#[utoipa::path(
    post,
    path = "/api/v1/auth/mfa/totp/enroll",
    tag = "mfa",
    operation_id = "mfa_enroll",
    request_body = Option<EnrollBody>,
    responses((status = 200, description = "A pending TOTP factor", body = doc::TotpEnrollment), Errors),
    security(("bearer" = []), ())
)]
async fn enroll_totp(
    state: web::Data<AppState>,
    session: Option<CurrentSession>,
    body: Option<ApiJson<EnrollBody>>,
) -> Result<HttpResponse> {
    let body = body.map(|b| b.0).unwrap_or_default();
    let native = native(&state)?;
    let enrollment = match (body.enrollment_token, session) {
        (Some(token), _) => native.mfa_totp_enroll_with_token(&token, body.name).await?,
        (None, Some(CurrentSession(session))) => {
            native.mfa_totp_enroll(&session, body.name).await?
        }
        (None, None) => return Err(AuthError::Unauthenticated.into()),
    };
    Ok(HttpResponse::Ok().json(enrollment))
}

#[derive(Debug, Deserialize, ToSchema)]
struct VerifyBody {
    factor_id: String,
    code: String,
    /// In place of a Bearer token: the `enrollment_token` of a sign-in; the
    /// answer then carries the completed sign-in (`user`, `tokens`) too.
    enrollment_token: Option<String>,
}

/// The answer to a factor enrolled with an `enrollment_token`: the
/// completed sign-in (`user`, `tokens`) with the `factor` and its
/// `recovery_codes`.
fn enrolled_at_sign_in(v: Verified) -> Result<serde_json::Value> {
    let mut answer = match v.step.map(|s| s.for_api()).transpose()? {
        Some(step) => serde_json::to_value(&step).unwrap_or_default(),
        None => json!({}),
    };
    answer["factor"] = json!(v.factor);
    answer["recovery_codes"] = json!(v.recovery_codes);
    Ok(answer)
}

#[utoipa::path(
    post,
    path = "/api/v1/auth/mfa/totp/verify",
    tag = "mfa",
    operation_id = "mfa_verify",
    request_body = VerifyBody,
    responses((status = 200, description = "The factor is active", body = doc::TotpVerified), Errors),
    security(("bearer" = []), ())
)]
async fn verify_totp(
    state: web::Data<AppState>,
    session: Option<CurrentSession>,
    ClientMeta(meta): ClientMeta,
    ApiJson(body): ApiJson<VerifyBody>,
) -> Result<HttpResponse> {
    let native = native(&state)?;
    match (body.enrollment_token, session) {
        (Some(token), _) => {
            let v = native
                .mfa_totp_verify_with_token(&token, &body.factor_id, &body.code, &meta)
                .await?;
            Ok(HttpResponse::Ok().json(enrolled_at_sign_in(v)?))
        }
        (None, Some(CurrentSession(session))) => {
            let (factor, codes) = native
                .mfa_totp_verify(&session, &body.factor_id, &body.code, &meta)
                .await?;
            Ok(HttpResponse::Ok().json(json!({ "factor": factor, "recovery_codes": codes })))
        }
        (None, None) => Err(AuthError::Unauthenticated.into()),
    }
}

#[utoipa::path(
    post,
    path = "/api/v1/auth/mfa/recovery-codes",
    tag = "mfa",
    operation_id = "mfa_recovery_codes",
    responses((status = 200, description = "New recovery codes (the old ones stop working)", body = doc::RecoveryCodes), Errors),
    security(("bearer" = []))
)]
async fn new_recovery_codes(
    state: web::Data<AppState>,
    CurrentSession(session): CurrentSession,
    ClientMeta(meta): ClientMeta,
) -> Result<HttpResponse> {
    let codes = native(&state)?
        .mfa_new_recovery_codes(&session, &meta)
        .await?;
    Ok(HttpResponse::Ok().json(json!({ "recovery_codes": codes })))
}

#[utoipa::path(
    delete,
    path = "/api/v1/auth/mfa/factors/{id}",
    tag = "mfa",
    operation_id = "mfa_remove",
    params(("id" = String, Path, description = "A factor id")),
    responses((status = 204, description = "Removed"), Errors),
    security(("bearer" = []))
)]
async fn remove_factor(
    state: web::Data<AppState>,
    CurrentSession(session): CurrentSession,
    ClientMeta(meta): ClientMeta,
    path: web::Path<String>,
) -> Result<HttpResponse> {
    native(&state)?.mfa_remove(&session, &path, &meta).await?;
    Ok(HttpResponse::NoContent().finish())
}

#[derive(Debug, Deserialize, ToSchema)]
struct ChallengeBody {
    mfa_token: String,
    code: String,
}

#[utoipa::path(
    post,
    path = "/api/v1/auth/mfa/challenge",
    tag = "mfa",
    operation_id = "mfa_challenge",
    request_body = ChallengeBody,
    responses((status = 200, description = "Signed in", body = doc::SignInResponse), Errors)
)]
async fn challenge(
    state: web::Data<AppState>,
    ClientMeta(meta): ClientMeta,
    ApiJson(body): ApiJson<ChallengeBody>,
) -> Result<HttpResponse> {
    let step = state
        .accounts
        .mfa_challenge(&body.mfa_token, &body.code, &meta)
        .await?
        .for_api()?;
    Ok(HttpResponse::Ok().json(step))
}

#[derive(Debug, Deserialize, Default, ToSchema)]
#[serde(deny_unknown_fields)]
struct PasskeyRegisterStartBody {
    /// Shown in the list of factors (default "Passkey").
    name: Option<String>,
    /// In place of a Bearer token: the `enrollment_token` of a sign-in
    /// answered 403 `mfa_enrollment_required`.
    enrollment_token: Option<String>,
}

#[utoipa::path(
    post,
    path = "/api/v1/auth/passkeys/register/start",
    tag = "mfa",
    operation_id = "passkey_register_start",
    request_body = Option<PasskeyRegisterStartBody>,
    responses((status = 200, description = "Pass `options` to navigator.credentials.create (binary fields base64url)", body = doc::PasskeyStart), Errors),
    security(("bearer" = []), ())
)]
async fn passkey_register_start(
    state: web::Data<AppState>,
    session: Option<CurrentSession>,
    body: Option<ApiJson<PasskeyRegisterStartBody>>,
) -> Result<HttpResponse> {
    let body = body.map(|b| b.0).unwrap_or_default();
    let native = native(&state)?;
    let start = match (body.enrollment_token, session) {
        (Some(token), _) => native.passkey_enroll_start(&token, body.name).await?,
        (None, Some(CurrentSession(session))) => {
            native.passkey_register_start(&session, body.name).await?
        }
        (None, None) => return Err(AuthError::Unauthenticated.into()),
    };
    Ok(HttpResponse::Ok().json(start))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct PasskeyFinishBody {
    flow_id: String,
    /// The browser's `PublicKeyCredential` as JSON (`toJSON()`: binary
    /// fields base64url).
    #[schema(value_type = Object)]
    credential: serde_json::Value,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct PasskeyRegisterFinishBody {
    flow_id: String,
    /// The browser's `PublicKeyCredential` as JSON (`toJSON()`: binary
    /// fields base64url).
    #[schema(value_type = Object)]
    credential: serde_json::Value,
    /// In place of a Bearer token: the `enrollment_token` the flow was
    /// started with; the answer then carries the completed sign-in
    /// (`user`, `tokens`) too.
    enrollment_token: Option<String>,
}

#[utoipa::path(
    post,
    path = "/api/v1/auth/passkeys/register/finish",
    tag = "mfa",
    operation_id = "passkey_register_finish",
    request_body = PasskeyRegisterFinishBody,
    responses((status = 201, description = "The passkey is active; recovery codes come with a first factor", body = doc::PasskeyRegistered), Errors),
    security(("bearer" = []), ())
)]
async fn passkey_register_finish(
    state: web::Data<AppState>,
    session: Option<CurrentSession>,
    ClientMeta(meta): ClientMeta,
    ApiJson(body): ApiJson<PasskeyRegisterFinishBody>,
) -> Result<HttpResponse> {
    let native = native(&state)?;
    let session = match (body.enrollment_token, session) {
        (Some(token), _) => {
            let v = native
                .passkey_enroll_finish(&token, &body.flow_id, body.credential, &meta)
                .await?;
            return Ok(HttpResponse::Created().json(enrolled_at_sign_in(v)?));
        }
        (None, Some(CurrentSession(session))) => session,
        (None, None) => return Err(AuthError::Unauthenticated.into()),
    };
    let done = native
        .passkey_register_finish(&session, &body.flow_id, body.credential, &meta)
        .await?;
    let mut answer = json!({ "factor": done.factor });
    if let Some(codes) = done.recovery_codes {
        answer["recovery_codes"] = json!(codes);
    }
    Ok(HttpResponse::Created().json(answer))
}

#[derive(Debug, Deserialize, Default, ToSchema)]
#[serde(deny_unknown_fields)]
struct PasskeySignInStartBody {
    /// The account's address: its passkeys are offered. Without it (and
    /// without `mfa_token`) the browser picks a discoverable passkey.
    email: Option<String>,
    /// The second step of a sign-in that answered `mfa_required`.
    mfa_token: Option<String>,
}

#[utoipa::path(
    post,
    path = "/api/v1/auth/passkeys/sign-in/start",
    tag = "mfa",
    operation_id = "passkey_sign_in_start",
    request_body = Option<PasskeySignInStartBody>,
    responses((status = 200, description = "Pass `options` to navigator.credentials.get (binary fields base64url)", body = doc::PasskeyStart), Errors)
)]
async fn passkey_sign_in_start(
    state: web::Data<AppState>,
    ClientMeta(meta): ClientMeta,
    body: Option<ApiJson<PasskeySignInStartBody>>,
) -> Result<HttpResponse> {
    let body = body.map(|b| b.0).unwrap_or_default();
    let start = state
        .accounts
        .passkey_sign_in_start(body.email, body.mfa_token, &meta)
        .await?;
    Ok(HttpResponse::Ok().json(start))
}

#[utoipa::path(
    post,
    path = "/api/v1/auth/passkeys/sign-in/finish",
    tag = "mfa",
    operation_id = "passkey_sign_in_finish",
    request_body = PasskeyFinishBody,
    responses((status = 200, description = "Signed in (amr hwk, user, mfa)", body = doc::SignInResponse), Errors)
)]
async fn passkey_sign_in_finish(
    state: web::Data<AppState>,
    ClientMeta(meta): ClientMeta,
    ApiJson(body): ApiJson<PasskeyFinishBody>,
) -> Result<HttpResponse> {
    let step = state
        .accounts
        .passkey_sign_in_finish(&body.flow_id, body.credential, &meta)
        .await?
        .for_api()?;
    Ok(HttpResponse::Ok().json(step))
}
