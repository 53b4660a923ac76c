//! Organizations: slugs and ordered member roles.

use serde::Serialize;
use std::fmt;
use time::OffsetDateTime;

/// `owner > admin > member`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, utoipa::ToSchema)]
#[schema(rename_all = "lowercase")]
pub enum OrgRole {
    Member,
    Admin,
    Owner,
}

impl OrgRole {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Member => "member",
            Self::Admin => "admin",
            Self::Owner => "owner",
        }
    }

    pub fn parse(value: &str) -> Option<Self> {
        match value {
            "member" => Some(Self::Member),
            "admin" => Some(Self::Admin),
            "owner" => Some(Self::Owner),
            _ => None,
        }
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
        assert!(OrgRole::Owner > OrgRole::Admin && OrgRole::Admin > OrgRole::Member);
        assert_eq!(OrgRole::parse("admin"), Some(OrgRole::Admin));
        assert_eq!(OrgRole::parse("root"), None);
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
    pub role: OrgRole,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct MemberView {
    pub user_id: String,
    pub email: String,
    pub role: OrgRole,
    #[serde(with = "time::serde::rfc3339")]
    pub joined_at: OffsetDateTime,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
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
