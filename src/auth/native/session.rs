//! Sessions and tokens: creation at sign-in, refresh with rotation, reuse
//! detection and grace window, sign-out, and bearer verification.

use super::pipeline::{Proof, SignIn};
use super::{NativeBackend, record};
use crate::auth::jwt::{AccessClaims, Keyring};
use crate::auth::secrets::{hash_token, random_token};
use crate::auth::{RequestMeta, SessionInfo, SessionView, SignInStep, TokenPair};
use crate::clock::from_unix;
use crate::domain::User;
use crate::error::{AuthError, AuthResult};
use crate::storage::sessions::{self, SessionRow};
use crate::storage::{Conn, orgs, users};

/// Everything needed to mint tokens inside a transaction.
#[derive(Clone)]
pub(super) struct Minter {
    pub keys: Keyring,
    pub session_ttl: i64,
    pub idle_ttl: i64,
}

impl Minter {
    /// Creates a login session with its first refresh token. Only the
    /// sign-in pipeline calls it.
    pub(super) fn new_session(
        &self,
        conn: &Conn,
        user: &User,
        amr: &[String],
        meta: &RequestMeta,
        now: i64,
    ) -> AuthResult<(TokenPair, String)> {
        let session = SessionRow {
            id: uuid::Uuid::now_v7().to_string(),
            user_id: user.id.clone(),
            created_at: now,
            last_used_at: now,
            expires_at: now + self.session_ttl,
            ip: meta.ip.clone(),
            user_agent: meta.user_agent.clone(),
            active_org_id: None,
            revoked_at: None,
            amr: amr.to_vec(),
        };
        sessions::insert(conn, &session)?;
        users::touch_sign_in(conn, &user.id, now)?;
        Ok((
            self.pair(conn, user, &session, None, None, now)?,
            session.id,
        ))
    }

    /// A new refresh token for `session` (child of `parent`) and an access token.
    pub fn pair(
        &self,
        conn: &Conn,
        user: &User,
        session: &SessionRow,
        parent: Option<i64>,
        org_role: Option<String>,
        now: i64,
    ) -> AuthResult<TokenPair> {
        let refresh = random_token();
        let idle_expiry = (now + self.idle_ttl).min(session.expires_at);
        sessions::insert_refresh(
            conn,
            &session.id,
            &hash_token(&refresh),
            parent,
            now,
            idle_expiry,
        )?;
        let exp = now + self.keys.access_ttl();
        let claims = AccessClaims {
            sub: user.id.clone(),
            sid: session.id.clone(),
            session_id: session.id.clone(),
            iat: now,
            exp,
            jti: uuid::Uuid::new_v4().to_string(),
            iss: self.keys.issuer().to_string(),
            aud: self.keys.audience().map(str::to_string),
            email: user.email.clone(),
            role: user.role.as_str().to_string(),
            org_id: org_role.as_ref().and(session.active_org_id.clone()),
            org_role,
            amr: session.amr.clone(),
        };
        Ok(TokenPair {
            access_token: self.keys.sign(&claims)?,
            refresh_token: refresh,
            token_type: "bearer",
            expires_in: exp - now,
            expires_at: exp,
        })
    }
}

/// The session's active org with the user's current role in it; an org the
/// user is no longer a member of is cleared from the session.
fn current_org(
    conn: &Conn,
    mut session: SessionRow,
    user_id: &str,
) -> AuthResult<(SessionRow, Option<String>)> {
    let Some(org_id) = session.active_org_id.clone() else {
        return Ok((session, None));
    };
    match orgs::member(conn, &org_id, user_id)? {
        Some(m) => Ok((session, Some(m.role))),
        None => {
            sessions::set_active_org(conn, &session.id, None)?;
            session.active_org_id = None;
            Ok((session, None))
        }
    }
}

/// What a refresh transaction decided; a rejection may still have written
/// (a revoked session), so it is not an `Err` that would roll back.
enum Refreshed {
    Tokens(TokenPair),
    Rejected,
}

impl NativeBackend {
    pub(super) fn minter(&self) -> Minter {
        Minter {
            keys: self.keys.clone(),
            session_ttl: self.cfg.session_expire_days as i64 * 86_400,
            idle_ttl: self.cfg.jwt.refresh_token_expire_days as i64 * 86_400,
        }
    }

