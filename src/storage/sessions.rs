//! Login sessions and their refresh tokens. The code is under 380 lines;
//! the rest are its tests.

use super::ExecCached as _;
use super::{Conn, StorageResult, optional};
use crate::storage::params;
use std::cell::Cell;
use std::sync::atomic::{AtomicU64, Ordering};

/// Moves on every change that `GET /session` depends on (revocation, the
/// active org, a deleted user or org), once when the change is made and once
/// more after its transaction ends. A reader that notes the epoch before it
/// reads a session may trust what it read for as long as the epoch stays
/// the same (see the native backend's session cache).
static EPOCH: AtomicU64 = AtomicU64::new(0);

thread_local! {
    /// A change was made in the transaction running on this thread.
    static CHANGED: Cell<bool> = const { Cell::new(false) };
}

pub fn epoch() -> u64 {
    EPOCH.load(Ordering::SeqCst)
}

/// Called by every storage function that changes what `GET /session` reads
/// (on PostgreSQL it also tells the other instances, see
/// [`super::watch`]).
pub(super) fn changed(conn: &Conn) -> StorageResult<()> {
    EPOCH.fetch_add(1, Ordering::SeqCst);
    CHANGED.with(|c| c.set(true));
    super::watch::notify(conn, super::watch::SESSIONS)
}

/// Another instance committed such a change (PostgreSQL).
pub(super) fn changed_elsewhere() {
    EPOCH.fetch_add(1, Ordering::SeqCst);
}

/// Called by [`super::Db`] after each write transaction commits or rolls
/// back: a change made in it moves the epoch again, now that other
/// connections can see it.
pub(super) fn settle() {
    if CHANGED.with(|c| c.replace(false)) {
        EPOCH.fetch_add(1, Ordering::SeqCst);
    }
}

#[derive(Debug, Clone)]
pub struct SessionRow {
    pub id: String,
    pub user_id: String,
    pub created_at: i64,
    pub last_used_at: i64,
    pub expires_at: i64,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub active_org_id: Option<String>,
    pub revoked_at: Option<i64>,
    /// RFC 8176 methods the sign-in behind this session used.
    pub amr: Vec<String>,
    /// The OpenID Connect client the session was minted for, and the scopes
    /// granted to it (none for derp's own sessions).
    pub client_id: Option<String>,
    pub scope: Option<String>,
}

impl SessionRow {
    pub fn is_live(&self, now: i64) -> bool {
        self.revoked_at.is_none() && now < self.expires_at
    }
}

const COLUMNS: &str = "id, user_id, created_at, last_used_at, expires_at, ip, user_agent, active_org_id, revoked_at, amr, client_id, scope";

fn from_row(r: &crate::storage::Row<'_>) -> crate::storage::StorageResult<SessionRow> {
    Ok(SessionRow {
        id: r.get(0)?,
        user_id: r.get(1)?,
        created_at: r.get(2)?,
        last_used_at: r.get(3)?,
        expires_at: r.get(4)?,
        ip: r.get(5)?,
        user_agent: r.get(6)?,
        active_org_id: r.get(7)?,
        revoked_at: r.get(8)?,
        amr: serde_json::from_str(&r.get::<_, String>(9)?).unwrap_or_default(),
        client_id: r.get(10)?,
        scope: r.get(11)?,
    })
}

pub fn insert(conn: &Conn, s: &SessionRow) -> StorageResult<()> {
    conn.exec(
        "INSERT INTO sessions (id, user_id, created_at, last_used_at, expires_at, ip, user_agent, active_org_id, amr, client_id, scope)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
        params![
            s.id,
            s.user_id,
            s.created_at,
            s.last_used_at,
            s.expires_at,
            s.ip,
            s.user_agent,
            s.active_org_id,
            serde_json::to_string(&s.amr).unwrap_or_else(|_| "[]".into()),
            s.client_id,
            s.scope
        ],
    )?;
    super::webhooks::session_event(conn, "session.created", s, None, s.created_at)
}

pub(crate) fn get_sql() -> String {
    format!("SELECT {COLUMNS} FROM sessions WHERE id = ?1")
}

pub fn get(conn: &Conn, id: &str) -> StorageResult<Option<SessionRow>> {
    let mut stmt = conn.prepare_cached(&get_sql())?;
    optional(stmt.query_row([id], from_row))
}

