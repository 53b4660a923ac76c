//! The messages derp sends, rendered from askama templates (HTML and plain
//! text) in `templates/email/`. A deployment may replace any of them with
//! files in `[email] templates_dir`: `<kind>.txt`, `<kind>.html` and
//! `<kind>.subject`, where `{{ link }}`, `{{ email }}`, `{{ site_name }}`,
//! `{{ site_url }}`, `{{ expires_in }}`, `{{ org_name }}` and `{{ role }}` are
//! replaced (HTML-escaped in `.html`). Lifetimes always come from config.

use super::Mail;
use crate::domain::color::{Rgb, Theme};
use crate::domain::i18n::{self, Tr};
use askama::Template;
use std::collections::HashMap;
use std::path::Path;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MailKind {
    Confirm,
    AlreadyRegistered,
    MagicLink,
    Reset,
    PasswordChanged,
    Invitation,
    MfaRemoved,
}

impl MailKind {
    pub const ALL: [MailKind; 7] = [
        Self::Confirm,
        Self::AlreadyRegistered,
        Self::MagicLink,
        Self::Reset,
        Self::PasswordChanged,
        Self::Invitation,
        Self::MfaRemoved,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Self::Confirm => "confirm",
            Self::AlreadyRegistered => "already_registered",
            Self::MagicLink => "magic_link",
            Self::Reset => "reset",
            Self::PasswordChanged => "password_changed",
            Self::Invitation => "invitation",
            Self::MfaRemoved => "mfa_removed",
        }
    }

    /// The key prefix of the kind's texts in the catalogues.
    fn key(self, part: &'static str) -> &'static str {
        match (self, part) {
            (Self::Confirm, "subject") => "mail.confirm.subject",
            (Self::AlreadyRegistered, "subject") => "mail.already.subject",
            (Self::MagicLink, "subject") => "mail.magic.subject",
            (Self::Reset, "subject") => "mail.reset.subject",
            (Self::PasswordChanged, "subject") => "mail.changed.subject",
            (Self::Invitation, "subject") => "mail.invitation.subject",
            (Self::MfaRemoved, "subject") => "mail.mfa_removed.subject",
            _ => "mail.hello",
        }
    }

    fn default_subject(self, c: &EmailContext) -> String {
        c.tx(self.key("subject"))
    }
}

/// Site name and URL shown in messages.
#[derive(Debug, Clone)]
pub struct Site {
    pub name: String,
    pub url: String,
    /// `[hosted] primary_color`: the buttons and links of HTML mail.
    pub primary_color: String,
    /// `[hosted] default_locale`: the language of mail sent with none.
    pub default_locale: String,
}

/// Everything a template may show.
#[derive(Debug, Clone, Default)]
pub struct EmailContext {
    pub site_name: String,
    pub site_url: String,
    pub email: String,
    pub link: String,
    pub expires_in: String,
    pub org_name: String,
    pub role: String,
    /// The recipient's language.
    pub t: Tr,
    /// Button colour, its text colour and the link colour (readable on
    /// white), from the brand colour.
    pub primary: String,
    pub on_primary: String,
    pub link_color: String,
}

impl EmailContext {
    /// The text of `key` in the recipient's language, every `{field}` of
    /// the message filled.
    pub fn tx(&self, key: &'static str) -> String {
        self.t.f(
            key,
            &[
                ("site_name", &self.site_name),
                ("site_url", &self.site_url),
                ("email", &self.email),
                ("expires_in", &self.expires_in),
                ("org_name", &self.org_name),
                ("role", &self.role),
            ],
        )
    }
}

macro_rules! pair {
    ($txt:ident, $txt_path:literal, $html:ident, $html_path:literal) => {
        #[derive(Template)]
        #[template(path = $txt_path)]
        struct $txt<'a> {
            c: &'a EmailContext,
        }
        #[derive(Template)]
        #[template(path = $html_path)]
        struct $html<'a> {
            c: &'a EmailContext,
        }
    };
}

pair!(
    ConfirmTxt,
    "email/confirm.txt",
    ConfirmHtml,
    "email/confirm.html"
);
pair!(
    AlreadyTxt,
    "email/already_registered.txt",
    AlreadyHtml,
    "email/already_registered.html"
);
pair!(
    MagicTxt,
    "email/magic_link.txt",
    MagicHtml,
    "email/magic_link.html"
);
pair!(ResetTxt, "email/reset.txt", ResetHtml, "email/reset.html");
pair!(
    ChangedTxt,
    "email/password_changed.txt",
    ChangedHtml,
    "email/password_changed.html"
);
pair!(
    MfaRemovedTxt,
    "email/mfa_removed.txt",
    MfaRemovedHtml,
    "email/mfa_removed.html"
);
pair!(
    InviteTxt,
    "email/invitation.txt",
    InviteHtml,
    "email/invitation.html"
);

