//! The admin's user actions when users live upstream (Cognito, Clerk): the
//! user itself is read and changed through the backend's [`UserDirectory`];
//! its orgs (keyed by the upstream subject) and the audit log stay in
//! SQLite. The upstream call comes first, so a refused or failed call leaves
//! nothing changed here; the audit event follows each change that happened.
//! Role and `data` are the upstream store's own business and answer 501.

use super::{AdminService, NewUserRequest, UserChange, UserDetail, UserPage, record};
use crate::auth::directory::UserDirectory;
use crate::domain::{Role, User};
use crate::error::{AuthError, AuthResult};
use crate::services::orgs::{Actor, OrgView, OrgWithRole};
use crate::storage::audit::{self, AuditFilter};
use crate::storage::{orgs, web_sessions};
use serde_json::json;

/// The store's `capability`, or its refusal (501): the one place where a
/// capability the upstream store lacks is turned into an answer.
fn supported<'a, T: ?Sized>(
    dir: &dyn UserDirectory,
    capability: Option<&'a T>,
) -> AuthResult<&'a T> {
    capability.ok_or_else(|| dir.refusal())
}

impl AdminService {
    pub(super) async fn list_upstream(
        &self,
        dir: &dyn UserDirectory,
        q: &str,
        cursor: Option<&str>,
        limit: i64,
    ) -> AuthResult<UserPage> {
        let page = dir.list(q, cursor, limit).await?;
        Ok(UserPage {
            users: page.users,
            next_cursor: page.next_cursor,
        })
    }

    pub(super) async fn get_upstream(
        &self,
        dir: &dyn UserDirectory,
        id: &str,
    ) -> AuthResult<UserDetail> {
        let user = dir.get(id).await?;
        let id = user.id.clone();
        let (orgs, recent_events) = self
            .db
            .read(move |conn| -> AuthResult<_> {
                let orgs = orgs::for_user(conn, &id, 0, 200)?
                    .into_iter()
                    .map(|(org, role, _)| OrgWithRole {
                        org: org.into(),
                        role,
                    })
                    .collect::<Vec<_>>();
                let filter = AuditFilter {
                    user_id: Some(id),
                    ..Default::default()
                };
                let events = audit::list(conn, &filter, 0, 20)?
                    .into_iter()
                    .map(Into::into)
                    .collect::<Vec<_>>();
                Ok((orgs, events))
            })
            .await?;
        Ok(UserDetail {
            user,
            sessions: Vec::new(),
            orgs,
            identities: Vec::new(),
            factors: Vec::new(),
            recent_events,
        })
    }

    /// Writes one audit event on its own (the upstream change already
    /// happened).
    async fn audit_event(
        &self,
        actor: Actor,
        action: &'static str,
        user_id: String,
        detail: serde_json::Value,
    ) -> AuthResult<()> {
        let now = self.clock.unix();
        // Disabling and signing out end the user's sessions upstream; the
        // hosted pages' sessions kept for them here end with them.
        let ends_sessions = matches!(action, "admin.user.disabled" | "admin.user.signed_out");
        self.db
            .write(move |conn| -> AuthResult<()> {
                if ends_sessions {
                    web_sessions::delete_for_user(conn, &user_id)?;
                }
                record(conn, now, &actor, action, Some(&user_id), None, detail)
            })
            .await
    }

    pub(super) async fn create_upstream(
        &self,
        dir: &dyn UserDirectory,
        actor: Actor,
        req: NewUserRequest,
    ) -> AuthResult<User> {
        if matches!(req.role, Some(r) if r != Role::Default) {
            return Err(AuthError::NotSupportedByBackend(dir.name()));
        }
        let user = supported(dir, dir.user_creation())?
            .create(&req.email, req.password.as_deref(), req.email_confirmed)
            .await?;
        self.audit_event(
            actor,
            "admin.user.created",
            user.id.clone(),
            json!({"email": user.email, "role": "default", "backend": dir.name()}),
        )
        .await?;
        Ok(user)
    }

