//! The signed `X-Org-Context` value of the upstream backends (Cognito, Clerk),
//! whose access tokens cannot carry derp's `org_id` and `org_role` claims.
//!
//! `POST /active-org` returns it in `tokens.access_token`; the app sends it
//! back in the `X-Org-Context` header beside the upstream bearer token, and
//! `GET /session` verifies it without a database call. Format:
//!
//! ```text
//! oc1.<base64url(JSON {sub, sid, org_id, org_role, iat, exp})>.<base64url(HMAC-SHA256)>
//! ```
//!
//! The MAC covers `oc1.<payload>` and is keyed with 32 bytes derived by
//! HKDF-SHA256 from `[auth] org_context_secret` (never an upstream client
//! secret), so the master secret is used for nothing else. The value is bound
//! to the user (`sub`) and the login session (`sid`), and expires
//! (`org_context_expire_minutes`, 60 by default): a removed or demoted member
//! keeps the old org in `/session` at most that long. Org endpoints re-read
//! the membership from the database anyway.

use crate::auth::secrets::constant_time_eq;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hkdf::Hkdf;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

const VERSION: &str = "oc1";
const HKDF_SALT: &[u8] = b"derp";
const HKDF_INFO: &[u8] = b"derp/x-org-context/v1";
/// Longer values are refused before any work.
const MAX_LEN: usize = 2048;
/// Tolerated clock difference for `iat` in the future.
const LEEWAY: i64 = 60;
pub const MIN_SECRET_LEN: usize = 32;

/// What a valid context says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrgContext {
    pub sub: String,
    pub sid: String,
    pub org_id: String,
    pub org_role: String,
    pub iat: i64,
    pub exp: i64,
}

/// Mints and verifies contexts with the derived key.
#[derive(Clone)]
pub struct OrgContextSigner {
    key: [u8; 32],
    ttl: i64,
    /// The configured org roles: a stored role no longer configured is
    /// signed as `member`.
    roles: crate::domain::OrgRoles,
}

impl std::fmt::Debug for OrgContextSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OrgContextSigner")
            .field("ttl", &self.ttl)
            .finish_non_exhaustive()
    }
}

impl OrgContextSigner {
    /// `master` is `[auth] org_context_secret` (at least 32 bytes).
    pub fn new(master: &[u8], ttl_seconds: i64) -> Result<Self, String> {
        if master.len() < MIN_SECRET_LEN {
            return Err(format!(
                "auth.org_context_secret: at least {MIN_SECRET_LEN} bytes are needed, got {}",
                master.len()
            ));
        }
        if ttl_seconds <= 0 {
            return Err("auth.org_context_expire_minutes: must be at least 1".into());
        }
        let mut key = [0u8; 32];
        Hkdf::<Sha256>::new(Some(HKDF_SALT), master)
            .expand(HKDF_INFO, &mut key)
            .map_err(|e| format!("org context key derivation: {e}"))?;
        Ok(Self {
            key,
            ttl: ttl_seconds,
            roles: crate::domain::OrgRoles::default(),
        })
    }

    /// From `[auth]`: the secret is required; the lifetime defaults to 60 min.
    pub fn from_config(auth: &crate::config::AuthConfig) -> Result<Self, String> {
        let secret = auth.org_context_secret.as_ref().ok_or_else(|| {
            format!(
                "auth.org_context_secret: required with an upstream user store \
                 ([auth.cognito] or [auth.clerk]): at least {MIN_SECRET_LEN} bytes that key \
                 the X-Org-Context header"
            )
        })?;
        let minutes = auth.org_context_expire_minutes.unwrap_or(60);
        let ttl = i64::try_from(minutes.saturating_mul(60)).unwrap_or(i64::MAX);
        Self::new(secret.expose().as_bytes(), ttl)
    }

    /// The org roles configured (`[orgs] roles`).
    pub fn with_roles(mut self, roles: crate::domain::OrgRoles) -> Self {
        self.roles = roles;
        self
    }

    pub fn roles(&self) -> &crate::domain::OrgRoles {
        &self.roles
    }

    pub fn ttl(&self) -> i64 {
        self.ttl
    }

    fn mac(&self, signed_part: &str) -> Hmac<Sha256> {
        // HMAC takes keys of any length: this cannot fail.
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.key)
            .unwrap_or_else(|_| unreachable!("HMAC accepts any key length"));
        mac.update(signed_part.as_bytes());
        mac
    }

    /// A context for `sub` in session `sid`, valid from `now` for the TTL.
    pub fn sign(&self, sub: &str, sid: &str, org_id: &str, org_role: &str, now: i64) -> String {
        let ctx = OrgContext {
            sub: sub.into(),
            sid: sid.into(),
            org_id: org_id.into(),
            org_role: org_role.into(),
            iat: now,
            exp: now.saturating_add(self.ttl),
        };
        let json = serde_json::to_vec(&ctx).unwrap_or_default();
        let signed_part = format!("{VERSION}.{}", URL_SAFE_NO_PAD.encode(json));
        let tag = self.mac(&signed_part).finalize().into_bytes();
        format!("{signed_part}.{}", URL_SAFE_NO_PAD.encode(tag))
    }

    /// The context when `value` is genuine, unexpired, and made for this
    /// user and session; `None` otherwise (the caller ignores the header).
    pub fn verify(&self, value: &str, sub: &str, sid: &str, now: i64) -> Option<OrgContext> {
        let value = value.trim();
        if value.len() > MAX_LEN {
            return None;
        }
        let (signed_part, tag) = value.rsplit_once('.')?;
        let (version, payload) = signed_part.split_once('.')?;
        if version != VERSION {
            return None;
        }
        let tag = URL_SAFE_NO_PAD.decode(tag).ok()?;
        let expected = self.mac(signed_part).finalize().into_bytes();
        if !constant_time_eq(&expected, &tag) {
            return None;
        }
        let ctx: OrgContext =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).ok()?).ok()?;
        let fresh = ctx.exp > now && ctx.iat <= now + LEEWAY;
        (fresh && ctx.sub == sub && ctx.sid == sid).then_some(ctx)
    }
}

