//! Which URLs derp may send a browser or a mail link to: the configured
//! allow-list (same scheme, host and port, and a path under the entry's path)
//! plus derp's own public URL.
//!
//! A candidate is compared only once it is plain: written exactly as the URL
//! parser would write it (no dot segment, `\`, userinfo, control character
//! or non-ASCII character that the parser would normalise), and with no
//! percent-encoded byte that an app or proxy might decode into path syntax
//! (`%2e`, `%2f`, `%5c`, `%25`, `%3b`, `%3f`, `%23`, `%40`, controls). So
//! `https://app.example.com/auth/callback/..%2F..%2Fevil` is refused even
//! though its raw path starts with an allowed one.
//!
//! About 550 lines: the matcher is under 200; the rest are its tests, one
//! per known way around an allow-list.

use std::sync::{Arc, RwLock};
use url::Url;

/// Clones share one list, so a configuration reload reaches every holder.
#[derive(Debug, Clone)]
pub struct AllowedUrls {
    entries: Arc<RwLock<Vec<Url>>>,
}

fn entries(public_url: &str, allowed: &[String]) -> Vec<Url> {
    let mut entries: Vec<Url> = allowed.iter().filter_map(|u| Url::parse(u).ok()).collect();
    if let Ok(mut own) = Url::parse(public_url) {
        if !own.path().ends_with('/') {
            let path = format!("{}/", own.path());
            own.set_path(&path);
        }
        entries.push(own);
    }
    entries
}

impl AllowedUrls {
    pub fn new(public_url: &str, allowed: &[String]) -> Self {
        Self {
            entries: Arc::new(RwLock::new(entries(public_url, allowed))),
        }
    }

    /// Replaces the list for every clone (configuration reload).
    pub fn replace(&self, public_url: &str, allowed: &[String]) {
        if let Ok(mut e) = self.entries.write() {
            *e = entries(public_url, allowed);
        }
    }

    pub fn is_allowed(&self, candidate: &str) -> bool {
        let Some(url) = plain_url(candidate) else {
            return false;
        };
        let Ok(entries) = self.entries.read() else {
            return false;
        };
        entries.iter().any(|e| {
            e.scheme() == url.scheme()
                && e.host_str() == url.host_str()
                && e.port_or_known_default() == url.port_or_known_default()
                && path_under(url.path(), e.path())
        })
    }
}

/// `candidate` parsed, when it is an absolute http(s) URL with a host, no
/// userinfo and no fragment, that the parser did not have to normalise and
/// whose path holds nothing an app might decode into other path syntax.
fn plain_url(candidate: &str) -> Option<Url> {
    // Printable ASCII only: no spaces, tabs, newlines (which the parser
    // strips) and no backslash (which it reads as `/` in http URLs).
    if !candidate.bytes().all(|b| b.is_ascii_graphic()) || candidate.contains('\\') {
        return None;
    }
    let url = Url::parse(candidate).ok()?;
    if !matches!(url.scheme(), "http" | "https")
        || !url.username().is_empty()
        || url.password().is_some()
        || url.fragment().is_some()
    {
        return None;
    }
    let host = url.host_str()?;
    // The authority and path exactly as written.
    let (_, rest) = candidate.split_once("://")?;
    let end = rest.find(['?', '#']).unwrap_or(rest.len());
    let (authority, path) = rest[..end].split_at(rest[..end].find('/').unwrap_or(end));
    if authority.contains(['@', '%']) || !authority_host(authority).eq_ignore_ascii_case(host) {
        return None;
    }
    let path = if path.is_empty() { "/" } else { path };
    (path == url.path() && plain_path(path)).then_some(url)
}

/// The host part of `host[:port]` or `[v6]:port`.
fn authority_host(authority: &str) -> &str {
    if authority.starts_with('[') {
        return authority.find(']').map_or(authority, |i| &authority[..=i]);
    }
    authority.rsplit_once(':').map_or(authority, |(h, _)| h)
}

