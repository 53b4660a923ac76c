//! `/api/v1/auth/oauth/{provider}/…`: the authorization URL, the browser's
//! callback, and the code sign-in for apps that run the browser leg
//! themselves.
//!
//! The flow's `state`, PKCE verifier and `nonce` travel in `derp_oauth`, an
//! encrypted, HttpOnly, SameSite=Lax cookie that lives ten minutes and is
//! cleared at the callback: the flow is bound to the browser that started it.
//! With the Cognito backend, the provider `cognito` is its hosted UI
//! ([`super::oauth_cognito`]).

use super::oauth_cognito;
use crate::domain::redirect::with_query;
use crate::error::AuthError;
use crate::http::error::ApiError;
use crate::http::extract::{ApiJson, ClientMeta};
use crate::http::openapi::{self as doc, Errors};
use crate::http::pages::{Ctx, PageError};
use crate::services::oauth::{FLOW_TTL, Flow, OAuthService};
use crate::state::AppState;
use actix_web::cookie::time::Duration as CookieDuration;
use actix_web::cookie::{Cookie, CookieJar, Key, SameSite};
use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;
use serde_json::json;
use std::sync::Arc;
use utoipa::{IntoParams, ToSchema};

const COOKIE: &str = "derp_oauth";

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/oauth/{provider}/url").get(authorization_url))
        .service(web::resource("/oauth/{provider}/callback").get(callback))
        .service(web::resource("/oauth/{provider}/sign-in").post(sign_in));
}

/// The OAuth service and the native backend, or 404 `feature_disabled`.
/// The provider service, when `provider` is configured (native users only).
pub fn provider_service(state: &AppState, provider: &str) -> Result<Arc<OAuthService>, AuthError> {
    match (&state.oauth, &state.native) {
        (Some(o), Some(_)) if o.is_configured(provider) => Ok(o.clone()),
        _ => Err(AuthError::FeatureDisabled("this sign-in provider")),
    }
}

pub fn flow_cookie(state: &AppState, flow: &Flow) -> Cookie<'static> {
    let key = Key::from(&state.cookie_key);
    let mut jar = CookieJar::new();
    let value = serde_json::to_string(flow).unwrap_or_default();
    jar.private_mut(&key).add(
        Cookie::build(COOKIE, value)
            .path("/")
            .http_only(true)
            .same_site(SameSite::Lax)
            .secure(state.config.public_url().starts_with("https://"))
            .max_age(CookieDuration::seconds(FLOW_TTL))
            .finish(),
    );
    jar.get(COOKIE)
        .cloned()
        .unwrap_or_else(|| Cookie::new(COOKIE, ""))
}

pub(crate) fn read_flow(req: &HttpRequest, state: &AppState) -> Option<Flow> {
    let raw = req.cookie(COOKIE)?;
    let mut jar = CookieJar::new();
    jar.add_original(raw.into_owned());
    let key = Key::from(&state.cookie_key);
    jar.private(&key)
        .get(COOKIE)
        .and_then(|c| serde_json::from_str(c.value()).ok())
}

