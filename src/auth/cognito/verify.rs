//! Local verification of Cognito access tokens against the pool's JWKS.
//!
//! The keys are fetched with reqwest and cached. An unknown `kid` (or a
//! cache older than an hour) triggers a refetch, but at most one attempt a
//! minute whatever the outcome, so a stream of forged `kid`s cannot make
//! derp hammer the JWKS URL; a failed refetch keeps the keys it had. Once
//! the keys are cached, verification makes no network call.
//!
//! Checks: RS256 only, the signature, `iss` (configurable apart from the
//! JWKS URL, for emulators), `token_use == "access"`, `client_id` equal to
//! the configured app client, and `exp` against the injected clock. The
//! `cognito:groups` claim gives the global role (group `admin`). Tokens
//! of a user who signed out through this derp are refused too: Cognito's own
//! revocation is invisible to a local check, so derp keeps each sign-out in
//! SQLite (`upstream_sign_outs`) for as long as a token it refuses can live,
//! with a copy in memory that is loaded at start.

use super::api::read_capped;
use crate::auth::SessionInfo;
use crate::clock::Clock;
use crate::domain::{Email, Role};
use crate::error::{AuthError, AuthResult};
use crate::storage::Db;
use crate::storage::upstream_sign_outs::{self, Kind};
use jsonwebtoken::jwk::{AlgorithmParameters, JwkSet, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};

/// At most one JWKS fetch attempt in this many seconds.
const REFETCH_INTERVAL: i64 = 60;
/// Keys older than this are refreshed at the next verification.
const KEYS_MAX_AGE: i64 = 3600;
/// How long the bearer token behind a `SessionInfo` is remembered, so that
/// the handler that asked for the session can make token-authenticated
/// Cognito calls (GetUser, GlobalSignOut, ChangePassword) in the same request.
const REMEMBER_TOKEN: i64 = 60;
/// The longest life Cognito allows an access token (one day): sign-outs are
/// remembered this long.
const MAX_TOKEN_LIFE: i64 = 86_400;
const MAX_REMEMBERED: usize = 10_000;

#[derive(Debug, Deserialize)]
struct Claims {
    sub: String,
    exp: i64,
    #[serde(default)]
    iat: i64,
    token_use: Option<String>,
    client_id: Option<String>,
    jti: Option<String>,
    origin_jti: Option<String>,
    username: Option<String>,
    auth_time: Option<i64>,
    #[serde(rename = "cognito:groups", default)]
    groups: Vec<String>,
}

/// Members of this Cognito group have derp's global role `admin`.
pub(super) const ADMIN_GROUP: &str = "admin";

/// What a verified access token says.
#[derive(Debug, Clone)]
pub(super) struct Verified {
    pub sub: String,
    /// `origin_jti` (stable across refreshes: the login), else `jti`.
    pub session_id: String,
    /// The Cognito username (the SECRET_HASH input for refreshes).
    pub username: Option<String>,
    pub exp: i64,
    pub auth_time: Option<i64>,
    /// The user's Cognito groups (`cognito:groups`), as the token says.
    pub groups: Vec<String>,
}

impl Verified {
    /// derp's global role: `admin` for members of the Cognito group
    /// `admin`, else `default`. Read from the signed token, so it changes
    /// when the user's next token is issued (a refresh or a sign-in).
    pub fn role(&self) -> Role {
        if self.groups.iter().any(|g| g == ADMIN_GROUP) {
            Role::Admin
        } else {
            Role::Default
        }
    }

    pub fn session_info(&self) -> SessionInfo {
        SessionInfo {
            user_id: self.sub.clone(),
            session_id: self.session_id.clone(),
            role: self.role().as_str().to_string(),
            expires_at: self.exp,
            org_id: None,
            org_role: None,
            email: self
                .username
                .as_deref()
                .and_then(|u| Email::parse(u).ok())
                .map(|e| e.as_str().to_string()),
            amr: Vec::new(),
        }
    }
}

#[derive(Default)]
struct KeyCache {
    keys: HashMap<String, DecodingKey>,
    fetched_at: Option<i64>,
    attempted_at: Option<i64>,
}

#[derive(Default)]
struct Memory {
    /// session id -> (latest verified access token, keep until).
    tokens: HashMap<String, (String, i64)>,
    /// sub -> signed out at: tokens issued before are refused.
    users_out: HashMap<String, i64>,
    /// session id -> signed out at.
    sessions_out: HashMap<String, i64>,
}

