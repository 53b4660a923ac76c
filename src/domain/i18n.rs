//! Translations of the hosted pages and mails. Each shipped language is one
//! TOML catalogue in `locales/` (embedded in the binary): `[section]` tables
//! of `key = "text"`, read as `section.key`. Texts may hold `{name}`
//! placeholders that the caller fills. English (`en`) is the reference: a
//! key missing elsewhere falls back to it (a test keeps the catalogues
//! complete). The language of a request comes from [`negotiate`].

use rust_embed::RustEmbed;
use std::collections::{BTreeMap, HashMap};
use std::sync::LazyLock;

#[derive(RustEmbed)]
#[folder = "locales/"]
struct Files;

/// The reference catalogue, complete by definition.
pub const REFERENCE: &str = "en";

type Catalogue = HashMap<String, String>;

static CATALOGUES: LazyLock<BTreeMap<&'static str, Catalogue>> = LazyLock::new(|| {
    let mut out = BTreeMap::new();
    for name in Files::iter() {
        let Some(code) = name.strip_suffix(".toml") else {
            continue;
        };
        let Some(file) = Files::get(&name) else {
            continue;
        };
        let text = String::from_utf8_lossy(&file.data);
        match parse(&text) {
            Ok(cat) => {
                out.insert(&*Box::leak(code.to_string().into_boxed_str()), cat);
            }
            Err(e) => tracing::error!(locale = code, error = %e, "locale file is broken"),
        }
    }
    out
});

/// A catalogue's text as flat `section.key` entries.
pub fn parse(text: &str) -> Result<Catalogue, String> {
    let table: toml::Table = toml::from_str(text).map_err(|e| e.to_string())?;
    let mut out = HashMap::new();
    flatten("", &table, &mut out)?;
    Ok(out)
}

fn flatten(prefix: &str, table: &toml::Table, out: &mut Catalogue) -> Result<(), String> {
    for (k, v) in table {
        let key = if prefix.is_empty() {
            k.clone()
        } else {
            format!("{prefix}.{k}")
        };
        match v {
            toml::Value::String(s) => {
                out.insert(key, s.clone());
            }
            toml::Value::Table(t) => flatten(&key, t, out)?,
            _ => return Err(format!("{key}: a text is expected")),
        }
    }
    Ok(())
}

/// The shipped languages (`en`, `de`, …), sorted.
pub fn locales() -> Vec<&'static str> {
    CATALOGUES.keys().copied().collect()
}

/// The shipped language `code` names, as the catalogue's own `&'static`
/// code; `None` when it is not shipped.
pub fn shipped(code: &str) -> Option<&'static str> {
    let code = code.trim().to_ascii_lowercase();
    CATALOGUES.keys().copied().find(|c| *c == code)
}

/// The keys of a shipped catalogue (for tests and tooling).
pub fn keys(code: &str) -> Vec<String> {
    let mut k: Vec<String> = CATALOGUES
        .get(code)
        .map(|c| c.keys().cloned().collect())
        .unwrap_or_default();
    k.sort();
    k
}

/// The language for an `Accept-Language` header: the shipped language with
/// the highest q-value (a regional tag such as `de-CH` counts for `de`,
/// `q=0` means "not this one", `*` means `default`), else `default`.
pub fn negotiate(accept_language: Option<&str>, default: &'static str) -> &'static str {
    let Some(header) = accept_language else {
        return default;
    };
    let mut ranges: Vec<(f32, usize, &str)> = Vec::new();
    for (i, part) in header.split(',').enumerate().take(32) {
        let mut bits = part.split(';');
        let tag = bits.next().unwrap_or("").trim();
        if tag.is_empty() {
            continue;
        }
        let mut q = 1.0f32;
        for p in bits {
            if let Some(v) = p.trim().strip_prefix("q=").or(p.trim().strip_prefix("Q=")) {
                q = v.trim().parse().unwrap_or(0.0);
            }
        }
        if q > 0.0 {
            ranges.push((q, i, tag));
        }
    }
    ranges.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
    for (_, _, tag) in ranges {
        if tag == "*" {
            return default;
        }
        let primary = tag.split(['-', '_']).next().unwrap_or(tag);
        if let Some(code) = shipped(tag).or_else(|| shipped(primary)) {
            return code;
        }
    }
    default
}

/// Texts in one language. Cheap to copy; its texts live as long as the
/// program.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tr {
    locale: &'static str,
}

impl Default for Tr {
    fn default() -> Self {
        Self { locale: REFERENCE }
    }
}

impl Tr {
    /// `code` when shipped, else English.
    pub fn new(code: &str) -> Self {
        Self {
            locale: shipped(code).unwrap_or(REFERENCE),
        }
    }

    /// The language code, for `<html lang>` and mails.
    pub fn locale(&self) -> &'static str {
        self.locale
    }

    /// The text of `key` (English when this catalogue lacks it; the key
    /// itself when no catalogue has it).
    pub fn t(&self, key: &'static str) -> &'static str {
        CATALOGUES
            .get(self.locale)
            .and_then(|c| c.get(key))
            .or_else(|| CATALOGUES.get(REFERENCE).and_then(|c| c.get(key)))
            .map_or(key, String::as_str)
    }

    /// The text of `key` with its `{name}` placeholders filled.
    pub fn f(&self, key: &'static str, args: &[(&str, &str)]) -> String {
        fill(self.t(key), args)
    }

    /// `n` with the `one` or `other` form of `key` (`key.one`,
    /// `key.other`), `{n}` filled.
    pub fn plural(&self, key: &'static str, n: u64) -> String {
        let text = match (n, key) {
            (1, k) => self.t(leak_key(k, "one")),
            (_, k) => self.t(leak_key(k, "other")),
        };
        fill(text, &[("n", &n.to_string())])
    }
}

/// `key.form` as a `'static` key (plural keys are few and fixed).
fn leak_key(key: &'static str, form: &'static str) -> &'static str {
    static KEYS: LazyLock<std::sync::Mutex<HashMap<(&'static str, &'static str), &'static str>>> =
        LazyLock::new(Default::default);
    let mut map = KEYS.lock().unwrap_or_else(|e| e.into_inner());
    map.entry((key, form))
        .or_insert_with(|| Box::leak(format!("{key}.{form}").into_boxed_str()))
}

/// Replaces `{name}` in `text` by its value.
pub fn fill(text: &str, args: &[(&str, &str)]) -> String {
    let mut out = text.to_string();
    for (name, value) in args {
        out = out.replace(&format!("{{{name}}}"), value);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn negotiation_follows_q_values_and_regions() {
        assert_eq!(negotiate(None, "en"), "en");
        assert_eq!(negotiate(Some("de-CH, fr;q=0.9"), "en"), "de");
        assert_eq!(negotiate(Some("fr;q=0.4, de;q=0.8"), "en"), "de");
        assert_eq!(negotiate(Some("es, fr;q=0.1"), "en"), "fr");
        assert_eq!(negotiate(Some("es, it"), "de"), "de");
        assert_eq!(negotiate(Some("de;q=0, *"), "fr"), "fr");
        assert_eq!(negotiate(Some(";;,garbage;q=x"), "en"), "en");
    }

    #[test]
    fn texts_fall_back_and_fill() {
        let de = Tr::new("de");
        assert_eq!(de.locale(), "de");
        assert_eq!(Tr::new("xx").locale(), "en");
        assert_eq!(de.t("nosuchkey"), "nosuchkey");
        assert_eq!(fill("a {x} b {x}", &[("x", "1")]), "a 1 b 1");
    }
}
