//! The admin console's views: pages of users, orgs and audit events with
//! totals, people and orgs named by email and name, event details as
//! readable fields, the sign-ins and sign-ups per day for the overview's
//! chart, and the configuration as a secret-free summary.
//!
//! About 470 lines: five read-only views that share the same naming of
//! people, orgs and events, with a few unit tests.

use super::{AdminService, AuditEventView};
use crate::clock::from_unix;
use crate::config::{Config, SECRET_SET};
use crate::domain::User;
use crate::domain::org::OrgView;
use crate::error::AuthResult;
use crate::storage::audit::{self, AuditQuery};
use crate::storage::orgs::{self, OrgSort};
use crate::storage::users::{self, UserSort};
use std::collections::{BTreeMap, BTreeSet};
use time::OffsetDateTime;

/// Rows on one page of a console list.
pub const PER_PAGE: i64 = 50;

/// One page of a list, with the number of all matches.
#[derive(Debug, Clone)]
pub struct Paged<T> {
    pub items: Vec<T>,
    pub total: i64,
    /// 1-based.
    pub page: i64,
    pub per_page: i64,
}

impl<T> Paged<T> {
    /// The position of the first row shown (1-based; 0 when none is).
    pub fn first(&self) -> i64 {
        if self.items.is_empty() {
            0
        } else {
            (self.page - 1) * self.per_page + 1
        }
    }
    pub fn last(&self) -> i64 {
        (self.page - 1) * self.per_page + self.items.len() as i64
    }
    pub fn has_prev(&self) -> bool {
        self.page > 1
    }
    pub fn has_next(&self) -> bool {
        self.last() < self.total && !self.items.is_empty()
    }
    /// "1–50 of 1,234"
    pub fn range(&self) -> String {
        if self.total == 0 || self.items.is_empty() {
            return format!("0 of {}", thousands(self.total));
        }
        format!(
            "{}–{} of {}",
            thousands(self.first()),
            thousands(self.last()),
            thousands(self.total)
        )
    }
}

/// `1234567` as "1,234,567".
pub fn thousands(n: impl std::borrow::Borrow<i64>) -> String {
    let n = *n.borrow();
    let digits = n.unsigned_abs().to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    if n < 0 { format!("-{out}") } else { out }
}

/// The offset of a 1-based page (pages below 1 are the first).
fn offset(page: i64) -> i64 {
    (page.max(1) - 1).saturating_mul(PER_PAGE)
}

#[derive(Debug, Clone)]
pub struct OrgListItem {
    pub org: OrgView,
    pub members: i64,
}

/// A person or org as the console shows it: a label, and where its page is.
#[derive(Debug, Clone)]
pub struct Named {
    pub label: String,
    pub href: Option<String>,
}

/// An audit event with its people and org named and its detail as fields.
#[derive(Debug, Clone)]
pub struct AuditLine {
    pub id: i64,
    pub at: OffsetDateTime,
    pub action: String,
    pub actor: Option<Named>,
    pub user: Option<Named>,
    pub org: Option<Named>,
    pub ip: Option<String>,
    pub device: Option<String>,
    pub fields: Vec<(String, String)>,
}

/// Sign-ins and sign-ups on one UTC day.
#[derive(Debug, Clone)]
pub struct DayCount {
    pub day: OffsetDateTime,
    pub sign_ins: i64,
    pub sign_ups: i64,
}

