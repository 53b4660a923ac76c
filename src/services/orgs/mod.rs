//! Organizations: creation, membership, roles and invitations.
//!
//! Every use case is one `BEGIN IMMEDIATE` transaction that re-reads the
//! caller's membership and checks the rule before it changes anything, so
//! the last-owner and role rules hold under concurrency. Non-members get 404,
//! never a hint that the org exists.

use crate::clock::Clock;
use crate::domain::org::parse_org_name;
use crate::domain::redirect::AllowedUrls;
use crate::domain::{Email, OrgRole, OrgRoles, Slug};
use crate::error::{AuthError, AuthResult};
use crate::mail::queue::MailQueue;
use crate::services::paging;
use crate::storage::audit::{self, AuditEvent};
use crate::storage::orgs::{self, MemberRow, OrgRow};
use crate::storage::{Conn, Db, StorageError};
mod invitations;
mod members;

pub use crate::domain::org::{InvitationView, MemberView, OrgView, OrgWithRole};
pub use invitations::InvitationPreview;

use std::sync::Arc;

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
    /// The org roles configured: requests name these; stored roles are
    /// shown as they mean now ([`OrgRoles::effective`]).
    pub roles: OrgRoles,
}

pub const MAX_PAGE: i64 = 100;

fn page<T, R>(rows: Vec<R>, limit: i64, seq: impl Fn(&R) -> i64, map: impl Fn(R) -> T) -> Page<T> {
    let next_cursor = paging::next_cursor(&rows, limit, |r| seq(r).to_string());
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
    if !member.role.at_least(&min) {
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
    m.role.clone()
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

    /// The role a request names (`member` when it names none): built-in or
    /// configured in `[orgs] roles`, else 400 on `role` listing them.
    pub fn parse_role(&self, raw: Option<&str>) -> AuthResult<OrgRole> {
        match raw {
            None => Ok(OrgRole::Member),
            Some(r) => self
                .roles
                .parse(r)
                .ok_or_else(|| AuthError::field("role", self.roles.expected())),
        }
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
                    require_mfa: false,
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
        let after = paging::decode_number(cursor)?;
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
                role: self.roles.effective(role),
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
        let roles = self.roles.clone();
        self.db
            .read(move |conn| -> AuthResult<_> {
                let org = find_org(conn, &key)?;
                let member = require_role(conn, &org.id, &user_id, min)?;
                Ok((org.into(), roles.effective(role_of(&member))))
            })
            .await
    }

    /// Renames the org (admins) and sets its second-factor policy
    /// (`require_mfa`: owners only).
    pub async fn update(
        &self,
        actor: Actor,
        org_id: &str,
        name: Option<&str>,
        slug: Option<&str>,
        require_mfa: Option<bool>,
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
                let role = caller_role(conn, &org.id, &actor, OrgRole::Admin)?;
                if require_mfa.is_some() && !role.is_owner() {
                    return Err(AuthError::Forbidden(
                        "require_mfa: only an owner may change it".into(),
                    ));
                }
                let changed = OrgRow {
                    name: name.unwrap_or(org.name.clone()),
                    slug: slug.map_or(org.slug.clone(), |s| s.as_str().to_string()),
                    require_mfa: require_mfa.unwrap_or(org.require_mfa),
                    ..org.clone()
                };
                orgs::update(conn, &changed, now)
                    .map_err(|e| conflict_as(e, AuthError::OrgExists))?;
                let mut detail = serde_json::json!({"name": changed.name, "slug": changed.slug});
                if changed.require_mfa != org.require_mfa {
                    detail["require_mfa"] = changed.require_mfa.into();
                }
                audit_org(conn, now, &actor, "org.updated", &org.id, None, detail)?;
                Ok(changed.into())
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
                orgs::delete(conn, &org.id, now)?;
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
