//! A readable name for the device behind a `User-Agent` header ("Chrome on
//! macOS"), for the admin console and the account page. Only the common
//! browsers and systems are named; anything else keeps a short form of the
//! header, so nothing is hidden.

/// "Browser on System", "Browser", "System", or the header itself cut to 60
/// characters when neither is known; `None` for an empty header.
pub fn device_name(ua: &str) -> Option<String> {
    let ua = ua.trim();
    if ua.is_empty() {
        return None;
    }
    match (browser(ua), system(ua)) {
        (Some(b), Some(s)) => Some(format!("{b} on {s}")),
        (Some(b), None) => Some(b.to_string()),
        (None, Some(s)) => Some(format!("Unknown browser on {s}")),
        (None, None) => Some(short(ua)),
    }
}

/// `(browser, operating system)` named by a User-Agent, each `None` when
/// not recognised: the parts the hosted pages translate ("Chrome sur macOS").
pub fn describe(ua: &str) -> (Option<&'static str>, Option<&'static str>) {
    let ua = ua.trim();
    (browser(ua), system(ua))
}

fn short(ua: &str) -> String {
    let mut out: String = ua.chars().take(60).collect();
    if ua.chars().count() > 60 {
        out.push('…');
    }
    out
}

/// The browser or client; the order matters, since most browsers also say
/// "Chrome", "Safari" or "Mozilla".
fn browser(ua: &str) -> Option<&'static str> {
    const NAMED: &[(&str, &str)] = &[
        ("Edg/", "Edge"),
        ("EdgA/", "Edge"),
        ("EdgiOS/", "Edge"),
        ("OPR/", "Opera"),
        ("Opera", "Opera"),
        ("SamsungBrowser/", "Samsung Internet"),
        ("Vivaldi/", "Vivaldi"),
        ("YaBrowser/", "Yandex Browser"),
        ("Firefox/", "Firefox"),
        ("FxiOS/", "Firefox"),
        ("CriOS/", "Chrome"),
        ("HeadlessChrome/", "Headless Chrome"),
        ("Chromium/", "Chromium"),
        ("Chrome/", "Chrome"),
        ("Safari/", "Safari"),
        ("curl/", "curl"),
        ("Wget/", "Wget"),
        ("python-requests/", "Python requests"),
        ("reqwest", "reqwest"),
        ("okhttp/", "OkHttp"),
        ("Go-http-client/", "Go HTTP client"),
        ("node-fetch", "Node.js"),
        ("undici", "Node.js"),
        ("axios/", "axios"),
        ("PostmanRuntime/", "Postman"),
    ];
    NAMED.iter().find(|(k, _)| ua.contains(k)).map(|(_, v)| *v)
}

/// The operating system; iPhone and iPad before macOS, Android before Linux.
fn system(ua: &str) -> Option<&'static str> {
    const NAMED: &[(&str, &str)] = &[
        ("iPhone", "iPhone"),
        ("iPad", "iPad"),
        ("Android", "Android"),
        ("CrOS", "ChromeOS"),
        ("Windows", "Windows"),
        ("Macintosh", "macOS"),
        ("Mac OS X", "macOS"),
        ("Ubuntu", "Ubuntu"),
        ("Fedora", "Fedora"),
        ("Linux", "Linux"),
        ("FreeBSD", "FreeBSD"),
    ];
    NAMED.iter().find(|(k, _)| ua.contains(k)).map(|(_, v)| *v)
}

#[cfg(test)]
mod tests {
    use super::device_name;

    #[test]
    fn common_browsers_have_readable_names() {
        let cases = [
            (
                "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
                "Chrome on macOS",
            ),
            (
                "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36 Edg/131.0.0.0",
                "Edge on Windows",
            ),
            (
                "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0",
                "Firefox on Linux",
            ),
            (
                "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1",
                "Safari on iPhone",
            ),
            (
                "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) CriOS/131.0.6778.73 Mobile/15E148 Safari/604.1",
                "Chrome on iPhone",
            ),
            (
                "Mozilla/5.0 (Linux; Android 14; SM-S918B) AppleWebKit/537.36 (KHTML, like Gecko) SamsungBrowser/26.0 Chrome/122.0.0.0 Mobile Safari/537.36",
                "Samsung Internet on Android",
            ),
            (
                "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Safari/605.1.15",
                "Safari on macOS",
            ),
            ("curl/8.5.0", "curl"),
        ];
        for (ua, name) in cases {
            assert_eq!(device_name(ua).as_deref(), Some(name), "{ua}");
        }
    }

    #[test]
    fn unknown_agents_stay_visible_but_short() {
        assert_eq!(device_name("  "), None);
        assert_eq!(device_name("MyApp/1.0").as_deref(), Some("MyApp/1.0"));
        let long = "x".repeat(200);
        let shown = device_name(&long).unwrap();
        assert_eq!(shown.chars().count(), 61);
        assert!(shown.ends_with('…'));
    }
}