    /// The sign-in pipeline with this backend's settings.
    pub(super) fn sign_in_pipeline(&self) -> SignIn {
        SignIn {
            minter: self.minter(),
            require_confirmed_email: self.cfg.enable_confirmation,
        }
    }

    /// Signs in `user`, whose proof was checked outside a transaction (a
    /// password), through the pipeline in a transaction of its own.
    pub(super) async fn sign_in_user(
        &self,
        user: User,
        proof: Proof,
        meta: &RequestMeta,
    ) -> AuthResult<SignInStep> {
        let pipeline = self.sign_in_pipeline();
        let meta = meta.clone();
        let now = self.now();
        self.db
            .write(move |conn| pipeline.complete(conn, &user, &proof, &meta, now))
            .await
    }

    pub(super) async fn refresh_impl(
        &self,
        refresh_token: &str,
        meta: &RequestMeta,
    ) -> AuthResult<TokenPair> {
        let hash = hash_token(refresh_token);
        let minter = self.minter();
        let grace = self.cfg.refresh_reuse_grace_seconds as i64;
        let now = self.now();
        let meta = meta.clone();
        let outcome = self
            .db
            .write(move |conn| -> AuthResult<Refreshed> {
                let Some(row) = sessions::find_refresh(conn, &hash)? else {
                    return Ok(Refreshed::Rejected);
                };
                let Some(session) = sessions::get(conn, &row.session_id)? else {
                    return Ok(Refreshed::Rejected);
                };
                if !session.is_live(now) || now >= row.expires_at {
                    return Ok(Refreshed::Rejected);
                }
                let fresh = sessions::use_refresh(conn, row.id, now)?;
                if !fresh {
                    let used_at = row.used_at.unwrap_or(now);
                    if now - used_at > grace {
                        sessions::revoke(conn, &session.id, now, "refresh_token_reuse")?;
                        record(
                            conn,
                            now,
                            &meta,
                            "refresh.reuse_detected",
                            Some(&session.user_id),
                            serde_json::json!({"session_id": session.id}),
                        )?;
                        tracing::warn!(session_id = %session.id, "refresh token reuse: session revoked");
                        return Ok(Refreshed::Rejected);
                    }
                }
                let user = match users::by_id(conn, &session.user_id)? {
                    Some(u) if !u.user.disabled => u.user,
                    _ => {
                        sessions::revoke(conn, &session.id, now, "user_unavailable")?;
                        return Ok(Refreshed::Rejected);
                    }
                };
                sessions::touch(conn, &session.id, now)?;
                let (session, org_role) = current_org(conn, session, &user.id)?;
                minter.pair(conn, &user, &session, Some(row.id), org_role, now).map(Refreshed::Tokens)
            })
            .await?;
        match outcome {
            Refreshed::Tokens(t) => Ok(t),
            Refreshed::Rejected => Err(AuthError::InvalidToken),
        }
    }

    pub(super) async fn sign_out_impl(
        &self,
        session: &SessionInfo,
        everywhere: bool,
        meta: &RequestMeta,
    ) -> AuthResult<()> {
        let (user_id, session_id) = (session.user_id.clone(), session.session_id.clone());
        let meta = meta.clone();
        let now = self.now();
        self.db
            .write(move |conn| {
                if everywhere {
                    sessions::revoke_all_for_user(conn, &user_id, None, now, "sign_out_all")?;
                } else {
                    sessions::revoke(conn, &session_id, now, "sign_out")?;
                }
                let scope = if everywhere { "all" } else { "session" };
                record(
                    conn,
                    now,
                    &meta,
                    "sign_out",
                    Some(&user_id),
                    serde_json::json!({"scope": scope}),
                )
            })
            .await
    }

