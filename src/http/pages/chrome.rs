//! What every page shows around its content: product name, logo, flash,
//! who is signed in, the language and the password policy's hints.

use super::session::Flash;
use crate::domain::i18n::Tr;

/// What every page shows around its content.
#[derive(Debug, Clone)]
pub struct Chrome {
    pub product_name: String,
    pub logo_url: Option<String>,
    pub csrf: String,
    pub flash: Option<Flash>,
    pub signed_in: Option<String>,
    /// The header links to the admin console (authorization is checked there).
    pub admin: bool,
    pub title: String,
    /// The page's language.
    pub tr: Tr,
    /// `[hosted] custom_css` is set: link `/static/custom.css`.
    pub custom_css: bool,
    /// `[auth.native.password]`, for new-password fields.
    pub password: PasswordRules,
}

/// The password policy as a new-password field shows it before anything is
/// submitted: `minlength`/`maxlength` and a hint under the field.
#[derive(Debug, Clone)]
pub struct PasswordRules {
    pub min: usize,
    pub max: usize,
    /// "At least 12 characters. Include an uppercase letter and a digit."
    pub hint: String,
}

impl PasswordRules {
    pub fn new(p: &crate::domain::password::PasswordConfig, tr: Tr) -> Self {
        let mut hint = tr.f("common.password_help", &[("n", &p.min_length.to_string())]);
        let classes: Vec<&str> = [
            (p.require_uppercase, "password.uppercase"),
            (p.require_lowercase, "password.lowercase"),
            (p.require_digit, "password.digit"),
            (p.require_special, "password.special"),
        ]
        .into_iter()
        .filter(|(on, _)| *on)
        .map(|(_, key)| tr.t(key))
        .collect();
        if let Some((last, rest)) = classes.split_last() {
            let list = if rest.is_empty() {
                last.to_string()
            } else {
                format!("{} {} {last}", rest.join(", "), tr.t("password.and"))
            };
            hint.push(' ');
            hint.push_str(&tr.f("password.classes", &[("list", &list)]));
        }
        Self {
            min: p.min_length,
            max: p.max_length,
            hint,
        }
    }
}

impl Chrome {
    /// The text of `key` in the page's language.
    pub fn t(&self, key: &'static str) -> &'static str {
        self.tr.t(key)
    }

    /// The text of `key` with `{name}` filled by `value`.
    pub fn f1(&self, key: &'static str, name: &str, value: impl std::fmt::Display) -> String {
        self.tr.f(key, &[(name, &value.to_string())])
    }

    /// The text of `key` with two placeholders filled.
    pub fn f2(
        &self,
        key: &'static str,
        n1: &str,
        v1: impl std::fmt::Display,
        n2: &str,
        v2: impl std::fmt::Display,
    ) -> String {
        self.tr
            .f(key, &[(n1, &v1.to_string()), (n2, &v2.to_string())])
    }

    /// The text of `key` with three placeholders filled.
    #[allow(clippy::too_many_arguments)]
    pub fn f3(
        &self,
        key: &'static str,
        n1: &str,
        v1: impl std::fmt::Display,
        n2: &str,
        v2: impl std::fmt::Display,
        n3: &str,
        v3: impl std::fmt::Display,
    ) -> String {
        self.tr.f(
            key,
            &[
                (n1, &v1.to_string()),
                (n2, &v2.to_string()),
                (n3, &v3.to_string()),
            ],
        )
    }

    /// The `one` or `other` form of `key` for `n`.
    pub fn plural(&self, key: &'static str, n: impl TryInto<u64>) -> String {
        self.tr.plural(key, n.try_into().unwrap_or(0))
    }

    /// An org role's name.
    pub fn role(&self, role: &str) -> &'static str {
        match role {
            "owner" => self.tr.t("role.owner"),
            "admin" => self.tr.t("role.admin"),
            _ => self.tr.t("role.member"),
        }
    }

    /// `<html lang>`.
    pub fn lang(&self) -> &'static str {
        self.tr.locale()
    }
}