pub(super) struct Verifier {
    http: reqwest::Client,
    jwks_url: String,
    issuer: String,
    client_id: String,
    clock: Arc<dyn Clock>,
    keys: RwLock<KeyCache>,
    fetch: tokio::sync::Mutex<()>,
    memory: Mutex<Memory>,
    db: Db,
}

impl Verifier {
    pub fn new(
        http: reqwest::Client,
        jwks_url: String,
        issuer: String,
        client_id: String,
        clock: Arc<dyn Clock>,
        db: Db,
    ) -> Result<Self, String> {
        // The sign-outs still in force, from before a restart.
        let now = clock.unix();
        let kept = db
            .write_sync(|conn| -> crate::storage::StorageResult<_> {
                upstream_sign_outs::prune(conn, now)?;
                upstream_sign_outs::live(conn, now)
            })
            .map_err(|e| format!("cannot read the upstream sign-outs: {e}"))?;
        let mut memory = Memory::default();
        for s in kept {
            let map = match s.kind {
                Kind::User => &mut memory.users_out,
                Kind::Session => &mut memory.sessions_out,
            };
            map.insert(s.id, s.signed_out_at);
        }
        Ok(Self {
            http,
            jwks_url,
            issuer,
            client_id,
            clock,
            keys: RwLock::new(KeyCache::default()),
            fetch: tokio::sync::Mutex::new(()),
            memory: Mutex::new(memory),
            db,
        })
    }

