//! Webhook endpoints: `/api/v1/admin/webhooks` (JSON) and `/admin/webhooks`
//! (pages): endpoints with their health, recent deliveries, "send again",
//! "send a test event", and for endpoints made here, edit, rotate and delete.
//!
//! `api`: the JSON admin API; `pages`: the console pages.

pub mod api;
mod pages;

pub use api::api_routes;
pub use pages::page_routes;

use crate::error::AuthError;
use crate::services::webhooks::Health;
/// A delivery id from the path.
pub(super) fn delivery_id(raw: &str) -> Result<i64, AuthError> {
    raw.parse()
        .map_err(|_| AuthError::field("delivery", "must be a delivery id (a number)"))
}

pub fn health_label(h: &Health) -> &'static str {
    match h {
        Health::Healthy => "healthy",
        Health::Retrying => "retrying",
        Health::Failing => "failing",
    }
}