fn builtin(kind: MailKind, c: &EmailContext) -> Result<(String, String), askama::Error> {
    Ok(match kind {
        MailKind::Confirm => (ConfirmTxt { c }.render()?, ConfirmHtml { c }.render()?),
        MailKind::AlreadyRegistered => (AlreadyTxt { c }.render()?, AlreadyHtml { c }.render()?),
        MailKind::MagicLink => (MagicTxt { c }.render()?, MagicHtml { c }.render()?),
        MailKind::Reset => (ResetTxt { c }.render()?, ResetHtml { c }.render()?),
        MailKind::PasswordChanged => (ChangedTxt { c }.render()?, ChangedHtml { c }.render()?),
        MailKind::Invitation => (InviteTxt { c }.render()?, InviteHtml { c }.render()?),
        MailKind::MfaRemoved => (
            MfaRemovedTxt { c }.render()?,
            MfaRemovedHtml { c }.render()?,
        ),
    })
}

#[derive(Debug, Clone)]
pub struct Templates {
    site: Site,
    overrides: HashMap<(MailKind, &'static str), String>,
}

impl Templates {
    /// Reads the overrides in `dir` once, at start.
    pub fn load(site: Site, dir: Option<&Path>) -> Result<Self, String> {
        let mut overrides = HashMap::new();
        if let Some(dir) = dir {
            if !dir.is_dir() {
                return Err(format!(
                    "email.templates_dir: {} is not a directory",
                    dir.display()
                ));
            }
            for kind in MailKind::ALL {
                for ext in ["txt", "html", "subject"] {
                    let path = dir.join(format!("{}.{ext}", kind.name()));
                    if path.exists() {
                        let text = std::fs::read_to_string(&path)
                            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
                        overrides.insert((kind, ext), text);
                    }
                }
            }
        }
        Ok(Self { site, overrides })
    }

    pub fn site(&self) -> &Site {
        &self.site
    }

