//! The Clerk backend: users live in Clerk. derp verifies Clerk session tokens
//! without a network call per request (RS256 with `jwt_key`, or the JWKS of
//! the Backend API, cached and refetched on an unknown `kid` at most once a
//! minute), reads and manages users through the Backend API (also as the
//! admin's [`super::directory::UserDirectory`]), and lists and revokes the
//! user's sessions. The flows Clerk keeps to its own front end (sign-up,
//! sign-in, refresh, account changes, links by mail, authorization codes)
//! are not part of its type: their routes answer 501
//! `not_supported_by_backend` (see [`super::backend`]).

use super::{AuthBackend, RequestMeta, SessionInfo, SessionList, SessionView, TokenPair};
use crate::clock::{Clock, from_unix};
use crate::config::ClerkConfig;
use crate::domain::{Role, User};
use crate::error::{AuthError, AuthResult};
use async_trait::async_trait;
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use oauth2::reqwest;
use serde::Deserialize;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

mod directory;

const NAME: &str = "clerk";
/// Seconds of clock skew allowed on `exp` and `nbf` (Clerk tokens live ~60 s).
const LEEWAY: i64 = 5;

pub struct ClerkBackend {
    cfg: ClerkConfig,
    api_url: String,
    secret_key: String,
    static_key: Option<DecodingKey>,
    http: reqwest::Client,
    clock: Arc<dyn Clock>,
    jwks: Mutex<Option<(Instant, JwkSet)>>,
    org_context: Option<super::org_context::OrgContextSigner>,
    db: crate::storage::Db,
}

#[derive(Debug, Deserialize)]
struct SessionClaims {
    sub: String,
    sid: Option<String>,
    exp: i64,
    nbf: Option<i64>,
    azp: Option<String>,
    o: Option<OrgClaim>,
}

#[derive(Debug, Deserialize)]
struct OrgClaim {
    id: Option<String>,
    rol: Option<String>,
}

fn upstream(e: impl std::fmt::Display) -> AuthError {
    tracing::warn!(error = %e, "Clerk Backend API call failed");
    AuthError::Upstream(e.to_string())
}

impl ClerkBackend {
    pub fn new(
        cfg: ClerkConfig,
        clock: Arc<dyn Clock>,
        db: crate::storage::Db,
        org_context: Option<super::org_context::OrgContextSigner>,
    ) -> Result<Self, String> {
        let secret_key = cfg
            .secret_key
            .as_ref()
            .map(|s| s.expose().to_string())
            .unwrap_or_default();
        let static_key =
            match &cfg.jwt_key {
                Some(pem) => Some(DecodingKey::from_rsa_pem(pem.as_bytes()).map_err(|e| {
                    format!("auth.clerk.jwt_key: not an RSA public key in PEM: {e}")
                })?),
                None => None,
            };
        if static_key.is_none() && secret_key.is_empty() {
            return Err("auth.clerk: set secret_key (for the JWKS and users) or jwt_key".into());
        }
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .connect_timeout(Duration::from_secs(5))
            .build()
            .map_err(|e| e.to_string())?;
        let api_url = cfg
            .api_url
            .clone()
            .unwrap_or_else(|| "https://api.clerk.com".into())
            .trim_end_matches('/')
            .to_string();
        Ok(Self {
            cfg,
            api_url,
            secret_key,
            static_key,
            http,
            clock,
            jwks: Mutex::new(None),
            org_context,
            db,
        })
    }

    async fn api(&self, method: reqwest::Method, path: &str) -> AuthResult<serde_json::Value> {
        let res = self
            .http
            .request(method, format!("{}/v1{path}", self.api_url))
            .bearer_auth(&self.secret_key)
            .send()
            .await
            .map_err(upstream)?;
        let status = res.status();
        let body = res.bytes().await.map_err(upstream)?;
        if status == reqwest::StatusCode::NOT_FOUND {
            return Err(AuthError::NotFound("user"));
        }
        if !status.is_success() {
            return Err(upstream(format!("HTTP {status}")));
        }
        serde_json::from_slice(&body).map_err(upstream)
    }

