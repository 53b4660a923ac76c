//! `[auth.native.mfa] required` with a passkey as the factor enrolled at
//! sign-in: on the API (`/passkeys/register/*` with the `enrollment_token`
//! of the 403 `mfa_enrollment_required`) and on `/mfa/enroll` ("Add a
//! passkey" beside the authenticator app). The software authenticator is
//! `crate::passkeys::SoftKey`; derp checks its answers with webauthn-rs.

use crate::helpers::*;
use crate::mfa::{APP, amr, exchange, location, page, post_form, query_param, urlencode};
use crate::passkeys::{ORIGIN, SoftKey, access};
use reqwest::{Client, StatusCode};
use serde_json::{Value, json};

async fn required_app(public_url: &str) -> TestApp {
    let public_url = public_url.to_string();
    spawn_with(move |c| {
        c.server.public_url = Some(public_url);
        c.hosted.allowed_redirect_urls = vec!["https://app.example.com/auth/".into()];
        let n = c.auth.native.get_or_insert_with(Default::default);
        n.enable_confirmation = false;
        n.mfa.required = true;
    })
    .await
}

/// Signs up through the API: no tokens, an `enrollment_token`.
async fn sign_up_waiting(app: &TestApp, email: &str) -> String {
    let res = app
        .post(
            "/api/v1/auth/sign-up",
            json!({"email": email, "password": PASSWORD}),
        )
        .await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let up: Value = res.json().await.unwrap();
    assert!(up["tokens"].is_null(), "{up}");
    up["enrollment_token"].as_str().unwrap().to_string()
}

async fn enroll_start(app: &TestApp, token: &str) -> reqwest::Response {
    app.post(
        "/api/v1/auth/passkeys/register/start",
        json!({"enrollment_token": token, "name": "Laptop"}),
    )
    .await
}

/// A flow id and the creation options.
async fn started(app: &TestApp, token: &str) -> (String, Value) {
    let res = enroll_start(app, token).await;
    assert_eq!(res.status(), StatusCode::OK);
    let body: Value = res.json().await.unwrap();
    (
        body["flow_id"].as_str().unwrap().to_string(),
        body["options"].clone(),
    )
}

async fn enroll_finish(
    app: &TestApp,
    token: &str,
    flow_id: &str,
    credential: Value,
) -> reqwest::Response {
    app.post(
        "/api/v1/auth/passkeys/register/finish",
        json!({"enrollment_token": token, "flow_id": flow_id, "credential": credential}),
    )
    .await
}