    /// Renders `kind` for `to` in `locale` (the site's default language
    /// when it is empty or not shipped). `org` is `(org name, role)` for
    /// invitations; `lifetime_seconds` the life of the link.
    pub fn render(
        &self,
        kind: MailKind,
        locale: &str,
        to: &str,
        link: &str,
        lifetime_seconds: i64,
        org: Option<(&str, &str)>,
    ) -> Mail {
        let t = Tr::new(
            i18n::shipped(locale)
                .or_else(|| i18n::shipped(&self.site.default_locale))
                .unwrap_or(i18n::REFERENCE),
        );
        let theme = Theme::from_primary(
            Rgb::parse(&self.site.primary_color).unwrap_or(Rgb(0x4f, 0x46, 0xe5)),
        );
        let expires_in = duration_text(t, lifetime_seconds);
        let role = org
            .map(|o| match o.1 {
                "owner" => t.t("role.owner").to_string(),
                "admin" => t.t("role.admin").to_string(),
                "member" => t.t("role.member").to_string(),
                other => other.to_string(),
            })
            .unwrap_or_default();
        let c = EmailContext {
            t,
            primary: theme.primary.hex(),
            on_primary: theme.on_primary.hex(),
            link_color: theme.link.hex(),
            site_name: self.site.name.clone(),
            site_url: self.site.url.clone(),
            email: to.to_string(),
            link: link.to_string(),
            expires_in,
            org_name: org.map(|o| o.0.to_string()).unwrap_or_default(),
            role,
        };
        let (mut text, mut html) = builtin(kind, &c).unwrap_or_else(|e| {
            tracing::error!(error = %e, kind = kind.name(), "mail template failed");
            (
                format!("{}\n\n{}\n", kind.default_subject(&c), c.link),
                String::new(),
            )
        });
        if let Some(t) = self.overrides.get(&(kind, "txt")) {
            text = substitute(t, &c, false);
        }
        if let Some(t) = self.overrides.get(&(kind, "html")) {
            html = substitute(t, &c, true);
        }
        let subject = match self.overrides.get(&(kind, "subject")) {
            Some(s) => substitute(s.trim(), &c, false),
            None => kind.default_subject(&c),
        };
        Mail {
            to: to.to_string(),
            subject,
            text,
            html: (!html.is_empty()).then_some(html),
            kind: kind.name().to_string(),
            message_id: None,
        }
    }
}

fn substitute(template: &str, c: &EmailContext, html: bool) -> String {
    let values = [
        ("link", &c.link),
        ("email", &c.email),
        ("site_name", &c.site_name),
        ("site_url", &c.site_url),
        ("expires_in", &c.expires_in),
        ("org_name", &c.org_name),
        ("role", &c.role),
    ];
    let mut out = template.to_string();
    for (name, value) in values {
        let value = if html {
            escape_html(value)
        } else {
            value.clone()
        };
        for pattern in [format!("{{{{ {name} }}}}"), format!("{{{{{name}}}}}")] {
            out = out.replace(&pattern, &value);
        }
    }
    out
}

fn escape_html(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

/// "24 hours", "60 minutes", "7 days", "1 hour" in `t`'s language.
pub fn duration_text(t: Tr, seconds: i64) -> String {
    let n = |v: i64| u64::try_from(v).unwrap_or(0);
    if seconds % 86_400 == 0 && seconds >= 86_400 * 2 {
        t.plural("duration.day", n(seconds / 86_400))
    } else if seconds % 3600 == 0 && seconds >= 3600 {
        t.plural("duration.hour", n(seconds / 3600))
    } else {
        t.plural("duration.minute", n((seconds / 60).max(1)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn site() -> Site {
        Site {
            name: "Acme".into(),
            url: "https://acme.test".into(),
            primary_color: "#facc15".into(),
            default_locale: "en".into(),
        }
    }

    #[test]
    fn every_builtin_template_renders_text_and_html() {
        let t = Templates::load(site(), None).unwrap();
        for kind in MailKind::ALL {
            let m = t.render(
                kind,
                "",
                "a@x.io",
                "https://acme.test/l?token=abc&x=1",
                7200,
                Some(("Org <b>", "admin")),
            );
            assert!(
                m.text.contains("https://acme.test/l?token=abc&x=1"),
                "{kind:?} text has the raw link"
            );
            let html = m.html.expect("html part");
            assert!(html.contains("Acme"));
            if !matches!(
                kind,
                MailKind::PasswordChanged | MailKind::AlreadyRegistered | MailKind::MfaRemoved
            ) {
                assert!(
                    m.text.contains("2 hours"),
                    "{kind:?} lifetime from the caller"
                );
            }
            assert!(!html.contains("<b>"), "values are escaped in HTML");
        }
    }

    #[test]
    fn overrides_replace_text_html_and_subject() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("confirm.txt"),
            "Click {{ link }} within {{expires_in}}",
        )
        .unwrap();
        std::fs::write(
            dir.path().join("confirm.html"),
            "<a href=\"{{ link }}\">go</a>",
        )
        .unwrap();
        std::fs::write(
            dir.path().join("confirm.subject"),
            "Welcome to {{ site_name }}\n",
        )
        .unwrap();
        let t = Templates::load(site(), Some(dir.path())).unwrap();
        let m = t.render(
            MailKind::Confirm,
            "",
            "a@x.io",
            "https://acme.test/c?a=1&b=2",
            3 * 3600,
            None,
        );
        assert_eq!(m.text, "Click https://acme.test/c?a=1&b=2 within 3 hours");
        assert_eq!(
            m.html.unwrap(),
            "<a href=\"https://acme.test/c?a=1&amp;b=2\">go</a>"
        );
        assert_eq!(m.subject, "Welcome to Acme");
        assert!(
            t.render(MailKind::Reset, "", "a@x.io", "l", 3600, None)
                .text
                .contains("reset")
        );
    }

    #[test]
    fn durations_read_naturally() {
        let en = Tr::new("en");
        assert_eq!(duration_text(en, 86_400), "24 hours");
        assert_eq!(duration_text(en, 3600), "1 hour");
        assert_eq!(duration_text(en, 60 * 60 * 2), "2 hours");
        assert_eq!(duration_text(en, 60 * 90), "90 minutes");
        assert_eq!(duration_text(en, 86_400 * 7), "7 days");
        assert_eq!(duration_text(Tr::new("de"), 86_400 * 7), "7 Tagen");
    }

    #[test]
    fn mail_is_in_the_asked_language_with_the_brand_colour() {
        let t = Templates::load(site(), None).unwrap();
        let m = t.render(MailKind::Reset, "de", "a@x.io", "https://l", 3600, None);
        assert!(m.subject.contains("Passwort"), "{}", m.subject);
        let html = m.html.unwrap();
        assert!(html.contains("lang=\"de\""));
        assert!(html.contains("#facc15"), "button in the brand colour");
        let m = t.render(MailKind::Reset, "xx", "a@x.io", "https://l", 3600, None);
        assert!(
            m.subject.starts_with("Reset"),
            "unknown language: the default"
        );
    }
}
