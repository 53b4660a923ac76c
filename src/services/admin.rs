//! What derp's own admins do: find, create, change and delete users, look at
//! sessions, the audit log and the mail outbox. Every change is one
//! transaction with its audit event.
//!
//! With an upstream user store (Cognito, Clerk) the users are read and
//! changed through its [`UserDirectory`] instead (see `admin_directory.rs`);
//! orgs, the audit log and derp's own tables stay local.

use crate::auth::directory::UserDirectory;
use crate::auth::password::Hasher;
use crate::clock::{Clock, from_unix};
use crate::domain::{Email, PasswordPolicy, Purpose, Role, User};
use crate::error::{AuthError, AuthResult};
use crate::services::orgs::{Actor, OrgView, OrgWithRole};
use crate::services::paging;
use crate::storage::audit::{self, AuditEvent, AuditFilter, AuditRow};
use crate::storage::users::{self, NewUser};
use crate::storage::{Conn, Db, StorageError, orgs, outbox, sessions, tokens};
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
}

#[derive(Debug, Clone, Serialize)]
pub struct UserPage {
    pub users: Vec<User>,
    pub next_cursor: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct AdminSession {
    pub id: String,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub last_used_at: OffsetDateTime,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Identity {
    pub provider: String,
    pub subject: String,
    pub email: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

#[derive(Debug, Clone, Serialize)]
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

#[derive(Debug, Clone, Serialize)]
pub struct UserDetail {
    #[serde(flatten)]
    pub user: User,
    pub sessions: Vec<AdminSession>,
    pub orgs: Vec<OrgWithRole>,
    pub identities: Vec<Identity>,
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

#[derive(Debug, Clone, Serialize)]
pub struct Overview {
    pub users: i64,
    pub active_sessions: i64,
    pub sign_ins_today: i64,
    pub sign_in_failures_today: i64,
    pub orgs: i64,
    pub outbox: outbox::OutboxStats,
}

#[derive(Debug, Clone, Serialize)]
pub struct AuditPage {
    pub events: Vec<AuditEventView>,
    pub next_cursor: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct OrgPage {
    pub orgs: Vec<OrgView>,
    pub next_cursor: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
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
        self.directory.as_ref().is_none_or(|d| d.can_create())
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
                    outbox: outbox::stats(conn)?,
                })
            })
            .await
    }

    pub async fn list_users(
        &self,
        q: &str,
        cursor: Option<&str>,
        limit: i64,
    ) -> AuthResult<UserPage> {
        if let Some(dir) = &self.directory {
            return self.list_upstream(dir.as_ref(), q, cursor, limit).await;
        }
        let after = paging::decode(cursor)?;
        let q = q.trim().to_lowercase();
        let rows = self
            .db
            .read(move |conn| users::search(conn, &q, &after, limit))
            .await?;
        let next_cursor = paging::next_cursor(&rows, limit, |r| r.user.id.clone());
        Ok(UserPage {
            users: rows.into_iter().map(|r| r.user).collect(),
            next_cursor,
        })
    }

    pub async fn get_user(&self, id: &str) -> AuthResult<UserDetail> {
        if let Some(dir) = &self.directory {
            return self.get_upstream(dir.as_ref(), id).await;
        }
        let id = id.to_string();
        let now = self.now();
        self.db
            .read(move |conn| -> AuthResult<UserDetail> {
                let user = user_or_404(conn, &id)?;
                let sessions = sessions::list_live(conn, &id, now)?
                    .into_iter()
                    .map(|s| AdminSession {
                        id: s.id,
                        created_at: from_unix(s.created_at),
                        last_used_at: from_unix(s.last_used_at),
                        ip: s.ip,
                        user_agent: s.user_agent,
                    })
                    .collect();
                let orgs = orgs::for_user(conn, &id, 0, 200)?
                    .into_iter()
                    .map(|(org, role, _)| OrgWithRole {
                        org: org.into(),
                        role,
                    })
                    .collect();
                let identities = users::identities(conn, &id)?
                    .into_iter()
                    .map(|(provider, subject, email, at)| Identity {
                        provider,
                        subject,
                        email,
                        created_at: from_unix(at),
                    })
                    .collect();
                let filter = AuditFilter {
                    user_id: Some(id.clone()),
                    ..Default::default()
                };
                let recent_events = audit::list(conn, &filter, 0, 20)?
                    .into_iter()
                    .map(Into::into)
                    .collect();
                Ok(UserDetail {
                    user,
                    sessions,
                    orgs,
                    identities,
                    recent_events,
                })
            })
            .await
    }