    pub(super) async fn update_upstream(
        &self,
        dir: &dyn UserDirectory,
        actor: Actor,
        id: &str,
        change: UserChange,
    ) -> AuthResult<User> {
        if change.role.is_some() || change.data.is_some() || change.email_confirmed == Some(false) {
            return Err(AuthError::NotSupportedByBackend(dir.name()));
        }
        let before = dir.get(id).await?;
        // Known before anything changes: a store that cannot confirm
        // addresses refuses the whole change.
        let confirmation = match change.email_confirmed {
            Some(true) => Some(supported(dir, dir.email_confirmation())?),
            _ => None,
        };
        let mut user = before.clone();
        let mut changed = serde_json::Map::new();
        if let Some(disabled) = change.disabled {
            user = dir.set_disabled(&before.id, disabled).await?;
            changed.insert("disabled".into(), disabled.into());
            if disabled {
                changed.insert("signed_out_upstream".into(), true.into());
            }
        }
        if let Some(confirmation) = confirmation {
            user = confirmation.confirm_email(&before.id).await?;
            changed.insert("email_confirmed".into(), true.into());
        }
        let action = match change.disabled {
            Some(true) if !before.disabled => "admin.user.disabled",
            Some(false) if before.disabled => "admin.user.enabled",
            _ => "admin.user.updated",
        };
        changed.insert("backend".into(), dir.name().into());
        self.audit_event(actor, action, before.id, serde_json::Value::Object(changed))
            .await?;
        Ok(user)
    }

    /// Orgs the user alone owns refuse the deletion unless
    /// `delete_owned_orgs`; then the upstream user goes first, and its orgs,
    /// memberships and the audit events follow in one transaction.
    pub(super) async fn delete_upstream(
        &self,
        dir: &dyn UserDirectory,
        actor: Actor,
        id: &str,
        delete_owned_orgs: bool,
    ) -> AuthResult<Vec<OrgView>> {
        let user = dir.get(id).await?;
        let uid = user.id.clone();
        let owned = self
            .db
            .read(move |conn| orgs::solely_owned_by(conn, &uid))
            .await?;
        if !owned.is_empty() && !delete_owned_orgs {
            return Err(AuthError::SoleOwner(
                owned.into_iter().map(|o| o.slug).collect(),
            ));
        }
        dir.delete(&user.id).await?;
        let now = self.clock.unix();
        let backend = dir.name();
        self.db
            .write(move |conn| -> AuthResult<Vec<OrgView>> {
                // Read again: ownership may have changed since the check.
                let owned = orgs::solely_owned_by(conn, &user.id)?;
                for org in &owned {
                    orgs::delete(conn, &org.id, now)?;
                    record(
                        conn,
                        now,
                        &actor,
                        "org.deleted",
                        None,
                        Some(&org.id),
                        json!({"slug": org.slug, "reason": "owner deleted"}),
                    )?;
                }
                let memberships = orgs::remove_user_everywhere(conn, &user.id, now)?;
                web_sessions::delete_for_user(conn, &user.id)?;
                record(
                    conn,
                    now,
                    &actor,
                    "admin.user.deleted",
                    Some(&user.id),
                    None,
                    json!({
                        "email": user.email,
                        "backend": backend,
                        "memberships_removed": memberships,
                        "orgs_deleted": owned.iter().map(|o| o.slug.clone()).collect::<Vec<_>>(),
                    }),
                )?;
                Ok(owned.into_iter().map(Into::into).collect())
            })
            .await
    }

    pub(super) async fn sign_out_upstream(
        &self,
        dir: &dyn UserDirectory,
        actor: Actor,
        id: &str,
    ) -> AuthResult<()> {
        let user = dir.get(id).await?;
        dir.sign_out(&user.id).await?;
        self.audit_event(
            actor,
            "admin.user.signed_out",
            user.id,
            json!({"backend": dir.name()}),
        )
        .await
    }

    pub(super) async fn note_mail_upstream(
        &self,
        dir: &dyn UserDirectory,
        actor: Actor,
        id: &str,
        action: &'static str,
    ) -> AuthResult<User> {
        let user = dir.get(id).await?;
        self.audit_event(actor, action, user.id.clone(), serde_json::Value::Null)
            .await?;
        Ok(user)
    }
}
