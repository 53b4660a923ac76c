//! `/api/v1/auth`: sign-up, sign-in, tokens, the session and the account.
//! (About 500 lines: one short handler per route, each with its OpenAPI
//! annotation and body type; they share only `parse_email`.)

use crate::auth::SessionInfo;
use crate::auth::SessionView;
use crate::auth::{AuthOutcome, SignUpOutcome, SignUpRequest, UserUpdate};
use crate::domain::Email;
use crate::domain::User;
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
    cfg.service(web::resource("/sign-up").post(sign_up))
        .service(web::resource("/sign-in").post(sign_in))
        .service(web::resource("/refresh").post(refresh))
        .service(web::resource("/sign-out").post(sign_out))
        .service(web::resource("/session").get(get_session))
        .service(web::resource("/user").get(get_user).patch(update_user))
        .service(web::resource("/sessions").get(list_sessions))
        .service(web::resource("/sessions/{id}").delete(revoke_session))
        .service(web::resource("/confirm").post(confirm))
        .service(web::resource("/confirm/resend").post(resend_confirmation))
        .service(web::resource("/magic-link").post(send_magic_link))
        .service(web::resource("/magic-link/verify").post(verify_magic_link))
        .service(web::resource("/password/recover").post(recover_password))
        .service(web::resource("/password/reset").post(reset_password))
        .service(web::resource("/active-org").post(set_active_org))
        .service(web::resource("/token").post(exchange_code))
        .configure(super::mfa::routes)
        .configure(super::oauth::routes);
}

fn parse_email(raw: &str) -> std::result::Result<Email, AuthError> {
    Email::parse(raw).map_err(|reason| AuthError::field("email", reason))
}

#[derive(Debug, Deserialize, ToSchema)]
struct SignUpBody {
    email: String,
    password: String,
    confirmation_url: Option<String>,
    data: Option<serde_json::Value>,
}

#[utoipa::path(
    post,
    path = "/api/v1/auth/sign-up",
    tag = "auth",
    request_body = SignUpBody,
    responses((status = 201, description = "Signed up", body = doc::SignUpResponse), Errors)
)]
async fn sign_up(
    state: web::Data<AppState>,
    ClientMeta(meta): ClientMeta,
    ApiJson(body): ApiJson<SignUpBody>,
) -> Result<HttpResponse> {
    let email = parse_email(&body.email)?;
    let req = SignUpRequest {
        email,
        password: body.password,
        confirmation_url: body.confirmation_url,
        data: body.data.unwrap_or_else(|| json!({})),
    };
    let body = match state.accounts.sign_up(req, &meta).await? {
        SignUpOutcome::SignedIn(AuthOutcome { user, tokens, .. }) => {
            json!({"user": user, "tokens": tokens, "confirmation_required": false})
        }
        SignUpOutcome::ConfirmationRequired { email } => {
            json!({"user": {"email": email}, "tokens": null, "confirmation_required": true})
        }
        SignUpOutcome::MfaEnrollmentRequired {
            email,
            enrollment_token,
        } => json!({
            "user": {"email": email},
            "tokens": null,
            "confirmation_required": false,
            "mfa_enrollment_required": true,
            "enrollment_token": enrollment_token,
        }),
    };
    Ok(HttpResponse::Created().json(body))
}

#[derive(Debug, Deserialize, ToSchema)]
struct SignInBody {
    email: String,
    password: String,
}

#[utoipa::path(
    post,
    path = "/api/v1/auth/sign-in",
    tag = "auth",
    request_body = SignInBody,
    responses((status = 200, description = "Signed in", body = doc::SignInResponse), Errors)
)]
async fn sign_in(
    state: web::Data<AppState>,
    ClientMeta(meta): ClientMeta,
    ApiJson(body): ApiJson<SignInBody>,
) -> Result<HttpResponse> {
    let email = parse_email(&body.email)?;
    let outcome = state
        .accounts
        .sign_in_with_password(email, body.password, &meta)
        .await?
        .for_api()?;
    Ok(HttpResponse::Ok().json(outcome))
}

#[derive(Debug, Deserialize, ToSchema)]
struct RefreshBody {
    refresh_token: String,
}

