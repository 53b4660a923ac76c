//! The page form reader: any form body is refused with 403 unless it holds
//! the page session's CSRF token, and otherwise is the form or a 400.
#![no_main]

use derp::http::pages::session::WebSession;
use derp::http::pages::{PageError, read_form};
use libfuzzer_sys::fuzz_target;
use serde::Deserialize;

#[allow(dead_code)]
#[derive(Debug, Deserialize)]
struct Form {
    email: String,
    password: Option<String>,
    remember: Option<bool>,
    redirect_to: Option<String>,
}

fuzz_target!(|data: &[u8]| {
    let web = WebSession::anonymous();
    // As sent, and with the right token in front (so the fields are read).
    let mut with_token = format!("csrf_token={}&", web.csrf).into_bytes();
    with_token.extend_from_slice(data);
    for (body, may_pass) in [(data, false), (&with_token[..], true)] {
        match read_form::<Form>(body, &web) {
            Ok(_) => assert!(may_pass, "read without the CSRF token"),
            Err(PageError::Csrf | PageError::BadRequest(_)) => {}
            Err(other) => panic!("unexpected {other:?}"),
        }
    }
});
