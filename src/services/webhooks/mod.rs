//! Webhook endpoints as the admin console, the admin API and `derp.toml`
//! manage them, and the views of their health and deliveries. Delivery
//! itself is [`deliver`].
//!
//! Endpoints from `[webhooks.<name>]` are written to the database at start
//! (and at a configuration reload), marked `config`: the console shows them
//! but changes them only through the file. Secrets are sealed under
//! `secrets.key`, like the other secrets at rest.
//!
//! `endpoints`: creating, changing and deleting endpoints, and queueing a
//! test or a delivery again; `views`: what the console and the API show.

pub mod deliver;
mod endpoints;
mod views;

use crate::auth::sealer::Sealer;
use crate::clock::Clock;
use crate::domain::webhook::WebhookSecret;
use crate::error::{AuthError, AuthResult};
use crate::storage::Db;
use serde::Serialize;
use std::sync::Arc;

pub use views::{DeliveryView, EndpointView, Health};

const SEAL_INFO: &str = "webhook-secret";

pub fn seal_secret(sealer: &Sealer, endpoint_id: &str, s: &WebhookSecret) -> AuthResult<String> {
    sealer.seal(SEAL_INFO, endpoint_id, s.expose().as_bytes())
}

pub fn open_secret(sealer: &Sealer, endpoint_id: &str, sealed: &str) -> AuthResult<WebhookSecret> {
    let bytes = sealer.open(SEAL_INFO, endpoint_id, sealed)?;
    let text = String::from_utf8(bytes).map_err(AuthError::internal)?;
    WebhookSecret::parse(&text).map_err(AuthError::internal)
}

/// A new endpoint, or a new secret: the secret is shown this once.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct WithSecret {
    pub endpoint: EndpointView,
    /// `whsec_…`: configure it in the receiver; derp shows it only now.
    pub secret: String,
}

/// A change to an admin-made endpoint; what is absent stays.
#[derive(Debug, Clone, Default)]
pub struct EndpointChange {
    pub url: Option<String>,
    pub events: Option<Vec<String>>,
}

pub struct WebhookService {
    pub db: Db,
    pub clock: Arc<dyn Clock>,
    pub sealer: Sealer,
}

impl WebhookService {
    fn now(&self) -> i64 {
        self.clock.unix()
    }
}