#[tokio::test]
async fn a_required_second_factor_can_be_a_passkey_enrolled_with_the_enrollment_token() {
    let app = required_app(ORIGIN).await;
    sign_up_waiting(&app, "pk-req@example.com").await;
    let other = sign_up_waiting(&app, "pk-other@example.com").await;
    // No session before a factor: the password answers 403 with a token.
    let res = app.sign_in("pk-req@example.com", PASSWORD).await;
    let body = expect_error(res, StatusCode::FORBIDDEN, "mfa_enrollment_required").await;
    assert!(body.get("tokens").is_none(), "{body}");
    let token = body["error"]["enrollment_token"]
        .as_str()
        .unwrap()
        .to_string();

    // Neither a token nor a session; a made-up token.
    let res = app
        .post("/api/v1/auth/passkeys/register/start", json!({}))
        .await;
    expect_error(res, StatusCode::UNAUTHORIZED, "unauthenticated").await;
    let res = enroll_start(&app, "not-a-token").await;
    expect_error(res, StatusCode::UNAUTHORIZED, "invalid_token").await;
    let res = enroll_finish(&app, "not-a-token", "flow", json!({})).await;
    expect_error(res, StatusCode::BAD_REQUEST, "invalid_request").await;

    // A flow of the other user's sign-in finishes nothing with this token,
    // and this sign-in's flow nothing with the other's.
    let (other_flow, options) = started(&app, &other).await;
    let (_, credential) = SoftKey::create(&options);
    let res = enroll_finish(&app, &token, &other_flow, credential).await;
    let body = expect_error(res, StatusCode::BAD_REQUEST, "invalid_request").await;
    assert!(body.to_string().contains("flow_id"), "{body}");
    assert!(body.get("tokens").is_none(), "{body}");
    let (flow, options) = started(&app, &token).await;
    let (_, credential) = SoftKey::create(&options);
    let res = enroll_finish(&app, &other, &flow, credential).await;
    let body = expect_error(res, StatusCode::BAD_REQUEST, "invalid_request").await;
    assert!(body.to_string().contains("flow_id"), "{body}");

    // A refused passkey (another origin) counts against the token.
    let (flow, options) = started(&app, &token).await;
    let (mut bad, _) = SoftKey::create(&options);
    bad.origin = "https://evil.example".into();
    let credential = bad.attest(&options);
    let res = enroll_finish(&app, &token, &flow, credential).await;
    expect_error(res, StatusCode::UNAUTHORIZED, "passkey_rejected").await;

    // This sign-in's own flow: the passkey is its factor and the sign-in
    // completes with both factors in amr.
    let (flow, options) = started(&app, &token).await;
    assert_eq!(options["authenticatorSelection"]["residentKey"], "required");
    assert_eq!(options["rp"]["id"], "localhost");
    let (mut key, credential) = SoftKey::create(&options);
    let res = enroll_finish(&app, &token, &flow, credential).await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let done: Value = res.json().await.unwrap();
    assert_eq!(done["user"]["email"], "pk-req@example.com", "{done}");
    assert_eq!(done["factor"]["type"], "passkey", "{done}");
    assert_eq!(done["factor"]["name"], "Laptop", "{done}");
    assert_eq!(done["recovery_codes"].as_array().unwrap().len(), 10);
    assert_eq!(amr(&access(&done)), ["pwd", "hwk", "user", "mfa"]);
    let res = app.get_bearer("/api/v1/auth/session", &access(&done)).await;
    assert_eq!(res.status(), StatusCode::OK);
    // Spent: the token starts nothing more.
    let res = enroll_start(&app, &token).await;
    expect_error(res, StatusCode::UNAUTHORIZED, "invalid_token").await;

    // Next time the password asks for the passkey, which answers.
    let res = app.sign_in("pk-req@example.com", PASSWORD).await;
    assert_eq!(res.status(), StatusCode::OK);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["mfa_required"], true, "{body}");
    assert_eq!(body["factors"][0]["type"], "passkey", "{body}");
    let res = app
        .post(
            "/api/v1/auth/passkeys/sign-in/start",
            json!({"mfa_token": body["mfa_token"]}),
        )
        .await;
    let start: Value = res.json().await.unwrap();
    let res = app
        .post(
            "/api/v1/auth/passkeys/sign-in/finish",
            json!({"flow_id": start["flow_id"], "credential": key.assert(&start["options"])}),
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    let body: Value = res.json().await.unwrap();
    assert_eq!(amr(&access(&body)), ["pwd", "hwk", "user", "mfa"]);

    // The other user still has no session and no factor.
    let res = app.sign_in("pk-other@example.com", PASSWORD).await;
    expect_error(res, StatusCode::FORBIDDEN, "mfa_enrollment_required").await;
}