    pub async fn create_user(&self, actor: Actor, req: NewUserRequest) -> AuthResult<User> {
        if let Some(dir) = &self.directory {
            return self.create_upstream(dir.as_ref(), actor, req).await;
        }
        let hash = match &req.password {
            Some(p) => Some(self.checked_hash(p).await?),
            None => None,
        };
        let now = self.now();
        self.db
            .write(move |conn| -> AuthResult<User> {
                let id = uuid::Uuid::now_v7().to_string();
                let inserted = users::insert(
                    conn,
                    &NewUser {
                        id: &id,
                        email: req.email.as_str(),
                        password_hash: hash.as_deref(),
                        email_confirmed_at: req.email_confirmed.then_some(now),
                        role: req.role.unwrap_or(Role::Default),
                        data: &serde_json::json!({}),
                        now,
                    },
                );
                match inserted {
                    Err(StorageError::Conflict(_)) => return Err(AuthError::EmailExists),
                    other => other?,
                }
                let role = req.role.unwrap_or(Role::Default).as_str();
                record(
                    conn,
                    now,
                    &actor,
                    "admin.user.created",
                    Some(&id),
                    None,
                    serde_json::json!({"email": req.email.as_str(), "role": role}),
                )?;
                user_or_404(conn, &id)
            })
            .await
    }

    /// Disabling revokes every session of the user.
    pub async fn update_user(
        &self,
        actor: Actor,
        id: &str,
        change: UserChange,
    ) -> AuthResult<User> {
        if actor.user_id == id {
            // An admin cannot lock themself out, on the pages or the API.
            if change.disabled == Some(true) {
                return Err(AuthError::Forbidden("you cannot disable yourself".into()));
            }
            if change.role == Some(Role::Default) {
                return Err(AuthError::Forbidden(
                    "you cannot remove your own admin role".into(),
                ));
            }
        }
        if let Some(dir) = &self.directory {
            return self.update_upstream(dir.as_ref(), actor, id, change).await;
        }
        if let Some(d) = &change.data
            && !d.is_object()
        {
            return Err(AuthError::field("data", "must be a JSON object"));
        }
        let id = id.to_string();
        let now = self.now();
        self.db
            .write(move |conn| -> AuthResult<User> {
                let before = user_or_404(conn, &id)?;
                let mut changed = serde_json::Map::new();
                if let Some(role) = change.role {
                    users::set_role(conn, &id, role, now)?;
                    changed.insert("role".into(), role.as_str().into());
                }
                if let Some(disabled) = change.disabled {
                    users::set_disabled(conn, &id, disabled, now)?;
                    changed.insert("disabled".into(), disabled.into());
                    if disabled {
                        let n = sessions::revoke_all_for_user(
                            conn,
                            &id,
                            None,
                            now,
                            "disabled_by_admin",
                        )?;
                        changed.insert("sessions_revoked".into(), n.into());
                    }
                }
                if let Some(confirmed) = change.email_confirmed {
                    if confirmed {
                        users::confirm_email(conn, &id, now)?;
                    } else {
                        users::unconfirm_email(conn, &id, now)?;
                    }
                    changed.insert("email_confirmed".into(), confirmed.into());
                }
                if let Some(data) = &change.data {
                    users::set_data(conn, &id, data, now)?;
                    changed.insert("data".into(), true.into());
                }
                let action = match change.disabled {
                    Some(true) if !before.disabled => "admin.user.disabled",
                    Some(false) if before.disabled => "admin.user.enabled",
                    _ => "admin.user.updated",
                };
                record(
                    conn,
                    now,
                    &actor,
                    action,
                    Some(&id),
                    None,
                    serde_json::Value::Object(changed),
                )?;
                user_or_404(conn, &id)
            })
            .await
    }