/// `set_active_org` for backends whose users live upstream: membership
/// from derp's own org tables, answered as a signed context in
/// `tokens.access_token` (empty when `org_id` is `None`).
pub async fn active_org_tokens(
    db: &crate::storage::Db,
    signer: &OrgContextSigner,
    session: &crate::auth::SessionInfo,
    org_id: Option<String>,
    now: i64,
) -> crate::error::AuthResult<crate::auth::TokenPair> {
    use crate::error::AuthError;
    use crate::storage::orgs;
    let empty = |value: String, ttl: i64| crate::auth::TokenPair {
        access_token: value,
        refresh_token: String::new(),
        token_type: "bearer",
        expires_in: ttl,
        expires_at: now + ttl,
    };
    let Some(key) = org_id else {
        return Ok(empty(String::new(), 0));
    };
    let user_id = session.user_id.clone();
    let amr = session.amr.clone();
    let (org_id, role) = db
        .read(
            move |conn| -> crate::error::AuthResult<(String, crate::domain::OrgRole)> {
                let org = orgs::find(conn, &key)?.ok_or(AuthError::NotFound("organization"))?;
                let member = orgs::member(conn, &org.id, &user_id)?
                    .ok_or(AuthError::NotFound("organization"))?;
                // The upstream's own second factors are not seen here: an org
                // that requires one stays closed unless the session shows `mfa`.
                if !orgs::mfa_satisfied(conn, &org.id, &amr)? {
                    return Err(AuthError::MfaRequired);
                }
                Ok((org.id, member.role))
            },
        )
        .await?;
    let role = signer.roles.effective(role);
    let value = signer.sign(
        &session.user_id,
        &session.session_id,
        &org_id,
        role.as_str(),
        now,
    );
    Ok(empty(value, signer.ttl()))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn signer() -> OrgContextSigner {
        OrgContextSigner::new(&[7u8; 32], 3600).unwrap()
    }

    #[test]
    fn round_trips_for_the_same_user_and_session() {
        let s = signer();
        let v = s.sign("u1", "s1", "org1", "admin", 1000);
        assert!(v.starts_with("oc1."));
        let ctx = s.verify(&v, "u1", "s1", 1001).unwrap();
        assert_eq!(
            (ctx.org_id.as_str(), ctx.org_role.as_str()),
            ("org1", "admin")
        );
        assert_eq!(ctx.exp, 4600);
    }

    #[test]
    fn other_user_session_expired_or_tampered_values_fail() {
        let s = signer();
        let v = s.sign("u1", "s1", "org1", "member", 1000);
        assert!(s.verify(&v, "u2", "s1", 1001).is_none(), "other user");
        assert!(s.verify(&v, "u1", "s2", 1001).is_none(), "other session");
        assert!(s.verify(&v, "u1", "s1", 4600).is_none(), "expired");
        assert!(
            s.verify(&v, "u1", "s1", 900).is_none(),
            "issued in the future"
        );
        // A payload claiming another role, with the old tag.
        let (_, tag) = v.rsplit_once('.').unwrap();
        let forged = OrgContext {
            sub: "u1".into(),
            sid: "s1".into(),
            org_id: "org1".into(),
            org_role: "owner".into(),
            iat: 1000,
            exp: 4600,
        };
        let forged = format!(
            "oc1.{}.{tag}",
            URL_SAFE_NO_PAD.encode(serde_json::to_vec(&forged).unwrap())
        );
        assert!(s.verify(&forged, "u1", "s1", 1001).is_none(), "tampered");
        assert!(s.verify("garbage", "u1", "s1", 1001).is_none());
        assert!(s.verify("", "u1", "s1", 1001).is_none());
        let other_key = OrgContextSigner::new(&[8u8; 32], 3600).unwrap();
        assert!(
            other_key.verify(&v, "u1", "s1", 1001).is_none(),
            "other key"
        );
    }

    #[test]
    fn the_key_is_derived_not_the_secret_itself() {
        let master = [7u8; 32];
        let s = signer();
        assert_ne!(s.key, master);
        // A MAC keyed with the raw secret does not verify.
        let signed_part = format!(
            "oc1.{}",
            URL_SAFE_NO_PAD.encode(
                br#"{"sub":"u","sid":"s","org_id":"o","org_role":"owner","iat":0,"exp":99999}"#
            )
        );
        let mut raw = <Hmac<Sha256> as Mac>::new_from_slice(&master).unwrap();
        raw.update(signed_part.as_bytes());
        let v = format!(
            "{signed_part}.{}",
            URL_SAFE_NO_PAD.encode(raw.finalize().into_bytes())
        );
        assert!(s.verify(&v, "u", "s", 1).is_none());
    }

    #[test]
    fn short_secrets_are_refused() {
        assert!(OrgContextSigner::new(&[1u8; 31], 60).is_err());
    }
}
