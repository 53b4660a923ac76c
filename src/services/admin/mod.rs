//! What derp's own admins do: find, create, change and delete users, look at
//! sessions, the audit log and the mail outbox. Every change is one
//! transaction with its audit event.
//!
//! With an upstream user store (Cognito, Clerk) the users are read and
//! changed through its [`UserDirectory`] instead (see `directory.rs`);
//! orgs, the audit log and derp's own tables stay local.

mod console;
mod directory;
mod setup;
mod user_accounts;

pub use console::{
    AuditLine, ConfigSection, DayCount, Named, OrgListItem, PER_PAGE, Paged, config_summary,
    readable_fields, thousands,
};
pub use setup::AdminCreated;

use crate::auth::directory::UserDirectory;
use crate::auth::password::Hasher;
use crate::clock::{Clock, from_unix};
use crate::domain::{Email, PasswordPolicy, Role, User};
use crate::error::{AuthError, AuthResult};
use crate::mail::queue::MailQueue;
use crate::services::orgs::{Actor, OrgView, OrgWithRole};
use crate::services::paging;
use crate::storage::audit::{self, AuditEvent, AuditFilter, AuditRow};
use crate::storage::users::{self};
use crate::storage::{Conn, Db, orgs, outbox, sessions};
use serde::Serialize;
use std::sync::Arc;
use time::OffsetDateTime;

pub struct AdminService {
    pub db: Db,
    pub clock: Arc<dyn Clock>,
    pub hasher: Hasher,
    pub policy: PasswordPolicy,
    /// The upstream user store; `None` for native users (SQLite).
    pub directory: Option<Arc<dyn UserDirectory>>,
    /// Notices to users (their second factors were removed); `None` where
    /// derp sends no mail (the command line).
    pub mail: Option<MailQueue>,
    /// derp's `public_url`, for links in those notices.
    pub public_url: String,
}

