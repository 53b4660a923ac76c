//! Sign-in lockouts in the admin UI and API: which addresses are locked,
//! and clearing a lock (recorded in the audit log as `admin.lockout.cleared`).

use crate::clock::from_unix;
use crate::domain::Email;
use crate::error::{AuthError, AuthResult};
use crate::services::admin::AdminService;
use crate::services::orgs::Actor;
use crate::storage::audit::{self, AuditEvent};
use crate::storage::lockouts::{self, Lockout};
use crate::storage::users;
use serde::Serialize;
use time::OffsetDateTime;

/// A lock as the admin sees it: one source's, or the address's for every
/// source.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct LockoutView {
    pub email: String,
    /// The source locked out (an IPv4 address or an IPv6 /64), or null
    /// when the per-address brake locks every source.
    pub source: Option<String>,
    /// The account with this address, when there is one.
    pub user_id: Option<String>,
    pub failures: i64,
    #[serde(with = "time::serde::rfc3339")]
    pub first_failure_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub last_failure_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    pub locked_until: Option<OffsetDateTime>,
    /// Seconds until the lock ends (0 when not locked).
    pub retry_after: i64,
}

fn view(l: Lockout, user_id: Option<String>, now: i64) -> LockoutView {
    LockoutView {
        retry_after: l.remaining(now).unwrap_or(0),
        source: (!l.is_address_wide()).then(|| l.source.clone()),
        email: l.email,
        user_id,
        failures: l.failures,
        first_failure_at: from_unix(l.first_failure_at),
        last_failure_at: from_unix(l.last_failure_at),
        locked_until: l.locked_until.map(from_unix),
    }
}

impl AdminService {
    /// The locks in force now, the latest first (at most 500).
    pub async fn lockouts(&self) -> AuthResult<Vec<LockoutView>> {
        let now = self.clock.unix();
        self.db
            .read(move |conn| -> AuthResult<Vec<LockoutView>> {
                lockouts::locked(conn, now, 500)?
                    .into_iter()
                    .map(|l| {
                        let id = users::by_email(conn, &l.email)?.map(|r| r.user.id);
                        Ok(view(l, id, now))
                    })
                    .collect()
            })
            .await
    }

    /// How many addresses are locked now.
    pub async fn locked_count(&self) -> AuthResult<i64> {
        let now = self.clock.unix();
        self.db
            .read(move |conn| -> AuthResult<i64> { Ok(lockouts::count_locked(conn, now)?) })
            .await
    }

    /// The longest lock of one address in force now (from any source).
    pub async fn lockout_of(&self, email: &str) -> AuthResult<Option<LockoutView>> {
        let now = self.clock.unix();
        let email = email.to_string();
        self.db
            .read(move |conn| -> AuthResult<Option<LockoutView>> {
                Ok(lockouts::of_address(conn, &email)?
                    .into_iter()
                    .filter(|l| l.remaining(now).is_some())
                    .max_by_key(|l| l.remaining(now))
                    .map(|l| view(l, None, now)))
            })
            .await
    }

    /// Clears the locks and failure counts of `email` from every source;
    /// 404 when it has none.
    pub async fn clear_lockout(&self, actor: Actor, email: &str) -> AuthResult<()> {
        let email = Email::parse(email).map_err(|why| AuthError::field("email", why))?;
        let now = self.clock.unix();
        self.db
            .write(move |conn| -> AuthResult<()> {
                let rows = lockouts::of_address(conn, email.as_str())?;
                if rows.is_empty() {
                    return Err(AuthError::NotFound("lockout"));
                }
                lockouts::clear(conn, email.as_str())?;
                let user_id = users::by_email(conn, email.as_str())?.map(|r| r.user.id);
                audit::record(
                    conn,
                    now,
                    &AuditEvent {
                        action: "admin.lockout.cleared",
                        actor_id: Some(&actor.user_id),
                        user_id: user_id.as_deref(),
                        target: Some(user_id.as_deref().unwrap_or(email.as_str())),
                        ip: actor.ip.as_deref(),
                        user_agent: actor.user_agent.as_deref(),
                        detail: serde_json::json!({
                            "email": email.as_str(),
                            "failures": rows.iter().map(|l| l.failures).max().unwrap_or(0),
                            "was_locked": lockouts::remaining(&rows, now).is_some(),
                        }),
                        ..Default::default()
                    },
                )?;
                Ok(())
            })
            .await
    }
}