    /// Deletes a user. Orgs it alone owns are not orphaned: without
    /// `delete_owned_orgs` the deletion is refused (409 `last_owner`, naming
    /// them); with it, those orgs are deleted too.
    pub async fn delete_user(
        &self,
        actor: Actor,
        id: &str,
        delete_owned_orgs: bool,
    ) -> AuthResult<Vec<OrgView>> {
        if actor.user_id == id {
            return Err(AuthError::Forbidden("you cannot delete yourself".into()));
        }
        if let Some(dir) = &self.directory {
            return self
                .delete_upstream(dir.as_ref(), actor, id, delete_owned_orgs)
                .await;
        }
        let id = id.to_string();
        let now = self.now();
        self.db
            .write(move |conn| -> AuthResult<Vec<OrgView>> {
                let user = user_or_404(conn, &id)?;
                let owned = orgs::solely_owned_by(conn, &id)?;
                if !owned.is_empty() && !delete_owned_orgs {
                    return Err(AuthError::SoleOwner(owned.into_iter().map(|o| o.slug).collect()));
                }
                for org in &owned {
                    orgs::delete(conn, &org.id)?;
                    record(conn, now, &actor, "org.deleted", None, Some(&org.id), serde_json::json!({"slug": org.slug, "reason": "owner deleted"}))?;
                }
                users::delete(conn, &id)?;
                record(conn, now, &actor, "admin.user.deleted", Some(&id), None, serde_json::json!({"email": user.email, "orgs_deleted": owned.iter().map(|o| o.slug.clone()).collect::<Vec<_>>()}))?;
                Ok(owned.into_iter().map(Into::into).collect())
            })
            .await
    }

