//! `/api/v1/auth/oauth/{provider}/…`: the authorization URL, and the code
//! sign-in for apps that run the browser leg themselves. The browser's
//! callback at `/api/v1/auth/oauth/{provider}/callback` answers pages, so it
//! lives in `pages::oauth`; the flow's cookie is `http::oauth_flow`'s.
//! With the Cognito backend, the provider `cognito` is its hosted UI
//! ([`super::oauth_cognito`]).

use super::oauth_cognito;
use crate::error::AuthError;
use crate::http::error::ApiError;
use crate::http::extract::{ApiJson, ClientMeta};
use crate::http::oauth_flow::{flow_cookie, hosted_ui, provider_service, start_hosted_ui};
use crate::http::openapi::{self as doc, Errors};
use crate::state::AppState;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;
use serde_json::json;
use utoipa::{IntoParams, ToSchema};

/// The callback's route is `pages::oauth::routes`, mounted beside these.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/oauth/{provider}/url").get(authorization_url))
        .service(web::resource("/oauth/{provider}/sign-in").post(sign_in));
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct UrlQuery {
    /// An allow-listed app URL that gets derp's code after derp's callback.
    redirect_to: Option<String>,
    /// The app's `state`. When the provider returns to the app (its
    /// `redirect_uri` is the app's), this is the `state` in the provider's
    /// URL; otherwise derp hands it back with its code.
    state: Option<String>,
    /// S256 challenge of the code the app receives: derp's code after
    /// derp's callback, or the provider's code when the provider returns to
    /// the app (send the verifier to `/oauth/{provider}/sign-in`; without
    /// it derp keeps its own verifier bound to `state`).
    code_challenge: Option<String>,
    login_hint: Option<String>,
}

#[utoipa::path(
    get,
    path = "/api/v1/auth/oauth/{provider}/url",
    tag = "oauth",
    operation_id = "oauth_url",
    params(("provider" = String, Path, description = "`google`, `github`, a configured OpenID Connect provider's name, or `cognito` (the hosted UI)"), UrlQuery),
    responses((status = 200, description = "The provider's authorization URL; the flow's cookie is set", body = doc::AuthorizationUrl), Errors)
)]
/// The provider's authorization URL (the original library's `get_oauth_authorization_url`).
async fn authorization_url(
    state: web::Data<AppState>,
    path: web::Path<String>,
    query: web::Query<UrlQuery>,
) -> Result<HttpResponse, ApiError> {
    let q = query.into_inner();
    if let Some(to) = &q.redirect_to
        && !state.allowed.is_allowed(to)
    {
        return Err(AuthError::field(
            "redirect_to",
            "is not an allowed URL (see [hosted] allowed_redirect_urls)",
        )
        .into());
    }
    crate::auth::native::check_challenge(q.code_challenge.as_deref())?;
    if let Some(cognito) = hosted_ui(&state, &path) {
        let (url, cookie) =
            start_hosted_ui(&state, &cognito, q.redirect_to, q.state, q.code_challenge)?;
        return Ok(HttpResponse::Ok()
            .cookie(cookie)
            .json(json!({ "url": url })));
    }
    let oauth = provider_service(&state, &path)?;
    let (url, flow) = oauth
        .start(
            &path,
            q.redirect_to,
            q.state,
            q.code_challenge,
            q.login_hint,
        )
        .await?;
    Ok(HttpResponse::Ok()
        .cookie(flow_cookie(&state, &flow))
        .json(json!({ "url": url, "state": flow.state })))
}

#[derive(Debug, Deserialize, ToSchema)]
struct SignInBody {
    /// The provider's code.
    code: String,
    /// The `state` of a flow started at `/oauth/{provider}/url`: derp
    /// finishes it with the PKCE verifier and nonce it kept.
    state: Option<String>,
    /// The app's own PKCE verifier, when the app made the challenge.
    code_verifier: Option<String>,
    /// The redirect URI the code was issued for (default: the provider's
    /// configured one).
    redirect_uri: Option<String>,
}

#[utoipa::path(
    post,
    path = "/api/v1/auth/oauth/{provider}/sign-in",
    tag = "oauth",
    operation_id = "oauth_sign_in",
    params(("provider" = String, Path, description = "`google`, `github`, a configured OpenID Connect provider's name, or `cognito` (the hosted UI)")),
    request_body = SignInBody,
    responses((status = 200, description = "Signed in, or a second factor is needed", body = doc::SignInResponse), Errors)
)]
/// Signs in with the provider's code (the original library's `sign_in_with_oauth(provider, code)`).
async fn sign_in(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<String>,
    ClientMeta(meta): ClientMeta,
    ApiJson(body): ApiJson<SignInBody>,
) -> Result<HttpResponse, ApiError> {
    if let Some(cognito) = hosted_ui(&state, &path) {
        return Ok(oauth_cognito::sign_in(
            &req,
            &state,
            &cognito,
            &body.code,
            body.state.as_deref(),
            body.code_verifier,
            body.redirect_uri.as_deref(),
        )
        .await?);
    }
    let oauth = provider_service(&state, &path)?;
    let identity = oauth
        .sign_in_with_code(
            &path,
            &body.code,
            body.state.as_deref(),
            body.code_verifier,
            body.redirect_uri,
        )
        .await?;
    let outcome = state
        .accounts
        .sign_in_with_identity(identity, &meta)
        .await?
        .for_api()?;
    Ok(HttpResponse::Ok().json(outcome))
}
