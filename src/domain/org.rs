//! Organizations: slugs and ordered member roles.

use serde::Serialize;
use std::collections::HashSet;
use std::fmt;
use std::sync::{Arc, Mutex};
use time::OffsetDateTime;

/// An org member's role. `owner > admin > member`; a custom role (any name
/// configured in `[orgs] roles`, for example `billing`) has a member's
/// rights and keeps its name, for apps to check.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum OrgRole {
    Member,
    Admin,
    Owner,
    Custom(String),
}

/// The built-in role names.
pub const BUILT_IN_ROLES: [&str; 3] = ["owner", "admin", "member"];

impl OrgRole {
    pub fn as_str(&self) -> &str {
        match self {
            Self::Member => "member",
            Self::Admin => "admin",
            Self::Owner => "owner",
            Self::Custom(name) => name,
        }
    }

    /// A built-in role by name.
    pub fn parse(value: &str) -> Option<Self> {
        match value {
            "member" => Some(Self::Member),
            "admin" => Some(Self::Admin),
            "owner" => Some(Self::Owner),
            _ => None,
        }
    }

    /// A role as stored: a built-in one, or a custom one by name (whether
    /// it is still configured is [`OrgRoles::effective`]'s question).
    pub fn from_stored(value: &str) -> Self {
        Self::parse(value).unwrap_or_else(|| Self::Custom(value.to_string()))
    }

    /// 0 member (and custom roles), 1 admin, 2 owner.
    fn rank(&self) -> u8 {
        match self {
            Self::Member | Self::Custom(_) => 0,
            Self::Admin => 1,
            Self::Owner => 2,
        }
    }

    /// This role has at least `min`'s rights.
    pub fn at_least(&self, min: &OrgRole) -> bool {
        self.rank() >= min.rank()
    }

    pub fn is_owner(&self) -> bool {
        *self == Self::Owner
    }
}

impl fmt::Display for OrgRole {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for OrgRole {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// A custom role's name: 1-50 characters of a-z, 0-9, `-`, `_` and `:`,
/// starting with a letter, and not a built-in role.
pub fn valid_role_name(name: &str) -> Result<(), &'static str> {
    let ok = !name.is_empty()
        && name.len() <= 50
        && name.as_bytes()[0].is_ascii_lowercase()
        && name.bytes().all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'-' | b'_' | b':')
        });
    if !ok {
        return Err(
            "must be 1-50 characters of a-z, 0-9, '-', '_' and ':', starting with a letter",
        );
    }
    if BUILT_IN_ROLES.contains(&name) {
        return Err("is a built-in role");
    }
    Ok(())
}

/// The roles this server accepts: the built-in ones and the custom ones
/// configured in `[orgs] roles`.
#[derive(Debug, Clone, Default)]
pub struct OrgRoles {
    custom: Arc<[String]>,
    /// Stored roles no longer configured that were already warned about.
    warned: Arc<Mutex<HashSet<String>>>,
}

impl OrgRoles {
    pub fn new(custom: &[String]) -> Self {
        Self {
            custom: custom.into(),
            warned: Arc::default(),
        }
    }

    /// A role named in a request: built-in or configured, else `None`.
    pub fn parse(&self, raw: &str) -> Option<OrgRole> {
        OrgRole::parse(raw).or_else(|| {
            self.custom
                .iter()
                .any(|c| c == raw)
                .then(|| OrgRole::Custom(raw.to_string()))
        })
    }

    /// Every accepted name, built-in first (for messages and forms).
    pub fn names(&self) -> Vec<String> {
        ["member", "admin", "owner"]
            .iter()
            .map(|s| s.to_string())
            .chain(self.custom.iter().cloned())
            .collect()
    }

    /// The custom role names, as configured.
    pub fn custom(&self) -> &[String] {
        &self.custom
    }

