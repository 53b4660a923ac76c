//! The hosted pages' cookie: any `Cookie` header (the encrypted
//! `derp_session` among others) decodes to a page session or to a fresh
//! anonymous one, and the session and bearer readers never panic.
#![no_main]

use actix_web::cookie::Key;
use actix_web::http::header::{AUTHORIZATION, COOKIE, HeaderValue};
use actix_web::test::TestRequest;
use derp::http::extract::{bearer_token, session_cookie};
use derp::http::pages::session::WebSession;
use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;

fn key() -> &'static Key {
    static KEY: OnceLock<Key> = OnceLock::new();
    KEY.get_or_init(|| Key::from(&[42u8; 64]))
}

fuzz_target!(|data: &[u8]| {
    let Ok(value) = HeaderValue::from_bytes(data) else {
        return;
    };
    let req = TestRequest::default()
        .insert_header((COOKIE, value.clone()))
        .insert_header((AUTHORIZATION, value))
        .to_http_request();
    let web = WebSession::load(&req, key());
    // Without the server's key nothing decrypts: every session is fresh.
    assert!(web.sid.is_none() && web.mfa.is_none() && web.flash.is_none());
    let _ = session_cookie(&req);
    let _ = bearer_token(&req);
});