    /// Decodes `token` with the pool's keys: RS256, a known `kid`, the
    /// signature, `iss`, and `aud` when given. `exp` is checked by callers.
    async fn decode<T: serde::de::DeserializeOwned>(
        &self,
        token: &str,
        audience: Option<&str>,
        now: i64,
    ) -> AuthResult<T> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| AuthError::Unauthenticated)?;
        if header.alg != Algorithm::RS256 {
            return Err(AuthError::Unauthenticated);
        }
        let kid = header.kid.ok_or(AuthError::Unauthenticated)?;
        let (known, stale) = {
            let cache = self.read_keys();
            (
                cache.keys.contains_key(&kid),
                cache.fetched_at.is_none_or(|t| now - t > KEYS_MAX_AGE),
            )
        };
        if !known || stale {
            self.refetch(now).await;
        }
        let cache = self.read_keys();
        let key = cache.keys.get(&kid).ok_or(AuthError::Unauthenticated)?;
        let mut validation = Validation::new(Algorithm::RS256);
        validation.validate_exp = false;
        validation.validate_aud = audience.is_some();
        let mut required = vec!["exp", "sub", "iss"];
        if let Some(aud) = audience {
            validation.set_audience(&[aud]);
            required.push("aud");
        }
        validation.required_spec_claims = required.iter().map(|s| s.to_string()).collect();
        validation.set_issuer(&[&self.issuer]);
        Ok(jsonwebtoken::decode::<T>(token, key, &validation)
            .map_err(|_| AuthError::Unauthenticated)?
            .claims)
    }

    /// Verifies an id_token from the hosted UI's token endpoint: the pool's
    /// key, `iss`, `aud` = the app client, `token_use = id`, not expired, and
    /// the `sub` of the access token it came with. Returns its claims.
    pub async fn verify_id_token(&self, token: &str, sub: &str) -> AuthResult<serde_json::Value> {
        let now = self.clock.unix();
        let claims: serde_json::Value = self.decode(token, Some(&self.client_id), now).await?;
        let ok = claims["token_use"].as_str() == Some("id")
            && claims["sub"].as_str() == Some(sub)
            && claims["exp"].as_i64().is_some_and(|exp| exp > now);
        if !ok {
            return Err(AuthError::Unauthenticated);
        }
        Ok(claims)
    }

    /// Verifies `token`; every refusal is `Unauthenticated`.
    pub async fn verify(&self, token: &str) -> AuthResult<Verified> {
        let now = self.clock.unix();
        let claims: Claims = self.decode(token, None, now).await?;
        if claims.token_use.as_deref() != Some("access")
            || claims.client_id.as_deref() != Some(self.client_id.as_str())
            || claims.exp <= now
        {
            return Err(AuthError::Unauthenticated);
        }
        let session_id = claims
            .origin_jti
            .or(claims.jti)
            .ok_or(AuthError::Unauthenticated)?;
        let mut memory = self.memory();
        let signed_out = memory
            .users_out
            .get(&claims.sub)
            .is_some_and(|at| claims.iat < *at)
            || memory.sessions_out.contains_key(&session_id);
        if signed_out {
            return Err(AuthError::Unauthenticated);
        }
        if memory.tokens.len() >= MAX_REMEMBERED {
            memory.tokens.retain(|_, (_, until)| *until > now);
            if memory.tokens.len() >= MAX_REMEMBERED
                && let Some(k) = memory.tokens.keys().next().cloned()
            {
                memory.tokens.remove(&k);
            }
        }
        let until = (now + REMEMBER_TOKEN).min(claims.exp);
        memory
            .tokens
            .insert(session_id.clone(), (token.to_string(), until));
        Ok(Verified {
            sub: claims.sub,
            session_id,
            username: claims.username,
            exp: claims.exp,
            auth_time: claims.auth_time,
            groups: claims.groups,
        })
    }

    /// The access token that was just verified for `session`, if any.
    pub fn recent_token(&self, session: &SessionInfo) -> Option<String> {
        let now = self.clock.unix();
        let memory = self.memory();
        let (token, until) = memory.tokens.get(&session.session_id)?;
        (*until > now).then(|| token.clone())
    }

    /// Refuses, from now on and across restarts, the user's tokens issued
    /// before now and every token of `session_id`, until the longest-lived
    /// of them has expired.
    pub async fn sign_out(&self, sub: &str, session_id: &str) -> AuthResult<()> {
        let now = self.clock.unix();
        {
            let mut memory = self.memory();
            let horizon = now - MAX_TOKEN_LIFE;
            memory.users_out.retain(|_, at| *at > horizon);
            memory.sessions_out.retain(|_, at| *at > horizon);
            memory.users_out.insert(sub.to_string(), now);
            memory.sessions_out.insert(session_id.to_string(), now);
            memory.tokens.remove(session_id);
        }
        let (sub, session_id) = (sub.to_string(), session_id.to_string());
        let until = now + MAX_TOKEN_LIFE;
        self.db
            .write(move |conn| -> AuthResult<()> {
                upstream_sign_outs::record(conn, Kind::User, &sub, now, until)?;
                upstream_sign_outs::record(conn, Kind::Session, &session_id, now, until)?;
                Ok(())
            })
            .await
    }

    fn read_keys(&self) -> std::sync::RwLockReadGuard<'_, KeyCache> {
        self.keys.read().unwrap_or_else(|p| p.into_inner())
    }

    fn memory(&self) -> std::sync::MutexGuard<'_, Memory> {
        self.memory.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// One fetch attempt, unless one was made less than a minute ago.
    async fn refetch(&self, now: i64) {
        let _one_at_a_time = self.fetch.lock().await;
        {
            let mut cache = self.keys.write().unwrap_or_else(|p| p.into_inner());
            if cache
                .attempted_at
                .is_some_and(|t| now - t < REFETCH_INTERVAL && now >= t)
            {
                return;
            }
            cache.attempted_at = Some(now);
        }
        match self.fetch_keys().await {
            Ok(keys) => {
                let mut cache = self.keys.write().unwrap_or_else(|p| p.into_inner());
                cache.keys = keys;
                cache.fetched_at = Some(now);
            }
            Err(e) => {
                tracing::warn!(jwks_url = %self.jwks_url, error = %e, "cannot fetch the Cognito JWKS; keeping the cached keys");
            }
        }
    }

    async fn fetch_keys(&self) -> Result<HashMap<String, DecodingKey>, String> {
        let res = self
            .http
            .get(&self.jwks_url)
            .send()
            .await
            .map_err(|e| e.without_url().to_string())?;
        if !res.status().is_success() {
            return Err(format!("HTTP {}", res.status()));
        }
        let body = read_capped(res).await?;
        let set: JwkSet =
            serde_json::from_slice(&body).map_err(|e| format!("not a JWK set: {e}"))?;
        let mut keys = HashMap::new();
        for jwk in &set.keys {
            let usable = matches!(jwk.algorithm, AlgorithmParameters::RSA(_))
                && jwk
                    .common
                    .public_key_use
                    .as_ref()
                    .is_none_or(|u| *u == PublicKeyUse::Signature);
            if let (true, Some(kid)) = (usable, jwk.common.key_id.clone())
                && let Ok(key) = DecodingKey::from_jwk(jwk)
            {
                keys.insert(kid, key);
            }
        }
        if keys.is_empty() {
            return Err("the JWK set has no RSA signing key with a kid".into());
        }
        Ok(keys)
    }
}
