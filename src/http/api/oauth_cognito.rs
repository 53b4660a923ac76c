//! `/oauth/cognito/…` with the Cognito backend and `[auth.cognito] domain`
//! set: sign-in through Cognito's hosted UI.
//!
//! Same shape as the OpenID Connect providers: derp makes `state` and the
//! PKCE pair, the browser carries them in the encrypted `derp_oauth`
//! cookie, and the callback checks them before the code is exchanged. The
//! hosted-UI sign-in is handed to an app and starts no page session (the
//! pages' own `/login` does that), so the browser leg always ends at an app:
//! a 302 to `redirect_to` with a derp authorization code that the app's
//! backend exchanges at `POST /api/v1/auth/token`.

use super::oauth::{flow_cookie, read_flow, removal};
use crate::auth::cognito::{CognitoBackend, PROVIDER};
use crate::domain::redirect::with_query;
use crate::error::AuthError;
use crate::http::pages::{Ctx, PageError};
use crate::services::oauth::{FLOW_TTL, Flow};
use crate::state::AppState;
use actix_web::cookie::Cookie;
use actix_web::{HttpRequest, HttpResponse};
use std::sync::Arc;

/// The Cognito backend, when `provider` names its configured hosted UI.
pub fn hosted_ui(state: &AppState, provider: &str) -> Option<Arc<CognitoBackend>> {
    if provider != PROVIDER {
        return None;
    }
    state.cognito.clone().filter(|c| c.hosted_ui_enabled())
}

fn is_own(state: &AppState, url: &str) -> bool {
    url.starts_with(&format!("{}/", state.config.public_url()))
}

/// Starts a hosted-UI sign-in: Cognito's authorization URL and the cookie
/// that binds the flow to this browser. `redirect_to` is already checked
/// against the allow-list.
pub fn start(
    state: &AppState,
    cognito: &CognitoBackend,
    redirect_to: Option<String>,
    app_state: Option<String>,
    app_code_challenge: Option<String>,
) -> Result<(String, Cookie<'static>), AuthError> {
    // When Cognito sends the browser back to derp, derp must know which app
    // to hand the sign-in to. (With `redirect_uri` at an app, the app gets
    // Cognito's code and calls POST /oauth/cognito/sign-in instead.)
    let back_to_derp = cognito
        .hosted_ui_redirect_uri()
        .is_some_and(|r| is_own(state, r));
    if back_to_derp && redirect_to.as_deref().is_none_or(|t| is_own(state, t)) {
        return Err(AuthError::field(
            "redirect_to",
            "is required with the cognito provider: the allowed app URL that receives the code",
        ));
    }
    let a = cognito.hosted_ui_start()?;
    let flow = Flow {
        provider: PROVIDER.into(),
        state: a.state,
        verifier: a.verifier,
        // Cognito's id_token is checked against the access token instead
        // (same `sub`); PKCE binds the code to this flow.
        nonce: String::new(),
        expires_at: state.clock.unix() + FLOW_TTL,
        redirect_to,
        app_state,
        app_code_challenge,
    };
    Ok((a.url, flow_cookie(state, &flow)))
}

/// Keeps a provider's error code fit for a page: `access_denied`, …
fn error_code(raw: &str) -> String {
    raw.chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '_')
        .take(64)
        .collect()
}

/// `GET /oauth/cognito/callback`: the browser is back from the hosted UI.
pub async fn callback(
    req: &HttpRequest,
    ctx: Ctx,
    cognito: Arc<CognitoBackend>,
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
) -> Result<HttpResponse, PageError> {
    if let Some(e) = error {
        return Err(PageError::BadRequest(format!(
            "Cognito did not sign you in ({}).",
            error_code(&e)
        )));
    }
    let flow = read_flow(req, &ctx.state).ok_or_else(|| {
        PageError::BadRequest(
            "This sign-in was not started in this browser, or it expired. Start again.".into(),
        )
    })?;
    flow.check(
        PROVIDER,
        state.as_deref().unwrap_or_default(),
        ctx.state.clock.unix(),
    )?;
    let code = code.ok_or_else(|| PageError::BadRequest("Cognito sent no code.".into()))?;
    let target = flow
        .redirect_to
        .clone()
        .filter(|t| !is_own(&ctx.state, t))
        .ok_or_else(|| {
            PageError::BadRequest("This sign-in has no application to return to.".into())
        })?;
    let signed = cognito
        .hosted_ui_sign_in(&code, Some(flow.verifier.clone()), None)
        .await?;
    let derp_code = cognito
        .issue_code_for(
            &signed.outcome,
            signed.id_claims,
            &target,
            flow.app_code_challenge.clone(),
        )
        .await?;
    let mut pairs = vec![("code", derp_code.as_str())];
    if let Some(s) = &flow.app_state {
        pairs.push(("state", s.as_str()));
    }
    let mut res = HttpResponse::Found()
        .insert_header(("Location", with_query(&target, &pairs)))
        .insert_header(("Cache-Control", "no-store"))
        .finish();
    let _ = res.add_cookie(&removal());
    Ok(res)
}

/// `POST /oauth/cognito/sign-in`: a code the app got from the hosted UI.
/// The PKCE verifier is the app's own (`code_verifier`), or, when the flow
/// was started by derp (`GET /oauth/cognito/url` with `redirect_uri` at the
/// app) and the browser posts here with its cookie and `state`, the flow's.
pub async fn sign_in(
    req: &HttpRequest,
    state: &AppState,
    cognito: &CognitoBackend,
    code: &str,
    app_state: Option<&str>,
    code_verifier: Option<String>,
    redirect_uri: Option<&str>,
) -> Result<HttpResponse, AuthError> {
    let mut verifier = code_verifier;
    let mut spent_flow = false;
    if verifier.is_none()
        && let (Some(s), Some(flow)) = (app_state, read_flow(req, state))
    {
        flow.check(PROVIDER, s, state.clock.unix())?;
        verifier = Some(flow.verifier);
        spent_flow = true;
    }
    let signed = cognito
        .hosted_ui_sign_in(code, verifier, redirect_uri)
        .await?;
    let mut res = HttpResponse::Ok().json(signed.outcome);
    if spent_flow {
        let _ = res.add_cookie(&removal());
    }
    Ok(res)
}
