//! `/admin` (HTML) and `/api/v1/admin` (JSON), for users whose global role is
//! `admin`, and for the JSON API also for `[admin] service_keys`.

pub mod api;
pub mod clients;
pub mod lockouts;
pub mod pages;
pub mod webhooks;

use crate::auth::SessionInfo;
use crate::auth::secrets::constant_time_eq;
use crate::domain::Role;
use crate::services::orgs::Actor;
use crate::state::AppState;
use sha2::{Digest, Sha256};

/// The admin acting on a request: a user with the `admin` role, or a service key.
pub fn admin_actor(session: &SessionInfo, meta: &crate::auth::RequestMeta) -> Actor {
    Actor {
        user_id: session.user_id.clone(),
        ip: meta.ip.clone(),
        user_agent: meta.user_agent.clone(),
        admin: true,
    }
}

/// The configured service key equal to `presented`, as an actor id that
/// names it without revealing it (`service_key:<sha256 prefix>`).
pub fn service_key_id(state: &AppState, presented: &str) -> Option<String> {
    state
        .config
        .admin
        .service_keys
        .iter()
        .find(|k| constant_time_eq(k.expose().as_bytes(), presented.as_bytes()))
        .map(|k| {
            format!(
                "service_key:{}",
                &hex::encode(Sha256::digest(k.expose().as_bytes()))[..12]
            )
        })
}

/// Whether the session's user is (still) an admin: the role is read from the
/// user, not from the token, so a demotion takes effect at once.
pub async fn is_admin(state: &AppState, session: &SessionInfo) -> bool {
    matches!(state.backend.get_user(session).await, Ok(u) if u.role == Role::Admin && !u.disabled)
}
