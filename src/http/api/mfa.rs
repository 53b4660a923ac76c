//! `/api/v1/auth/mfa`: second factors of the signed-in user (TOTP and
//! recovery codes), and the challenge that finishes a sign-in whose first
//! factor answered `mfa_required`. Native users only.

use crate::auth::native::NativeBackend;
use crate::error::AuthError;
use crate::http::error::ApiError;
use crate::http::extract::{ApiJson, ClientMeta, CurrentSession};
use crate::state::AppState;
use actix_web::{HttpResponse, web};
use serde::Deserialize;
use serde_json::json;
use std::sync::Arc;

type Result<T> = std::result::Result<T, ApiError>;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/mfa/factors").get(list_factors))
        .service(web::resource("/mfa/factors/{id}").delete(remove_factor))
        .service(web::resource("/mfa/totp/enroll").post(enroll_totp))
        .service(web::resource("/mfa/totp/verify").post(verify_totp))
        .service(web::resource("/mfa/recovery-codes").post(new_recovery_codes))
        .service(web::resource("/mfa/challenge").post(challenge));
}

fn native(state: &AppState) -> std::result::Result<&Arc<NativeBackend>, AuthError> {
    state
        .native
        .as_ref()
        .ok_or(AuthError::NotSupportedByBackend(state.backend.name()))
}

async fn list_factors(
    state: web::Data<AppState>,
    CurrentSession(session): CurrentSession,
) -> Result<HttpResponse> {
    let factors = native(&state)?.mfa_factors(&session).await?;
    Ok(HttpResponse::Ok().json(json!({ "factors": factors })))
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct EnrollBody {
    name: Option<String>,
}

async fn enroll_totp(
    state: web::Data<AppState>,
    CurrentSession(session): CurrentSession,
    body: Option<ApiJson<EnrollBody>>,
) -> Result<HttpResponse> {
    let name = body.and_then(|b| b.0.name);
    let enrollment = native(&state)?.mfa_totp_enroll(&session, name).await?;
    Ok(HttpResponse::Ok().json(enrollment))
}

#[derive(Debug, Deserialize)]
struct VerifyBody {
    factor_id: String,
    code: String,
}

async fn verify_totp(
    state: web::Data<AppState>,
    CurrentSession(session): CurrentSession,
    ClientMeta(meta): ClientMeta,
    ApiJson(body): ApiJson<VerifyBody>,
) -> Result<HttpResponse> {
    let (factor, codes) = native(&state)?
        .mfa_totp_verify(&session, &body.factor_id, &body.code, &meta)
        .await?;
    Ok(HttpResponse::Ok().json(json!({ "factor": factor, "recovery_codes": codes })))
}

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

async fn remove_factor(
    state: web::Data<AppState>,
    CurrentSession(session): CurrentSession,
    ClientMeta(meta): ClientMeta,
    path: web::Path<String>,
) -> Result<HttpResponse> {
    native(&state)?.mfa_remove(&session, &path, &meta).await?;
    Ok(HttpResponse::NoContent().finish())
}

#[derive(Debug, Deserialize)]
struct ChallengeBody {
    mfa_token: String,
    code: String,
}

async fn challenge(
    state: web::Data<AppState>,
    ClientMeta(meta): ClientMeta,
    ApiJson(body): ApiJson<ChallengeBody>,
) -> Result<HttpResponse> {
    let step = state
        .accounts
        .mfa_challenge(&body.mfa_token, &body.code, &meta)
        .await?;
    Ok(HttpResponse::Ok().json(step))
}
