//! derp as an OpenID Connect provider, for native users: authorization
//! codes, their exchange at the token endpoint, refresh, userinfo,
//! revocation and introspection.
//!
//! A code is issued after the user signed in on the hosted pages (with every
//! factor) and, for a third-party client, consented. Its exchange goes
//! through the sign-in pipeline like derp's own code exchange
//! ([`Proof::AuthorizationCode`](super::pipeline::Proof::AuthorizationCode) with the `amr` of that sign-in), which
//! mints a session; the session is then bound to the client and its scopes,
//! so that its access tokens are the client's (RFC 9068: `aud` and
//! `client_id` are the client, `scope` the granted scopes) and its refresh
//! tokens rotate with reuse detection as derp's own do. A code is single use:
//! a second use revokes the session the first one minted.
//!
//! In parts: `codes` (issuing a code and exchanging it), `tokens` (refresh,
//! userinfo, revocation, introspection), `consent` (what a user granted a
//! client).

mod codes;
mod consent;
mod tokens;

use crate::domain::User;
use crate::error::AuthResult;
use crate::storage::{Conn, orgs};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

/// Codes of the provider live 60 seconds.
pub const CODE_TTL: i64 = 60;

/// What the authorization endpoint decided, kept with the code.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct CodeGrant {
    pub client_id: String,
    pub user_id: String,
    pub redirect_uri: String,
    pub scopes: Vec<String>,
    pub nonce: Option<String>,
    pub code_challenge: Option<String>,
    /// When the user signed in (the browser's login session).
    pub auth_time: i64,
    pub amr: Vec<String>,
    /// The browser's login session (`sid` of the id_token).
    pub sid: String,
}

/// What the token endpoint answers.
#[derive(Debug, Clone)]
pub struct ClientTokens {
    pub access_token: String,
    pub expires_in: i64,
    /// Only with the `offline_access` scope.
    pub refresh_token: Option<String>,
    /// Only with the `openid` scope (at the code exchange).
    pub id_token: Option<String>,
    pub scope: String,
}

/// Why the token endpoint refused a grant (RFC 6749 5.2 `invalid_grant`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GrantRefusal {
    /// Unknown, expired, already used, issued to another client, another
    /// `redirect_uri`, or a PKCE verifier that does not match.
    InvalidGrant(&'static str),
}

/// What an introspection (RFC 7662) finds.
#[derive(Debug, Clone)]
pub struct Introspection {
    pub active: bool,
    pub claims: Value,
}

/// `at_hash`: the left half of the SHA-256 of the access token, base64url
/// (OpenID Connect Core 3.1.3.6, for RS256, ES256 and EdDSA over Ed25519
/// as the certified clients compute it).
pub fn at_hash(access_token: &str) -> String {
    let digest = Sha256::digest(access_token.as_bytes());
    URL_SAFE_NO_PAD.encode(&digest[..16])
}

pub(super) fn has(scopes: &[String], s: &str) -> bool {
    scopes.iter().any(|x| x == s)
}

/// The claims of `user` that `scopes` release (userinfo and id_token):
/// `email`/`email_verified` with `email`; `name`, `preferred_username`,
/// `picture` (from the user's `data`) with `profile`; `orgs` and the
/// active `org_id` with `orgs`.
pub fn user_claims(
    conn: &Conn,
    user: &User,
    scopes: &[String],
    active_org: Option<&str>,
    roles: &crate::domain::OrgRoles,
) -> AuthResult<Map<String, Value>> {
    let mut out = Map::new();
    out.insert("sub".into(), json!(user.id));
    if has(scopes, "email") {
        out.insert("email".into(), json!(user.email));
        out.insert(
            "email_verified".into(),
            json!(user.email_confirmed_at.is_some()),
        );
    }
    if has(scopes, "profile") {
        for key in ["name", "preferred_username", "picture"] {
            if let Some(v) = user.data.get(key).filter(|v| v.is_string()) {
                out.insert(key.into(), v.clone());
            }
        }
    }
    if has(scopes, "orgs") {
        let list: Vec<Value> = orgs::for_user(conn, &user.id, 0, 1000)?
            .into_iter()
            .map(|(org, role, _)| json!({"id": org.id, "slug": org.slug, "role": roles.effective(role).as_str()}))
            .collect();
        let active = active_org.filter(|id| list.iter().any(|o| o["id"] == *id));
        out.insert("orgs".into(), Value::Array(list));
        if let Some(id) = active {
            out.insert("org_id".into(), json!(id));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::at_hash;

    #[test]
    fn at_hash_is_the_left_half_of_sha256() {
        // OpenID Connect Core's example: access token "jHkWEdUXMU1BwAsC4vtUsZwnNvTIxEl0z9K3vx5KF0Y"
        // has at_hash "77QmUPtjPfzWtF2AnpK9RQ".
        assert_eq!(
            at_hash("jHkWEdUXMU1BwAsC4vtUsZwnNvTIxEl0z9K3vx5KF0Y"),
            "77QmUPtjPfzWtF2AnpK9RQ"
        );
    }
}
