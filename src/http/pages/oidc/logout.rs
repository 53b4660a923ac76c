//! `/oauth2/logout` (RP-initiated logout) and revoking a connected app from
//! `/account`.

use super::{PageResult, provider};
use crate::domain::redirect::with_query;
use crate::http::pages::{Ctx, PageError, PageForm, non_empty};
use actix_web::web;
use serde::Deserialize;

#[derive(Debug, Deserialize)]
pub(super) struct LogoutQuery {
    id_token_hint: Option<String>,
    post_logout_redirect_uri: Option<String>,
    client_id: Option<String>,
    state: Option<String>,
}

/// RP-initiated logout 1.0: `post_logout_redirect_uri` must be registered
/// for the client named by `client_id` or the `id_token_hint`'s `aud`;
/// otherwise the browser stays here. A signed-in browser is asked first
/// (signing out is the CSRF-checked POST of `/logout`), then sent back.
pub(super) async fn logout(mut ctx: Ctx, q: web::Query<LogoutQuery>) -> PageResult {
    let oidc = provider(&ctx)?;
    let q = q.into_inner();
    let hinted = non_empty(&q.id_token_hint).and_then(|t| id_token_audience(&ctx, &t));
    if non_empty(&q.id_token_hint).is_some() && hinted.is_none() {
        return Err(PageError::BadRequest(
            "id_token_hint is not an id_token issued here.".into(),
        ));
    }
    let client_id = non_empty(&q.client_id).or(hinted.clone());
    let target = match (non_empty(&q.post_logout_redirect_uri), client_id) {
        (Some(uri), Some(id)) => {
            let client = oidc.client(&id).await?;
            match client {
                Some(c) if c.post_logout_redirect_uris.contains(&uri) => {
                    let mut pairs = Vec::new();
                    let state = non_empty(&q.state);
                    if let Some(s) = &state {
                        pairs.push(("state", s.as_str()));
                    }
                    Some(if pairs.is_empty() {
                        uri
                    } else {
                        with_query(&uri, &pairs)
                    })
                }
                _ => {
                    return Err(PageError::BadRequest(
                        "This post_logout_redirect_uri is not registered for the application."
                            .into(),
                    ));
                }
            }
        }
        (Some(_), None) => {
            return Err(PageError::BadRequest(
                "post_logout_redirect_uri needs client_id or id_token_hint.".into(),
            ));
        }
        _ => None,
    };
    if ctx.user.is_some() && hinted.is_none() {
        // No proof the app asked: the user confirms at /logout.
        return Ok(ctx.redirect("/logout"));
    }
    if let Some(user) = ctx.user.clone() {
        ctx.state.backend.sign_out(&user, false, &ctx.meta).await?;
        let mut res = ctx.sign_out();
        if let Some(t) = target {
            res.headers_mut().insert(
                actix_web::http::header::LOCATION,
                actix_web::http::header::HeaderValue::from_str(&t)
                    .map_err(|_| PageError::Internal)?,
            );
        }
        return Ok(res);
    }
    match target {
        Some(t) => Ok(ctx.redirect(&t)),
        None => Ok(ctx.redirect("/login")),
    }
}

/// The `aud` of an id_token derp signed (its signature checked; expired
/// or not, as a hint may be).
fn id_token_audience(ctx: &Ctx, token: &str) -> Option<String> {
    ctx.state.native.as_ref()?.provider_id_token_audience(token)
}

#[derive(Debug, Deserialize)]
pub(super) struct RevokeAppForm {
    client_id: Option<String>,
}

/// "Connected apps" on `/account`: withdraws the consent and ends the
/// app's sessions.
pub(super) async fn revoke_app(PageForm { mut ctx, form }: PageForm<RevokeAppForm>) -> PageResult {
    let user = ctx.require_user()?;
    let native = ctx.state.native.clone().ok_or(PageError::NotFound)?;
    let client_id = non_empty(&form.client_id)
        .ok_or_else(|| PageError::BadRequest("client_id is missing.".into()))?;
    if native
        .provider_revoke_consent(&user.user_id, &client_id, &ctx.meta)
        .await?
    {
        ctx.web.set_flash("ok", ctx.tr.t("account.app_revoked"));
    }
    Ok(ctx.redirect("/account"))
}