/// Live sessions of a user, newest first.
pub fn list_live(conn: &Conn, user_id: &str, now: i64) -> StorageResult<Vec<SessionRow>> {
    let sql = format!(
        "SELECT {COLUMNS} FROM sessions
         WHERE user_id = ?1 AND revoked_at IS NULL AND expires_at > ?2
         ORDER BY created_at DESC, id DESC"
    );
    let mut stmt = conn.prepare(&sql)?;
    let rows = stmt.query_map(params![user_id, now], from_row)?;
    rows.collect::<Result<_, _>>()
}

/// How stale `last_used_at` may grow before a use writes it again: a
/// refresh writes it at most once a minute, not on every rotation.
pub const TOUCH_EVERY_SECONDS: i64 = 60;

/// Writes `last_used_at` when it is [`TOUCH_EVERY_SECONDS`] old or more.
pub fn touch_if_stale(conn: &Conn, session: &SessionRow, now: i64) -> StorageResult<()> {
    if now - session.last_used_at >= TOUCH_EVERY_SECONDS {
        touch(conn, &session.id, now)?;
    }
    Ok(())
}

pub fn touch(conn: &Conn, id: &str, now: i64) -> StorageResult<()> {
    conn.exec(
        "UPDATE sessions SET last_used_at = ?2 WHERE id = ?1",
        params![id, now],
    )?;
    Ok(())
}

pub fn set_active_org(conn: &Conn, id: &str, org_id: Option<&str>) -> StorageResult<()> {
    changed(conn)?;
    conn.exec(
        "UPDATE sessions SET active_org_id = ?2 WHERE id = ?1",
        params![id, org_id],
    )?;
    Ok(())
}

/// Replaces the methods the session was proven with (a second factor
/// enrolled from it adds `otp` and `mfa`).
pub fn set_amr(conn: &Conn, id: &str, amr: &[String]) -> StorageResult<()> {
    changed(conn)?;
    conn.exec(
        "UPDATE sessions SET amr = ?2 WHERE id = ?1",
        params![
            id,
            serde_json::to_string(amr).unwrap_or_else(|_| "[]".into())
        ],
    )?;
    Ok(())
}

/// Binds a session to the OpenID Connect client it was minted for.
pub fn set_client(conn: &Conn, id: &str, client_id: &str, scope: &str) -> StorageResult<()> {
    changed(conn)?;
    conn.exec(
        "UPDATE sessions SET client_id = ?2, scope = ?3 WHERE id = ?1",
        params![id, client_id, scope],
    )?;
    Ok(())
}

/// Drops `org_id` as the active org of the user's sessions.
pub fn clear_active_org_for_user(conn: &Conn, user_id: &str, org_id: &str) -> StorageResult<usize> {
    changed(conn)?;
    conn.exec(
        "UPDATE sessions SET active_org_id = NULL WHERE user_id = ?1 AND active_org_id = ?2",
        params![user_id, org_id],
    )
}

/// Marks every unused refresh token of a session used (rotation without
/// the token in hand, as when the active org changes).
pub fn use_all_refresh(conn: &Conn, session_id: &str, now: i64) -> StorageResult<usize> {
    conn.exec(
        "UPDATE refresh_tokens SET used_at = ?2, used_at_ms = CAST(?2 AS BIGINT) * 1000
         WHERE session_id = ?1 AND used_at IS NULL",
        params![session_id, now],
    )
}

/// Revokes one session; `false` when it was not live.
pub fn revoke(conn: &Conn, id: &str, now: i64, reason: &str) -> StorageResult<bool> {
    changed(conn)?;
    let n = conn.exec(
        "UPDATE sessions SET revoked_at = ?2, revoked_reason = ?3 WHERE id = ?1 AND revoked_at IS NULL",
        params![id, now, reason],
    )?;
    if n == 1
        && let Some(s) = get(conn, id)?
        && s.expires_at > now
    {
        super::webhooks::session_event(conn, "session.revoked", &s, Some(reason), now)?;
    }
    Ok(n == 1)
}