/// No dot segment, no empty segment but a trailing one, no `;` (path
/// parameters, as in `..;/`), and percent escapes only for bytes that cannot
/// be read as path syntax once decoded.
fn plain_path(path: &str) -> bool {
    let Some(segments) = path.strip_prefix('/') else {
        return false;
    };
    let segments: Vec<&str> = segments.split('/').collect();
    let last = segments.len() - 1;
    for (i, seg) in segments.iter().enumerate() {
        if *seg == "." || *seg == ".." || (seg.is_empty() && i != last) || seg.contains(';') {
            return false;
        }
    }
    let bytes = path.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let Some(decoded) = bytes
                .get(i + 1..i + 3)
                .filter(|h| h.iter().all(u8::is_ascii_hexdigit))
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok())
            else {
                return false;
            };
            if decoded < 0x20 || decoded == 0x7f || b"./\\%;?#@".contains(&decoded) {
                return false;
            }
            i += 3;
        } else {
            i += 1;
        }
    }
    true
}

/// `/app/cb` is under `/app/` and `/app`, but `/application` is not under `/app`.
fn path_under(path: &str, prefix: &str) -> bool {
    if prefix.ends_with('/') {
        path.starts_with(prefix) || path == prefix.trim_end_matches('/')
    } else {
        path == prefix || path.starts_with(&format!("{prefix}/"))
    }
}

/// Appends `name=value` to a URL's query.
pub fn with_query(base: &str, pairs: &[(&str, &str)]) -> String {
    match Url::parse(base) {
        Ok(mut url) => {
            {
                let mut q = url.query_pairs_mut();
                for (k, v) in pairs {
                    q.append_pair(k, v);
                }
            }
            url.to_string()
        }
        Err(_) => base.to_string(),
    }
}

