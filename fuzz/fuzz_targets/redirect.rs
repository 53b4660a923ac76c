//! The redirect allow-list: any candidate URL is either refused or is a
//! plain http(s) URL on an allowed origin, under an allowed path.
#![no_main]

use derp::domain::redirect::AllowedUrls;
use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;
use url::Url;

const ALLOWED: [&str; 3] = [
    "https://app.example.com/auth/callback",
    "http://localhost:3000/",
    "https://[2001:db8::1]:8443/cb/",
];

fn allowed() -> &'static AllowedUrls {
    static LIST: OnceLock<AllowedUrls> = OnceLock::new();
    LIST.get_or_init(|| {
        let list: Vec<String> = ALLOWED.iter().map(|s| s.to_string()).collect();
        AllowedUrls::new("https://auth.example.com", &list)
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(candidate) = std::str::from_utf8(data) else {
        return;
    };
    if !allowed().is_allowed(candidate) {
        return;
    }
    // What is allowed is a URL written exactly as the parser writes it, on
    // one of the allowed origins, with no dot segment or encoded separator.
    let url = Url::parse(candidate).expect("an allowed URL parses");
    assert!(matches!(url.scheme(), "http" | "https"));
    assert!(url.username().is_empty() && url.password().is_none());
    let origin_ok = ALLOWED
        .iter()
        .chain(std::iter::once(&"https://auth.example.com/"))
        .any(|a| {
            let a = Url::parse(a).unwrap();
            a.scheme() == url.scheme()
                && a.host_str() == url.host_str()
                && a.port_or_known_default() == url.port_or_known_default()
                && url.path().starts_with(a.path().trim_end_matches('/'))
        });
    assert!(origin_ok, "allowed outside the list: {candidate}");
    let lower = url.path().to_ascii_lowercase();
    for bad in ["/../", "/./", "%2e", "%2f", "%5c", "%25", "\\"] {
        assert!(
            !lower.contains(bad),
            "{bad} in an allowed path: {candidate}"
        );
    }
});