    pub async fn sign_out_user(&self, actor: Actor, id: &str) -> AuthResult<()> {
        if let Some(dir) = &self.directory {
            return self.sign_out_upstream(dir.as_ref(), actor, id).await;
        }
        let id = id.to_string();
        let now = self.now();
        self.db
            .write(move |conn| -> AuthResult<()> {
                user_or_404(conn, &id)?;
                let n = sessions::revoke_all_for_user(conn, &id, None, now, "signed_out_by_admin")?;
                record(
                    conn,
                    now,
                    &actor,
                    "admin.user.signed_out",
                    Some(&id),
                    None,
                    serde_json::json!({"sessions_revoked": n}),
                )
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

const SETUP_TTL: i64 = 24 * 3600;

/// What `derp admin create` did.
#[derive(Debug, Clone)]
pub struct AdminCreated {
    pub user: User,
    pub promoted: bool,
    /// A one-time link to choose a password, when none was given.
    pub password_link: Option<String>,
}

impl AdminService {
    /// When no admin exists: a new one-time setup link (earlier ones die).
    pub async fn setup_link(&self, public_url: &str) -> AuthResult<Option<String>> {
        let now = self.now();
        let token = self
            .db
            .write(move |conn| -> AuthResult<Option<String>> {
                if users::count_admins(conn)? > 0 {
                    return Ok(None);
                }
                tokens::spend_all(conn, Purpose::AdminSetup, now)?;
                let token = crate::auth::secrets::random_token();
                tokens::insert(
                    conn,
                    &crate::auth::secrets::hash_token(&token),
                    &tokens::OneTimeToken {
                        purpose: Purpose::AdminSetup,
                        email: String::new(),
                        user_id: None,
                        payload: serde_json::json!({}),
                        expires_at: now + SETUP_TTL,
                    },
                    now,
                )?;
                Ok(Some(token))
            })
            .await?;
        Ok(token.map(|t| format!("{public_url}/admin/setup?token={t}")))
    }

    pub async fn setup_token_valid(&self, token_hash: &str) -> AuthResult<bool> {
        let hash = token_hash.to_string();
        let now = self.now();
        self.db
            .read(move |conn| -> AuthResult<bool> {
                Ok(users::count_admins(conn)? == 0
                    && tokens::is_valid(conn, &hash, Purpose::AdminSetup, now)?)
            })
            .await
    }

    /// Spends the setup link and creates the first admin (confirmed).
    pub async fn complete_setup(
        &self,
        token_hash: &str,
        email: Email,
        password: String,
    ) -> AuthResult<User> {
        let hash = self.checked_hash(&password).await?;
        let token_hash = token_hash.to_string();
        let now = self.now();
        self.db
            .write(move |conn| -> AuthResult<User> {
                if users::count_admins(conn)? > 0 {
                    return Err(AuthError::InvalidToken);
                }
                tokens::consume(conn, &token_hash, Purpose::AdminSetup, now)?
                    .ok_or(AuthError::InvalidToken)?;
                let id = uuid::Uuid::now_v7().to_string();
                let inserted = users::insert(
                    conn,
                    &NewUser {
                        id: &id,
                        email: email.as_str(),
                        password_hash: Some(&hash),
                        email_confirmed_at: Some(now),
                        role: Role::Admin,
                        data: &serde_json::json!({}),
                        now,
                    },
                );
                match inserted {
                    Err(StorageError::Conflict(_)) => return Err(AuthError::EmailExists),
                    other => other?,
                }
                let actor = Actor {
                    user_id: id.clone(),
                    ip: None,
                    user_agent: None,
                    admin: true,
                };
                record(
                    conn,
                    now,
                    &actor,
                    "admin.setup",
                    Some(&id),
                    None,
                    serde_json::json!({"email": email.as_str()}),
                )?;
                user_or_404(conn, &id)
            })
            .await
    }

    /// `derp admin create`: makes `email` an admin, creating the user when
    /// needed. Without a password, returns a one-time link to choose one.
    pub async fn create_admin(
        &self,
        email: Email,
        password: Option<String>,
        public_url: &str,
    ) -> AuthResult<AdminCreated> {
        let hash = match &password {
            Some(p) => Some(self.checked_hash(p).await?),
            None => None,
        };
        let now = self.now();
        let public_url = public_url.to_string();
        self.db
            .write(move |conn| -> AuthResult<AdminCreated> {
                let actor = Actor {
                    user_id: "cli".into(),
                    ip: None,
                    user_agent: Some("derp admin create".into()),
                    admin: true,
                };
                let (id, promoted) = match users::by_email(conn, email.as_str())? {
                    Some(existing) => {
                        users::set_role(conn, &existing.user.id, Role::Admin, now)?;
                        if let Some(h) = &hash {
                            users::set_password_hash(conn, &existing.user.id, Some(h), now)?;
                        }
                        users::confirm_email(conn, &existing.user.id, now)?;
                        (existing.user.id, true)
                    }
                    None => {
                        let id = uuid::Uuid::now_v7().to_string();
                        users::insert(
                            conn,
                            &NewUser {
                                id: &id,
                                email: email.as_str(),
                                password_hash: hash.as_deref(),
                                email_confirmed_at: Some(now),
                                role: Role::Admin,
                                data: &serde_json::json!({}),
                                now,
                            },
                        )?;
                        (id, false)
                    }
                };
                record(
                    conn,
                    now,
                    &actor,
                    if promoted {
                        "admin.user.promoted"
                    } else {
                        "admin.user.created"
                    },
                    Some(&id),
                    None,
                    serde_json::json!({"email": email.as_str(), "role": "admin"}),
                )?;
                let password_link = if hash.is_none() {
                    let token = crate::auth::secrets::random_token();
                    tokens::insert(
                        conn,
                        &crate::auth::secrets::hash_token(&token),
                        &tokens::OneTimeToken {
                            purpose: Purpose::Reset,
                            email: email.as_str().into(),
                            user_id: Some(id.clone()),
                            payload: serde_json::json!({}),
                            expires_at: now + SETUP_TTL,
                        },
                        now,
                    )?;
                    Some(format!("{public_url}/reset-password?token={token}"))
                } else {
                    None
                };
                Ok(AdminCreated {
                    user: user_or_404(conn, &id)?,
                    promoted,
                    password_link,
                })
            })
            .await
    }
}
