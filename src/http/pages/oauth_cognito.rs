//! `GET /api/v1/auth/oauth/cognito/callback` with the Cognito backend and
//! `[auth.cognito] domain` set: the browser is back from Cognito's hosted
//! UI. The callback checks the flow's `state` and PKCE verifier (carried in
//! the encrypted `derp_oauth` cookie, see `http::oauth_flow`) before the
//! code is exchanged, and always ends at an app: a 302 to `redirect_to`
//! with a derp authorization code that the app's backend exchanges at
//! `POST /api/v1/auth/token` (no page session starts here).

use super::Ctx;
use super::PageError;
use crate::auth::cognito::{CognitoBackend, PROVIDER};
use crate::domain::redirect::with_query;
use crate::http::oauth_flow::{is_own, read_flow, removal};
use actix_web::{HttpRequest, HttpResponse};
use std::sync::Arc;

/// Keeps a provider's error code fit for a page: `access_denied`, …
fn error_code(raw: &str) -> String {
    raw.chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '_')
        .take(64)
        .collect()
}

/// `GET /oauth/cognito/callback`: the browser is back from the hosted UI.
pub(super) async fn callback(
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
