//! Sessions and tokens: creation at sign-in, refresh with rotation, reuse
//! detection and grace window, sign-out, and bearer verification.
//!
//! A session has at most one live refresh token. Using one marks it used (in
//! milliseconds) and stores on its row the token it was rotated into, sealed
//! under a key derived from the used token's own value. A retry presenting
//! the used token within `refresh_reuse_grace_seconds` unseals and gets that
//! same child back with a fresh access token, so no second branch is ever
//! minted; past the window (or at once when it is 0) it is reuse, and the
//! session is revoked.
//!
//! In parts: `mint` (the tokens of a new or rotated session), `refresh`
//! (rotation, its grace window and reuse detection); sign-out, bearer
//! verification, the session list and the active org live here.

mod mint;
mod refresh;

pub(super) use mint::Minter;

use crate::auth::native::{NativeBackend, record};
use crate::auth::{RequestMeta, SessionInfo, SessionView, TokenPair};
use crate::clock::from_unix;
use crate::error::{AuthError, AuthResult};
use crate::storage::sessions;
use crate::storage::{orgs, users};

impl NativeBackend {
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
            .verify(access_token, now)
            .map_err(|_| AuthError::Unauthenticated)?;
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
                        if !orgs::mfa_satisfied(conn, &org.id, &row.amr)? {
                            return Err(AuthError::MfaRequired);
                        }
                        (
                            Some(org.id),
                            Some(minter.org_roles.effective(member.role).to_string()),
                        )
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