/// A user's second factor as an admin sees it (no secret).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct AdminFactor {
    pub id: String,
    /// `totp`
    #[serde(rename = "type")]
    #[schema(rename = "type")]
    pub kind: String,
    pub name: String,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    pub last_used_at: Option<OffsetDateTime>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct UserPage {
    pub users: Vec<User>,
    pub next_cursor: Option<String>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct AdminSession {
    pub id: String,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub last_used_at: OffsetDateTime,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Identity {
    pub provider: String,
    pub subject: String,
    pub email: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct AuditEventView {
    pub id: i64,
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    pub action: String,
    pub actor_id: Option<String>,
    pub user_id: Option<String>,
    pub org_id: Option<String>,
    pub target: Option<String>,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub detail: serde_json::Value,
}

impl From<AuditRow> for AuditEventView {
    fn from(r: AuditRow) -> Self {
        Self {
            id: r.id,
            at: from_unix(r.at),
            action: r.action,
            actor_id: r.actor_id,
            user_id: r.user_id,
            org_id: r.org_id,
            target: r.target,
            ip: r.ip,
            user_agent: r.user_agent,
            detail: serde_json::from_str(&r.detail).unwrap_or_default(),
        }
    }
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct UserDetail {
    #[serde(flatten)]
    pub user: User,
    pub sessions: Vec<AdminSession>,
    pub orgs: Vec<OrgWithRole>,
    pub identities: Vec<Identity>,
    /// Active second factors (native users; empty upstream).
    pub factors: Vec<AdminFactor>,
    pub recent_events: Vec<AuditEventView>,
}

#[derive(Debug, Clone)]
pub struct NewUserRequest {
    pub email: Email,
    pub password: Option<String>,
    pub role: Option<Role>,
    pub email_confirmed: bool,
}

#[derive(Debug, Clone, Default)]
pub struct UserChange {
    pub role: Option<Role>,
    pub disabled: Option<bool>,
    pub email_confirmed: Option<bool>,
    pub data: Option<serde_json::Value>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Overview {
    pub users: i64,
    pub active_sessions: i64,
    pub sign_ins_today: i64,
    pub sign_in_failures_today: i64,
    pub orgs: i64,
    /// Native users with at least one active second factor.
    pub users_with_mfa: i64,
    pub outbox: outbox::OutboxStats,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct AuditPage {
    pub events: Vec<AuditEventView>,
    pub next_cursor: Option<String>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct OrgPage {
    pub orgs: Vec<OrgView>,
    pub next_cursor: Option<String>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct OutboxMessage {
    pub id: i64,
    pub kind: String,
    pub to: String,
    pub subject: String,
    pub status: String,
    pub attempts: i64,
    pub last_error: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    pub sent_at: Option<OffsetDateTime>,
}

pub(super) fn record(
    conn: &Conn,
    now: i64,
    actor: &Actor,
    action: &str,
    user_id: Option<&str>,
    org_id: Option<&str>,
    detail: serde_json::Value,
) -> AuthResult<()> {
    audit::record(
        conn,
        now,
        &AuditEvent {
            action,
            actor_id: Some(&actor.user_id),
            user_id,
            org_id,
            target: user_id.or(org_id),
            ip: actor.ip.as_deref(),
            user_agent: actor.user_agent.as_deref(),
            detail,
        },
    )?;
    Ok(())
}

fn user_or_404(conn: &Conn, id: &str) -> AuthResult<User> {
    Ok(users::by_id(conn, id)?
        .ok_or(AuthError::NotFound("user"))?
        .user)
}

impl AdminService {
    fn now(&self) -> i64 {
        self.clock.unix()
    }

    /// The password policy, then argon2 on the blocking pool.
    async fn checked_hash(&self, password: &str) -> AuthResult<String> {
        let problems = self.policy.check(password);
        if !problems.is_empty() {
            return Err(AuthError::WeakPassword(
                problems.into_iter().map(|p| p.code()).collect(),
            ));
        }
        self.hasher.hash(password.to_string()).await
    }

    /// The upstream user store's name (`cognito`, `clerk`), or `None` when
    /// users are native.
    pub fn upstream(&self) -> Option<&'static str> {
        self.directory.as_ref().map(|d| d.name())
    }

    /// Whether admins can create users here.
    pub fn can_create_users(&self) -> bool {
        self.directory
            .as_ref()
            .is_none_or(|d| d.user_creation().is_some())
    }

    pub async fn overview(&self) -> AuthResult<Overview> {
        let now = self.now();
        let midnight = now - now.rem_euclid(86_400);
        // Upstream users are counted upstream; a store that cannot say (or
        // fails) leaves derp's own count, with a warning in the log.
        let upstream_users = match &self.directory {
            None => None,
            Some(dir) => match dir.count().await {
                Ok(n) => n,
                Err(e) => {
                    tracing::warn!(error = %e, backend = dir.name(), "counting upstream users failed");
                    None
                }
            },
        };
        self.db
            .read(move |conn| -> AuthResult<Overview> {
                Ok(Overview {
                    users: match upstream_users {
                        Some(n) => n,
                        None => users::count(conn)?,
                    },
                    active_sessions: sessions::count_live(conn, now)?,
                    sign_ins_today: audit::count_since(conn, "sign_in", midnight)?,
                    sign_in_failures_today: audit::count_since(conn, "sign_in.failure", midnight)?,
                    orgs: orgs::count(conn)?,
                    users_with_mfa: crate::storage::mfa::count_users_with_factor(conn)?,
                    outbox: outbox::stats(conn)?,
                })
            })
            .await
    }

    /// Records that an admin had a mail sent (the mail itself goes through the
    /// backend's normal flow) and returns the user's email.
    pub async fn note_mail(
        &self,
        actor: Actor,
        id: &str,
        action: &'static str,
    ) -> AuthResult<User> {
        if let Some(dir) = &self.directory {
            return self
                .note_mail_upstream(dir.as_ref(), actor, id, action)
                .await;
        }
        let id = id.to_string();
        let now = self.now();
        self.db
            .write(move |conn| -> AuthResult<User> {
                let user = user_or_404(conn, &id)?;
                record(
                    conn,
                    now,
                    &actor,
                    action,
                    Some(&id),
                    None,
                    serde_json::Value::Null,
                )?;
                Ok(user)
            })
            .await
    }

    /// Records an admin action that has no table of its own.
    pub async fn note(
        &self,
        actor: Actor,
        action: &'static str,
        user_id: Option<String>,
        org_id: Option<String>,
        detail: serde_json::Value,
    ) -> AuthResult<()> {
        let now = self.now();
        self.db
            .write(move |conn| {
                record(
                    conn,
                    now,
                    &actor,
                    action,
                    user_id.as_deref(),
                    org_id.as_deref(),
                    detail,
                )
            })
            .await
    }

    pub async fn audit(
        &self,
        filter: AuditFilter,
        cursor: Option<&str>,
        limit: i64,
    ) -> AuthResult<AuditPage> {
        let before = paging::decode_number(cursor)?;
        let rows = self
            .db
            .read(move |conn| audit::list(conn, &filter, before, limit))
            .await?;
        let next_cursor = paging::next_cursor(&rows, limit, |r| r.id.to_string());
        Ok(AuditPage {
            events: rows.into_iter().map(Into::into).collect(),
            next_cursor,
        })
    }

    pub async fn list_orgs(
        &self,
        q: &str,
        cursor: Option<&str>,
        limit: i64,
    ) -> AuthResult<OrgPage> {
        let after = paging::decode(cursor)?;
        let q = q.trim().to_lowercase();
        let rows = self
            .db
            .read(move |conn| orgs::search(conn, &q, &after, limit))
            .await?;
        let next_cursor = paging::next_cursor(&rows, limit, |r| r.id.clone());
        Ok(OrgPage {
            orgs: rows.into_iter().map(Into::into).collect(),
            next_cursor,
        })
    }

    pub async fn outbox(
        &self,
        limit: i64,
    ) -> AuthResult<(outbox::OutboxStats, Vec<OutboxMessage>)> {
        self.db
            .read(move |conn| -> AuthResult<_> {
                let stats = outbox::stats(conn)?;
                let rows = outbox::recent(conn, limit)?
                    .into_iter()
                    .map(|r| OutboxMessage {
                        id: r.id,
                        kind: r.kind,
                        to: r.to_addr,
                        subject: r.subject,
                        status: r.status,
                        attempts: r.attempts,
                        last_error: r.last_error,
                        created_at: from_unix(r.created_at),
                        sent_at: r.sent_at.map(from_unix),
                    })
                    .collect();
                Ok((stats, rows))
            })
            .await
    }

    /// The user for `owner_id`, for creating an org on their behalf.
    pub async fn owner(&self, owner_id: &str) -> AuthResult<(String, String)> {
        if let Some(dir) = &self.directory {
            return dir
                .get(owner_id)
                .await
                .map(|u| (u.id, u.email))
                .map_err(|e| match e {
                    AuthError::NotFound(_) => AuthError::field("owner_id", "is not a user"),
                    other => other,
                });
        }
        let id = owner_id.to_string();
        self.db
            .read(move |conn| -> AuthResult<_> {
                let u = users::by_id(conn, &id)?
                    .ok_or_else(|| AuthError::field("owner_id", "is not a user"))?
                    .user;
                Ok((u.id, u.email))
            })
            .await
    }
}
