//! Members of an org: listing, adding, changing roles, removing; the
//! last-owner rule holds in each transaction.

use super::{
    Actor, MemberRef, MemberView, OrgService, Page, audit_org, caller_role, conflict_as, find_org,
    page, role_of,
};
use crate::domain::OrgRole;
use crate::error::{AuthError, AuthResult};
use crate::storage::orgs::{self};
use crate::storage::users;

impl OrgService {
    pub async fn members(
        &self,
        org_id: &str,
        viewer: &Actor,
        cursor: Option<&str>,
        limit: i64,
    ) -> AuthResult<Page<MemberView>> {
        let after = crate::services::paging::decode_number(cursor)?;
        let (org_id, viewer) = (org_id.to_string(), viewer.clone());
        let rows = self
            .db
            .read(move |conn| -> AuthResult<_> {
                let org = find_org(conn, &org_id)?;
                caller_role(conn, &org.id, &viewer, OrgRole::Member)?;
                Ok(orgs::members(conn, &org.id, after, limit)?)
            })
            .await?;
        Ok(page(
            rows,
            limit,
            |m| m.seq,
            |m| {
                let mut view = MemberView::from(m);
                view.role = self.roles.effective(view.role);
                view
            },
        ))
    }

    pub async fn add_member(
        &self,
        actor: Actor,
        org_id: &str,
        who: MemberRef,
        role: OrgRole,
    ) -> AuthResult<MemberView> {
        let org_id = org_id.to_string();
        let now = self.now();
        self.db
            .write(move |conn| -> AuthResult<MemberView> {
                let org = find_org(conn, &org_id)?;
                let me = caller_role(conn, &org.id, &actor, OrgRole::Admin)?;
                if role == OrgRole::Owner && me != OrgRole::Owner {
                    return Err(AuthError::Forbidden(
                        "only an owner may grant the owner role".into(),
                    ));
                }
                let user = match &who {
                    MemberRef::Id(id) => users::by_id(conn, id)?,
                    MemberRef::Email(email) => users::by_email(conn, email.as_str())?,
                }
                .ok_or(AuthError::NotFound("user"))?
                .user;
                orgs::add_member(conn, &org.id, &user.id, &user.email, role.clone(), now)
                    .map_err(|e| conflict_as(e, AuthError::MemberExists))?;
                audit_org(
                    conn,
                    now,
                    &actor,
                    "member.added",
                    &org.id,
                    Some(&user.id),
                    serde_json::json!({"role": role.as_str()}),
                )?;
                let member =
                    orgs::member(conn, &org.id, &user.id)?.ok_or(AuthError::NotFound("member"))?;
                Ok(member.into())
            })
            .await
    }

    pub async fn change_role(
        &self,
        actor: Actor,
        org_id: &str,
        target: &str,
        role: OrgRole,
    ) -> AuthResult<MemberView> {
        let (org_id, target) = (org_id.to_string(), target.to_string());
        let now = self.now();
        self.db
            .write(move |conn| -> AuthResult<MemberView> {
                let org = find_org(conn, &org_id)?;
                let me = caller_role(conn, &org.id, &actor, OrgRole::Admin)?;
                let them =
                    orgs::member(conn, &org.id, &target)?.ok_or(AuthError::NotFound("member"))?;
                let caller_is_owner = me == OrgRole::Owner;
                if !caller_is_owner && (role_of(&them) == OrgRole::Owner || role == OrgRole::Owner)
                {
                    return Err(AuthError::Forbidden(
                        "only an owner may change an owner or grant the owner role".into(),
                    ));
                }
                if role_of(&them) == OrgRole::Owner
                    && role != OrgRole::Owner
                    && orgs::count_owners(conn, &org.id)? <= 1
                {
                    return Err(AuthError::LastOwner);
                }
                orgs::set_role(conn, &org.id, &target, role.clone(), now)?;
                audit_org(
                    conn,
                    now,
                    &actor,
                    "member.role_changed",
                    &org.id,
                    Some(&target),
                    serde_json::json!({"from": them.role, "to": role.as_str()}),
                )?;
                let member =
                    orgs::member(conn, &org.id, &target)?.ok_or(AuthError::NotFound("member"))?;
                Ok(member.into())
            })
            .await
    }

    /// Removes `target`; a member may always remove themself (leave).
    pub async fn remove_member(&self, actor: Actor, org_id: &str, target: &str) -> AuthResult<()> {
        let (org_id, target) = (org_id.to_string(), target.to_string());
        let now = self.now();
        self.db
            .write(move |conn| -> AuthResult<()> {
                let org = find_org(conn, &org_id)?;
                let leaving = target == actor.user_id;
                let min = if leaving {
                    OrgRole::Member
                } else {
                    OrgRole::Admin
                };
                let me = caller_role(conn, &org.id, &actor, min)?;
                let them =
                    orgs::member(conn, &org.id, &target)?.ok_or(AuthError::NotFound("member"))?;
                if !leaving && role_of(&them) == OrgRole::Owner && me != OrgRole::Owner {
                    return Err(AuthError::Forbidden(
                        "only an owner may remove an owner".into(),
                    ));
                }
                if role_of(&them) == OrgRole::Owner && orgs::count_owners(conn, &org.id)? <= 1 {
                    return Err(AuthError::LastOwner);
                }
                orgs::remove_member(conn, &org.id, &target, now)?;
                crate::storage::sessions::clear_active_org_for_user(conn, &target, &org.id)?;
                let action = if leaving {
                    "member.left"
                } else {
                    "member.removed"
                };
                audit_org(
                    conn,
                    now,
                    &actor,
                    action,
                    &org.id,
                    Some(&target),
                    serde_json::Value::Null,
                )
            })
            .await
    }
}
