//! The JSON body extractor: any body, with any `Content-Type`, is a value
//! or a 4xx naming the field (400, 413 or 415), never a 500 or a panic.
#![no_main]

use actix_web::http::header::{CONTENT_TYPE, HeaderValue};
use actix_web::test::TestRequest;
use actix_web::{FromRequest, ResponseError};
use derp::http::extract::ApiJson;
use libfuzzer_sys::fuzz_target;
use serde::Deserialize;

/// The shapes the API's bodies take: required and optional strings, free
/// JSON data, numbers, lists and a nested object, with unknown fields
/// refused.
#[allow(dead_code)]
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Body {
    email: String,
    password: Option<String>,
    data: Option<serde_json::Value>,
    ttl: Option<u32>,
    roles: Option<Vec<String>>,
    org: Option<Org>,
}

#[allow(dead_code)]
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Org {
    id: String,
    role: Option<String>,
}

thread_local! {
    static RT: actix_web::rt::Runtime = actix_web::rt::Runtime::new().expect("runtime");
}

fuzz_target!(|data: &[u8]| {
    // The first byte picks the Content-Type; the rest is the body.
    let Some((&pick, body)) = data.split_first() else {
        return;
    };
    let content_type = match pick % 4 {
        0 => Some("application/json"),
        1 => Some("application/vnd.api+json; charset=utf-8"),
        2 => Some("text/plain"),
        _ => None,
    };
    let mut req = TestRequest::post().set_payload(body.to_vec());
    if let Some(ct) = content_type {
        req = req.insert_header((CONTENT_TYPE, HeaderValue::from_static(ct)));
    }
    let (req, mut payload) = req.to_http_parts();
    let result = RT.with(|rt| rt.block_on(ApiJson::<Body>::from_request(&req, &mut payload)));
    if let Err(e) = result {
        let status = e.status_code().as_u16();
        assert!(matches!(status, 400 | 413 | 415), "status {status}");
    }
});