/// Signs in on `/login` (for an app) with `client` and answers where the
/// browser is sent.
async fn login(app: &TestApp, client: &Client, email: &str) -> String {
    let path = format!("/login?redirect_to={}&state=st-7", urlencode(APP));
    let html = client
        .get(app.url(&path))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let res = client
        .post(app.url("/login"))
        .form(&[
            ("csrf_token", hidden(&html, "csrf_token").as_str()),
            ("email", email),
            ("password", PASSWORD),
            ("redirect_to", APP),
            ("state", "st-7"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    location(&res)
}

#[tokio::test]
async fn the_enrollment_page_offers_a_passkey_that_finishes_the_sign_in() {
    let app = required_app(ORIGIN).await;
    sign_up_waiting(&app, "walk-pk@example.com").await;
    sign_up_waiting(&app, "walk-other@example.com").await;
    let next = login(&app, &app.client, "walk-pk@example.com").await;
    assert!(next.starts_with("/mfa/enroll?"), "{next}");
    // Not signed in yet.
    let res = app.client.get(app.url("/account")).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::SEE_OTHER);

    // The app's QR code, and "Add a passkey" with our script.
    let (status, html) = page(&app, &next).await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("<svg"), "a QR code");
    assert!(html.contains("Add a passkey"), "{html}");
    assert!(
        html.contains("Or add a passkey further down"),
        "the intro says so: {html}"
    );
    assert!(html.contains(r#"data-options="/mfa/enroll/passkey/options""#));
    assert!(html.contains(r#"<script src="/static/passkeys.js" defer></script>"#));
    let csrf = hidden(&html, "csrf_token");
    // The options step is a form post: its CSRF token is checked.
    let res = post_form(&app, "/mfa/enroll/passkey/options", &[]).await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    // Without a sign-in waiting in this browser: no options.
    let stranger = spawn_client();
    let login_page = stranger
        .get(app.url("/login"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let res = stranger
        .post(app.url("/mfa/enroll/passkey/options"))
        .form(&[("csrf_token", hidden(&login_page, "csrf_token").as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);

    // Another browser at its own enrollment: its flow is refused here.
    let other = spawn_client();
    let other_next = login(&app, &other, "walk-other@example.com").await;
    let other_html = other
        .get(app.url(&other_next))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let res = other
        .post(app.url("/mfa/enroll/passkey/options"))
        .form(&[("csrf_token", hidden(&other_html, "csrf_token").as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let other_start: Value = res.json().await.unwrap();
    let (_, other_credential) = SoftKey::create(&other_start["options"]);
    let res = post_form(
        &app,
        "/mfa/enroll/passkey",
        &[
            ("csrf_token", &csrf),
            ("flow_id", other_start["flow_id"].as_str().unwrap()),
            ("credential", &other_credential.to_string()),
            ("redirect_to", APP),
            ("state", "st-7"),
        ],
    )
    .await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert!(location(&res).starts_with("/mfa/enroll?"));
    let (_, html) = page(&app, &next).await;
    assert!(html.contains("The passkey was not added"), "{html}");
    let res = app.client.get(app.url("/account")).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::SEE_OTHER, "still not signed in");

    // This browser's own flow: signed in, the recovery codes shown once.
    let res = post_form(
        &app,
        "/mfa/enroll/passkey/options",
        &[("csrf_token", &csrf), ("name", "Phone")],
    )
    .await;
    assert_eq!(res.status(), StatusCode::OK);
    let start: Value = res.json().await.unwrap();
    let (_, credential) = SoftKey::create(&start["options"]);
    let res = post_form(
        &app,
        "/mfa/enroll/passkey",
        &[
            ("csrf_token", &csrf),
            ("flow_id", start["flow_id"].as_str().unwrap()),
            ("credential", &credential.to_string()),
            ("redirect_to", APP),
            ("state", "st-7"),
        ],
    )
    .await;
    assert_eq!(res.status(), StatusCode::OK);
    let html = res.text().await.unwrap();
    assert!(html.contains("recovery-codes"), "{html}");
    let done = html
        .split("class=\"alt\"><a href=\"")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .unwrap()
        .replace("&amp;", "&")
        .replace("&#38;", "&");
    // Done: back to the app with a code whose tokens carry the passkey.
    let res = app.client.get(app.url(&done)).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let back = location(&res);
    assert!(back.starts_with(APP), "{back}");
    assert_eq!(query_param(&back, "state").as_deref(), Some("st-7"));
    let res = exchange(&app, &query_param(&back, "code").unwrap()).await;
    assert_eq!(res.status(), StatusCode::OK);
    let body: Value = res.json().await.unwrap();
    assert_eq!(amr(&access(&body)), ["pwd", "hwk", "user", "mfa"]);
    let (status, html) = page(&app, "/account/security").await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("Phone"), "{html}");

    // The other browser is still waiting: no session there.
    let res = other.get(app.url("/account")).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn the_enrollment_page_offers_no_passkey_without_a_domain() {
    let app = required_app("http://127.0.0.1:8443").await;
    sign_up_waiting(&app, "ip@example.com").await;
    let next = login(&app, &app.client, "ip@example.com").await;
    assert!(next.starts_with("/mfa/enroll?"), "{next}");
    let (status, html) = page(&app, &next).await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("<svg"), "a QR code");
    assert!(!html.contains("passkeys.js"), "{html}");
    assert!(!html.contains("Add a passkey"), "{html}");
    assert!(!html.contains("Or add a passkey"), "{html}");
}