pub(crate) fn removal() -> Cookie<'static> {
    let mut c = Cookie::build(COOKIE, "").path("/").finish();
    c.make_removal();
    c
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
    if let Some(c) = &q.code_challenge
        && !crate::auth::native::valid_challenge(c)
    {
        return Err(AuthError::field("code_challenge", "must be an S256 challenge").into());
    }
    if let Some(cognito) = oauth_cognito::hosted_ui(&state, &path) {
        let (url, cookie) =
            oauth_cognito::start(&state, &cognito, q.redirect_to, q.state, q.code_challenge)?;
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

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct CallbackQuery {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
}

#[utoipa::path(
    get,
    path = "/api/v1/auth/oauth/{provider}/callback",
    tag = "oauth",
    operation_id = "oauth_callback",
    params(("provider" = String, Path, description = "`google`, `github`, a configured OpenID Connect provider's name, or `cognito` (the hosted UI)"), CallbackQuery),
    responses(
        (status = 302, description = "Signed in: on to the app (with a code) or the account page"),
        (status = "4XX", description = "An HTML page saying what went wrong (unknown provider, another browser, a refused sign-in)", content_type = "text/html"),
        (status = "5XX", description = "An HTML page: the provider or derp failed", content_type = "text/html"),
    )
)]
/// The browser comes back from the provider: sign in, then on to the app
/// (with a derp authorization code) or to the account page.
async fn callback(
    mut ctx: Ctx,
    req: HttpRequest,
    path: web::Path<String>,
    query: web::Query<CallbackQuery>,
) -> Result<HttpResponse, PageError> {
    if let Some(cognito) = oauth_cognito::hosted_ui(&ctx.state, &path) {
        let q = query.into_inner();
        return oauth_cognito::callback(&req, ctx, cognito, q.code, q.state, q.error).await;
    }
    let oauth = provider_service(&ctx.state, &path)?;
    if let Some(e) = &query.error {
        return Err(PageError::BadRequest(format!(
            "The provider did not sign you in ({e})."
        )));
    }
    let flow = read_flow(&req, &ctx.state).ok_or_else(|| {
        PageError::BadRequest(
            "This sign-in was not started in this browser, or it expired. Start again.".into(),
        )
    })?;
    let code = query
        .code
        .clone()
        .ok_or_else(|| PageError::BadRequest("The provider sent no code.".into()))?;
    let identity = oauth
        .finish(
            &path,
            &code,
            query.state.as_deref().unwrap_or_default(),
            &flow,
        )
        .await?;
    let step = ctx
        .state
        .accounts
        .sign_in_with_identity(identity, &ctx.meta)
        .await?;
    let pending = match step {
        crate::auth::SignInStep::Session(outcome) => Ok(outcome),
        crate::auth::SignInStep::MfaRequired(challenge) => Err((challenge.mfa_token, false)),
        crate::auth::SignInStep::MfaEnrollmentRequired { enrollment_token } => {
            Err((enrollment_token, true))
        }
    };
    let outcome = match pending {
        Ok(outcome) => outcome,
        Err((token, enroll)) => {
            // The second step (or the enrollment of a first factor) on the
            // pages, then on to where this flow goes.
            let mut q = url::form_urlencoded::Serializer::new(String::new());
            if let Some(v) = &flow.redirect_to {
                q.append_pair("redirect_to", v);
            }
            if let Some(v) = &flow.app_state {
                q.append_pair("state", v);
            }
            if let Some(v) = &flow.app_code_challenge {
                q.append_pair("code_challenge", v);
                q.append_pair("code_challenge_method", "S256");
            }
            let q = q.finish();
            let q = if q.is_empty() { q } else { format!("?{q}") };
            let mut res = if enroll {
                ctx.enrollment_step(&token, &q)
            } else {
                ctx.second_step(&token, &q)
            };
            let _ = res.add_cookie(&removal());
            return Ok(res);
        }
    };
    let mut res = match &flow.redirect_to {
        Some(target) if !target.starts_with(&format!("{}/", ctx.state.config.public_url())) => {
            let code = ctx
                .state
                .backend
                .issue_code(
                    crate::auth::CodeGrant::SignIn(&outcome),
                    target,
                    flow.app_code_challenge.clone(),
                )
                .await?;
            let mut pairs = vec![("code", code.as_str())];
            if let Some(s) = &flow.app_state {
                pairs.push(("state", s.as_str()));
            }
            let location = with_query(target, &pairs);
            // No page session for an app sign-in: the app gets its own.
            HttpResponse::Found()
                .insert_header(("Location", location))
                .finish()
        }
        own => {
            ctx.sign_in(&outcome).await?;
            ctx.redirect(own.as_deref().unwrap_or("/account"))
        }
    };
    let _ = res.add_cookie(&removal());
    Ok(res)
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
    if let Some(cognito) = oauth_cognito::hosted_ui(&state, &path) {
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
