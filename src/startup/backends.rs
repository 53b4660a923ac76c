//! The user store the configuration selects (native, Cognito or Clerk),
//! with what comes with it: the user directory the admin console lists,
//! and the sign-in providers of the native backend.

use super::StartError;
use super::stores::{Stores, client_access_ttl, kept_org_context_secret};
use crate::auth::AuthBackend;
use crate::auth::cognito::CognitoBackend;
use crate::auth::directory::UserDirectory;
use crate::auth::lockout::LockoutPolicy;
use crate::auth::native::{Links, NativeBackend, NativeParts};
use crate::auth::org_context::OrgContextSigner;
use crate::auth::password::Hasher;
use crate::clock::Clock;
use crate::config::{AuthConfig, BackendKind, Config};
use crate::domain::OrgRoles;
use crate::domain::redirect::AllowedUrls;
use crate::mail::queue::MailQueue;
use crate::services::oauth::OAuthService;
use std::sync::Arc;

/// What the backends and the services built beside them share.
pub(super) struct Shared {
    pub clock: Arc<dyn Clock>,
    /// One allow-list for everything that checks URLs, so a reload reaches all.
    pub allowed: AllowedUrls,
    pub mail: MailQueue,
    pub lockout: Arc<LockoutPolicy>,
    pub org_roles: OrgRoles,
}

pub(super) struct Backends {
    pub backend: Arc<dyn AuthBackend>,
    pub native: Option<Arc<NativeBackend>>,
    pub cognito: Option<Arc<CognitoBackend>>,
    /// Where the admin console finds users that live outside derp.
    pub directory: Option<Arc<dyn UserDirectory>>,
    pub oauth: Option<Arc<OAuthService>>,
}

impl Backends {
    pub(super) fn build(
        config: &Config,
        stores: &Stores,
        shared: &Shared,
        hasher: Hasher,
    ) -> Result<Self, StartError> {
        match config.backend() {
            BackendKind::Native => native(config, stores, shared, hasher),
            BackendKind::Cognito => cognito(config, stores, shared),
            BackendKind::Clerk => clerk(config, stores, shared),
        }
    }
}

fn native(
    config: &Config,
    stores: &Stores,
    shared: &Shared,
    hasher: Hasher,
) -> Result<Backends, StartError> {
    let native = config.native();
    let backend = Arc::new(NativeBackend::new(NativeParts {
        db: stores.db.clone(),
        clock: shared.clock.clone(),
        keys: stores.keys.clone(),
        hasher,
        mail: shared.mail.clone(),
        cfg: native.clone(),
        links: Links {
            allowed: shared.allowed.clone(),
            public_url: config.public_url(),
        },
        lockout: shared.lockout.clone(),
        sealer: stores.secrets.clone(),
        mfa_issuer_default: config.hosted.product_name.clone(),
        client_access_ttl: client_access_ttl(config),
        org_roles: shared.org_roles.clone(),
    }));
    let providers =
        native.google_oauth.is_some() || native.github_oauth.is_some() || !native.oidc.is_empty();
    let oauth = if providers {
        Some(Arc::new(
            OAuthService::new(&native, &config.public_url(), shared.clock.clone())
                .map_err(|e| StartError::Config(format!("{e:?}")))?,
        ))
    } else {
        None
    };
    Ok(Backends {
        backend: backend.clone(),
        native: Some(backend),
        cognito: None,
        directory: None,
        oauth,
    })
}

fn cognito(config: &Config, stores: &Stores, shared: &Shared) -> Result<Backends, StartError> {
    use crate::auth::cognito::CognitoParts;
    let org_context = org_context(config, shared)?;
    let cfg = config.auth.cognito.clone().unwrap_or_default();
    let directory = crate::auth::cognito::directory::directory(&cfg, shared.clock.clone())
        .map_err(StartError::Config)?;
    let backend = Arc::new(
        CognitoBackend::new(CognitoParts {
            cfg,
            db: stores.db.clone(),
            clock: shared.clock.clone(),
            org_context,
            public_url: config.public_url(),
        })
        .map_err(StartError::Config)?,
    );
    Ok(Backends {
        backend: backend.clone(),
        native: None,
        cognito: Some(backend),
        directory: Some(directory),
        oauth: None,
    })
}

fn clerk(config: &Config, stores: &Stores, shared: &Shared) -> Result<Backends, StartError> {
    let org_context = org_context(config, shared)?;
    let cfg = config.auth.clerk.clone().unwrap_or_default();
    let clerk = Arc::new(
        crate::auth::clerk::ClerkBackend::new(
            cfg,
            shared.clock.clone(),
            stores.db.clone(),
            Some(org_context),
        )
        .map_err(StartError::Config)?,
    );
    Ok(Backends {
        backend: clerk.clone(),
        native: None,
        cognito: None,
        directory: Some(clerk),
        oauth: None,
    })
}

/// Signs X-Org-Context for an outside user store, with the configured
/// secret or the one derp keeps in `data_dir`.
fn org_context(config: &Config, shared: &Shared) -> Result<OrgContextSigner, StartError> {
    let auth = match &config.auth.org_context_secret {
        Some(_) => config.auth.clone(),
        None => AuthConfig {
            org_context_secret: Some(kept_org_context_secret(&config.server.data_dir)?),
            ..config.auth.clone()
        },
    };
    Ok(OrgContextSigner::from_config(&auth)
        .map_err(StartError::Config)?
        .with_roles(shared.org_roles.clone()))
}
