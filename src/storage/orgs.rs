//! Organizations, members and invitations.
//!
//! About 510 lines: the three tables' queries (about 410) and their unit
//! tests.

use super::ExecCached as _;
use super::{Conn, Engine, StorageResult, optional};
use crate::clock::from_unix;
use crate::domain::OrgRole;
use crate::domain::org::{InvitationView, MemberView, OrgView};
use crate::storage::params;

/// A stored org role: a built-in one or a custom one by name. Whether a
/// custom role is still configured is decided above storage
/// (`OrgRoles::effective`), never silently here.
pub(super) fn org_role(
    r: &crate::storage::Row<'_>,
    idx: usize,
) -> crate::storage::StorageResult<OrgRole> {
    let raw: String = r.get(idx)?;
    Ok(OrgRole::from_stored(&raw))
}

#[derive(Debug, Clone)]
pub struct OrgRow {
    pub id: String,
    pub name: String,
    pub slug: String,
    pub created_at: i64,
    /// Making the org active needs a second factor (`mfa` in the session's amr).
    pub require_mfa: bool,
}

#[derive(Debug, Clone)]
pub struct MemberRow {
    pub seq: i64,
    pub org_id: String,
    pub user_id: String,
    pub email: String,
    pub role: OrgRole,
    pub joined_at: i64,
}

#[derive(Debug, Clone)]
pub struct InvitationRow {
    pub id: String,
    pub org_id: String,
    pub email: String,
    pub role: OrgRole,
    pub invited_by: String,
    pub created_at: i64,
    pub expires_at: i64,
}

fn org_from(r: &crate::storage::Row<'_>) -> crate::storage::StorageResult<OrgRow> {
    Ok(OrgRow {
        id: r.get(0)?,
        name: r.get(1)?,
        slug: r.get(2)?,
        created_at: r.get(3)?,
        require_mfa: r.get(4)?,
    })
}

/// Members show the user's current email where derp knows the user.
const MEMBER_SELECT: &str =
    "SELECT m.seq, m.org_id, m.user_id, COALESCE(u.email, m.email), m.role, m.joined_at
     FROM org_members m LEFT JOIN users u ON u.id = m.user_id";

fn member_from(r: &crate::storage::Row<'_>) -> crate::storage::StorageResult<MemberRow> {
    Ok(MemberRow {
        seq: r.get(0)?,
        org_id: r.get(1)?,
        user_id: r.get(2)?,
        email: r.get(3)?,
        role: org_role(r, 4)?,
        joined_at: r.get(5)?,
    })
}

const INVITATION_COLUMNS: &str = "id, org_id, email, role, invited_by, created_at, expires_at";

fn invitation_from(r: &crate::storage::Row<'_>) -> crate::storage::StorageResult<InvitationRow> {
    Ok(InvitationRow {
        id: r.get(0)?,
        org_id: r.get(1)?,
        email: r.get(2)?,
        role: org_role(r, 3)?,
        invited_by: r.get(4)?,
        created_at: r.get(5)?,
        expires_at: r.get(6)?,
    })
}

/// A taken slug is `StorageError::Conflict("orgs.slug")`.
pub fn insert(conn: &Conn, org: &OrgRow) -> StorageResult<()> {
    conn.exec(
        "INSERT INTO orgs (id, name, slug, created_at, updated_at, require_mfa)
         VALUES (?1, ?2, ?3, ?4, ?4, ?5)",
        params![org.id, org.name, org.slug, org.created_at, org.require_mfa],
    )?;
    super::webhooks::org_event(conn, "org.created", org, org.created_at)
}

/// By id, or by slug when no id matches.
pub fn find(conn: &Conn, id_or_slug: &str) -> StorageResult<Option<OrgRow>> {
    optional(conn.query_row(
        "SELECT id, name, slug, created_at, require_mfa FROM orgs WHERE id = ?1
         UNION ALL SELECT id, name, slug, created_at, require_mfa FROM orgs WHERE slug = ?1 LIMIT 1",
        [id_or_slug],
        org_from,
    ))
}

