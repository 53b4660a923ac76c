//! What every request handler can reach.

use crate::auth::AuthBackend;
use crate::clock::Clock;
use crate::config::Config;
use crate::mail::Mailer;
use crate::services::orgs::OrgService;
use crate::services::rate_limit::RateLimits;
use crate::storage::Db;
use std::sync::Arc;

#[derive(Clone)]
pub struct AppState {
    pub config: Arc<Config>,
    pub backend: Arc<dyn AuthBackend>,
    /// The ways in (sign-up, sign-in, mailed links and codes, providers, the
    /// code exchange) with their rate limits: handlers call these, never the
    /// backend, for anything that signs a user in.
    pub accounts: Arc<crate::services::accounts::Accounts>,
    pub db: Db,
    pub mailer: Arc<dyn Mailer>,
    /// The same mailer, replaceable by a configuration reload (none in tests
    /// that capture mail).
    pub swappable_mailer: Option<Arc<crate::mail::SwappableMailer>>,
    /// `[hosted]` as last loaded: branding and the redirect allow-list can be
    /// reloaded, so pages read it here rather than from `config`.
    pub hosted: Arc<std::sync::RwLock<crate::config::HostedConfig>>,
    pub limits: Arc<RateLimits>,
    /// `[rate_limit] lockout_*`, shared with the native backend's sign-in.
    pub lockout: Arc<crate::auth::lockout::LockoutPolicy>,
    pub orgs: Arc<OrgService>,
    /// Google / GitHub / OpenID Connect sign-in (native backend with providers configured).
    pub oauth: Option<Arc<crate::services::oauth::OAuthService>>,
    /// derp as an OpenID Connect provider (`[oidc_provider]`, native only).
    pub oidc: Option<Arc<crate::services::oidc::OidcProvider>>,
    /// The native backend itself, for what only it can do (provider identities).
    pub native: Option<Arc<crate::auth::native::NativeBackend>>,
    /// The Cognito backend itself, for its hosted-UI sign-in.
    pub cognito: Option<Arc<crate::auth::cognito::CognitoBackend>>,
    pub admin: Arc<crate::services::admin::AdminService>,
    pub clock: Arc<dyn Clock>,
    pub trusted_proxies: Arc<[ipnet::IpNet]>,
    pub issuer: String,
    /// Where browsers and mail links may be sent.
    pub allowed: crate::domain::redirect::AllowedUrls,
    /// 64 bytes encrypting the hosted pages' cookie.
    pub cookie_key: Arc<[u8]>,
    pub algorithm: &'static str,
    /// Prometheus counters, fed by the HTTP middleware.
    pub metrics: Arc<crate::services::metrics::Metrics>,
    /// Webhook endpoints and their deliveries.
    pub webhooks: Arc<crate::services::webhooks::WebhookService>,
}

impl AppState {
    /// The current `[hosted]` settings (reloadable).
    pub fn hosted(&self) -> crate::config::HostedConfig {
        match self.hosted.read() {
            Ok(h) => h.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }
}
