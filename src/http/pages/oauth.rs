//! The browser leg of a provider sign-in: the provider sends the browser
//! back to `GET /api/v1/auth/oauth/{provider}/callback`, which signs in and
//! answers like a page (a redirect, or an HTML page saying what went wrong).
//! Its path stays under the API's because it is the redirect URI configured
//! at every provider; `http::server` mounts [`routes`] in that scope. The
//! flow itself (its cookie, the provider lookup) is `http::oauth_flow`'s.

use super::{Ctx, PageError};
use crate::domain::redirect::with_query;
use crate::http::oauth_flow::{hosted_ui, is_own, provider_service, read_flow, removal};
use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;
use utoipa::IntoParams;

/// Relative to `/api/v1/auth`.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/oauth/{provider}/callback").get(callback));
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
    if let Some(cognito) = hosted_ui(&ctx.state, &path) {
        let q = query.into_inner();
        return super::oauth_cognito::callback(&req, ctx, cognito, q.code, q.state, q.error).await;
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
        Some(target) if !is_own(&ctx.state, target) => {
            let code = ctx
                .state
                .accounts
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
