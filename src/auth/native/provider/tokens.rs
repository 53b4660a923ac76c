//! A client's tokens after the code: the refresh grant, userinfo,
//! revocation and introspection.

use super::{Introspection, user_claims};
use crate::auth::native::NativeBackend;
use crate::auth::native::record;
use crate::auth::secrets::refresh_key;
use crate::auth::{RequestMeta, TokenPair};
use crate::error::{AuthError, AuthResult};
use crate::storage::{sessions, users};
use serde_json::{Value, json};

impl NativeBackend {
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
        let hash = refresh_key(token);
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
        let hash = refresh_key(token);
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
}
