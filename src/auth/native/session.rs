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

use super::pipeline::{Proof, SignIn};
use super::{NativeBackend, record};
use crate::auth::jwt::{AccessClaims, Keyring};
use crate::auth::seal;
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
    /// Life of the access tokens of sessions minted for OpenID Connect
    /// clients.
    pub client_access_ttl: i64,
    pub session_ttl: i64,
    pub idle_ttl: i64,
    /// The configured org roles: a stored role no longer configured is
    /// claimed as `member`.
    pub org_roles: crate::domain::OrgRoles,
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
            client_id: None,
            scope: None,
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
        let refresh = self.new_refresh(conn, session, parent, now)?;
        self.with_refresh(user, session, refresh, org_role, now)
    }

    /// Stores a new refresh token for `session` (a child of `parent`) and
    /// returns it: the database half of [`Minter::pair`].
    fn new_refresh(
        &self,
        conn: &Conn,
        session: &SessionRow,
        parent: Option<i64>,
        now: i64,
    ) -> AuthResult<String> {
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
        Ok(refresh)
    }

    /// A new access token beside an existing refresh token.
    pub fn with_refresh(
        &self,
        user: &User,
        session: &SessionRow,
        refresh: String,
        org_role: Option<String>,
        now: i64,
    ) -> AuthResult<TokenPair> {
        let client = session.client_id.clone();
        let scope = session.scope.clone().filter(|_| client.is_some());
        let ttl = if client.is_some() {
            self.client_access_ttl
        } else {
            self.keys.access_ttl()
        };
        let exp = now + ttl;
        // A client's token (RFC 9068) names the client as its audience and
        // carries the address only when the `email` scope was granted.
        let email_granted = scope
            .as_deref()
            .is_none_or(|s| s.split(' ').any(|x| x == "email"));
        let claims = AccessClaims {
            sub: user.id.clone(),
            sid: session.id.clone(),
            session_id: session.id.clone(),
            iat: now,
            exp,
            nbf: None,
            jti: uuid::Uuid::new_v4().to_string(),
            iss: self.keys.issuer().to_string(),
            aud: match &client {
                Some(c) => Some(c.clone()),
                None => self.keys.audience().map(str::to_string),
            },
            email: if email_granted {
                user.email.clone()
            } else {
                String::new()
            },
            role: user.role.as_str().to_string(),
            org_id: org_role.as_ref().and(session.active_org_id.clone()),
            org_role,
            amr: session.amr.clone(),
            client_id: client,
            scope,
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

/// HKDF `info` for a child refresh token sealed under its parent's value.
const CHILD_INFO: &[u8] = b"derp refresh token child v1";

/// Binds a sealed child to its session and to the parent's row.
fn child_aad(session_id: &str, parent_id: i64) -> String {
    format!("{session_id}/{parent_id}")
}

/// Whether a token first used at `used_ms` may be presented again at
/// `now_ms`: strictly inside a window of `grace_ms` (none when 0). A clock
/// read a little before the first use (parallel requests) counts as 0 ms.
fn within_grace(used_ms: i64, now_ms: i64, grace_ms: i64) -> bool {
    (now_ms - used_ms).max(0) < grace_ms
}

/// The session's active org with the user's current role in it; an org the
/// user is no longer a member of, or one that now requires a second factor
/// the session was not signed in with, is cleared from the session.
fn current_org(
    roles: &crate::domain::OrgRoles,
    conn: &Conn,
    mut session: SessionRow,
    user_id: &str,
) -> AuthResult<(SessionRow, Option<String>)> {
    let Some(org_id) = session.active_org_id.clone() else {
        return Ok((session, None));
    };
    let member = match orgs::member(conn, &org_id, user_id)? {
        Some(m) if orgs::mfa_satisfied(conn, &org_id, &session.amr)? => Some(m),
        _ => None,
    };
    match member {
        Some(m) => Ok((session, Some(roles.effective(m.role).to_string()))),
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
    /// Rotated: the access token is signed from this after the commit.
    Mint(Box<Mint>),
    Rejected,
}

/// What a committed refresh hands to the signer.
struct Mint {
    user: User,
    session: SessionRow,
    refresh: String,
    org_role: Option<String>,
    now: i64,
}

impl NativeBackend {
    pub(super) fn minter(&self) -> Minter {
        Minter {
            keys: self.keys.clone(),
            client_access_ttl: self.client_access_ttl,
            session_ttl: self.cfg.session_expire_days as i64 * 86_400,
            idle_ttl: self.cfg.jwt.refresh_token_expire_days as i64 * 86_400,
            org_roles: self.org_roles.clone(),
        }
    }

    /// The sign-in pipeline with this backend's settings.
    pub(super) fn sign_in_pipeline(&self) -> SignIn {
        SignIn {
            minter: self.minter(),
            require_confirmed_email: self.cfg.enable_confirmation,
            require_second_factor: self.cfg.mfa.required,
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

    /// Rotates a refresh token. `client` is the OpenID Connect client that
    /// presents it (`None` for derp's own API): a token of another client's
    /// session, or of derp's own, is refused without touching it.
    pub(super) async fn refresh_impl(
        &self,
        refresh_token: &str,
        client: Option<&str>,
        meta: &RequestMeta,
    ) -> AuthResult<TokenPair> {
        let client = client.map(str::to_string);
        let presented = refresh_token.to_string();
        let hash = hash_token(refresh_token);
        let minter = self.minter();
        let grace_ms = i64::try_from(self.cfg.refresh_reuse_grace_seconds)
            .unwrap_or(i64::MAX / 1000)
            .saturating_mul(1000);
        let clock = self.clock.clone();
        let meta = meta.clone();
        let outcome = self
            .db
            .write(move |conn| -> AuthResult<Refreshed> {
                // Read under the write lock: transactions run one at a time,
                // so uses are ordered as their clock readings are.
                let now_ms = clock.unix_ms();
                let now = now_ms.div_euclid(1000);
                let Some(row) = sessions::find_refresh(conn, &hash)? else {
                    return Ok(Refreshed::Rejected);
                };
                let Some(session) = sessions::get(conn, &row.session_id)? else {
                    return Ok(Refreshed::Rejected);
                };
                if !session.is_live(now) || now >= row.expires_at || session.client_id != client
                {
                    return Ok(Refreshed::Rejected);
                }
                let fresh = sessions::use_refresh(conn, row.id, now_ms)?;
                if !fresh {
                    let used_ms = row
                        .used_at_ms
                        .or(row.used_at.map(|s| s.saturating_mul(1000)))
                        .unwrap_or(now_ms);
                    if !within_grace(used_ms, now_ms, grace_ms) {
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
                let aad = child_aad(&session.id, row.id);
                if !fresh {
                    // A retry within the grace window: the same child as the
                    // first use got, while it is still the live one. A token
                    // rotated without a child (an active-org change) or whose
                    // child has moved on has nothing to hand back; that is
                    // refused, but it is not reuse.
                    let child = row
                        .child_sealed
                        .as_deref()
                        .and_then(|t| seal::unseal::<String>(&presented, CHILD_INFO, &aad, t));
                    let Some(child) = child else {
                        return Ok(Refreshed::Rejected);
                    };
                    match sessions::find_refresh(conn, &hash_token(&child))? {
                        Some(c) if c.used_at.is_none() && now < c.expires_at => {}
                        _ => return Ok(Refreshed::Rejected),
                    }
                    sessions::touch(conn, &session.id, now)?;
                    let (session, org_role) = current_org(&minter.org_roles, conn, session, &user.id)?;
                    return Ok(Refreshed::Mint(Box::new(Mint {
                        user,
                        session,
                        refresh: child,
                        org_role,
                        now,
                    })));
                }
                sessions::touch(conn, &session.id, now)?;
                let (session, org_role) = current_org(&minter.org_roles, conn, session, &user.id)?;
                let refresh = minter.new_refresh(conn, &session, Some(row.id), now)?;
                let sealed = seal::seal(&presented, CHILD_INFO, &aad, &refresh)?;
                sessions::set_child_sealed(conn, row.id, &sealed)?;
                Ok(Refreshed::Mint(Box::new(Mint {
                    user,
                    session,
                    refresh,
                    org_role,
                    now,
                })))
            })
            .await?;
        match outcome {
            // Signed after the commit, off the write connection: writes run
            // one at a time, signatures in parallel.
            Refreshed::Mint(m) => self
                .minter()
                .with_refresh(&m.user, &m.session, m.refresh, m.org_role, m.now),
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

#[cfg(test)]
mod tests {
    use super::within_grace;

    #[test]
    fn the_grace_window_is_in_milliseconds_and_zero_means_none() {
        assert!(!within_grace(1_000, 1_000, 0), "0: not even the same ms");
        assert!(!within_grace(1_000, 1_002, 0));
        assert!(within_grace(1_000, 1_000, 1));
        assert!(!within_grace(1_000, 1_001, 1));
        assert!(within_grace(1_000, 10_999, 10_000));
        assert!(!within_grace(1_000, 11_000, 10_000), "the end is outside");
        assert!(within_grace(1_000, 990, 10_000), "read just before: 0 ms");
        assert!(!within_grace(1_000, 990, 0));
    }
}