#[utoipa::path(
    post,
    path = "/api/v1/auth/refresh",
    tag = "auth",
    request_body = RefreshBody,
    responses((status = 200, description = "A new token pair (the refresh token rotates)", body = doc::TokensResponse), Errors)
)]
async fn refresh(
    state: web::Data<AppState>,
    ClientMeta(meta): ClientMeta,
    ApiJson(body): ApiJson<RefreshBody>,
) -> Result<HttpResponse> {
    let tokens = state.accounts.refresh(&body.refresh_token, &meta).await?;
    Ok(HttpResponse::Ok().json(json!({ "tokens": tokens })))
}

#[derive(Debug, Deserialize, Default, ToSchema)]
#[serde(deny_unknown_fields)]
struct SignOutBody {
    scope: Option<String>,
}

#[utoipa::path(
    post,
    path = "/api/v1/auth/sign-out",
    tag = "auth",
    request_body = Option<SignOutBody>,
    responses((status = 204, description = "Signed out"), Errors),
    security(("bearer" = []))
)]
async fn sign_out(
    state: web::Data<AppState>,
    CurrentSession(session): CurrentSession,
    ClientMeta(meta): ClientMeta,
    body: Option<ApiJson<SignOutBody>>,
) -> Result<HttpResponse> {
    let scope = body
        .and_then(|b| b.0.scope)
        .unwrap_or_else(|| "session".into());
    let everywhere = match scope.as_str() {
        "session" => false,
        "all" => true,
        _ => return Err(AuthError::field("scope", "must be \"session\" or \"all\"").into()),
    };
    state.backend.sign_out(&session, everywhere, &meta).await?;
    Ok(HttpResponse::NoContent().finish())
}

#[utoipa::path(
    get,
    path = "/api/v1/auth/session",
    tag = "auth",
    responses((status = 200, description = "The session of the access token", body = SessionInfo), Errors),
    security(("bearer" = []))
)]
async fn get_session(CurrentSession(session): CurrentSession) -> Result<HttpResponse> {
    Ok(HttpResponse::Ok().json(session))
}

#[utoipa::path(
    get,
    path = "/api/v1/auth/user",
    tag = "auth",
    responses((status = 200, description = "The signed-in user", body = User), Errors),
    security(("bearer" = []))
)]
async fn get_user(
    state: web::Data<AppState>,
    CurrentSession(session): CurrentSession,
) -> Result<HttpResponse> {
    let user = state.backend.get_user(&session).await?;
    Ok(HttpResponse::Ok().json(user))
}

/// Only these fields may change here; anything else (role, email, …) is a 400.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct UpdateUserBody {
    data: Option<serde_json::Value>,
    password: Option<String>,
    current_password: Option<String>,
}

#[utoipa::path(
    patch,
    path = "/api/v1/auth/user",
    tag = "auth",
    request_body = UpdateUserBody,
    responses((status = 200, description = "The updated user", body = User), Errors),
    security(("bearer" = []))
)]
async fn update_user(
    state: web::Data<AppState>,
    CurrentSession(session): CurrentSession,
    ClientMeta(meta): ClientMeta,
    ApiJson(body): ApiJson<UpdateUserBody>,
) -> Result<HttpResponse> {
    let update = UserUpdate {
        data: body.data,
        password: body.password,
        current_password: body.current_password,
    };
    let user = state.accounts.update_user(&session, update, &meta).await?;
    Ok(HttpResponse::Ok().json(user))
}

#[utoipa::path(
    get,
    path = "/api/v1/auth/sessions",
    tag = "auth",
    responses((status = 200, description = "The user's sessions", body = Vec<SessionView>), Errors),
    security(("bearer" = []))
)]
async fn list_sessions(
    state: web::Data<AppState>,
    CurrentSession(session): CurrentSession,
) -> Result<HttpResponse> {
    let sessions = state.accounts.list_sessions(&session).await?;
    Ok(HttpResponse::Ok().json(sessions))
}