/// "password_reset" as "Password reset".
fn humanise(key: &str) -> String {
    let spaced = key.replace(['_', '.'], " ");
    let mut chars = spaced.chars();
    match chars.next() {
        Some(c) => c.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

fn value_text(v: &serde_json::Value) -> String {
    use serde_json::Value;
    match v {
        Value::Null => "none".into(),
        Value::Bool(true) => "yes".into(),
        Value::Bool(false) => "no".into(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => s.clone(),
        Value::Array(a) if a.is_empty() => "none".into(),
        Value::Array(a) => a.iter().map(value_text).collect::<Vec<_>>().join(", "),
        Value::Object(m) => m
            .iter()
            .map(|(k, v)| format!("{}: {}", humanise(k), value_text(v)))
            .collect::<Vec<_>>()
            .join("; "),
    }
}

/// An event's detail as `(label, value)` pairs, whole (nothing is cut).
pub fn readable_fields(detail: &serde_json::Value) -> Vec<(String, String)> {
    match detail {
        serde_json::Value::Null => Vec::new(),
        serde_json::Value::Object(m) => m
            .iter()
            .map(|(k, v)| (humanise(k), value_text(v)))
            .collect(),
        other => vec![("Detail".into(), value_text(other))],
    }
}

/// One part of the configuration summary: `[name]` and its keys.
#[derive(Debug, Clone)]
pub struct ConfigSection {
    pub name: String,
    pub rows: Vec<(String, String)>,
}

fn config_value(v: &serde_json::Value) -> String {
    use serde_json::Value;
    match v {
        Value::String(s) if s == SECRET_SET => "set".into(),
        Value::Null => "not set".into(),
        Value::Array(a) if !a.is_empty() && a.iter().all(|x| x.as_str() == Some(SECRET_SET)) => {
            format!("{} set", a.len())
        }
        Value::Array(a) if a.is_empty() => "none".into(),
        Value::Array(a) => a.iter().map(config_value).collect::<Vec<_>>().join(", "),
        Value::Bool(true) => "on".into(),
        Value::Bool(false) => "off".into(),
        other => value_text(other),
    }
}

fn flatten(
    path: &str,
    v: &serde_json::Value,
    sections: &mut BTreeMap<String, Vec<(String, String)>>,
) {
    let serde_json::Value::Object(map) = v else {
        return;
    };
    for (k, v) in map {
        match v {
            serde_json::Value::Object(_) => {
                let sub = if path.is_empty() {
                    k.clone()
                } else {
                    format!("{path}.{k}")
                };
                // An empty table still shows, so that "none" is visible.
                sections.entry(sub.clone()).or_default();
                flatten(&sub, v, sections);
            }
            other => sections
                .entry(if path.is_empty() {
                    "general".into()
                } else {
                    path.to_string()
                })
                .or_default()
                .push((k.clone(), config_value(other))),
        }
    }
}

/// The effective configuration as sections of `key = value`: every secret
/// shows as "set" or "not set", never its value.
pub fn config_summary(config: &Config) -> Vec<ConfigSection> {
    let value = serde_json::to_value(config).unwrap_or_default();
    let mut sections = BTreeMap::new();
    flatten("", &value, &mut sections);
    sections
        .into_iter()
        .filter(|(_, rows)| !rows.is_empty())
        .map(|(name, rows)| ConfigSection { name, rows })
        .collect()
}

impl AdminService {
    /// A page of native users whose email contains `q`.
    pub async fn users_console(
        &self,
        q: &str,
        sort: UserSort,
        desc: bool,
        page: i64,
    ) -> AuthResult<Paged<User>> {
        let q = q.trim().to_lowercase();
        let (total, rows) = self
            .db
            .read(move |conn| users::list_page(conn, &q, sort, desc, offset(page), PER_PAGE))
            .await?;
        Ok(Paged {
            items: rows.into_iter().map(|r| r.user).collect(),
            total,
            page: page.max(1),
            per_page: PER_PAGE,
        })
    }

    /// A page of orgs whose name or slug contains `q`, with member counts.
    pub async fn orgs_console(
        &self,
        q: &str,
        sort: OrgSort,
        desc: bool,
        page: i64,
    ) -> AuthResult<Paged<OrgListItem>> {
        let q = q.trim().to_lowercase();
        let (total, rows) = self
            .db
            .read(move |conn| orgs::list_page(conn, &q, sort, desc, offset(page), PER_PAGE))
            .await?;
        Ok(Paged {
            items: rows
                .into_iter()
                .map(|(o, members)| OrgListItem {
                    org: o.into(),
                    members,
                })
                .collect(),
            total,
            page: page.max(1),
            per_page: PER_PAGE,
        })
    }

    /// The id of the user with this email, or `None`.
    pub async fn user_id_by_email(&self, email: &str) -> AuthResult<Option<String>> {
        let email = email.trim().to_lowercase();
        Ok(self
            .db
            .read(move |conn| users::by_email(conn, &email))
            .await?
            .map(|r| r.user.id))
    }

    /// The org whose name, slug or id is `q`: `(id, name)`.
    pub async fn org_by_name(&self, q: &str) -> AuthResult<Option<(String, String)>> {
        let q = q.trim().to_string();
        Ok(self
            .db
            .read(move |conn| orgs::by_name(conn, &q))
            .await?
            .map(|o| (o.id, o.name)))
    }

    /// Events of `action` in the last `seconds`.
    pub async fn count_recent(&self, action: &'static str, seconds: i64) -> AuthResult<i64> {
        let since = self.clock.unix() - seconds;
        Ok(self
            .db
            .read(move |conn| audit::count_since(conn, action, since))
            .await?)
    }

    /// The actions the audit log holds.
    pub async fn known_actions(&self) -> AuthResult<Vec<String>> {
        Ok(self.db.read(audit::known_actions).await?)
    }

    /// A page of audit events, newest first, named.
    pub async fn audit_console(&self, q: AuditQuery, page: i64) -> AuthResult<Paged<AuditLine>> {
        let (total, rows) = self
            .db
            .read(move |conn| audit::page(conn, &q, offset(page), PER_PAGE))
            .await?;
        let views: Vec<AuditEventView> = rows.into_iter().map(Into::into).collect();
        Ok(Paged {
            items: self.name_events(views).await?,
            total,
            page: page.max(1),
            per_page: PER_PAGE,
        })
    }

    /// Events with their actor, user and org named by email and name.
    pub async fn name_events(&self, events: Vec<AuditEventView>) -> AuthResult<Vec<AuditLine>> {
        let mut user_ids = BTreeSet::new();
        let mut org_ids = BTreeSet::new();
        for e in &events {
            user_ids.extend(e.actor_id.clone());
            user_ids.extend(e.user_id.clone());
            org_ids.extend(e.org_id.clone());
        }
        let user_ids: Vec<String> = user_ids.into_iter().collect();
        let org_ids: Vec<String> = org_ids.into_iter().collect();
        let (emails, names) = self
            .db
            .read(move |conn| -> AuthResult<_> {
                Ok((
                    users::emails_of(conn, &user_ids)?
                        .into_iter()
                        .collect::<BTreeMap<_, _>>(),
                    orgs::names_of(conn, &org_ids)?
                        .into_iter()
                        .collect::<BTreeMap<_, _>>(),
                ))
            })
            .await?;
        let person = |id: &str, detail: &serde_json::Value| -> Named {
            if let Some(key) = id.strip_prefix("service_key:") {
                return Named {
                    label: format!("service key {key}…"),
                    href: None,
                };
            }
            let label = emails
                .get(id)
                .cloned()
                .or_else(|| {
                    detail
                        .get("email")
                        .and_then(|v| v.as_str())
                        .map(|s| format!("{s} (deleted)"))
                })
                .unwrap_or_else(|| id.to_string());
            Named {
                label,
                href: Some(format!("/admin/users/{id}")),
            }
        };
        Ok(events
            .into_iter()
            .map(|e| {
                let org = e.org_id.as_deref().map(|id| match names.get(id) {
                    Some(name) => Named {
                        label: name.clone(),
                        href: Some(format!("/admin/orgs/{id}")),
                    },
                    None => Named {
                        label: e
                            .detail
                            .get("slug")
                            .and_then(|v| v.as_str())
                            .map_or_else(|| id.to_string(), |s| format!("{s} (deleted)")),
                        href: None,
                    },
                });
                AuditLine {
                    id: e.id,
                    at: e.at,
                    actor: e
                        .actor_id
                        .as_deref()
                        .map(|a| person(a, &serde_json::Value::Null)),
                    user: e.user_id.as_deref().map(|u| person(u, &e.detail)),
                    org,
                    device: e
                        .user_agent
                        .as_deref()
                        .and_then(crate::domain::device::device_name),
                    ip: e.ip,
                    fields: readable_fields(&e.detail),
                    action: e.action,
                }
            })
            .collect())
    }

    /// Sign-ins and sign-ups per UTC day, for the last `days` days (today
    /// last).
    pub async fn activity(&self, days: i64) -> AuthResult<Vec<DayCount>> {
        let now = self.clock.unix();
        let today = now - now.rem_euclid(86_400);
        let since = today - (days - 1) * 86_400;
        let (ins, ups) = self
            .db
            .read(move |conn| -> AuthResult<_> {
                Ok((
                    audit::per_day(conn, "sign_in", since)?
                        .into_iter()
                        .collect::<BTreeMap<_, _>>(),
                    audit::per_day(conn, "sign_up", since)?
                        .into_iter()
                        .collect::<BTreeMap<_, _>>(),
                ))
            })
            .await?;
        Ok((0..days)
            .map(|i| {
                let day = since + i * 86_400;
                DayCount {
                    day: from_unix(day),
                    sign_ins: ins.get(&day).copied().unwrap_or(0),
                    sign_ups: ups.get(&day).copied().unwrap_or(0),
                }
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_have_thousands_separators() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1234), "1,234");
        assert_eq!(thousands(1_234_567), "1,234,567");
    }

    #[test]
    fn details_read_as_fields() {
        let fields = readable_fields(&serde_json::json!({
            "orgs_deleted": ["a", "b"],
            "email_confirmed": true,
            "method": "password",
        }));
        assert_eq!(
            fields,
            vec![
                ("Email confirmed".to_string(), "yes".to_string()),
                ("Method".into(), "password".into()),
                ("Orgs deleted".into(), "a, b".into()),
            ]
        );
    }
}
