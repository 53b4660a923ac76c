//! Organizations: creation, membership, roles and invitations.
//!
//! Every use case is one `BEGIN IMMEDIATE` transaction that re-reads the
//! caller's membership and checks the rule before it changes anything, so
//! the last-owner and role rules hold under concurrency. Non-members get 404,
//! never a hint that the org exists.

use crate::auth::secrets::{hash_token, random_token};
use crate::clock::{Clock, from_unix};
use crate::domain::org::parse_org_name;
use crate::domain::redirect::{AllowedUrls, with_query};
use crate::domain::{Email, OrgRole, Slug};
use crate::error::{AuthError, AuthResult};
use crate::mail::queue::MailQueue;
use crate::mail::templates::MailKind;
use crate::storage::audit::{self, AuditEvent};
use crate::storage::orgs::{self, InvitationRow, MemberRow, OrgRow};
use crate::storage::{Conn, Db, StorageError, users};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Serialize;
use std::sync::Arc;
use time::OffsetDateTime;

#[derive(Debug, Clone, Serialize)]
pub struct OrgView {
    pub id: String,
    pub name: String,
    pub slug: String,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

impl From<OrgRow> for OrgView {
    fn from(o: OrgRow) -> Self {
        Self {
            id: o.id,
            name: o.name,
            slug: o.slug,
            created_at: from_unix(o.created_at),
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct OrgWithRole {
    pub org: OrgView,
    pub role: OrgRole,
}

#[derive(Debug, Clone, Serialize)]
pub struct MemberView {
    pub user_id: String,
    pub email: String,
    pub role: OrgRole,
    #[serde(with = "time::serde::rfc3339")]
    pub joined_at: OffsetDateTime,
}

impl From<MemberRow> for MemberView {
    fn from(m: MemberRow) -> Self {
        Self {
            user_id: m.user_id,
            email: m.email,
            role: m.role,
            joined_at: from_unix(m.joined_at),
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct InvitationView {
    pub id: String,
    pub org_id: String,
    pub email: String,
    pub role: OrgRole,
    pub invited_by: String,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub expires_at: OffsetDateTime,
}

impl From<InvitationRow> for InvitationView {
    fn from(i: InvitationRow) -> Self {
        Self {
            id: i.id,
            org_id: i.org_id,
            email: i.email,
            role: i.role,
            invited_by: i.invited_by,
            created_at: from_unix(i.created_at),
            expires_at: from_unix(i.expires_at),
        }
    }
}

/// One page of a list; `next_cursor` is opaque.
#[derive(Debug, Clone)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next_cursor: Option<String>,
}

/// Who is asking, and from where (for the audit log).
#[derive(Debug, Clone)]
pub struct Actor {
    pub user_id: String,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    /// derp's own admins (global role or service key): no membership needed,
    /// they act with an owner's rights; the org's invariants still hold.
    pub admin: bool,
}

/// The user to add: by id or by email.
#[derive(Debug, Clone)]
pub enum MemberRef {
    Id(String),
    Email(Email),
}

pub struct OrgService {
    pub db: Db,
    pub clock: Arc<dyn Clock>,
    pub mail: MailQueue,
    pub public_url: String,
    pub allowed: AllowedUrls,
    pub invitation_ttl: i64,
}

pub const MAX_PAGE: i64 = 100;

pub fn encode_cursor(seq: i64) -> String {
    URL_SAFE_NO_PAD.encode(format!("s:{seq}"))
}

pub fn decode_cursor(cursor: Option<&str>) -> AuthResult<i64> {
    let Some(c) = cursor else { return Ok(0) };
    URL_SAFE_NO_PAD
        .decode(c)
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .and_then(|s| s.strip_prefix("s:").and_then(|n| n.parse().ok()))
        .ok_or_else(|| AuthError::field("cursor", "is not a cursor this server issued"))
}

fn page<T, R>(rows: Vec<R>, limit: i64, seq: impl Fn(&R) -> i64, map: impl Fn(R) -> T) -> Page<T> {
    let next_cursor = (rows.len() as i64 == limit)
        .then(|| rows.last().map(&seq))
        .flatten()
        .map(encode_cursor);
    Page {
        items: rows.into_iter().map(map).collect(),
        next_cursor,
    }
}

fn audit_org(
    conn: &Conn,
    now: i64,
    actor: &Actor,
    action: &str,
    org_id: &str,
    target: Option<&str>,
    detail: serde_json::Value,
) -> AuthResult<()> {
    audit::record(
        conn,
        now,
        &AuditEvent {
            action,
            actor_id: Some(&actor.user_id),
            user_id: target.or(Some(&actor.user_id)),
            org_id: Some(org_id),
            target,
            ip: actor.ip.as_deref(),
            user_agent: actor.user_agent.as_deref(),
            detail,
        },
    )?;
    Ok(())
}

/// The caller's membership, or 404 (non-members learn nothing), or 403 when
/// their role is below `min`.
pub fn require_role(
    conn: &Conn,
    org_id: &str,
    user_id: &str,
    min: OrgRole,
) -> AuthResult<MemberRow> {
    let member = orgs::member(conn, org_id, user_id)?.ok_or(AuthError::NotFound("organization"))?;
    let role = member.role;
    if role < min {
        return Err(AuthError::Forbidden(format!(
            "this needs the {min} role or higher"
        )));
    }
    Ok(member)
}

/// The role the actor acts with in `org_id`.
fn caller_role(conn: &Conn, org_id: &str, actor: &Actor, min: OrgRole) -> AuthResult<OrgRole> {
    if actor.admin {
        return Ok(OrgRole::Owner);
    }
    Ok(role_of(&require_role(conn, org_id, &actor.user_id, min)?))
}

fn role_of(m: &MemberRow) -> OrgRole {
    m.role
}

fn find_org(conn: &Conn, id_or_slug: &str) -> AuthResult<OrgRow> {
    orgs::find(conn, id_or_slug)?.ok_or(AuthError::NotFound("organization"))
}

fn conflict_as(e: StorageError, as_error: AuthError) -> AuthError {
    match e {
        StorageError::Conflict(_) => as_error,
        other => other.into(),
    }
}

impl OrgService {
    fn now(&self) -> i64 {
        self.clock.unix()
    }

    /// Creates the org with `owner` (user id, email) as its owner.
    pub async fn create(
        &self,
        actor: Actor,
        owner: (String, String),
        name: &str,
        slug: &str,
    ) -> AuthResult<OrgView> {
        let (owner_id, email) = owner;
        let name = parse_org_name(name).map_err(|p| AuthError::field("name", p))?;
        let slug = Slug::parse(slug).map_err(|p| AuthError::field("slug", p))?;
        let now = self.now();
        self.db
            .write(move |conn| -> AuthResult<OrgView> {
                let org = OrgRow {
                    id: uuid::Uuid::now_v7().to_string(),
                    name,
                    slug: slug.as_str().into(),
                    created_at: now,
                };
                orgs::insert(conn, &org).map_err(|e| conflict_as(e, AuthError::OrgExists))?;
                orgs::add_member(conn, &org.id, &owner_id, &email, OrgRole::Owner, now)?;
                audit_org(
                    conn,
                    now,
                    &actor,
                    "org.created",
                    &org.id,
                    None,
                    serde_json::json!({"slug": org.slug}),
                )?;
                Ok(org.into())
            })
            .await
    }

    pub async fn list_for_user(
        &self,
        user_id: &str,
        cursor: Option<&str>,
        limit: i64,
    ) -> AuthResult<Page<OrgWithRole>> {
        let after = decode_cursor(cursor)?;
        let user_id = user_id.to_string();
        let rows = self
            .db
            .read(move |conn| orgs::for_user(conn, &user_id, after, limit))
            .await?;
        Ok(page(
            rows,
            limit,
            |r| r.2,
            |(org, role, _)| OrgWithRole {
                org: org.into(),
                role,
            },
        ))
    }

    /// The org and the caller's role in it, when the role is at least `min`.
    pub async fn access(
        &self,
        id_or_slug: &str,
        user_id: &str,
        min: OrgRole,
    ) -> AuthResult<(OrgView, OrgRole)> {
        let (key, user_id) = (id_or_slug.to_string(), user_id.to_string());
        self.db
            .read(move |conn| -> AuthResult<_> {
                let org = find_org(conn, &key)?;
                let member = require_role(conn, &org.id, &user_id, min)?;
                Ok((org.into(), role_of(&member)))
            })
            .await
    }

    pub async fn update(
        &self,
        actor: Actor,
        org_id: &str,
        name: Option<&str>,
        slug: Option<&str>,
    ) -> AuthResult<OrgView> {
        let name = name
            .map(parse_org_name)
            .transpose()
            .map_err(|p| AuthError::field("name", p))?;
        let slug = slug
            .map(Slug::parse)
            .transpose()
            .map_err(|p| AuthError::field("slug", p))?;
        let org_id = org_id.to_string();
        let now = self.now();
        self.db
            .write(move |conn| -> AuthResult<OrgView> {
                let org = find_org(conn, &org_id)?;
                caller_role(conn, &org.id, &actor, OrgRole::Admin)?;
                let name = name.unwrap_or(org.name.clone());
                let slug = slug.map_or(org.slug.clone(), |s| s.as_str().to_string());
                orgs::update(conn, &org.id, &name, &slug, now)
                    .map_err(|e| conflict_as(e, AuthError::OrgExists))?;
                audit_org(
                    conn,
                    now,
                    &actor,
                    "org.updated",
                    &org.id,
                    None,
                    serde_json::json!({"name": name, "slug": slug}),
                )?;
                Ok(OrgRow { name, slug, ..org }.into())
            })
            .await
    }

    pub async fn delete(&self, actor: Actor, org_id: &str) -> AuthResult<()> {
        let org_id = org_id.to_string();
        let now = self.now();
        self.db
            .write(move |conn| -> AuthResult<()> {
                let org = find_org(conn, &org_id)?;
                caller_role(conn, &org.id, &actor, OrgRole::Owner)?;
                orgs::delete(conn, &org.id)?;
                audit_org(
                    conn,
                    now,
                    &actor,
                    "org.deleted",
                    &org.id,
                    None,
                    serde_json::json!({"slug": org.slug}),
                )
            })
            .await
    }

    pub async fn members(
        &self,
        org_id: &str,
        viewer: &Actor,
        cursor: Option<&str>,
        limit: i64,
    ) -> AuthResult<Page<MemberView>> {
        let after = decode_cursor(cursor)?;
        let (org_id, viewer) = (org_id.to_string(), viewer.clone());
        let rows = self
            .db
            .read(move |conn| -> AuthResult<_> {
                let org = find_org(conn, &org_id)?;
                caller_role(conn, &org.id, &viewer, OrgRole::Member)?;
                Ok(orgs::members(conn, &org.id, after, limit)?)
            })
            .await?;
        Ok(page(rows, limit, |m| m.seq, MemberView::from))
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
                orgs::add_member(conn, &org.id, &user.id, &user.email, role, now)
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
                orgs::set_role(conn, &org.id, &target, role)?;
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
                orgs::remove_member(conn, &org.id, &target)?;
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

    #[allow(clippy::too_many_arguments)]
    pub async fn invite(
        &self,
        actor: Actor,
        org_id: &str,
        email: Email,
        role: OrgRole,
        accept_url: Option<String>,
    ) -> AuthResult<InvitationView> {
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
                    role,
                    invited_by: actor.user_id.clone(),
                    created_at: now,
                    expires_at: now + ttl,
                };
                orgs::insert_invitation(conn, &inv, &hash_token(&token))?;
                let link = match &base {
                    Some(b) => with_query(b, &[("token", &token)]),
                    None => format!("{public_url}/invitations/{token}"),
                };
                mail.push_with(conn, MailKind::Invitation, email.as_str(), &link, ttl, Some((&org.name, role.as_str())), now)?;
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
        self.db
            .read(move |conn| -> AuthResult<_> {
                let org = find_org(conn, &org_id)?;
                caller_role(conn, &org.id, &viewer, OrgRole::Admin)?;
                Ok(orgs::pending_invitations(conn, &org.id, now)?
                    .into_iter()
                    .map(Into::into)
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
                orgs::add_member(conn, &inv.org_id, &user.id, &user.email, inv.role, now)
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

impl OrgService {
    /// Any org by id or slug (for derp's admins).
    pub async fn get_any(&self, id_or_slug: &str) -> AuthResult<OrgView> {
        let key = id_or_slug.to_string();
        self.db
            .read(move |conn| Ok(find_org(conn, &key)?.into()))
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
        self.db
            .read(move |conn| -> AuthResult<_> {
                Ok(
                    orgs::pending_invitation_by_token(conn, &hash, now)?.map(|(inv, org_name)| {
                        InvitationPreview {
                            org_name,
                            email: inv.email,
                            role: inv.role,
                        }
                    }),
                )
            })
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_refuse_garbage() {
        assert_eq!(decode_cursor(Some(&encode_cursor(42))).unwrap(), 42);
        assert_eq!(decode_cursor(None).unwrap(), 0);
        assert!(decode_cursor(Some("garbage!")).is_err());
        assert!(decode_cursor(Some(&URL_SAFE_NO_PAD.encode("x:1"))).is_err());
    }
}
