//! Invitations: sending one (a mailed link), listing, revoking, accepting,
//! and what a link shows before it is accepted.

use super::{
    Actor, InvitationView, MemberView, OrgService, OrgView, audit_org, caller_role, conflict_as,
    find_org,
};
use crate::auth::secrets::{hash_token, random_token};
use crate::domain::redirect::with_query;
use crate::domain::{Email, OrgRole};
use crate::error::{AuthError, AuthResult};
use crate::mail::templates::MailKind;
use crate::storage::orgs::{self, InvitationRow};
use crate::storage::users;

impl OrgService {
    pub async fn invite(
        &self,
        actor: Actor,
        org_id: &str,
        email: Email,
        role: OrgRole,
        accept_url: Option<String>,
    ) -> AuthResult<InvitationView> {
        self.invite_in(actor, org_id, email, role, accept_url, "")
            .await
    }

    /// As `invite`, the mail in `locale` (the site's default when empty).
    pub async fn invite_in(
        &self,
        actor: Actor,
        org_id: &str,
        email: Email,
        role: OrgRole,
        accept_url: Option<String>,
        locale: &str,
    ) -> AuthResult<InvitationView> {
        let locale = locale.to_string();
        let base = match accept_url {
            Some(url) if self.allowed.is_allowed(&url) => Some(url),
            Some(_) => {
                return Err(AuthError::field(
                    "accept_url",
                    "is not an allowed URL (see [hosted] allowed_redirect_urls)",
                ));
            }
            None => None,
        };
        let public_url = self.public_url.clone();
        let ttl = self.invitation_ttl;
        let mail = self.mail.clone();
        let org_id = org_id.to_string();
        let now = self.now();
        let view = self
            .db
            .write(move |conn| -> AuthResult<InvitationView> {
                let org = find_org(conn, &org_id)?;
                let me = caller_role(conn, &org.id, &actor, OrgRole::Admin)?;
                if role == OrgRole::Owner && me != OrgRole::Owner {
                    return Err(AuthError::Forbidden("only an owner may invite an owner".into()));
                }
                if let Some(u) = users::by_email(conn, email.as_str())?
                    && orgs::member(conn, &org.id, &u.user.id)?.is_some()
                {
                    return Err(AuthError::MemberExists);
                }
                let token = random_token();
                let inv = InvitationRow {
                    id: uuid::Uuid::now_v7().to_string(),
                    org_id: org.id.clone(),
                    email: email.as_str().to_string(),
                    role: role.clone(),
                    invited_by: actor.user_id.clone(),
                    created_at: now,
                    expires_at: now + ttl,
                };
                orgs::insert_invitation(conn, &inv, &hash_token(&token))?;
                let link = match &base {
                    Some(b) => with_query(b, &[("token", &token)]),
                    None => format!("{public_url}/invitations/{token}"),
                };
                mail.push_with(conn, MailKind::Invitation, &locale, email.as_str(), &link, ttl, Some((&org.name, role.as_str())), now)?;
                audit_org(conn, now, &actor, "invitation.sent", &org.id, None, serde_json::json!({"email": inv.email, "role": inv.role, "invitation_id": inv.id}))?;
                Ok(inv.into())
            })
            .await?;
        self.mail.wake();
        Ok(view)
    }

    pub async fn invitations(
        &self,
        org_id: &str,
        viewer: &Actor,
    ) -> AuthResult<Vec<InvitationView>> {
        let (org_id, viewer) = (org_id.to_string(), viewer.clone());
        let now = self.now();
        let roles = self.roles.clone();
        self.db
            .read(move |conn| -> AuthResult<_> {
                let org = find_org(conn, &org_id)?;
                caller_role(conn, &org.id, &viewer, OrgRole::Admin)?;
                Ok(orgs::pending_invitations(conn, &org.id, now)?
                    .into_iter()
                    .map(|inv| {
                        let mut view = InvitationView::from(inv);
                        view.role = roles.effective(view.role);
                        view
                    })
                    .collect())
            })
            .await
    }

    pub async fn revoke_invitation(
        &self,
        actor: Actor,
        org_id: &str,
        invitation_id: &str,
    ) -> AuthResult<()> {
        let (org_id, inv) = (org_id.to_string(), invitation_id.to_string());
        let now = self.now();
        self.db
            .write(move |conn| -> AuthResult<()> {
                let org = find_org(conn, &org_id)?;
                caller_role(conn, &org.id, &actor, OrgRole::Admin)?;
                if !orgs::revoke_invitation(conn, &org.id, &inv, now)? {
                    return Err(AuthError::NotFound("invitation"));
                }
                audit_org(
                    conn,
                    now,
                    &actor,
                    "invitation.revoked",
                    &org.id,
                    None,
                    serde_json::json!({"invitation_id": inv}),
                )
            })
            .await
    }

    /// Accepts an invitation for the signed-in user, whose email must be the
    /// invited one. Holding the link proves the address, so an unconfirmed
    /// email is confirmed by it.
    pub async fn accept(&self, actor: Actor, token: &str) -> AuthResult<(MemberView, OrgView)> {
        let hash = hash_token(token);
        let now = self.now();
        let roles = self.roles.clone();
        self.db
            .write(move |conn| -> AuthResult<(MemberView, OrgView)> {
                let inv =
                    orgs::accept_invitation(conn, &hash, now)?.ok_or(AuthError::InvalidToken)?;
                let user = users::by_id(conn, &actor.user_id)?
                    .ok_or(AuthError::Unauthenticated)?
                    .user;
                if user.email != inv.email {
                    return Err(AuthError::Forbidden(
                        "this invitation was sent to another email address".into(),
                    ));
                }
                if user.email_confirmed_at.is_none() {
                    users::confirm_email(conn, &user.id, now)?;
                }
                // A role no longer configured joins as a member.
                let role = roles.effective(inv.role.clone());
                orgs::add_member(conn, &inv.org_id, &user.id, &user.email, role, now)
                    .map_err(|e| conflict_as(e, AuthError::MemberExists))?;
                audit_org(
                    conn,
                    now,
                    &actor,
                    "invitation.accepted",
                    &inv.org_id,
                    Some(&user.id),
                    serde_json::json!({"invitation_id": inv.id, "role": inv.role}),
                )?;
                let member = orgs::member(conn, &inv.org_id, &user.id)?
                    .ok_or(AuthError::NotFound("member"))?;
                let org = find_org(conn, &inv.org_id)?;
                Ok((member.into(), org.into()))
            })
            .await
    }
}

/// What an invitation link shows before it is accepted.
#[derive(Debug, Clone)]
pub struct InvitationPreview {
    pub org_name: String,
    pub email: String,
    pub role: OrgRole,
}

impl OrgService {
    /// A pending invitation by its token, without spending it.
    pub async fn preview(&self, token: &str) -> AuthResult<Option<InvitationPreview>> {
        let hash = hash_token(token);
        let now = self.now();
        let roles = self.roles.clone();
        self.db
            .read(move |conn| -> AuthResult<_> {
                Ok(
                    orgs::pending_invitation_by_token(conn, &hash, now)?.map(|(inv, org_name)| {
                        InvitationPreview {
                            org_name,
                            email: inv.email,
                            role: roles.effective(inv.role),
                        }
                    }),
                )
            })
            .await
    }
}