/// Revokes every live session `user_id` has given `client_id` (a consent
/// withdrawn); returns how many.
pub fn revoke_for_client(
    conn: &Conn,
    user_id: &str,
    client_id: &str,
    now: i64,
    reason: &str,
) -> StorageResult<usize> {
    revoke_where(
        conn,
        "user_id = ?3 AND client_id = ?4",
        params![now, reason, user_id, client_id],
        now,
        reason,
    )
}

/// Revokes every live session minted for `client_id` (a client deleted).
pub fn revoke_all_for_client(
    conn: &Conn,
    client_id: &str,
    now: i64,
    reason: &str,
) -> StorageResult<usize> {
    revoke_where(
        conn,
        "client_id = ?3",
        params![now, reason, client_id],
        now,
        reason,
    )
}

/// Revokes the live sessions matching `filter` (its parameters from `?3`;
/// `?1` is the time, `?2` the reason), with a `session.revoked` event for
/// each one that had not expired; returns how many.
fn revoke_where(
    conn: &Conn,
    filter: &str,
    params: &[&dyn crate::storage::sql::Param],
    now: i64,
    reason: &str,
) -> StorageResult<usize> {
    changed(conn)?;
    let sql = format!(
        "UPDATE sessions SET revoked_at = ?1, revoked_reason = ?2
         WHERE {filter} AND revoked_at IS NULL
         RETURNING {COLUMNS}"
    );
    let revoked: Vec<SessionRow> = conn
        .prepare(&sql)?
        .query_map(params, from_row)?
        .collect::<Result<_, _>>()?;
    for s in revoked.iter().filter(|s| s.expires_at > now) {
        super::webhooks::session_event(conn, "session.revoked", s, Some(reason), now)?;
    }
    Ok(revoked.len())
}

/// Revokes every live session of a user except `keep`; returns how many.
pub fn revoke_all_for_user(
    conn: &Conn,
    user_id: &str,
    keep: Option<&str>,
    now: i64,
    reason: &str,
) -> StorageResult<usize> {
    revoke_where(
        conn,
        "user_id = ?3 AND id IS DISTINCT FROM ?4",
        params![now, reason, user_id, keep],
        now,
        reason,
    )
}

/// A refresh token row, found by the hash of its value.
#[derive(Debug, Clone)]
pub struct RefreshRow {
    pub id: i64,
    pub session_id: String,
    pub expires_at: i64,
    pub used_at: Option<i64>,
    /// When it was used, in milliseconds (absent for rows used before 0008).
    pub used_at_ms: Option<i64>,
    /// The token it was rotated into, sealed under its own value.
    pub child_sealed: Option<String>,
}

/// Inserts a refresh token; returns its row id.
pub fn insert_refresh(
    conn: &Conn,
    session_id: &str,
    token_hash: &str,
    parent_id: Option<i64>,
    now: i64,
    expires_at: i64,
) -> StorageResult<i64> {
    conn.query_row(
        "INSERT INTO refresh_tokens (session_id, token_hash, parent_id, created_at, expires_at)
         VALUES (?1, ?2, ?3, ?4, ?5) RETURNING id",
        params![session_id, token_hash, parent_id, now, expires_at],
        |r| r.get(0),
    )
}

pub fn find_refresh(conn: &Conn, token_hash: &str) -> StorageResult<Option<RefreshRow>> {
    let mut stmt = conn.prepare_cached(
        "SELECT id, session_id, expires_at, used_at, used_at_ms, child_sealed
         FROM refresh_tokens WHERE token_hash = ?1",
    )?;
    optional(stmt.query_row([token_hash], |r| {
        Ok(RefreshRow {
            id: r.get(0)?,
            session_id: r.get(1)?,
            expires_at: r.get(2)?,
            used_at: r.get(3)?,
            used_at_ms: r.get(4)?,
            child_sealed: r.get(5)?,
        })
    }))
}

/// Marks a refresh token used at `now_ms` and keeps on its row the token it
/// was rotated into (sealed), in one statement; `false` when it was used
/// already.
pub fn spend_refresh(conn: &Conn, id: i64, now_ms: i64, child_sealed: &str) -> StorageResult<bool> {
    let n = conn.exec(
        "UPDATE refresh_tokens SET used_at = ?2, used_at_ms = ?3, child_sealed = ?4
         WHERE id = ?1 AND used_at IS NULL",
        params![id, now_ms.div_euclid(1000), now_ms, child_sealed],
    )?;
    Ok(n == 1)
}