/// Cognito's `domain` setting as a base URL without a trailing `/`: a bare host (with an
/// optional port), as Cognito shows it, means `https://host`; an `http://`
/// or `https://` URL (an emulator, a path of its own) is used as given.
pub fn cognito_domain_base(domain: &str) -> Result<String, String> {
    let d = domain.trim().trim_end_matches('/');
    let bad =
        || format!("auth.cognito.domain: `{domain}` is neither a host name nor an http(s) URL");
    let has_scheme = domain.contains("://");
    let candidate = if has_scheme {
        d.to_string()
    } else {
        format!("https://{d}")
    };
    let url = url::Url::parse(&candidate).map_err(|_| bad())?;
    let plain = matches!(url.scheme(), "http" | "https")
        && url.host_str().is_some_and(|h| !h.is_empty())
        && url.username().is_empty()
        && url.password().is_none()
        && url.query().is_none()
        && url.fragment().is_none();
    if d.is_empty() || !plain || (!has_scheme && url.path() != "/") {
        return Err(bad());
    }
    Ok(candidate)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origin_and_path_prefix() {
        let a = AllowedUrls::new(
            "http://127.0.0.1:8080",
            &[
                "https://app.example.com/auth/".into(),
                "https://other.example.com/cb".into(),
            ],
        );
        assert!(a.is_allowed("https://app.example.com/auth/callback?x=1"));
        assert!(a.is_allowed("https://other.example.com/cb"));
        assert!(a.is_allowed("https://other.example.com/cb/deeper"));
        assert!(a.is_allowed("http://127.0.0.1:8080/confirm"));
        assert!(!a.is_allowed("https://other.example.com/cbx"));
        assert!(!a.is_allowed("https://app.example.com/elsewhere"));
        assert!(
            !a.is_allowed("http://app.example.com/auth/callback"),
            "scheme"
        );
        assert!(!a.is_allowed("https://app.example.com:444/auth/"), "port");
        assert!(!a.is_allowed("https://app.example.com.evil.io/auth/"));
        assert!(!a.is_allowed("https://user@app.example.com/auth/"));
        assert!(!a.is_allowed("javascript:alert(1)"));
        assert!(!a.is_allowed("/relative"));
    }

    fn app() -> AllowedUrls {
        AllowedUrls::new(
            "http://127.0.0.1:8080",
            &[
                "https://app.example.com/auth/".into(),
                "https://other.example.com/cb".into(),
            ],
        )
    }

    /// Known open-redirect and path-confusion bypasses against an allowed
    /// `https://app.example.com/auth/` and `https://other.example.com/cb`.
    pub(super) const BYPASSES: &[&str] = &[
        "https://app.example.com/auth/callback/..%2F..%2Fevil",
        "https://app.example.com/auth/callback/..%2f..%2fevil",
        "https://app.example.com/auth/%2e%2e/evil",
        "https://app.example.com/auth/%2E%2E/%2E%2E/evil",
        "https://app.example.com/auth/.%2e/evil",
        "https://app.example.com/auth/%2e./evil",
        "https://app.example.com/auth/../evil",
        "https://app.example.com/auth/./callback",
        "https://app.example.com/auth/callback/..",
        "https://app.example.com/auth/..;/evil",
        "https://app.example.com/auth/callback;/../../evil",
        "https://app.example.com/auth/%5c..%5cevil",
        "https://app.example.com/auth/%5C%5Cevil.com",
        "https://app.example.com/auth\\..\\evil",
        "https://app.example.com\\@evil.com/auth/",
        "https://app.example.com/auth/%252e%252e%252fevil",
        "https://app.example.com/auth/%25%32%65",
        "https://app.example.com/auth//evil.com",
        "https://app.example.com/auth/callback//evil.com",
        "https://app.example.com/auth/%2f%2fevil.com",
        "https://app.example.com/auth/%00",
        "https://app.example.com/auth/%0d%0aLocation:%20https://evil.com",
        "https://app.example.com/auth/callback%3f.evil.com",
        "https://app.example.com/auth/callback%23.evil.com",
        "https://app.example.com/auth/callback%40evil.com",
        "https://app.example.com/auth/%zz",
        "https://app.example.com/auth/%",
        "https://app.example.com/auth/%+4",
        "https://app.example.com@evil.com/auth/",
        "https://app.example.com:443@evil.com/auth/",
        "https://evil.com@app.example.com/auth/",
        "https://user:pass@app.example.com/auth/",
        "https://app.example.com%40evil.com/auth/",
        "https://app.example.com%2eevil.com/auth/",
        "https://app.example.com./auth/",
        "https://app.example.com.evil.com/auth/",
        "https://evil.com/app.example.com/auth/",
        "https://evil.com?https://app.example.com/auth/",
        "https://evil.com#https://app.example.com/auth/",
        "https://app.example.com/auth/#@evil.com",
        "https://app.example.com/auth/callback#",
        "https:app.example.com/auth/",
        "https:/app.example.com/auth/",
        "https:///app.example.com/auth/",
        "https:\\\\app.example.com/auth/",
        "//app.example.com/auth/",
        "/\\evil.com",
        "///evil.com",
        "\\\\evil.com",
        " https://app.example.com/auth/",
        "https://app.example.com/auth/ ",
        "https://app.example.com/au\tth/",
        "https://app.example.com/auth/\ncallback",
        "https://app.ex\tample.com/auth/",
        "https://app.example.com/auth/caf\u{e9}",
        "https://\u{430}pp.example.com/auth/",
        "https://APP.example.com/auth/../../evil",
        "http://app.example.com/auth/",
        "HTTPS://evil.com/auth/",
        "ftp://app.example.com/auth/",
        "javascript://app.example.com/auth/%0aalert(1)",
        "data:text/html,https://app.example.com/auth/",
        "https://other.example.com/cb/../../evil",
        "https://other.example.com/cb%2f..%2f..%2fevil",
        "https://other.example.com/cbevil",
        "https://other.example.com/cb.evil.com",
        "https://other.example.com/c%62",
        "https://app.example.com:80/auth/",
        "https://app.example.com:444/auth/",
        "https://[::1]/auth/",
        "https://app.example.com/auth/<script>",
        "https://app.example.com/auth/\"onmouseover=\"",
    ];

    #[test]
    fn known_bypasses_are_refused() {
        let a = app();
        for bad in BYPASSES {
            assert!(!a.is_allowed(bad), "{bad:?} was allowed");
        }
    }

    #[test]
    fn plain_allowed_urls_still_pass() {
        let a = app();
        for good in [
            "https://app.example.com/auth/",
            "https://app.example.com/auth",
            "https://app.example.com/auth/callback",
            "https://app.example.com/auth/callback/",
            "https://app.example.com/auth/callback?next=%2Fdashboard%2F..%2F&x=1",
            "https://app.example.com/auth/callback?x=a@b/../c",
            "https://APP.Example.com/auth/callback",
            "HTTPS://app.example.com/auth/callback",
            "https://app.example.com:443/auth/callback",
            "https://app.example.com/auth/caf%C3%A9",
            "https://app.example.com/auth/a%20b",
            "https://app.example.com/auth/.well-known/x",
            "https://app.example.com/auth/...",
            "https://app.example.com/auth/v1.2/cb",
            "https://other.example.com/cb",
            "https://other.example.com/cb/deeper",
            "http://127.0.0.1:8080/",
            "http://127.0.0.1:8080/confirm?token=x",
        ] {
            assert!(a.is_allowed(good), "{good:?} was refused");
        }
    }

    #[test]
    fn query_is_appended() {
        assert_eq!(
            with_query("https://a.io/c?x=1", &[("token", "t t")]),
            "https://a.io/c?x=1&token=t+t"
        );
    }
}