    /// The key for `kid`: the configured PEM, or the Backend API's JWKS.
    async fn key_for(&self, kid: Option<&str>) -> AuthResult<DecodingKey> {
        if let Some(k) = &self.static_key {
            return Ok(k.clone());
        }
        let kid = kid.unwrap_or_default();
        let cached = self.jwks.lock().map_err(AuthError::internal)?.clone();
        let set = match cached {
            Some((at, set))
                if set.find(kid).is_some() || at.elapsed() < Duration::from_secs(60) =>
            {
                set
            }
            _ => {
                let v = self.api(reqwest::Method::GET, "/jwks").await?;
                let set: JwkSet = serde_json::from_value(v).map_err(upstream)?;
                *self.jwks.lock().map_err(AuthError::internal)? =
                    Some((Instant::now(), set.clone()));
                set
            }
        };
        let jwk = set.find(kid).ok_or(AuthError::Unauthenticated)?;
        DecodingKey::from_jwk(jwk).map_err(|_| AuthError::Unauthenticated)
    }

    async fn verify(&self, token: &str) -> AuthResult<SessionClaims> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| AuthError::Unauthenticated)?;
        if header.alg != Algorithm::RS256 {
            return Err(AuthError::Unauthenticated);
        }
        let key = self.key_for(header.kid.as_deref()).await?;
        let mut v = Validation::new(Algorithm::RS256);
        v.validate_exp = false;
        v.validate_aud = false;
        v.required_spec_claims = ["exp", "sub"].iter().map(|s| s.to_string()).collect();
        let c: SessionClaims = jsonwebtoken::decode(token, &key, &v)
            .map_err(|_| AuthError::Unauthenticated)?
            .claims;
        let now = self.clock.unix();
        if c.exp + LEEWAY < now || c.nbf.is_some_and(|nbf| nbf - LEEWAY > now) {
            return Err(AuthError::Unauthenticated);
        }
        if !self.cfg.authorized_parties.is_empty()
            && !c
                .azp
                .as_ref()
                .is_some_and(|a| self.cfg.authorized_parties.contains(a))
        {
            return Err(AuthError::Unauthenticated);
        }
        Ok(c)
    }
}

/// A Clerk user object as derp's user. Clerk's times are milliseconds.
pub fn user_from_clerk(v: &serde_json::Value) -> AuthResult<User> {
    let id = v["id"]
        .as_str()
        .ok_or_else(|| upstream("user without id"))?
        .to_string();
    let primary = v["primary_email_address_id"].as_str();
    let emails = v["email_addresses"].as_array().cloned().unwrap_or_default();
    let chosen = emails
        .iter()
        .find(|e| e["id"].as_str() == primary && primary.is_some())
        .or_else(|| emails.first());
    let email = chosen
        .and_then(|e| e["email_address"].as_str())
        .unwrap_or_default()
        .to_lowercase();
    let verified = chosen.is_some_and(|e| e["verification"]["status"].as_str() == Some("verified"));
    let ms = |key: &str| v[key].as_i64().map(|t| from_unix(t / 1000));
    Ok(User {
        id,
        email,
        email_confirmed_at: if verified { ms("created_at") } else { None },
        role: if v["public_metadata"]["role"].as_str() == Some("admin") {
            Role::Admin
        } else {
            Role::Default
        },
        disabled: v["banned"].as_bool().unwrap_or(false) || v["locked"].as_bool().unwrap_or(false),
        created_at: ms("created_at").unwrap_or(time::OffsetDateTime::UNIX_EPOCH),
        last_sign_in_at: ms("last_sign_in_at"),
        data: v["public_metadata"].clone(),
    })
}