    /// What a stored role means now: a custom role that is no longer
    /// configured is a member (its rights were a member's anyway; its name
    /// is no longer claimed), with a warning naming it once per process.
    pub fn effective(&self, role: OrgRole) -> OrgRole {
        match role {
            OrgRole::Custom(name) if !self.custom.contains(&name) => {
                if let Ok(mut warned) = self.warned.lock()
                    && warned.insert(name.clone())
                {
                    tracing::warn!(
                        role = %name,
                        "org members hold the role `{name}`, which is not in [orgs] roles: they are treated as `member` (add it back to keep it)"
                    );
                }
                OrgRole::Member
            }
            other => other,
        }
    }

    /// A "needs one of" message for a bad role field.
    pub fn expected(&self) -> String {
        format!("must be one of: {}", self.names().join(", "))
    }
}

/// Words that would collide with derp's own pages and routes.
pub const RESERVED_SLUGS: &[&str] = &[
    "admin",
    "api",
    "new",
    "settings",
    "login",
    "logout",
    "signup",
    "account",
    "orgs",
    "invitations",
    "static",
    "assets",
    "auth",
    "oauth",
    "well-known",
    "me",
    "help",
    "support",
    "www",
    "derp",
];

/// A validated org slug: `^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$`, not
/// reserved, and not shaped like an org id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct Slug(String);

impl Slug {
    /// A slug made from an org's name: lower case, common accents dropped
    /// (`ä` → `a`, `ß` → `ss`), every other run of characters a dash, at
    /// most 63 bytes; empty when the name has no letter or digit.
    pub fn suggest(name: &str) -> String {
        let mut out = String::new();
        for c in name.trim().to_lowercase().chars() {
            let plain = match c {
                'à' | 'á' | 'â' | 'ã' | 'ä' | 'å' => "a",
                'ç' => "c",
                'è' | 'é' | 'ê' | 'ë' => "e",
                'ì' | 'í' | 'î' | 'ï' => "i",
                'ñ' => "n",
                'ò' | 'ó' | 'ô' | 'õ' | 'ö' | 'ø' => "o",
                'ù' | 'ú' | 'û' | 'ü' => "u",
                'ý' | 'ÿ' => "y",
                'ß' => "ss",
                'æ' => "ae",
                'œ' => "oe",
                c if c.is_ascii_alphanumeric() => {
                    out.push(c);
                    continue;
                }
                _ => "-",
            };
            if plain == "-" {
                if !out.is_empty() && !out.ends_with('-') {
                    out.push('-');
                }
            } else {
                out.push_str(plain);
            }
        }
        out.truncate(63);
        out.trim_matches('-').to_string()
    }

