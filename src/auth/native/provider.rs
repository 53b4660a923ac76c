//! derp as an OpenID Connect provider, for native users: authorization
//! codes, their exchange at the token endpoint, refresh, userinfo,
//! revocation and introspection.
//!
//! A code is issued after the user signed in on the hosted pages (with every
//! factor) and, for a third-party client, consented. Its exchange goes
//! through the sign-in pipeline like derp's own code exchange
//! ([`Proof::AuthorizationCode`] with the `amr` of that sign-in), which
//! mints a session; the session is then bound to the client and its scopes,
//! so that its access tokens are the client's (RFC 9068: `aud` and
//! `client_id` are the client, `scope` the granted scopes) and its refresh
//! tokens rotate with reuse detection as derp's own do. A code is single use:
//! a second use revokes the session the first one minted.

use super::NativeBackend;
use super::pipeline::Proof;
use super::record;
use crate::auth::secrets::{hash_token, random_token};
use crate::auth::{RequestMeta, SignInStep, TokenPair};
use crate::config::JwtAlgorithm;
use crate::domain::User;
use crate::error::{AuthError, AuthResult};
use crate::storage::oauth_provider as store;
use crate::storage::{Conn, orgs, sessions, users};
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

fn has(scopes: &[String], s: &str) -> bool {
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

impl NativeBackend {
    /// When the user of login session `sid` signed in, if it is live.
    pub async fn provider_auth_time(&self, sid: &str) -> AuthResult<i64> {
        let sid = sid.to_string();
        let now = self.now();
        self.db
            .read(move |conn| -> AuthResult<i64> {
                sessions::get(conn, &sid)?
                    .filter(|s| s.is_live(now))
                    .map(|s| s.created_at)
                    .ok_or(AuthError::Unauthenticated)
            })
            .await
    }

    /// Stores a code for `grant` and returns it (for the redirect only).
    pub async fn provider_issue_code(&self, grant: CodeGrant) -> AuthResult<String> {
        let now = self.now();
        self.db
            .write(move |conn| -> AuthResult<String> {
                let code = random_token();
                let payload = serde_json::to_value(&grant).map_err(AuthError::internal)?;
                store::insert_code(
                    conn,
                    &hash_token(&code),
                    &grant.client_id,
                    &grant.user_id,
                    &payload,
                    now,
                    now + CODE_TTL,
                )?;
                Ok(code)
            })
            .await
    }

    /// The `authorization_code` grant for an authenticated `client_id`.
    /// `id_token_alg` signs the id_token.
    pub async fn provider_exchange_code(
        &self,
        code: &str,
        client_id: &str,
        redirect_uri: Option<&str>,
        code_verifier: Option<String>,
        id_token_alg: JwtAlgorithm,
        meta: &RequestMeta,
    ) -> AuthResult<Result<ClientTokens, GrantRefusal>> {
        let hash = hash_token(code);
        let client_id = client_id.to_string();
        let redirect_uri = redirect_uri.map(str::to_string);
        let pipeline = self.sign_in_pipeline();
        let minter = self.minter();
        let keys = self.keys.clone();
        let meta = meta.clone();
        let now = self.now();
        // The inner result is the answer; the transaction commits either way,
        // so a failed check still spends the code and a stolen code cannot be
        // tried against many verifiers, and a reuse's revocation sticks.
        self.db
            .write(move |conn| -> AuthResult<Result<ClientTokens, GrantRefusal>> {
                use GrantRefusal::InvalidGrant;
                let Some(row) = store::code(conn, &hash)? else {
                    return Ok(Err(InvalidGrant("unknown authorization code")));
                };
                if row.client_id != client_id {
                    return Ok(Err(InvalidGrant("the code was issued to another client")));
                }
                if !store::use_code(conn, &hash, now)? {
                    // A second use: whoever holds the code is not alone.
                    if let Some(sid) = &row.session_id {
                        sessions::revoke(conn, sid, now, "authorization_code_reuse")?;
                    }
                    record(
                        conn,
                        now,
                        &meta,
                        "oauth.code.reused",
                        Some(&row.user_id),
                        json!({"client_id": client_id, "session_id": row.session_id}),
                    )?;
                    tracing::warn!(client_id = %client_id, "authorization code reused: its tokens revoked");
                    return Ok(Err(InvalidGrant("the authorization code was already used")));
                }
                if now >= row.expires_at {
                    return Ok(Err(InvalidGrant("the authorization code expired")));
                }
                let grant: CodeGrant = match serde_json::from_value(row.payload.clone()) {
                    Ok(g) => g,
                    Err(_) => return Ok(Err(InvalidGrant("unknown authorization code"))),
                };
                if redirect_uri.as_deref() != Some(grant.redirect_uri.as_str()) {
                    return Ok(Err(InvalidGrant(
                        "redirect_uri differs from the authorization request's",
                    )));
                }
                if !super::pkce_holds(grant.code_challenge.as_deref(), code_verifier.as_deref()) {
                    return Ok(Err(InvalidGrant(
                        "code_verifier does not match the code_challenge",
                    )));
                }
                let user = match users::by_id(conn, &grant.user_id)? {
                    Some(u) if !u.user.disabled => u.user,
                    _ => return Ok(Err(InvalidGrant("the user is not available"))),
                };
                let proof = Proof::AuthorizationCode {
                    amr: grant.amr.clone(),
                };
                let outcome = match pipeline.complete(conn, &user, &proof, &meta, now) {
                    Ok(SignInStep::Session(o)) => o,
                    Ok(SignInStep::MfaRequired(_) | SignInStep::MfaEnrollmentRequired { .. }) => {
                        return Ok(Err(InvalidGrant("the sign-in lacks its second factor")));
                    }
                    Err(AuthError::AccountDisabled | AuthError::EmailNotConfirmed) => {
                        return Ok(Err(InvalidGrant("the user may not sign in")));
                    }
                    Err(e) => return Err(e),
                };
                let scope = grant.scopes.join(" ");
                sessions::set_client(conn, &outcome.session_id, &client_id, &scope)?;
                store::set_code_session(conn, &hash, &outcome.session_id)?;
                let session = sessions::get(conn, &outcome.session_id)?
                    .ok_or_else(|| AuthError::internal("session just minted is gone"))?;
                let pair = minter.with_refresh(
                    &user,
                    &session,
                    outcome.tokens.refresh_token.clone(),
                    None,
                    now,
                )?;
                let id_token = if has(&grant.scopes, "openid") {
                    let mut claims = user_claims(conn, &user, &grant.scopes, None, &minter.org_roles)?;
                    claims.insert("iss".into(), json!(keys.issuer()));
                    claims.insert("aud".into(), json!(client_id));
                    claims.insert("azp".into(), json!(client_id));
                    claims.insert("iat".into(), json!(now));
                    claims.insert("exp".into(), json!(now + pair.expires_in));
                    claims.insert("auth_time".into(), json!(grant.auth_time));
                    claims.insert("amr".into(), json!(grant.amr));
                    claims.insert("sid".into(), json!(grant.sid));
                    claims.insert("at_hash".into(), json!(at_hash(&pair.access_token)));
                    if let Some(n) = &grant.nonce {
                        claims.insert("nonce".into(), json!(n));
                    }
                    Some(keys.sign_id_token(id_token_alg, &Value::Object(claims))?)
                } else {
                    None
                };
                record(
                    conn,
                    now,
                    &meta,
                    "oauth.token.issued",
                    Some(&user.id),
                    json!({"client_id": client_id, "grant_type": "authorization_code", "scope": scope, "session_id": session.id}),
                )?;
                Ok(Ok(ClientTokens {
                    access_token: pair.access_token,
                    expires_in: pair.expires_in,
                    refresh_token: has(&grant.scopes, "offline_access").then_some(pair.refresh_token),
                    id_token,
                    scope,
                }))
            })
            .await
    }

    /// The `refresh_token` grant for an authenticated `client_id`: the token
    /// must belong to a session minted for that client.
    pub async fn provider_refresh(
        &self,
        refresh_token: &str,
        client_id: &str,
        meta: &RequestMeta,
    ) -> AuthResult<Option<(TokenPair, String)>> {
        let pair = match self
            .refresh_impl(refresh_token, Some(client_id), meta)
            .await
        {
            Ok(p) => p,
            Err(AuthError::InvalidToken) => return Ok(None),
            Err(e) => return Err(e),
        };
        let claims = self
            .keys
            .verify_client(&pair.access_token, self.now())
            .map_err(|_| AuthError::internal("a refreshed client token does not verify"))?;
        let scope = claims.scope.unwrap_or_default();
        let (user, client, meta, now) =
            (claims.sub, client_id.to_string(), meta.clone(), self.now());
        let s = scope.clone();
        self.db
            .write(move |conn| {
                record(
                    conn,
                    now,
                    &meta,
                    "oauth.token.issued",
                    Some(&user),
                    json!({"client_id": client, "grant_type": "refresh_token", "scope": s}),
                )
            })
            .await?;
        Ok(Some((pair, scope)))
    }

    /// The claims `/oauth2/userinfo` answers for a client's access token.
    pub async fn provider_userinfo(&self, access_token: &str) -> AuthResult<Value> {
        let now = self.now();
        let claims = self
            .keys
            .verify_client(access_token, now)
            .map_err(|_| AuthError::Unauthenticated)?;
        let roles = self.org_roles.clone();
        self.db
            .read(move |conn| -> AuthResult<Value> {
                let session = sessions::get(conn, &claims.sid)?
                    .filter(|s| s.is_live(now) && s.client_id == claims.client_id)
                    .ok_or(AuthError::Unauthenticated)?;
                let user = users::by_id(conn, &session.user_id)?
                    .filter(|u| !u.user.disabled)
                    .ok_or(AuthError::Unauthenticated)?
                    .user;
                let scopes: Vec<String> = session
                    .scope
                    .unwrap_or_default()
                    .split(' ')
                    .map(str::to_string)
                    .collect();
                Ok(Value::Object(user_claims(
                    conn,
                    &user,
                    &scopes,
                    session.active_org_id.as_deref(),
                    &roles,
                )?))
            })
            .await
    }

    /// RFC 7009: ends the session behind an access or refresh token of
    /// `client_id`. A token that is unknown, expired or another client's is
    /// left alone (the answer is the same).
    pub async fn provider_revoke(
        &self,
        token: &str,
        client_id: &str,
        meta: &RequestMeta,
    ) -> AuthResult<()> {
        let now = self.now();
        let sid = match self.keys.verify_client(token, now) {
            Ok(c) if c.client_id.as_deref() == Some(client_id) => Some(c.sid),
            _ => None,
        };
        let hash = hash_token(token);
        let client = client_id.to_string();
        let meta = meta.clone();
        self.db
            .write(move |conn| -> AuthResult<()> {
                let sid = match sid {
                    Some(s) => Some(s),
                    None => sessions::find_refresh(conn, &hash)?.map(|r| r.session_id),
                };
                let Some(sid) = sid else { return Ok(()) };
                let Some(session) = sessions::get(conn, &sid)? else {
                    return Ok(());
                };
                if session.client_id.as_deref() != Some(client.as_str()) {
                    return Ok(());
                }
                if sessions::revoke(conn, &sid, now, "revoked_by_client")? {
                    record(
                        conn,
                        now,
                        &meta,
                        "oauth.token.revoked",
                        Some(&session.user_id),
                        json!({"client_id": client, "session_id": sid}),
                    )?;
                }
                Ok(())
            })
            .await
    }

    /// RFC 7662 for an authenticated client: an access token is active
    /// while it verifies and its session lives; a refresh token while it is
    /// the session's live one. Only the caller's own tokens are described.
    pub async fn provider_introspect(
        &self,
        token: &str,
        client_id: &str,
    ) -> AuthResult<Introspection> {
        let now = self.now();
        let access = self
            .keys
            .verify_client(token, now)
            .ok()
            .filter(|c| c.client_id.as_deref() == Some(client_id));
        let hash = hash_token(token);
        let client = client_id.to_string();
        let inactive = Introspection {
            active: false,
            claims: json!({"active": false}),
        };
        self.db
            .read(move |conn| -> AuthResult<Introspection> {
                if let Some(c) = access {
                    let live = sessions::get(conn, &c.sid)?.is_some_and(|s| s.is_live(now));
                    if !live {
                        return Ok(inactive);
                    }
                    return Ok(Introspection {
                        active: true,
                        claims: json!({
                            "active": true,
                            "token_type": "access_token",
                            "client_id": c.client_id,
                            "scope": c.scope,
                            "sub": c.sub,
                            "aud": c.aud,
                            "iss": c.iss,
                            "exp": c.exp,
                            "iat": c.iat,
                            "jti": c.jti,
                        }),
                    });
                }
                let Some(row) = sessions::find_refresh(conn, &hash)? else {
                    return Ok(inactive);
                };
                let Some(s) = sessions::get(conn, &row.session_id)? else {
                    return Ok(inactive);
                };
                let active = s.is_live(now)
                    && row.used_at.is_none()
                    && now < row.expires_at
                    && s.client_id.as_deref() == Some(client.as_str());
                if !active {
                    return Ok(inactive);
                }
                Ok(Introspection {
                    active: true,
                    claims: json!({
                        "active": true,
                        "token_type": "refresh_token",
                        "client_id": client,
                        "scope": s.scope,
                        "sub": s.user_id,
                        "exp": row.expires_at,
                    }),
                })
            })
            .await
    }

    /// Consent `user_id` gave `client_id`: the scopes, if any.
    pub async fn provider_consent(
        &self,
        user_id: &str,
        client_id: &str,
    ) -> AuthResult<Option<Vec<String>>> {
        let (u, c) = (user_id.to_string(), client_id.to_string());
        self.db
            .read(move |conn| Ok(store::consent(conn, &u, &c)?))
            .await
    }

    /// Remembers consent to `scopes` (audited `consent.granted`).
    pub async fn provider_grant_consent(
        &self,
        user_id: &str,
        client_id: &str,
        scopes: &[String],
        meta: &RequestMeta,
    ) -> AuthResult<()> {
        let (u, c, scopes, meta) = (
            user_id.to_string(),
            client_id.to_string(),
            scopes.to_vec(),
            meta.clone(),
        );
        let now = self.now();
        self.db
            .write(move |conn| {
                store::set_consent(conn, &u, &c, &scopes, now)?;
                record(
                    conn,
                    now,
                    &meta,
                    "consent.granted",
                    Some(&u),
                    json!({"client_id": c, "scope": scopes.join(" ")}),
                )
            })
            .await
    }

    /// Withdraws a consent and ends the client's sessions of the user
    /// (audited `consent.revoked`); false when there was none.
    pub async fn provider_revoke_consent(
        &self,
        user_id: &str,
        client_id: &str,
        meta: &RequestMeta,
    ) -> AuthResult<bool> {
        let (u, c, meta) = (user_id.to_string(), client_id.to_string(), meta.clone());
        let now = self.now();
        self.db
            .write(move |conn| -> AuthResult<bool> {
                let had = store::delete_consent(conn, &u, &c)?;
                let ended = sessions::revoke_for_client(conn, &u, &c, now, "consent_revoked")?;
                if had || ended > 0 {
                    record(
                        conn,
                        now,
                        &meta,
                        "consent.revoked",
                        Some(&u),
                        json!({"client_id": c, "sessions_ended": ended}),
                    )?;
                }
                Ok(had || ended > 0)
            })
            .await
    }

    /// `(client_id, scopes, granted_at)` of the user's consents.
    pub async fn provider_consents(&self, user_id: &str) -> AuthResult<Vec<(String, String, i64)>> {
        let u = user_id.to_string();
        self.db
            .read(move |conn| Ok(store::consents_of(conn, &u)?))
            .await
    }

    /// The client an id_token this server signed was issued to.
    pub fn provider_id_token_audience(&self, token: &str) -> Option<String> {
        self.keys.id_token_audience(token)
    }

    /// Clients created at run time (`derp clients`, the admin API).
    pub async fn provider_stored_client(
        &self,
        client_id: &str,
    ) -> AuthResult<Option<store::ClientRow>> {
        let c = client_id.to_string();
        self.db.read(move |conn| Ok(store::client(conn, &c)?)).await
    }
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