#[utoipa::path(
    delete,
    path = "/api/v1/auth/sessions/{id}",
    tag = "auth",
    params(("id" = String, Path, description = "A session id from GET /sessions")),
    responses((status = 204, description = "Revoked"), Errors),
    security(("bearer" = []))
)]
async fn revoke_session(
    state: web::Data<AppState>,
    CurrentSession(session): CurrentSession,
    ClientMeta(meta): ClientMeta,
    path: web::Path<String>,
) -> Result<HttpResponse> {
    state
        .accounts
        .revoke_session(&session, &path, &meta)
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

/// `{token}` (a link derp mailed) or `{email, code}` (Cognito's code).
#[derive(Debug, Deserialize, ToSchema)]
struct ConfirmBody {
    token: Option<String>,
    email: Option<String>,
    code: Option<String>,
}

#[utoipa::path(
    post,
    path = "/api/v1/auth/confirm",
    tag = "auth",
    request_body = ConfirmBody,
    responses((status = 200, description = "Confirmed: signed in, or (Cognito) confirmed without tokens", body = doc::ConfirmResponse), Errors)
)]
async fn confirm(
    state: web::Data<AppState>,
    ClientMeta(meta): ClientMeta,
    ApiJson(body): ApiJson<ConfirmBody>,
) -> Result<HttpResponse> {
    match (body.token, body.email, body.code) {
        (Some(token), None, None) => {
            Ok(HttpResponse::Ok().json(state.accounts.confirm(&token, &meta).await?.for_api()?))
        }
        (None, Some(email), Some(code)) => {
            let email = parse_email(&email)?;
            match state.accounts.confirm_code(email, &code, &meta).await? {
                crate::auth::ConfirmOutcome::SignedIn(outcome) => {
                    Ok(HttpResponse::Ok().json(outcome))
                }
                crate::auth::ConfirmOutcome::Confirmed { email } => {
                    Ok(HttpResponse::Ok().json(json!({"user": {"email": email}, "tokens": null})))
                }
            }
        }
        _ => Err(AuthError::field("token", "give either token, or email and code").into()),
    }
}

#[derive(Debug, Deserialize, ToSchema)]
struct ResendBody {
    email: String,
    confirmation_url: Option<String>,
}

#[utoipa::path(
    post,
    path = "/api/v1/auth/confirm/resend",
    tag = "auth",
    request_body = ResendBody,
    responses((status = 202, description = "Taken", body = doc::Accepted), Errors)
)]
async fn resend_confirmation(
    state: web::Data<AppState>,
    ClientMeta(meta): ClientMeta,
    ApiJson(body): ApiJson<ResendBody>,
) -> Result<HttpResponse> {
    let email = parse_email(&body.email)?;
    state
        .accounts
        .resend_confirmation(email, body.confirmation_url, &meta)
        .await?;
    Ok(HttpResponse::Accepted().json(json!({"status": "accepted"})))
}

#[derive(Debug, Deserialize, ToSchema)]
struct MagicLinkBody {
    email: String,
    magic_link_url: Option<String>,
}

#[utoipa::path(
    post,
    path = "/api/v1/auth/magic-link",
    tag = "auth",
    request_body = MagicLinkBody,
    responses((status = 202, description = "Taken", body = doc::Accepted), Errors)
)]
async fn send_magic_link(
    state: web::Data<AppState>,
    ClientMeta(meta): ClientMeta,
    ApiJson(body): ApiJson<MagicLinkBody>,
) -> Result<HttpResponse> {
    let email = parse_email(&body.email)?;
    state
        .accounts
        .send_magic_link(email, body.magic_link_url, &meta)
        .await?;
    Ok(HttpResponse::Accepted().json(json!({"status": "accepted"})))
}

#[derive(Debug, Deserialize, ToSchema)]
struct TokenBody {
    token: String,
}

#[utoipa::path(
    post,
    path = "/api/v1/auth/magic-link/verify",
    tag = "auth",
    request_body = TokenBody,
    responses((status = 200, description = "Signed in", body = doc::SignInResponse), Errors)
)]
async fn verify_magic_link(
    state: web::Data<AppState>,
    ClientMeta(meta): ClientMeta,
    ApiJson(body): ApiJson<TokenBody>,
) -> Result<HttpResponse> {
    let outcome = state
        .accounts
        .verify_magic_link(&body.token, &meta)
        .await?
        .for_api()?;
    Ok(HttpResponse::Ok().json(outcome))
}