pub fn update(conn: &Conn, org: &OrgRow, now: i64) -> StorageResult<()> {
    conn.exec(
        "UPDATE orgs SET name = ?2, slug = ?3, require_mfa = ?4, updated_at = ?5 WHERE id = ?1",
        params![org.id, org.name, org.slug, org.require_mfa, now],
    )?;
    if let Some(org) = find(conn, &org.id)? {
        super::webhooks::org_event(conn, "org.updated", &org, now)?;
    }
    Ok(())
}

/// Whether a session proven with `amr` may have `org_id` active: an org
/// that requires a second factor needs `mfa` among the methods. An unknown
/// org answers true (membership checks refuse it elsewhere).
pub fn mfa_satisfied(conn: &Conn, org_id: &str, amr: &[String]) -> StorageResult<bool> {
    let required: Option<bool> = optional(conn.query_row(
        "SELECT require_mfa FROM orgs WHERE id = ?1",
        [org_id],
        |r| r.get(0),
    ))?;
    Ok(!required.unwrap_or(false) || amr.iter().any(|m| m == "mfa"))
}

/// Deletes the org with its members and invitations; clears it as the
/// active org of every session.
pub fn delete(conn: &Conn, id: &str, now: i64) -> StorageResult<bool> {
    super::sessions::changed(conn)?;
    conn.exec(
        "UPDATE sessions SET active_org_id = NULL WHERE active_org_id = ?1",
        [id],
    )?;
    let before = find(conn, id)?;
    let deleted = conn.exec("DELETE FROM orgs WHERE id = ?1", [id])? == 1;
    if let Some(org) = before.filter(|_| deleted) {
        super::webhooks::org_event(conn, "org.deleted", &org, now)?;
    }
    Ok(deleted)
}

/// The orgs of a user with their role, in join order, after `after_seq`.
pub fn for_user(
    conn: &Conn,
    user_id: &str,
    after_seq: i64,
    limit: i64,
) -> StorageResult<Vec<(OrgRow, OrgRole, i64)>> {
    let mut stmt = conn.prepare(
        "SELECT o.id, o.name, o.slug, o.created_at, o.require_mfa, m.role, m.seq
         FROM org_members m JOIN orgs o ON o.id = m.org_id
         WHERE m.user_id = ?1 AND m.seq > ?2 ORDER BY m.seq LIMIT ?3",
    )?;
    let rows = stmt.query_map(params![user_id, after_seq, limit], |r| {
        Ok((org_from(r)?, org_role(r, 5)?, r.get(6)?))
    })?;
    rows.collect::<Result<_, _>>()
}

pub fn member(conn: &Conn, org_id: &str, user_id: &str) -> StorageResult<Option<MemberRow>> {
    let sql = format!("{MEMBER_SELECT} WHERE m.org_id = ?1 AND m.user_id = ?2");
    optional(conn.query_row(&sql, params![org_id, user_id], member_from))
}

/// An org's members after `seq`. Params: org id, after seq, limit.
pub(crate) fn members_sql() -> String {
    format!("{MEMBER_SELECT} WHERE m.org_id = ?1 AND m.seq > ?2 ORDER BY m.seq LIMIT ?3")
}

pub fn members(
    conn: &Conn,
    org_id: &str,
    after_seq: i64,
    limit: i64,
) -> StorageResult<Vec<MemberRow>> {
    let mut stmt = conn.prepare(&members_sql())?;
    let rows = stmt.query_map(params![org_id, after_seq, limit], member_from)?;
    rows.collect::<Result<_, _>>()
}

/// A user already in the org is `StorageError::Conflict("org_members.org_id, org_members.user_id")`.
pub fn add_member(
    conn: &Conn,
    org_id: &str,
    user_id: &str,
    email: &str,
    role: OrgRole,
    now: i64,
) -> StorageResult<()> {
    conn.exec(
        "INSERT INTO org_members (org_id, user_id, email, role, joined_at) VALUES (?1, ?2, ?3, ?4, ?5)",
        params![org_id, user_id, email, role.as_str(), now],
    )?;
    if let Some(m) = member(conn, org_id, user_id)? {
        super::webhooks::member_event(conn, "org.member.added", &m, None, now)?;
    }
    Ok(())
}

