//! Which URLs derp may send a browser or a mail link to: the configured
//! allow-list (same scheme, host and port, and a path under the entry's path)
//! plus derp's own public URL.

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
        let Ok(url) = Url::parse(candidate) else {
            return false;
        };
        if url.username() != "" || url.password().is_some() || url.fragment().is_some() {
            return false;
        }
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

    #[test]
    fn query_is_appended() {
        assert_eq!(
            with_query("https://a.io/c?x=1", &[("token", "t t")]),
            "https://a.io/c?x=1&token=t+t"
        );
    }
}
