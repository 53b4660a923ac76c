//! The OpenID Connect provider's browser side: the authorization endpoint
//! (`GET /oauth2/authorize`), the consent page, RP-initiated logout
//! (`GET /oauth2/logout`) and "Connected apps" on `/account`.
//!
//! The authorization endpoint never invents a sign-in of its own: a browser
//! that is not signed in (or must sign in again: `prompt=login`, `max_age`)
//! goes to the hosted `/login` with this very request as its return
//! address, signs in there with every factor, and comes back. Until the
//! client and its `redirect_uri` are known to be registered, every error is
//! a page; after that, errors go back to the client (RFC 6749 4.1.2.1).
//!
//! `authorize`: the authorization endpoint and the consent page; `logout`:
//! RP-initiated logout and revoking a connected app.

mod authorize;
mod logout;

use crate::http::pages::{Ctx, PageError};
use crate::services::oidc::OidcProvider;
use actix_web::{HttpResponse, web};
use authorize::{authorize, authorize_post, consent_submit};
use logout::{logout, revoke_app};
use std::sync::Arc;

pub(super) type PageResult = Result<HttpResponse, PageError>;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/oauth2/authorize")
            .get(authorize)
            .post(authorize_post),
    )
    .service(web::resource("/oauth2/consent").post(consent_submit))
    .service(web::resource("/oauth2/logout").get(logout))
    .service(web::resource("/account/apps/revoke").post(revoke_app));
}

pub(super) fn provider(ctx: &Ctx) -> Result<Arc<OidcProvider>, PageError> {
    ctx.state.oidc.clone().ok_or(PageError::NotFound)
}
