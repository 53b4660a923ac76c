//! Server-rendered hosted pages (askama): sign-in, sign-up, links from mail,
//! the account and organizations. They call the same backend and services as
//! the JSON API; no rule is implemented twice. Every form carries the CSRF
//! token of the page session, every POST answers with a redirect
//! (Post/Redirect/Get) or re-renders the form with the error beside the field.

pub mod account;
mod assets;
mod auth;
mod chrome;
mod ctx;
mod errors;
pub(crate) mod oauth;
mod oauth_cognito;
mod oidc;
mod orgs;
pub(crate) mod security;
pub mod session;

pub use chrome::*;
pub use ctx::*;
pub use errors::*;

use actix_web::web;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.configure(assets::routes)
        .configure(auth::routes)
        .configure(account::routes)
        .configure(security::routes)
        .configure(oidc::routes)
        .configure(orgs::routes);
}

/// Query value helper: empty strings count as absent.
pub fn non_empty(v: &Option<String>) -> Option<String> {
    v.as_ref()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
}
