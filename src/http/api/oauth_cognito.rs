//! `POST /api/v1/auth/oauth/cognito/sign-in` with the Cognito backend and
//! `[auth.cognito] domain` set: a code the app got from Cognito's hosted UI.
//! Same shape as the OpenID Connect providers: derp makes `state` and the
//! PKCE pair (`http::oauth_flow`); the browser's callback is
//! `pages::oauth_cognito`.

use crate::auth::cognito::{CognitoBackend, PROVIDER};
use crate::error::AuthError;
use crate::http::oauth_flow::{read_flow, removal};
use crate::state::AppState;
use actix_web::{HttpRequest, HttpResponse};

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
