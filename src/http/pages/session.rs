//! The hosted pages' own session: one encrypted, authenticated cookie
//! (`derp_session`, HttpOnly, SameSite=Lax, Secure on https) holding the id
//! of the login session it belongs to, the CSRF token of its forms and a
//! one-shot flash message.
//!
//! CSRF is a synchronizer token tied to this session (rather than a separate
//! double-submit cookie from a crate): it lives in the same encrypted cookie,
//! is checked in constant time on every POST, and is replaced at sign-in and
//! sign-out, so a token seen before login is worthless after.

use crate::auth::secrets::{constant_time_eq, random_token};
use actix_web::HttpRequest;
use actix_web::cookie::time::Duration as CookieDuration;
use actix_web::cookie::{Cookie, CookieJar, Key, SameSite};
use serde::{Deserialize, Serialize};

pub const COOKIE: &str = "derp_session";

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Flash {
    pub kind: String,
    pub text: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WebSession {
    /// The login session (`sessions.id`) once signed in.
    pub sid: Option<String>,
    pub csrf: String,
    #[serde(default)]
    pub flash: Option<Flash>,
    /// The `mfa_token` of a sign-in waiting for its second step (`/mfa`).
    #[serde(default)]
    pub mfa: Option<String>,
    /// The `enrollment_token` of a sign-in waiting for the user's first
    /// second factor (`/mfa/enroll`, `[auth.native.mfa] required`).
    #[serde(default)]
    pub mfa_enroll: Option<String>,
}

impl WebSession {
    pub fn anonymous() -> Self {
        Self {
            sid: None,
            csrf: random_token(),
            flash: None,
            mfa: None,
            mfa_enroll: None,
        }
    }

    /// A fresh session for a new sign-in: new CSRF token, nothing carried over
    /// but the flash.
    pub fn signed_in(sid: String, flash: Option<Flash>) -> Self {
        Self {
            sid: Some(sid),
            csrf: random_token(),
            flash,
            mfa: None,
            mfa_enroll: None,
        }
    }

    pub fn load(req: &HttpRequest, key: &Key) -> Self {
        let Some(raw) = req.cookie(COOKIE) else {
            return Self::anonymous();
        };
        let mut jar = CookieJar::new();
        jar.add_original(raw.into_owned());
        jar.private(key)
            .get(COOKIE)
            .and_then(|c| serde_json::from_str(c.value()).ok())
            .unwrap_or_else(Self::anonymous)
    }

    pub fn cookie(&self, key: &Key, secure: bool) -> Cookie<'static> {
        let mut jar = CookieJar::new();
        let value = serde_json::to_string(self).unwrap_or_default();
        jar.private_mut(key).add(
            base_cookie(value, secure)
                .max_age(CookieDuration::days(30))
                .finish(),
        );
        jar.get(COOKIE)
            .cloned()
            .unwrap_or_else(|| Cookie::new(COOKIE, ""))
    }

    pub fn removal(secure: bool) -> Cookie<'static> {
        let mut c = base_cookie(String::new(), secure).finish();
        c.make_removal();
        c
    }

    pub fn csrf_ok(&self, submitted: Option<&str>) -> bool {
        submitted.is_some_and(|t| constant_time_eq(t.as_bytes(), self.csrf.as_bytes()))
    }

    pub fn set_flash(&mut self, kind: &str, text: impl Into<String>) {
        self.flash = Some(Flash {
            kind: kind.into(),
            text: text.into(),
        });
    }

    pub fn take_flash(&mut self) -> Option<Flash> {
        self.flash.take()
    }
}

fn base_cookie(value: String, secure: bool) -> actix_web::cookie::CookieBuilder<'static> {
    Cookie::build(COOKIE, value)
        .path("/")
        .http_only(true)
        .same_site(SameSite::Lax)
        .secure(secure)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cookie_round_trips_only_with_its_key() {
        let key = Key::generate();
        let mut s = WebSession::signed_in("sid-1".into(), None);
        s.set_flash("ok", "hello");
        let cookie = s.cookie(&key, true);
        assert!(cookie.http_only().unwrap_or(false));
        assert_eq!(cookie.same_site(), Some(SameSite::Lax));
        assert!(cookie.secure().unwrap_or(false));
        assert!(!cookie.value().contains("sid-1"), "encrypted");
        let req = actix_web::test::TestRequest::default()
            .cookie(cookie.clone())
            .to_http_request();
        let back = WebSession::load(&req, &key);
        assert_eq!(back.sid.as_deref(), Some("sid-1"));
        assert!(back.csrf_ok(Some(&s.csrf)));
        assert!(!back.csrf_ok(Some("forged")) && !back.csrf_ok(None));
        let other = WebSession::load(&req, &Key::generate());
        assert!(other.sid.is_none(), "another key reads nothing");
    }
}