#[derive(Debug, Deserialize, ToSchema)]
struct RecoverBody {
    email: String,
    reset_url: Option<String>,
}

#[utoipa::path(
    post,
    path = "/api/v1/auth/password/recover",
    tag = "auth",
    request_body = RecoverBody,
    responses((status = 202, description = "Taken", body = doc::Accepted), Errors)
)]
async fn recover_password(
    state: web::Data<AppState>,
    ClientMeta(meta): ClientMeta,
    ApiJson(body): ApiJson<RecoverBody>,
) -> Result<HttpResponse> {
    let email = parse_email(&body.email)?;
    state
        .accounts
        .recover_password(email, body.reset_url, &meta)
        .await?;
    Ok(HttpResponse::Accepted().json(json!({"status": "accepted"})))
}

#[derive(Debug, Deserialize, ToSchema)]
struct ResetBody {
    token: Option<String>,
    email: Option<String>,
    code: Option<String>,
    password: String,
}

#[utoipa::path(
    post,
    path = "/api/v1/auth/password/reset",
    tag = "auth",
    request_body = ResetBody,
    responses((status = 200, description = "The password is changed and the user signed in", body = doc::SignInResponse), Errors)
)]
/// `{token, password}` (a link derp mailed) or `{email, code, password}` (Cognito).
async fn reset_password(
    state: web::Data<AppState>,
    ClientMeta(meta): ClientMeta,
    ApiJson(body): ApiJson<ResetBody>,
) -> Result<HttpResponse> {
    let outcome = match (body.token, body.email, body.code) {
        (Some(token), None, None) => {
            state
                .accounts
                .reset_password(&token, body.password, &meta)
                .await?
        }
        (None, Some(email), Some(code)) => {
            let email = parse_email(&email)?;
            state
                .accounts
                .reset_password_code(email, &code, body.password, &meta)
                .await?
        }
        _ => return Err(AuthError::field("token", "give either token, or email and code").into()),
    };
    Ok(HttpResponse::Ok().json(outcome.for_api()?))
}

#[derive(Debug, Deserialize, ToSchema)]
struct ActiveOrgBody {
    org_id: Option<String>,
}

#[utoipa::path(
    post,
    path = "/api/v1/auth/active-org",
    tag = "auth",
    request_body = ActiveOrgBody,
    responses((status = 200, description = "A token pair for the org (the refresh token rotates)", body = doc::TokensResponse), Errors),
    security(("bearer" = []))
)]
async fn set_active_org(
    state: web::Data<AppState>,
    CurrentSession(session): CurrentSession,
    ApiJson(body): ApiJson<ActiveOrgBody>,
) -> Result<HttpResponse> {
    let tokens = state.backend.set_active_org(&session, body.org_id).await?;
    Ok(HttpResponse::Ok().json(json!({ "tokens": tokens })))
}

#[derive(Debug, Deserialize, ToSchema)]
struct TokenRequest {
    grant_type: String,
    code: String,
    code_verifier: Option<String>,
    redirect_uri: String,
}

#[utoipa::path(
    post,
    path = "/api/v1/auth/token",
    tag = "auth",
    request_body = TokenRequest,
    responses((status = 200, description = "Signed in", body = doc::SignInResponse), Errors)
)]
/// The app's backend exchanges the code from its redirect URL.
async fn exchange_code(
    state: web::Data<AppState>,
    ClientMeta(meta): ClientMeta,
    ApiJson(body): ApiJson<TokenRequest>,
) -> Result<HttpResponse> {
    if body.grant_type != "authorization_code" {
        return Err(AuthError::field("grant_type", "must be \"authorization_code\"").into());
    }
    let outcome = state
        .accounts
        .exchange_code(&body.code, &body.redirect_uri, body.code_verifier, &meta)
        .await?
        .for_api()?;
    Ok(HttpResponse::Ok().json(outcome))
}
