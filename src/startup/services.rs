//! The use-case services around the backend, gathered into the
//! [`AppState`] every handler reaches.

use super::StartError;
use super::backends::{Backends, Shared};
use super::mail::Mail;
use super::stores::Stores;
use crate::auth::password::Hasher;
use crate::config::{Config, parse_proxy};
use crate::services::accounts::Accounts;
use crate::services::admin::AdminService;
use crate::services::orgs::OrgService;
use crate::services::rate_limit::RateLimits;
use crate::services::webhooks::WebhookService;
use crate::state::AppState;
use std::sync::Arc;

pub(super) async fn app_state(
    config: Config,
    stores: &Stores,
    mail: &Mail,
    hasher: Hasher,
    shared: Shared,
) -> Result<AppState, StartError> {
    let native = config.native();
    let orgs = Arc::new(OrgService {
        db: stores.db.clone(),
        clock: shared.clock.clone(),
        mail: shared.mail.clone(),
        public_url: config.public_url(),
        allowed: shared.allowed.clone(),
        invitation_ttl: native.invitation_expire_days as i64 * 86_400,
        roles: shared.org_roles.clone(),
    });
    let backends = Backends::build(&config, stores, &shared, hasher.clone())?;
    let admin = Arc::new(AdminService {
        db: stores.db.clone(),
        clock: shared.clock.clone(),
        hasher,
        policy: crate::domain::PasswordPolicy::new(native.password.clone()),
        directory: backends.directory,
        mail: Some(shared.mail.clone()),
        public_url: config.public_url(),
    });
    let trusted: Vec<ipnet::IpNet> = config
        .server
        .trusted_proxies
        .iter()
        .map(|p| parse_proxy(p))
        .collect::<Result<_, _>>()
        .map_err(|e| StartError::Config(e.to_string()))?;
    let limits = Arc::new(RateLimits::new(&config.rate_limit));
    let webhooks = Arc::new(WebhookService {
        db: stores.db.clone(),
        clock: shared.clock.clone(),
        sealer: stores.secrets.clone(),
    });
    webhooks
        .sync_config(&config.webhooks)
        .await
        .map_err(|e| StartError::Storage(format!("webhook endpoints: {e:?}")))?;
    let accounts = Arc::new(Accounts::new(
        backends.backend.clone(),
        backends.native.clone(),
        limits.clone(),
    ));
    let oidc = match (&config.oidc_provider, &backends.native) {
        (Some(p), Some(native)) => Some(Arc::new(crate::services::oidc::OidcProvider::new(
            p.clone(),
            native.clone(),
            stores.db.clone(),
            shared.clock.clone(),
        ))),
        _ => None,
    };
    Ok(AppState {
        oidc,
        hosted: Arc::new(std::sync::RwLock::new(config.hosted.clone())),
        config: Arc::new(config),
        backend: backends.backend,
        accounts,
        db: stores.db.clone(),
        mailer: mail.mailer.clone(),
        limits,
        lockout: shared.lockout,
        orgs,
        admin,
        oauth: backends.oauth,
        native: backends.native,
        cognito: backends.cognito,
        clock: shared.clock,
        trusted_proxies: trusted.into(),
        issuer: stores.issuer.clone(),
        algorithm: stores.alg.as_str(),
        allowed: shared.allowed,
        swappable_mailer: mail.swappable.clone(),
        cookie_key: stores.cookie_key.clone().into(),
        metrics: Arc::new(crate::services::metrics::Metrics::new()),
        webhooks,
    })
}