/// Property tests: whatever is accepted is, once fully percent-decoded, a
/// path under an allowed prefix with no dot, empty or backslash segment.
#[cfg(test)]
mod properties {
    use super::tests::BYPASSES;
    use super::*;
    use proptest::prelude::*;

    fn app() -> AllowedUrls {
        AllowedUrls::new(
            "https://auth.example.com",
            &[
                "https://app.example.com/auth/".into(),
                "https://other.example.com/cb".into(),
            ],
        )
    }

    /// Decodes `%XX` until nothing changes (a proxy, then the app, then a
    /// framework may each decode once).
    fn fully_decoded(path: &str) -> String {
        let mut current = path.as_bytes().to_vec();
        for _ in 0..8 {
            let mut next = Vec::with_capacity(current.len());
            let mut i = 0;
            while i < current.len() {
                let hex = current
                    .get(i + 1..i + 3)
                    .and_then(|h| std::str::from_utf8(h).ok())
                    .filter(|h| h.bytes().all(|b| b.is_ascii_hexdigit()))
                    .and_then(|h| u8::from_str_radix(h, 16).ok());
                match (current[i], hex) {
                    (b'%', Some(b)) => {
                        next.push(b);
                        i += 3;
                    }
                    (b, _) => {
                        next.push(b);
                        i += 1;
                    }
                }
            }
            if next == current {
                break;
            }
            current = next;
        }
        String::from_utf8_lossy(&current).into_owned()
    }