pub fn set_role(
    conn: &Conn,
    org_id: &str,
    user_id: &str,
    role: OrgRole,
    now: i64,
) -> StorageResult<bool> {
    let Some(before) = member(conn, org_id, user_id)? else {
        return Ok(false);
    };
    let changed = conn.exec(
        "UPDATE org_members SET role = ?3 WHERE org_id = ?1 AND user_id = ?2",
        params![org_id, user_id, role.as_str()],
    )? == 1;
    if changed && before.role != role {
        let after = MemberRow {
            role,
            ..before.clone()
        };
        super::webhooks::member_event(
            conn,
            "org.member.role_changed",
            &after,
            Some(before.role),
            now,
        )?;
    }
    Ok(changed)
}

pub fn remove_member(conn: &Conn, org_id: &str, user_id: &str, now: i64) -> StorageResult<bool> {
    let before = member(conn, org_id, user_id)?;
    let removed = conn.exec(
        "DELETE FROM org_members WHERE org_id = ?1 AND user_id = ?2",
        params![org_id, user_id],
    )? == 1;
    if let Some(m) = before.filter(|_| removed) {
        super::webhooks::member_event(conn, "org.member.removed", &m, None, now)?;
    }
    Ok(removed)
}

pub fn count_owners(conn: &Conn, org_id: &str) -> StorageResult<i64> {
    conn.query_row(
        "SELECT COUNT(*) FROM org_members WHERE org_id = ?1 AND role = 'owner'",
        [org_id],
        |r| r.get(0),
    )
}

pub fn insert_invitation(conn: &Conn, inv: &InvitationRow, token_hash: &str) -> StorageResult<()> {
    conn.exec(
        "INSERT INTO org_invitations (id, org_id, email, role, token_hash, invited_by, created_at, expires_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        params![inv.id, inv.org_id, inv.email, inv.role.as_str(), token_hash, inv.invited_by, inv.created_at, inv.expires_at],
    )?;
    super::webhooks::invitation_event(conn, "invitation.created", inv, inv.created_at)
}

/// Pending (not accepted, revoked or expired) invitations of an org.
pub fn pending_invitations(
    conn: &Conn,
    org_id: &str,
    now: i64,
) -> StorageResult<Vec<InvitationRow>> {
    let sql = format!(
        "SELECT {INVITATION_COLUMNS} FROM org_invitations
         WHERE org_id = ?1 AND accepted_at IS NULL AND revoked_at IS NULL AND expires_at > ?2
         ORDER BY created_at, id"
    );
    let mut stmt = conn.prepare(&sql)?;
    let rows = stmt.query_map(params![org_id, now], invitation_from)?;
    rows.collect::<Result<_, _>>()
}

pub fn revoke_invitation(conn: &Conn, org_id: &str, id: &str, now: i64) -> StorageResult<bool> {
    Ok(conn.exec(
        "UPDATE org_invitations SET revoked_at = ?3
         WHERE org_id = ?1 AND id = ?2 AND accepted_at IS NULL AND revoked_at IS NULL",
        params![org_id, id, now],
    )? == 1)
}

/// Consumes a pending invitation atomically; `None` when unknown, used,
/// revoked or expired.
pub fn accept_invitation(
    conn: &Conn,
    token_hash: &str,
    now: i64,
) -> StorageResult<Option<InvitationRow>> {
    let sql = format!(
        "UPDATE org_invitations SET accepted_at = ?2
         WHERE token_hash = ?1 AND accepted_at IS NULL AND revoked_at IS NULL AND expires_at > ?2
         RETURNING {INVITATION_COLUMNS}"
    );
    let accepted = optional(conn.query_row(&sql, params![token_hash, now], invitation_from))?;
    if let Some(inv) = &accepted {
        super::webhooks::invitation_event(conn, "invitation.accepted", inv, now)?;
    }
    Ok(accepted)
}