#[async_trait]
impl AuthBackend for ClerkBackend {
    fn name(&self) -> &'static str {
        NAME
    }

    async fn sign_out(
        &self,
        session: &SessionInfo,
        everywhere: bool,
        _: &RequestMeta,
    ) -> AuthResult<()> {
        if everywhere {
            for s in self.list_sessions(session).await? {
                self.api(reqwest::Method::POST, &format!("/sessions/{}/revoke", s.id))
                    .await?;
            }
            return Ok(());
        }
        self.api(
            reqwest::Method::POST,
            &format!("/sessions/{}/revoke", session.session_id),
        )
        .await
        .map(|_| ())
    }

    async fn authenticate(&self, access_token: &str) -> AuthResult<SessionInfo> {
        let c = self.verify(access_token).await?;
        let (org_id, org_role) = match c.o {
            Some(o) => (
                o.id,
                o.rol.map(|r| r.trim_start_matches("org:").to_string()),
            ),
            None => (None, None),
        };
        Ok(SessionInfo {
            session_id: c.sid.unwrap_or_default(),
            user_id: c.sub,
            role: "default".into(),
            expires_at: c.exp,
            org_id,
            org_role,
            email: None,
            amr: Vec::new(),
        })
    }

    async fn authenticate_with_org(
        &self,
        access_token: &str,
        org_context: Option<&str>,
    ) -> AuthResult<SessionInfo> {
        let mut info = self.authenticate(access_token).await?;
        if info.org_id.is_none()
            && let (Some(signer), Some(ctx)) = (&self.org_context, org_context)
            && let Some(claims) =
                signer.verify(ctx, &info.user_id, &info.session_id, self.clock.unix())
        {
            info.org_id = Some(claims.org_id);
            info.org_role = Some(claims.org_role);
        }
        Ok(info)
    }

    async fn get_user(&self, session: &SessionInfo) -> AuthResult<User> {
        user_from_clerk(
            &self
                .api(reqwest::Method::GET, &format!("/users/{}", session.user_id))
                .await?,
        )
    }

    /// The X-Org-Context value: membership from derp's own org tables.
    async fn set_active_org(
        &self,
        session: &SessionInfo,
        org_id: Option<String>,
    ) -> AuthResult<TokenPair> {
        let signer = self
            .org_context
            .clone()
            .ok_or_else(|| AuthError::internal("org_context_secret is not configured"))?;
        super::org_context::active_org_tokens(&self.db, &signer, session, org_id, self.clock.unix())
            .await
    }

    async fn web_session(&self, _: &str) -> AuthResult<SessionInfo> {
        Err(AuthError::Unauthenticated)
    }

    fn jwks(&self) -> serde_json::Value {
        serde_json::json!({"keys": []})
    }

    fn session_list(&self) -> Option<&dyn SessionList> {
        Some(self)
    }
}

/// Clerk's sessions of the user, active ones only; a revoke is checked
/// against that list first.
#[async_trait]
impl SessionList for ClerkBackend {
    async fn list_sessions(&self, session: &SessionInfo) -> AuthResult<Vec<SessionView>> {
        let v = self
            .api(
                reqwest::Method::GET,
                &format!("/sessions?user_id={}&status=active", session.user_id),
            )
            .await?;
        let list = v
            .as_array()
            .cloned()
            .or_else(|| v["data"].as_array().cloned())
            .unwrap_or_default();
        Ok(list
            .iter()
            .map(|s| SessionView {
                id: s["id"].as_str().unwrap_or_default().to_string(),
                created_at: from_unix(s["created_at"].as_i64().unwrap_or(0) / 1000),
                last_used_at: from_unix(
                    s["last_active_at"]
                        .as_i64()
                        .or(s["updated_at"].as_i64())
                        .unwrap_or(0)
                        / 1000,
                ),
                user_agent: None,
                ip: None,
                current: s["id"].as_str() == Some(session.session_id.as_str()),
            })
            .collect())
    }

    async fn revoke_session(
        &self,
        session: &SessionInfo,
        id: &str,
        _: &RequestMeta,
    ) -> AuthResult<()> {
        if !self
            .list_sessions(session)
            .await?
            .iter()
            .any(|s| s.id == id)
        {
            return Err(AuthError::NotFound("session"));
        }
        self.api(reqwest::Method::POST, &format!("/sessions/{id}/revoke"))
            .await
            .map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clerk_users_map_with_millisecond_times_and_the_primary_email() {
        let v = serde_json::json!({
            "id": "user_1",
            "primary_email_address_id": "idn_2",
            "email_addresses": [
                {"id": "idn_1", "email_address": "old@example.com", "verification": {"status": "unverified"}},
                {"id": "idn_2", "email_address": "Main@Example.com", "verification": {"status": "verified"}}
            ],
            "banned": true,
            "created_at": 1_700_000_000_123_i64,
            "last_sign_in_at": 1_700_000_500_000_i64,
            "public_metadata": {"role": "admin"}
        });
        let u = user_from_clerk(&v).unwrap();
        assert_eq!(u.email, "main@example.com");
        assert_eq!(u.created_at.unix_timestamp(), 1_700_000_000);
        assert_eq!(u.last_sign_in_at.unwrap().unix_timestamp(), 1_700_000_500);
        assert!(u.disabled && u.email_confirmed_at.is_some());
        assert_eq!(u.role, Role::Admin);
    }
}