    /// What an accepted URL must satisfy, however an app decodes it.
    fn safe(candidate: &str) -> bool {
        let Ok(url) = Url::parse(candidate) else {
            return false;
        };
        let decoded = fully_decoded(url.path());
        let allowed_origin = matches!(
            (url.scheme(), url.host_str(), url.port_or_known_default()),
            (
                "https",
                Some("app.example.com" | "other.example.com" | "auth.example.com"),
                Some(443)
            )
        );
        let under = match url.host_str() {
            Some("app.example.com") => decoded.starts_with("/auth/") || decoded == "/auth",
            Some("other.example.com") => decoded == "/cb" || decoded.starts_with("/cb/"),
            _ => true,
        };
        let segments: Vec<&str> = decoded.split('/').skip(1).collect();
        let clean = !decoded.contains('\\')
            && !decoded.chars().any(|c| c.is_control())
            && segments.iter().enumerate().all(|(i, s)| {
                let s = s.split(';').next().unwrap_or_default();
                s != "." && s != ".." && (!s.is_empty() || i + 1 == segments.len())
            });
        allowed_origin && under && clean && url.username().is_empty()
    }

    /// Pieces that path-confusion attacks are built from.
    fn piece() -> impl Strategy<Value = &'static str> {
        prop::sample::select(vec![
            "/",
            ".",
            "..",
            "%2e",
            "%2E",
            "%2f",
            "%2F",
            "%5c",
            "%5C",
            "%25",
            "%32",
            "%65",
            "\\",
            "@",
            ";",
            "?",
            "#",
            ":",
            "%00",
            "%0a",
            "%40",
            "%3f",
            "%23",
            "%3b",
            "evil.com",
            "app.example.com",
            "auth",
            "cb",
            "callback",
            "x",
            "%20",
            "%C3%A9",
            "//",
            "../",
            "..;/",
            "%2e%2e%2f",
            "\t",
            " ",
            "%",
            "%%",
            "a%",
        ])
    }

    fn tail() -> impl Strategy<Value = String> {
        prop::collection::vec(piece(), 0..8).prop_map(|v| v.concat())
    }

    fn prefix() -> impl Strategy<Value = &'static str> {
        prop::sample::select(vec![
            "https://app.example.com/auth/",
            "https://app.example.com/auth",
            "https://app.example.com",
            "https://other.example.com/cb",
            "https://other.example.com/",
            "https://auth.example.com/",
            "https://app.example.com@",
            "https://evil.com/",
            "https:",
            "//",
            "",
        ])
    }

    fn word(alphabet: &'static str, len: std::ops::Range<usize>) -> impl Strategy<Value = String> {
        prop::collection::vec(
            prop::sample::select(alphabet.chars().collect::<Vec<_>>()),
            len,
        )
        .prop_map(String::from_iter)
    }

    /// Plain segments: what a real callback path looks like.
    fn plain_segments() -> impl Strategy<Value = Vec<String>> {
        prop::collection::vec(
            word("abcXYZ0189_~-.", 1..12).prop_filter("a dot segment", |s| s != "." && s != ".."),
            0..5,
        )
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 2000, failure_persistence: None, ..ProptestConfig::default() })]

        #[test]
        fn whatever_is_accepted_is_safe_once_decoded(p in prefix(), t in tail()) {
            let candidate = format!("{p}{t}");
            if app().is_allowed(&candidate) {
                prop_assert!(safe(&candidate), "accepted but unsafe: {candidate:?}");
            }
        }

        #[test]
        fn a_known_bypass_with_any_suffix_is_refused(
            i in 0..BYPASSES.len(),
            t in prop::sample::select(vec!["", "x", "/x", "?q=1", "%2f", "/.."]),
        ) {
            let candidate = format!("{}{t}", BYPASSES[i]);
            if app().is_allowed(&candidate) {
                prop_assert!(safe(&candidate), "bypass accepted: {candidate:?}");
            }
        }

        #[test]
        fn plain_paths_under_an_entry_are_accepted(segs in plain_segments(), q in word("az09=&%/.", 0..10)) {
            let path = segs.join("/");
            let mut candidate = format!("https://app.example.com/auth/{path}");
            if !q.is_empty() {
                candidate.push('?');
                candidate.push_str(&q);
            }
            prop_assert!(app().is_allowed(&candidate), "{candidate:?}");
        }
    }
}