/// A pending invitation and its org's name, by token hash.
pub fn pending_invitation_by_token(
    conn: &Conn,
    token_hash: &str,
    now: i64,
) -> StorageResult<Option<(InvitationRow, String)>> {
    optional(conn.query_row(
        "SELECT i.id, i.org_id, i.email, i.role, i.invited_by, i.created_at, i.expires_at, o.name
         FROM org_invitations i JOIN orgs o ON o.id = i.org_id
         WHERE i.token_hash = ?1 AND i.accepted_at IS NULL AND i.revoked_at IS NULL AND i.expires_at > ?2",
        params![token_hash, now],
        |r| Ok((invitation_from(r)?, r.get(7)?)),
    ))
}

/// Orgs whose name or slug contains `q`, by id, after the id `after`.
pub fn search(conn: &Conn, q: &str, after: &str, limit: i64) -> StorageResult<Vec<OrgRow>> {
    // A NUL would end SQLite's LIKE pattern early (`%` alone matches
    // everyone): text with control characters matches nothing.
    if q.chars().any(char::is_control) {
        return Ok(Vec::new());
    }
    let pattern = format!(
        "%{}%",
        q.replace('\\', "\\\\")
            .replace('%', "\\%")
            .replace('_', "\\_")
    );
    let mut stmt = conn.prepare(
        "SELECT id, name, slug, created_at, require_mfa FROM orgs
         WHERE (name LIKE ?1 ESCAPE '\\' OR slug LIKE ?1 ESCAPE '\\') AND id > ?2 ORDER BY id LIMIT ?3",
    )?;
    let rows = stmt.query_map(params![pattern, after, limit], org_from)?;
    rows.collect::<Result<_, _>>()
}

pub fn count(conn: &Conn) -> StorageResult<i64> {
    conn.query_row("SELECT COUNT(*) FROM orgs", (), |r| r.get(0))
}

/// Orgs where `user_id` is the only owner.
pub fn solely_owned_by(conn: &Conn, user_id: &str) -> StorageResult<Vec<OrgRow>> {
    let mut stmt = conn.prepare(
        "SELECT o.id, o.name, o.slug, o.created_at, o.require_mfa FROM orgs o
         JOIN org_members m ON m.org_id = o.id AND m.user_id = ?1 AND m.role = 'owner'
         WHERE (SELECT COUNT(*) FROM org_members x WHERE x.org_id = o.id AND x.role = 'owner') = 1
         ORDER BY o.id",
    )?;
    let rows = stmt.query_map([user_id], org_from)?;
    rows.collect::<Result<_, _>>()
}

/// Removes every membership of `user_id` (an upstream user that was deleted:
/// no foreign key does it for them). The number of memberships removed.
pub fn remove_user_everywhere(conn: &Conn, user_id: &str, now: i64) -> StorageResult<usize> {
    let sql = format!("{MEMBER_SELECT} WHERE m.user_id = ?1 ORDER BY m.seq");
    let memberships: Vec<MemberRow> = conn
        .prepare(&sql)?
        .query_map([user_id], member_from)?
        .collect::<Result<_, _>>()?;
    let n = conn.exec("DELETE FROM org_members WHERE user_id = ?1", [user_id])?;
    for m in &memberships {
        super::webhooks::member_event(conn, "org.member.removed", m, None, now)?;
    }
    Ok(n)
}

