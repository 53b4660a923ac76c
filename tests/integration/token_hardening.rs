//! Issue #19: bearer tokens and codes that must be refused (audience,
//! algorithm pinning on every bearer endpoint, future `nbf`/`iat`, PKCE
//! downgrade).

use crate::helpers::*;
use derp::config::Secret;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use reqwest::StatusCode;
use serde_json::{Value, json};

const SECRET: &str = "an-hs256-secret-of-at-least-32-bytes-0123";

async fn hs256_app(audience: Option<&str>) -> TestApp {
    spawn_with(|c| {
        let n = c.auth.native.get_or_insert_with(Default::default);
        n.enable_confirmation = false;
        n.jwt.secret = Some(Secret::new(SECRET));
        n.jwt.audience = audience.map(str::to_string);
        c.hosted.allowed_redirect_urls = vec!["https://app.example.com/auth/".into()];
    })
    .await
}

/// A token made with the configured HS256 secret (or any `alg`'s use of it).
fn forge(alg: Algorithm, claims: &Value) -> String {
    let mut h = Header::new(alg);
    h.typ = Some("at+jwt".into());
    jsonwebtoken::encode(&h, claims, &EncodingKey::from_secret(SECRET.as_bytes())).unwrap()
}

fn access(body: &Value) -> String {
    body["tokens"]["access_token"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn a_configured_audience_is_required_in_bearer_tokens() {
    let app = hs256_app(Some("my-app")).await;
    let token = access(&app.sign_up("aud@example.com").await);
    let genuine = claims(&token);
    assert_eq!(genuine["aud"], "my-app");
    // The same claims, re-signed with the secret: accepted (the forge works).
    assert_eq!(
        app.session(&forge(Algorithm::HS256, &genuine))
            .await
            .status(),
        StatusCode::OK
    );
    let mut no_aud = genuine.clone();
    no_aud.as_object_mut().unwrap().remove("aud");
    expect_error(
        app.session(&forge(Algorithm::HS256, &no_aud)).await,
        StatusCode::UNAUTHORIZED,
        "unauthenticated",
    )
    .await;
    let mut other = genuine.clone();
    other["aud"] = json!("other-app");
    expect_error(
        app.session(&forge(Algorithm::HS256, &other)).await,
        StatusCode::UNAUTHORIZED,
        "unauthenticated",
    )
    .await;
}

#[tokio::test]
async fn bearer_tokens_with_nbf_or_iat_in_the_future_are_refused() {
    let app = hs256_app(None).await;
    let token = access(&app.sign_up("nbf@example.com").await);
    let genuine = claims(&token);
    let now = genuine["iat"].as_i64().unwrap();
    let with = |changes: Value| {
        let mut c = genuine.clone();
        for (k, v) in changes.as_object().unwrap() {
            c[k] = v.clone();
        }
        forge(Algorithm::HS256, &c)
    };
    // Within the documented 60 s leeway: accepted.
    for ok in [
        json!({"nbf": now}),
        json!({"nbf": now + 30, "iat": now + 30}),
    ] {
        assert_eq!(
            app.session(&with(ok.clone())).await.status(),
            StatusCode::OK,
            "{ok}"
        );
    }
    for bad in [
        json!({"nbf": now + 3600}),
        json!({"iat": now + 3600}),
        json!({"nbf": now + 120}),
        json!({"iat": now + 120, "exp": now + 3600}),
    ] {
        expect_error(
            app.session(&with(bad.clone())).await,
            StatusCode::UNAUTHORIZED,
            "unauthenticated",
        )
        .await;
    }
    // The app's own clock decides: an hour later the same token is good.
    let later = with(json!({"nbf": now + 3600, "exp": now + 7200}));
    assert_eq!(app.session(&later).await.status(), StatusCode::UNAUTHORIZED);
    app.advance(3600);
    assert_eq!(app.session(&later).await.status(), StatusCode::OK);
}