    pub fn parse(raw: &str) -> Result<Self, &'static str> {
        let s = raw.trim();
        let bytes = s.as_bytes();
        let edge_ok = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
        let ok = !s.is_empty()
            && s.len() <= 63
            && bytes.first().copied().is_some_and(edge_ok)
            && bytes.last().copied().is_some_and(edge_ok)
            && bytes.iter().all(|&b| edge_ok(b) || b == b'-');
        if !ok {
            return Err(
                "must be 1-63 characters of a-z, 0-9 and '-', starting and ending with a letter or digit",
            );
        }
        if RESERVED_SLUGS.contains(&s) {
            return Err("is reserved");
        }
        if uuid::Uuid::parse_str(s).is_ok() {
            return Err("must not look like an org id");
        }
        Ok(Self(s.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// An org's display name: trimmed, 1 to 100 characters.
pub fn parse_org_name(raw: &str) -> Result<String, &'static str> {
    let name = raw.trim();
    match name.chars().count() {
        0 => Err("is required"),
        n if n > 100 => Err("must be at most 100 characters"),
        _ => Ok(name.to_string()),
    }
}

#[cfg(test)]
mod tests {

    #[test]
    fn slugs_are_suggested_from_names() {
        assert_eq!(Slug::suggest("Acme Inc."), "acme-inc");
        assert_eq!(Slug::suggest("  Müller & Söhne GmbH "), "muller-sohne-gmbh");
        assert_eq!(Slug::suggest("Straße 42"), "strasse-42");
        assert_eq!(Slug::suggest("!!!"), "");
        assert!(Slug::suggest(&"x".repeat(100)).len() <= 63);
        assert!(Slug::parse(&Slug::suggest("Équipe Été")).is_ok());
    }

    use super::*;

    #[test]
    fn slugs() {
        for good in ["acme", "a", "acme-inc", "0day", &"a".repeat(63)] {
            assert!(Slug::parse(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "-acme",
            "acme-",
            "Acme",
            "ac me",
            "acme_inc",
            "admin",
            "api",
            "new",
            &"a".repeat(64),
            "0190a6b2-0000-7000-8000-000000000000",
        ] {
            assert!(Slug::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn roles_are_ordered() {
        assert!(
            OrgRole::Owner.at_least(&OrgRole::Admin) && OrgRole::Admin.at_least(&OrgRole::Member)
        );
        assert!(!OrgRole::Admin.at_least(&OrgRole::Owner));
        assert_eq!(OrgRole::parse("admin"), Some(OrgRole::Admin));
        assert_eq!(OrgRole::parse("root"), None);
        let billing = OrgRole::Custom("billing".into());
        assert!(billing.at_least(&OrgRole::Member) && !billing.at_least(&OrgRole::Admin));
    }

    #[test]
    fn custom_roles_are_configured_by_name_and_forgotten_ones_are_members() {
        let roles = OrgRoles::new(&["billing".into(), "support".into()]);
        assert_eq!(
            roles.parse("billing"),
            Some(OrgRole::Custom("billing".into()))
        );
        assert_eq!(roles.parse("owner"), Some(OrgRole::Owner));
        assert_eq!(roles.parse("root"), None);
        assert_eq!(
            roles.names(),
            ["member", "admin", "owner", "billing", "support"]
        );
        let stored = OrgRole::from_stored("billing");
        assert_eq!(roles.effective(stored.clone()), stored);
        let forgotten = OrgRole::from_stored("sales");
        assert_eq!(roles.effective(forgotten), OrgRole::Member);
        assert_eq!(
            OrgRoles::default().effective(OrgRole::Admin),
            OrgRole::Admin
        );
        for bad in ["", "Billing", "owner", "1st", "a b", &"a".repeat(51)] {
            assert!(valid_role_name(bad).is_err(), "{bad}");
        }
        for good in ["billing", "org:billing", "support_2", "read-only"] {
            assert!(valid_role_name(good).is_ok(), "{good}");
        }
    }

    #[test]
    fn names() {
        assert_eq!(parse_org_name("  Acme Inc ").unwrap(), "Acme Inc");
        assert!(parse_org_name("   ").is_err());
        assert!(parse_org_name(&"x".repeat(101)).is_err());
    }
}

/// Orgs, members and invitations as the API (and webhooks) show them.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct OrgView {
    pub id: String,
    pub name: String,
    pub slug: String,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// Making the org active needs a session with a second factor.
    pub require_mfa: bool,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct OrgWithRole {
    pub org: OrgView,
    /// `owner`, `admin`, `member` or a custom role configured in `[orgs] roles`.
    #[schema(value_type = String, example = "member")]
    pub role: OrgRole,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct MemberView {
    pub user_id: String,
    pub email: String,
    /// `owner`, `admin`, `member` or a custom role configured in `[orgs] roles`.
    #[schema(value_type = String, example = "member")]
    pub role: OrgRole,
    #[serde(with = "time::serde::rfc3339")]
    pub joined_at: OffsetDateTime,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct InvitationView {
    pub id: String,
    pub org_id: String,
    pub email: String,
    /// `owner`, `admin`, `member` or a custom role configured in `[orgs] roles`.
    #[schema(value_type = String, example = "member")]
    pub role: OrgRole,
    pub invited_by: String,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub expires_at: OffsetDateTime,
}