/// Whether the refresh token with row id `id` is still unused.
pub fn refresh_unused(conn: &Conn, id: i64) -> StorageResult<bool> {
    Ok(optional(conn.query_row(
        "SELECT used_at IS NULL FROM refresh_tokens WHERE id = ?1",
        [id],
        |r| r.get::<_, bool>(0),
    ))?
    .unwrap_or(false))
}

/// How many refresh tokens of a session are unused (live branches).
pub fn count_unused_refresh(conn: &Conn, session_id: &str) -> StorageResult<i64> {
    conn.query_row(
        "SELECT COUNT(*) FROM refresh_tokens WHERE session_id = ?1 AND used_at IS NULL",
        [session_id],
        |r| r.get(0),
    )
}

pub fn count_live(conn: &Conn, now: i64) -> StorageResult<i64> {
    conn.query_row(
        "SELECT COUNT(*) FROM sessions WHERE revoked_at IS NULL AND expires_at > ?1",
        [now],
        |r| r.get(0),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Role;
    use crate::storage::users;

    fn setup() -> Conn {
        let c = Conn::open_in_memory().unwrap();
        crate::storage::migrations::apply(&c).unwrap();
        let data = serde_json::json!({});
        users::insert(
            &c,
            &users::NewUser {
                id: "u",
                email: "u@example.com",
                password_hash: None,
                email_confirmed_at: None,
                role: Role::Default,
                data: &data,
                now: 0,
            },
        )
        .unwrap();
        c
    }

    fn session(id: &str) -> SessionRow {
        SessionRow {
            id: id.into(),
            user_id: "u".into(),
            created_at: 1,
            last_used_at: 1,
            expires_at: 100,
            ip: None,
            user_agent: None,
            active_org_id: None,
            revoked_at: None,
            amr: vec!["pwd".into()],
            client_id: None,
            scope: None,
        }
    }

    #[test]
    fn refresh_token_is_used_once() {
        let c = setup();
        insert(&c, &session("s")).unwrap();
        insert_refresh(&c, "s", "h1", None, 1, 50).unwrap();
        let row = find_refresh(&c, "h1").unwrap().unwrap();
        assert!(spend_refresh(&c, row.id, 2_500, "child-1").unwrap());
        assert!(!spend_refresh(&c, row.id, 3_000, "child-2").unwrap());
        let row = find_refresh(&c, "h1").unwrap().unwrap();
        assert_eq!((row.used_at, row.used_at_ms), (Some(2), Some(2_500)));
        assert_eq!(
            row.child_sealed.as_deref(),
            Some("child-1"),
            "the first spend's child stays"
        );
        assert_eq!(count_unused_refresh(&c, "s").unwrap(), 0);
    }

    #[test]
    fn a_use_writes_last_used_at_at_most_once_a_minute() {
        let c = setup();
        insert(&c, &session("s")).unwrap();
        let last_used = |c: &Conn| get(c, "s").unwrap().unwrap().last_used_at;
        let row = get(&c, "s").unwrap().unwrap();
        touch_if_stale(&c, &row, 1 + TOUCH_EVERY_SECONDS - 1).unwrap();
        assert_eq!(last_used(&c), 1, "59 s old: left as it is");
        touch_if_stale(&c, &row, 1 + TOUCH_EVERY_SECONDS).unwrap();
        assert_eq!(last_used(&c), 1 + TOUCH_EVERY_SECONDS, "60 s old: written");
    }

    #[test]
    fn revoke_all_keeps_the_named_one() {
        let c = setup();
        for id in ["a", "b", "c"] {
            insert(&c, &session(id)).unwrap();
        }
        assert_eq!(
            revoke_all_for_user(&c, "u", Some("b"), 5, "test").unwrap(),
            2
        );
        let live: Vec<_> = list_live(&c, "u", 5)
            .unwrap()
            .into_iter()
            .map(|s| s.id)
            .collect();
        assert_eq!(live, vec!["b"]);
        assert!(
            list_live(&c, "u", 100).unwrap().is_empty(),
            "expired at 100"
        );
    }
}
