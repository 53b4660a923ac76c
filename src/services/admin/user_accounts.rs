//! Admins managing users: listing and searching, one user's page, creating,
//! changing (role, disabled, confirmed, data), deleting, signing out. With an
//! upstream store these go through its directory instead.

use super::{
    AdminFactor, AdminService, AdminSession, Identity, NewUserRequest, UserChange, UserDetail,
    UserPage, record, user_or_404,
};
use crate::clock::from_unix;
use crate::domain::{Role, User};
use crate::error::{AuthError, AuthResult};
use crate::mail::templates::MailKind;
use crate::services::orgs::{Actor, OrgView, OrgWithRole};
use crate::services::paging;
use crate::storage::audit::{self, AuditFilter};
use crate::storage::users::{self, NewUser};
use crate::storage::{StorageError, mfa, orgs, sessions};

impl AdminService {
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
                let factors = mfa::active_factors(conn, &id)?
                    .into_iter()
                    .map(|f| AdminFactor {
                        id: f.id,
                        kind: f.kind,
                        name: f.name,
                        created_at: from_unix(f.created_at),
                        last_used_at: f.last_used_at.map(from_unix),
                    })
                    .collect();
                Ok(UserDetail {
                    user,
                    sessions,
                    orgs,
                    identities,
                    factors,
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
                    orgs::delete(conn, &org.id, now)?;
                    record(conn, now, &actor, "org.deleted", None, Some(&org.id), serde_json::json!({"slug": org.slug, "reason": "owner deleted"}))?;
                }
                users::delete(conn, &id, now)?;
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

    /// Removes every second factor, recovery code and pending second step
    /// of a native user (one who lost them all), recorded as `mfa.removed`
    /// by the admin; the user is told by mail when there was a factor.
    /// Answers how many active factors there were.
    pub async fn reset_mfa(&self, actor: Actor, id: &str) -> AuthResult<usize> {
        if let Some(dir) = &self.directory {
            return Err(AuthError::NotSupportedByBackend(dir.name()));
        }
        let id = id.to_string();
        let now = self.now();
        let mail = self.mail.clone();
        let link = format!("{}/account/security", self.public_url);
        let removed = self
            .db
            .write(move |conn| -> AuthResult<usize> {
                let user = user_or_404(conn, &id)?;
                let removed = mfa::delete_all_for_user(conn, &id)?;
                record(
                    conn,
                    now,
                    &actor,
                    "mfa.removed",
                    Some(&id),
                    None,
                    serde_json::json!({"all": true, "factors": removed, "by": "admin"}),
                )?;
                if removed > 0
                    && let Some(mail) = &mail
                {
                    mail.push(conn, MailKind::MfaRemoved, "", &user.email, &link, 0, now)?;
                }
                Ok(removed)
            })
            .await?;
        if let Some(mail) = &self.mail {
            mail.wake();
        }
        Ok(removed)
    }
}
