//! The browser-bound OAuth flow that the JSON API (`api::oauth`, which
//! starts it) and the pages (`pages::oauth`, the provider's callback; the
//! `/oauth/{provider}` start on `/login`) share: which provider a name
//! means, and the `derp_oauth` cookie.
//!
//! The flow's `state`, PKCE verifier and `nonce` travel in `derp_oauth`, an
//! encrypted, HttpOnly, SameSite=Lax cookie that lives ten minutes and is
//! cleared at the callback: the flow is bound to the browser that started it.
//! With the Cognito backend and `[auth.cognito] domain` set, the provider
//! `cognito` is its hosted UI.

use crate::auth::cognito::{CognitoBackend, PROVIDER};
use crate::error::AuthError;
use crate::services::oauth::{FLOW_TTL, Flow, OAuthService};
use crate::state::AppState;
use actix_web::HttpRequest;
use actix_web::cookie::time::Duration as CookieDuration;
use actix_web::cookie::{Cookie, CookieJar, Key, SameSite};
use std::sync::Arc;

const COOKIE: &str = "derp_oauth";

/// The provider service, when `provider` is configured (native users
/// only), or 404 `feature_disabled`.
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

pub fn read_flow(req: &HttpRequest, state: &AppState) -> Option<Flow> {
    let raw = req.cookie(COOKIE)?;
    let mut jar = CookieJar::new();
    jar.add_original(raw.into_owned());
    let key = Key::from(&state.cookie_key);
    jar.private(&key)
        .get(COOKIE)
        .and_then(|c| serde_json::from_str(c.value()).ok())
}

pub fn removal() -> Cookie<'static> {
    let mut c = Cookie::build(COOKIE, "").path("/").finish();
    c.make_removal();
    c
}

/// The Cognito backend, when `provider` names its configured hosted UI.
pub fn hosted_ui(state: &AppState, provider: &str) -> Option<Arc<CognitoBackend>> {
    if provider != PROVIDER {
        return None;
    }
    state.cognito.clone().filter(|c| c.hosted_ui_enabled())
}

/// Whether `url` is one of derp's own pages.
pub fn is_own(state: &AppState, url: &str) -> bool {
    url.starts_with(&format!("{}/", state.config.public_url()))
}

/// Starts a hosted-UI sign-in: Cognito's authorization URL and the cookie
/// that binds the flow to this browser. `redirect_to` is already checked
/// against the allow-list.
///
/// The hosted-UI sign-in is handed to an app and starts no page session
/// (the pages' own `/login` does that), so the browser leg always ends at
/// an app: a 302 to `redirect_to` with a derp authorization code that the
/// app's backend exchanges at `POST /api/v1/auth/token`.
pub fn start_hosted_ui(
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