    /// Verifies the token, then that its session is still live (so that
    /// sign-out and revocation take effect at once for callers of `/session`).
    pub(super) async fn authenticate_impl(&self, access_token: &str) -> AuthResult<SessionInfo> {
        let now = self.now();
        // Read before the session row: a change committed after this moves it.
        let epoch = sessions::epoch();
        if let Some(hit) = self.session_cache.get(access_token, now, epoch) {
            return Ok(hit);
        }
        let claims = self
            .keys
            .verify(access_token)
            .map_err(|_| AuthError::Unauthenticated)?;
        if claims.exp <= now {
            return Err(AuthError::Unauthenticated);
        }
        let sid = claims.sid.clone();
        let session = self
            .db
            .read(move |conn| -> AuthResult<_> { Ok(sessions::get(conn, &sid)?) })
            .await?;
        let Some(session) = session.filter(|s| s.is_live(now) && s.user_id == claims.sub) else {
            return Err(AuthError::Unauthenticated);
        };
        // An org that was deleted, or that the user left or was removed
        // from, is no longer reported even while the token lives.
        let org_still_active = claims.org_id.is_some() && claims.org_id == session.active_org_id;
        let info = SessionInfo {
            user_id: claims.sub,
            session_id: claims.sid,
            role: claims.role,
            expires_at: claims.exp,
            org_id: claims.org_id.filter(|_| org_still_active),
            org_role: claims.org_role.filter(|_| org_still_active),
            email: Some(claims.email),
            amr: claims.amr,
        };
        self.session_cache.put(
            access_token,
            info.clone(),
            claims.exp.min(session.expires_at),
            epoch,
        );
        Ok(info)
    }

    pub(super) async fn list_sessions_impl(
        &self,
        session: &SessionInfo,
    ) -> AuthResult<Vec<SessionView>> {
        let user_id = session.user_id.clone();
        let current = session.session_id.clone();
        let now = self.now();
        self.db
            .read(move |conn| -> AuthResult<_> {
                Ok(sessions::list_live(conn, &user_id, now)?
                    .into_iter()
                    .map(|s| SessionView {
                        current: s.id == current,
                        id: s.id,
                        created_at: from_unix(s.created_at),
                        last_used_at: from_unix(s.last_used_at),
                        user_agent: s.user_agent,
                        ip: s.ip,
                    })
                    .collect())
            })
            .await
    }

    pub(super) async fn revoke_session_impl(
        &self,
        session: &SessionInfo,
        id: &str,
        meta: &RequestMeta,
    ) -> AuthResult<()> {
        let user_id = session.user_id.clone();
        let id = id.to_string();
        let meta = meta.clone();
        let now = self.now();
        self.db
            .write(move |conn| {
                match sessions::get(conn, &id)? {
                    Some(s) if s.user_id == user_id && s.is_live(now) => {}
                    _ => return Err(AuthError::NotFound("session")),
                }
                sessions::revoke(conn, &id, now, "revoked_by_user")?;
                record(
                    conn,
                    now,
                    &meta,
                    "session.revoked",
                    Some(&user_id),
                    serde_json::json!({"session_id": id}),
                )
            })
            .await
    }
}

impl NativeBackend {
    /// Makes `org_id` (or none) the session's active org and rotates its
    /// refresh token; the caller must be a member.
    pub(super) async fn set_active_org_impl(
        &self,
        session: &SessionInfo,
        org_id: Option<String>,
    ) -> AuthResult<TokenPair> {
        let minter = self.minter();
        let (sid, uid) = (session.session_id.clone(), session.user_id.clone());
        let now = self.now();
        self.db
            .write(move |conn| -> AuthResult<TokenPair> {
                let mut row = sessions::get(conn, &sid)?
                    .filter(|s| s.is_live(now) && s.user_id == uid)
                    .ok_or(AuthError::Unauthenticated)?;
                let user = users::by_id(conn, &uid)?
                    .ok_or(AuthError::Unauthenticated)?
                    .user;
                let (org_id, role) = match org_id {
                    None => (None, None),
                    Some(key) => {
                        let org =
                            orgs::find(conn, &key)?.ok_or(AuthError::NotFound("organization"))?;
                        let member = orgs::member(conn, &org.id, &uid)?
                            .ok_or(AuthError::NotFound("organization"))?;
                        (Some(org.id), Some(member.role))
                    }
                };
                sessions::set_active_org(conn, &sid, org_id.as_deref())?;
                sessions::use_all_refresh(conn, &sid, now)?;
                sessions::touch(conn, &sid, now)?;
                row.active_org_id = org_id;
                minter.pair(conn, &user, &row, None, role, now)
            })
            .await
    }
}