impl From<OrgRow> for OrgView {
    fn from(o: OrgRow) -> Self {
        Self {
            id: o.id,
            name: o.name,
            slug: o.slug,
            created_at: from_unix(o.created_at),
            require_mfa: o.require_mfa,
        }
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_custom_stored_role_is_read_by_name() {
        let c = Conn::open_in_memory().unwrap();
        crate::storage::migrations::apply(&c).unwrap();
        let org = OrgRow {
            id: "o".into(),
            name: "Org".into(),
            slug: "org".into(),
            created_at: 0,
            require_mfa: false,
        };
        insert(&c, &org).unwrap();
        add_member(&c, "o", "u1", "a@example.com", OrgRole::Admin, 0).unwrap();
        assert_eq!(member(&c, "o", "u1").unwrap().unwrap().role, OrgRole::Admin);
        c.execute(
            "UPDATE org_members SET role = 'superuser' WHERE user_id = 'u1'",
            (),
        )
        .unwrap();
        // Read back by name, never as some other role: whether it is still
        // configured is decided above storage (`OrgRoles::effective`).
        assert_eq!(
            member(&c, "o", "u1").unwrap().unwrap().role,
            OrgRole::Custom("superuser".into())
        );
    }
}

/// The columns the admin console sorts orgs by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OrgSort {
    Name,
    Created,
    Members,
}

/// One page of the admin console's org list: orgs whose name or slug
/// contains `q`, with their member counts, sorted, skipping `offset`; with
/// the number of all matches.
pub fn list_page(
    conn: &Conn,
    q: &str,
    sort: OrgSort,
    desc: bool,
    offset: i64,
    limit: i64,
) -> StorageResult<(i64, Vec<(OrgRow, i64)>)> {
    if q.chars().any(char::is_control) {
        return Ok((0, Vec::new()));
    }
    let pattern = super::users::contains_pattern(q);
    let total: i64 = conn.query_row(
        "SELECT COUNT(*) FROM orgs WHERE (name LIKE ?1 ESCAPE '\\' OR slug LIKE ?1 ESCAPE '\\')",
        [&pattern],
        |r| r.get(0),
    )?;
    let col = match (sort, conn.engine()) {
        (OrgSort::Name, Engine::Sqlite) => "o.name COLLATE NOCASE",
        (OrgSort::Name, Engine::Postgres) => "lower(o.name)",
        (OrgSort::Created, _) => "o.created_at",
        (OrgSort::Members, _) => "members",
    };
    let dir = if desc { "DESC" } else { "ASC" };
    let mut stmt = conn.prepare(&format!(
        "SELECT o.id, o.name, o.slug, o.created_at, o.require_mfa,
                (SELECT COUNT(*) FROM org_members m WHERE m.org_id = o.id) AS members
         FROM orgs o WHERE (o.name LIKE ?1 ESCAPE '\\' OR o.slug LIKE ?1 ESCAPE '\\')
         ORDER BY {col} {dir}, o.id {dir} LIMIT ?2 OFFSET ?3"
    ))?;
    let rows = stmt.query_map(params![pattern, limit, offset], |r| {
        Ok((org_from(r)?, r.get(5)?))
    })?;
    Ok((total, rows.collect::<Result<_, _>>()?))
}

/// `(id, name)` of the orgs among `ids` that exist.
pub fn names_of(conn: &Conn, ids: &[String]) -> StorageResult<Vec<(String, String)>> {
    let mut stmt = conn.prepare_cached("SELECT id, name FROM orgs WHERE id = ?1")?;
    let mut out = Vec::new();
    for id in ids {
        if let Some(row) = optional(stmt.query_row([id], |r| Ok((r.get(0)?, r.get(1)?))))? {
            out.push(row);
        }
    }
    Ok(out)
}

/// The org whose name (any case), slug or id is `q`.
pub fn by_name(conn: &Conn, q: &str) -> StorageResult<Option<OrgRow>> {
    let sql = match conn.engine() {
        Engine::Sqlite => {
            "SELECT id, name, slug, created_at, require_mfa FROM orgs
             WHERE id = ?1 OR slug = ?1 OR name = ?1 COLLATE NOCASE ORDER BY id LIMIT 1"
        }
        Engine::Postgres => {
            "SELECT id, name, slug, created_at, require_mfa FROM orgs
             WHERE id = ?1 OR slug = ?1 OR lower(name) = lower(?1) ORDER BY id LIMIT 1"
        }
    };
    optional(conn.query_row(sql, [q], org_from))
}
