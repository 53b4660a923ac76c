//! Refresh: rotation with a grace window for retries, reuse detection, and
//! the session's current org re-read at each rotation.

use crate::auth::native::{NativeBackend, record};
use crate::auth::seal;
use crate::auth::secrets::refresh_key;
use crate::auth::{RequestMeta, TokenPair};
use crate::domain::User;
use crate::error::{AuthError, AuthResult};
use crate::storage::sessions::{self, SessionRow};
use crate::storage::{Conn, orgs, users};

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
    /// Rotates a refresh token. `client` is the OpenID Connect client that
    /// presents it (`None` for derp's own API): a token of another client's
    /// session, or of derp's own, is refused without touching it.
    pub(in crate::auth::native) async fn refresh_impl(
        &self,
        refresh_token: &str,
        client: Option<&str>,
        meta: &RequestMeta,
    ) -> AuthResult<TokenPair> {
        let client = client.map(str::to_string);
        let presented = refresh_token.to_string();
        let hash = refresh_key(refresh_token);
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
                // Writes run one at a time, so what this transaction read is
                // what the UPDATE below will find.
                let fresh = row.used_at.is_none();
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
                    match sessions::find_refresh(conn, &refresh_key(&child))? {
                        Some(c) if c.used_at.is_none() && now < c.expires_at => {}
                        _ => return Ok(Refreshed::Rejected),
                    }
                    sessions::touch_if_stale(conn, &session, now)?;
                    let (session, org_role) = current_org(&minter.org_roles, conn, session, &user.id)?;
                    return Ok(Refreshed::Mint(Box::new(Mint {
                        user,
                        session,
                        refresh: child,
                        org_role,
                        now,
                    })));
                }
                sessions::touch_if_stale(conn, &session, now)?;
                let (session, org_role) = current_org(&minter.org_roles, conn, session, &user.id)?;
                let refresh = minter.new_refresh(conn, &session, Some(row.id), now)?;
                let sealed = seal::seal(&presented, CHILD_INFO, &aad, &refresh)?;
                if !sessions::spend_refresh(conn, row.id, now_ms, &sealed)? {
                    // Cannot happen while writes are serialized; refused
                    // (and rolled back) rather than handing out two children.
                    return Err(AuthError::internal("a refresh token was spent twice"));
                }
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
