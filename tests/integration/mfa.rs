//! Second factors over real HTTP: TOTP enrollment with codes computed here
//! (totp-rs, checked against RFC 6238's test vector below), the challenge,
//! replay, the `mfa_token`'s limits, recovery codes, and every way in
//! answering `mfa_required` (or the `/mfa` page) instead of tokens.

use crate::helpers::*;
use derp::clock::Clock;
use reqwest::{Response, StatusCode};
use serde_json::{Value, json};

pub(crate) const APP: &str = "https://app.example.com/auth/callback";

/// RFC 6238 TOTP (SHA-1, 6 digits, 30 s) of a base32 secret at `unix`.
pub(crate) fn totp(secret_b32: &str, unix: i64) -> String {
    let secret = totp_rs::Secret::try_from_base32(secret_b32).expect("base32 secret");
    totp_rs::Builder::new()
        .with_secret(secret)
        .build()
        .expect("totp")
        .generate(unix as u64)
        .to_string()
}

#[test]
fn the_test_totp_matches_the_rfc_6238_vector() {
    // Appendix B: seed "12345678901234567890", T = 59 -> 94287082 (8 digits).
    let b32 = totp_rs::Secret::from(&b"12345678901234567890"[..]).to_base32();
    assert_eq!(totp(&b32, 59), "287082");
    assert_eq!(totp(&b32, 1_111_111_109), "081804");
}

pub(crate) async fn mfa_app() -> TestApp {
    spawn_with(|c| {
        c.hosted.allowed_redirect_urls = vec!["https://app.example.com/auth/".into()];
        let n = c.auth.native.get_or_insert_with(Default::default);
        n.enable_confirmation = false;
        n.enable_magic_link = true;
        n.mfa.issuer_label = Some("Acme".into());
    })
    .await
}

pub(crate) fn now(app: &TestApp) -> i64 {
    app.clock.unix()
}

/// A code for the next time step: the clock moves 30 s on, so the code is
/// newer than any accepted before (a replay is refused).
pub(crate) fn next_code(app: &TestApp, secret: &str) -> String {
    app.advance(30);
    totp(secret, now(app))
}

pub(crate) struct Enrolled {
    pub access: String,
    pub secret: String,
    pub recovery_codes: Vec<String>,
    pub factor_id: String,
}

/// Signs up and enrolls TOTP through the API.
pub(crate) async fn enrolled(app: &TestApp, email: &str) -> Enrolled {
    let up = app.sign_up(email).await;
    let access = up["tokens"]["access_token"].as_str().unwrap().to_string();
    enroll(app, &access).await
}

pub(crate) async fn enroll(app: &TestApp, access: &str) -> Enrolled {
    let res = app
        .post_bearer(
            "/api/v1/auth/mfa/totp/enroll",
            access,
            json!({"name": "Phone"}),
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    let e: Value = res.json().await.unwrap();
    let secret = e["secret"].as_str().unwrap().to_string();
    let factor_id = e["factor_id"].as_str().unwrap().to_string();
    let url = e["otpauth_url"].as_str().unwrap();
    // The issuer: `issuer_label` (Acme in `mfa_app`), else the product name.
    assert!(
        url.starts_with("otpauth://totp/Acme:") || url.starts_with("otpauth://totp/derp:"),
        "{url}"
    );
    assert!(url.contains(&format!("secret={secret}")));
    // Pending: not listed, and a sign-in does not ask for it yet.
    let listed: Value = app
        .get_bearer("/api/v1/auth/mfa/factors", access)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(listed["factors"], json!([]));
    let res = app
        .post_bearer(
            "/api/v1/auth/mfa/totp/verify",
            access,
            json!({"factor_id": factor_id, "code": "000000"}),
        )
        .await;
    expect_error(res, StatusCode::BAD_REQUEST, "invalid_request").await;
    let res = app
        .post_bearer(
            "/api/v1/auth/mfa/totp/verify",
            access,
            json!({"factor_id": factor_id, "code": totp(&secret, now(app))}),
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    let v: Value = res.json().await.unwrap();
    assert_eq!(v["factor"]["id"], factor_id.as_str());
    assert_eq!(v["factor"]["type"], "totp");
    assert_eq!(v["factor"]["name"], "Phone");
    let codes: Vec<String> = v["recovery_codes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap().to_string())
        .collect();
    assert_eq!(codes.len(), 10);
    Enrolled {
        access: access.to_string(),
        secret,
        recovery_codes: codes,
        factor_id,
    }
}

/// Asserts the second-step answer and returns its `mfa_token`.
pub(crate) async fn expect_mfa_required(res: Response, factor_id: &str) -> String {
    assert_eq!(res.status(), StatusCode::OK);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["mfa_required"], true, "{body}");
    assert!(body["user"].is_null() && body["tokens"].is_null(), "{body}");
    assert_eq!(body["factors"], json!([{"id": factor_id, "type": "totp"}]));
    body["mfa_token"].as_str().unwrap().to_string()
}

pub(crate) async fn challenge(app: &TestApp, mfa_token: &str, code: &str) -> Response {
    app.post(
        "/api/v1/auth/mfa/challenge",
        json!({"mfa_token": mfa_token, "code": code}),
    )
    .await
}

pub(crate) fn amr(access: &str) -> Vec<String> {
    claims(access)["amr"]
        .as_array()
        .map(|a| a.iter().map(|v| v.as_str().unwrap().to_string()).collect())
        .unwrap_or_default()
}

#[tokio::test]
async fn a_password_sign_in_needs_the_totp_code_and_amr_says_so_across_refresh() {
    let app = mfa_app().await;
    let e = enrolled(&app, "totp@example.com").await;
    let listed: Value = app
        .get_bearer("/api/v1/auth/mfa/factors", &e.access)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(listed["factors"][0]["id"], e.factor_id.as_str());
    assert!(listed["factors"][0]["created_at"].is_string());
    assert!(listed["factors"][0].get("secret").is_none());

    let res = app.sign_in("totp@example.com", PASSWORD).await;
    let token = expect_mfa_required(res, &e.factor_id).await;
    let code = next_code(&app, &e.secret);
    let res = challenge(&app, &token, &code).await;
    assert_eq!(res.status(), StatusCode::OK);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["user"]["email"], "totp@example.com");
    let access = body["tokens"]["access_token"].as_str().unwrap();
    let a = amr(access);
    for m in ["pwd", "otp", "mfa"] {
        assert!(a.contains(&m.to_string()), "{a:?}");
    }
    let session: Value = app.session(access).await.json().await.unwrap();
    assert_eq!(session["amr"], json!(["pwd", "otp", "mfa"]));
    let res = app
        .refresh(body["tokens"]["refresh_token"].as_str().unwrap())
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    let refreshed: Value = res.json().await.unwrap();
    assert_eq!(
        amr(refreshed["tokens"]["access_token"].as_str().unwrap()),
        ["pwd", "otp", "mfa"]
    );

    // The same code again (same window, new sign-in): refused as a replay.
    let res = app.sign_in("totp@example.com", PASSWORD).await;
    let token = expect_mfa_required(res, &e.factor_id).await;
    expect_error(
        challenge(&app, &token, &code).await,
        StatusCode::UNAUTHORIZED,
        "invalid_code",
    )
    .await;
    // A sign-in without the second factor has only `pwd` before enrolling:
    // the first session (sign-up) carries it.
    assert_eq!(amr(&e.access), ["pwd"]);
}

#[tokio::test]
async fn five_wrong_codes_kill_the_mfa_token_which_is_single_use_and_lives_five_minutes() {
    let app = spawn_with(|c| {
        c.auth
            .native
            .get_or_insert_with(Default::default)
            .enable_confirmation = false;
        c.rate_limit.lockout_after = 100;
    })
    .await;
    let e = enrolled(&app, "wrong@example.com").await;
    let res = app.sign_in("wrong@example.com", PASSWORD).await;
    let token = expect_mfa_required(res, &e.factor_id).await;
    for _ in 0..5 {
        expect_error(
            challenge(&app, &token, "000000").await,
            StatusCode::UNAUTHORIZED,
            "invalid_code",
        )
        .await;
    }
    let good = next_code(&app, &e.secret);
    expect_error(
        challenge(&app, &token, &good).await,
        StatusCode::UNAUTHORIZED,
        "invalid_token",
    )
    .await;

    // Single use.
    let res = app.sign_in("wrong@example.com", PASSWORD).await;
    let token = expect_mfa_required(res, &e.factor_id).await;
    let res = challenge(&app, &token, &good).await;
    assert_eq!(res.status(), StatusCode::OK);
    let again = next_code(&app, &e.secret);
    expect_error(
        challenge(&app, &token, &again).await,
        StatusCode::UNAUTHORIZED,
        "invalid_token",
    )
    .await;

    // Five minutes.
    let res = app.sign_in("wrong@example.com", PASSWORD).await;
    let token = expect_mfa_required(res, &e.factor_id).await;
    app.advance(301);
    let late = totp(&e.secret, now(&app));
    expect_error(
        challenge(&app, &token, &late).await,
        StatusCode::UNAUTHORIZED,
        "invalid_token",
    )
    .await;
    expect_error(
        challenge(&app, "not-a-token", &late).await,
        StatusCode::UNAUTHORIZED,
        "invalid_token",
    )
    .await;
}

#[tokio::test]
async fn wrong_codes_count_toward_the_sign_in_lockout() {
    let app = spawn_with(|c| {
        c.auth
            .native
            .get_or_insert_with(Default::default)
            .enable_confirmation = false;
        c.rate_limit.lockout_after = 3;
    })
    .await;
    let e = enrolled(&app, "lock@example.com").await;
    let res = app.sign_in("lock@example.com", PASSWORD).await;
    let token = expect_mfa_required(res, &e.factor_id).await;
    for _ in 0..3 {
        expect_error(
            challenge(&app, &token, "123456").await,
            StatusCode::UNAUTHORIZED,
            "invalid_code",
        )
        .await;
    }
    // The password is right, but the address is locked now.
    expect_error(
        app.sign_in("lock@example.com", PASSWORD).await,
        StatusCode::TOO_MANY_REQUESTS,
        "rate_limited",
    )
    .await;
}

#[tokio::test]
async fn a_recovery_code_works_once() {
    let app = mfa_app().await;
    let e = enrolled(&app, "recover@example.com").await;
    let code = e.recovery_codes[3].clone();
    let res = app.sign_in("recover@example.com", PASSWORD).await;
    let token = expect_mfa_required(res, &e.factor_id).await;
    // Case and dashes do not matter.
    let res = challenge(&app, &token, &code.to_uppercase()).await;
    assert_eq!(res.status(), StatusCode::OK);
    let body: Value = res.json().await.unwrap();
    assert!(amr(body["tokens"]["access_token"].as_str().unwrap()).contains(&"mfa".to_string()));
    let res = app.sign_in("recover@example.com", PASSWORD).await;
    let token = expect_mfa_required(res, &e.factor_id).await;
    expect_error(
        challenge(&app, &token, &code).await,
        StatusCode::UNAUTHORIZED,
        "invalid_code",
    )
    .await;
    // New codes replace the old set (recent sign-in: the enrolling session).
    let res = app
        .post_bearer("/api/v1/auth/mfa/recovery-codes", &e.access, json!({}))
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    let fresh: Value = res.json().await.unwrap();
    assert_eq!(fresh["recovery_codes"].as_array().unwrap().len(), 10);
    expect_error(
        challenge(&app, &token, &e.recovery_codes[4]).await,
        StatusCode::UNAUTHORIZED,
        "invalid_code",
    )
    .await;
    let res = challenge(&app, &token, fresh["recovery_codes"][0].as_str().unwrap()).await;
    assert_eq!(res.status(), StatusCode::OK);
}

#[tokio::test]
async fn enrolling_and_removing_need_a_recent_sign_in() {
    let app = mfa_app().await;
    let up = app.sign_up("old@example.com").await;
    let access = up["tokens"]["access_token"].as_str().unwrap().to_string();
    app.advance(601);
    let res = app
        .post_bearer("/api/v1/auth/mfa/totp/enroll", &access, json!({}))
        .await;
    expect_error(res, StatusCode::UNAUTHORIZED, "reauthentication_required").await;

    let e = enrolled(&app, "remove@example.com").await;
    app.advance(601);
    let res = app
        .client
        .delete(app.url(&format!("/api/v1/auth/mfa/factors/{}", e.factor_id)))
        .bearer_auth(&e.access)
        .send()
        .await
        .unwrap();
    expect_error(res, StatusCode::UNAUTHORIZED, "reauthentication_required").await;
    // Sign in again (with the factor), then remove it: sign-ins need no
    // second step any more.
    let res = app.sign_in("remove@example.com", PASSWORD).await;
    let token = expect_mfa_required(res, &e.factor_id).await;
    let body: Value = challenge(&app, &token, &next_code(&app, &e.secret))
        .await
        .json()
        .await
        .unwrap();
    let fresh = body["tokens"]["access_token"].as_str().unwrap();
    let res = app
        .client
        .delete(app.url(&format!("/api/v1/auth/mfa/factors/{}", e.factor_id)))
        .bearer_auth(fresh)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    let res = app.sign_in("remove@example.com", PASSWORD).await;
    assert_eq!(res.status(), StatusCode::OK);
    let body: Value = res.json().await.unwrap();
    assert!(body["tokens"]["access_token"].is_string());
    assert!(body.get("mfa_required").is_none());
}

#[tokio::test]
async fn totp_off_refuses_enrollment() {
    let app = spawn_with(|c| {
        let n = c.auth.native.get_or_insert_with(Default::default);
        n.enable_confirmation = false;
        n.mfa.totp = false;
    })
    .await;
    let up = app.sign_up("nototp@example.com").await;
    let res = app
        .post_bearer(
            "/api/v1/auth/mfa/totp/enroll",
            up["tokens"]["access_token"].as_str().unwrap(),
            json!({}),
        )
        .await;
    expect_error(res, StatusCode::NOT_FOUND, "feature_disabled").await;
}

#[tokio::test]
async fn magic_links_and_password_resets_ask_for_the_second_factor_on_the_api() {
    let app = mfa_app().await;
    let e = enrolled(&app, "links@example.com").await;

    let res = app
        .post(
            "/api/v1/auth/magic-link",
            json!({"email": "links@example.com"}),
        )
        .await;
    assert_eq!(res.status(), StatusCode::ACCEPTED);
    let mail = app.mails_to("links@example.com", 1).await;
    let token = token_from(mail.last().unwrap());
    let res = app
        .post("/api/v1/auth/magic-link/verify", json!({"token": token}))
        .await;
    let mfa_token = expect_mfa_required(res, &e.factor_id).await;
    // The link is spent even so (the step committed with it).
    expect_error(
        app.post("/api/v1/auth/magic-link/verify", json!({"token": token}))
            .await,
        StatusCode::UNAUTHORIZED,
        "invalid_token",
    )
    .await;
    let body: Value = challenge(&app, &mfa_token, &next_code(&app, &e.secret))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        amr(body["tokens"]["access_token"].as_str().unwrap()),
        ["email", "otp", "mfa"]
    );

    let res = app
        .post(
            "/api/v1/auth/password/recover",
            json!({"email": "links@example.com"}),
        )
        .await;
    assert_eq!(res.status(), StatusCode::ACCEPTED);
    let mail = app.mails_to("links@example.com", 2).await;
    let token = token_from(mail.last().unwrap());
    let res = app
        .post(
            "/api/v1/auth/password/reset",
            json!({"token": token, "password": "a brand new password"}),
        )
        .await;
    expect_mfa_required(res, &e.factor_id).await;
}

#[tokio::test]
async fn the_confirmation_link_asks_for_the_second_factor() {
    let app = spawn_with(|c| {
        let n = c.auth.native.get_or_insert_with(Default::default);
        n.enable_confirmation = true;
        n.enable_magic_link = true;
    })
    .await;
    let res = app
        .post(
            "/api/v1/auth/sign-up",
            json!({"email": "confirm@example.com", "password": PASSWORD}),
        )
        .await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let confirm_token = token_from(&app.mails_to("confirm@example.com", 1).await[0]);
    // Signed in by a magic link first (which proves the address), enroll.
    app.post(
        "/api/v1/auth/magic-link",
        json!({"email": "confirm@example.com"}),
    )
    .await;
    let mail = app.mails_to("confirm@example.com", 2).await;
    let body: Value = app
        .post(
            "/api/v1/auth/magic-link/verify",
            json!({"token": token_from(mail.last().unwrap())}),
        )
        .await
        .json()
        .await
        .unwrap();
    let e = enroll(&app, body["tokens"]["access_token"].as_str().unwrap()).await;
    let res = app
        .post("/api/v1/auth/confirm", json!({"token": confirm_token}))
        .await;
    expect_mfa_required(res, &e.factor_id).await;
}

pub(crate) fn location(res: &Response) -> String {
    res.headers()
        .get("location")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default()
}

pub(crate) fn query_param(url: &str, name: &str) -> Option<String> {
    url::Url::parse(url)
        .ok()?
        .query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

pub(crate) fn urlencode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

pub(crate) async fn page(app: &TestApp, path: &str) -> (StatusCode, String) {
    let res = app.client.get(app.url(path)).send().await.unwrap();
    let status = res.status();
    (status, res.text().await.unwrap())
}

pub(crate) async fn post_form(app: &TestApp, path: &str, form: &[(&str, &str)]) -> Response {
    app.client
        .post(app.url(path))
        .form(form)
        .send()
        .await
        .unwrap()
}

pub(crate) async fn exchange(app: &TestApp, code: &str) -> Response {
    app.post(
        "/api/v1/auth/token",
        json!({"grant_type": "authorization_code", "code": code, "redirect_uri": APP}),
    )
    .await
}

#[tokio::test]
async fn the_login_page_shows_the_second_step_then_returns_to_the_app() {
    let app = mfa_app().await;
    let e = enrolled(&app, "pages@example.com").await;
    let path = format!("/login?redirect_to={}&state=st-1", urlencode(APP));
    let (_, html) = page(&app, &path).await;
    let csrf = hidden(&html, "csrf_token");
    let res = post_form(
        &app,
        "/login",
        &[
            ("csrf_token", &csrf),
            ("email", "pages@example.com"),
            ("password", PASSWORD),
            ("redirect_to", APP),
            ("state", "st-1"),
        ],
    )
    .await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let next = location(&res);
    assert!(next.starts_with("/mfa?"), "{next}");
    // No session yet: the account page sends to /login.
    let res = app.client.get(app.url("/account")).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert!(location(&res).starts_with("/login"));

    let (status, html) = page(&app, &next).await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("name=\"code\""));
    assert_eq!(hidden(&html, "redirect_to"), APP);
    let csrf = hidden(&html, "csrf_token");
    // No CSRF token: refused.
    let res = post_form(&app, "/mfa", &[("code", "123456")]).await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    let res = post_form(
        &app,
        "/mfa",
        &[
            ("csrf_token", &csrf),
            ("code", "000000"),
            ("redirect_to", APP),
        ],
    )
    .await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    let code = next_code(&app, &e.secret);
    let res = post_form(
        &app,
        "/mfa",
        &[
            ("csrf_token", &csrf),
            ("code", &code),
            ("redirect_to", APP),
            ("state", "st-1"),
        ],
    )
    .await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let back = location(&res);
    assert!(back.starts_with(APP), "{back}");
    assert_eq!(query_param(&back, "state").as_deref(), Some("st-1"));
    let res = exchange(&app, &query_param(&back, "code").unwrap()).await;
    assert_eq!(res.status(), StatusCode::OK);
    let body: Value = res.json().await.unwrap();
    assert_eq!(
        amr(body["tokens"]["access_token"].as_str().unwrap()),
        ["pwd", "otp", "mfa"]
    );
    // Signed in on the pages too.
    let res = app.client.get(app.url("/account")).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
}

#[tokio::test]
async fn a_code_from_a_page_session_older_than_the_factor_asks_for_it_at_the_exchange() {
    let app = mfa_app().await;
    let up = app.sign_up("older@example.com").await;
    // Signed in on the pages before any factor.
    let (_, html) = page(&app, "/login").await;
    let csrf = hidden(&html, "csrf_token");
    let res = post_form(
        &app,
        "/login",
        &[
            ("csrf_token", &csrf),
            ("email", "older@example.com"),
            ("password", PASSWORD),
        ],
    )
    .await;
    assert_eq!(location(&res), "/account");
    let e = enroll(&app, up["tokens"]["access_token"].as_str().unwrap()).await;
    // That browser session goes back to an app with a code at once…
    let res = app
        .client
        .get(app.url(&format!("/login?redirect_to={}", urlencode(APP))))
        .send()
        .await
        .unwrap();
    let back = location(&res);
    assert!(back.starts_with(APP), "{back}");
    // …but the code gives no tokens without the second factor.
    let res = exchange(&app, &query_param(&back, "code").unwrap()).await;
    let token = expect_mfa_required(res, &e.factor_id).await;
    let res = challenge(&app, &token, &next_code(&app, &e.secret)).await;
    assert_eq!(res.status(), StatusCode::OK);
}

#[tokio::test]
async fn magic_link_and_reset_pages_show_the_second_step() {
    let app = mfa_app().await;
    let e = enrolled(&app, "mlpage@example.com").await;
    app.post(
        "/api/v1/auth/magic-link",
        json!({"email": "mlpage@example.com"}),
    )
    .await;
    let mail = app.mails_to("mlpage@example.com", 1).await;
    let token = token_from(mail.last().unwrap());
    let (status, html) = page(&app, &format!("/magic-link?token={token}")).await;
    assert_eq!(status, StatusCode::OK);
    let csrf = hidden(&html, "csrf_token");
    let res = post_form(
        &app,
        "/magic-link/verify",
        &[("csrf_token", &csrf), ("token", &token)],
    )
    .await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&res), "/mfa");
    let (_, html) = page(&app, "/mfa").await;
    let csrf = hidden(&html, "csrf_token");
    let code = next_code(&app, &e.secret);
    let res = post_form(&app, "/mfa", &[("csrf_token", &csrf), ("code", &code)]).await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&res), "/account");
    let res = app.client.get(app.url("/account")).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);

    // The reset link, in a second browser.
    let b = spawn_client();
    app.post(
        "/api/v1/auth/password/recover",
        json!({"email": "mlpage@example.com"}),
    )
    .await;
    let mail = app.mails_to("mlpage@example.com", 2).await;
    let token = token_from(mail.last().unwrap());
    let html = b
        .get(app.url(&format!("/reset-password?token={token}")))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let csrf = hidden(&html, "csrf_token");
    let res = b
        .post(app.url("/reset-password"))
        .form(&[
            ("csrf_token", csrf.as_str()),
            ("token", token.as_str()),
            ("password", "another new password"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&res), "/mfa");
    let res = b.get(app.url("/account")).send().await.unwrap();
    assert_eq!(
        res.status(),
        StatusCode::SEE_OTHER,
        "no session before the code"
    );
}

#[tokio::test]
async fn the_security_page_enrolls_with_a_qr_code_and_shows_recovery_codes_once() {
    let app = mfa_app().await;
    app.sign_up("secpage@example.com").await;
    let (_, html) = page(&app, "/login").await;
    let csrf = hidden(&html, "csrf_token");
    post_form(
        &app,
        "/login",
        &[
            ("csrf_token", &csrf),
            ("email", "secpage@example.com"),
            ("password", PASSWORD),
        ],
    )
    .await;
    let (status, html) = page(&app, "/account").await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("/account/security"));
    let (status, html) = page(&app, "/account/security").await;
    assert_eq!(status, StatusCode::OK);
    let csrf = hidden(&html, "csrf_token");
    let res = post_form(
        &app,
        "/account/security/totp",
        &[("csrf_token", &csrf), ("name", "Laptop")],
    )
    .await;
    assert_eq!(res.status(), StatusCode::OK);
    let html = res.text().await.unwrap();
    assert!(html.contains("<svg"), "a QR code rendered here");
    let secret = hidden(&html, "secret");
    let factor_id = hidden(&html, "factor_id");
    assert!(html.contains(&format!(">{secret}</code>")));
    let res = post_form(
        &app,
        "/account/security/totp/verify",
        &[
            ("csrf_token", &csrf),
            ("factor_id", &factor_id),
            ("code", "000000"),
            ("secret", &secret),
            ("otpauth_url", &hidden(&html, "otpauth_url")),
        ],
    )
    .await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    assert!(res.text().await.unwrap().contains("<svg"));
    let res = post_form(
        &app,
        "/account/security/totp/verify",
        &[
            ("csrf_token", &csrf),
            ("factor_id", &factor_id),
            ("code", &totp(&secret, now(&app))),
        ],
    )
    .await;
    assert_eq!(res.status(), StatusCode::OK);
    let html = res.text().await.unwrap();
    assert_eq!(html.matches("<li><code>").count(), 10);
    let (_, html) = page(&app, "/account/security").await;
    assert!(html.contains("Laptop") && html.contains("10 unused recovery codes"));
    // The factor holds on the next sign-in.
    let res = app.sign_in("secpage@example.com", PASSWORD).await;
    expect_mfa_required(res, &factor_id).await;
    // Remove it from the page.
    let csrf = hidden(&html, "csrf_token");
    let res = post_form(
        &app,
        &format!("/account/security/factors/{factor_id}/remove"),
        &[("csrf_token", &csrf)],
    )
    .await;
    assert_eq!(res.status(), StatusCode::OK, "the first POST only asks");
    let res = app.sign_in("secpage@example.com", PASSWORD).await;
    assert!(
        res.json::<Value>().await.unwrap()["tokens"].is_null(),
        "the factor is still there"
    );
    let res = post_form(
        &app,
        &format!("/account/security/factors/{factor_id}/remove"),
        &[("csrf_token", &csrf), ("confirmed", "yes")],
    )
    .await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let res = app.sign_in("secpage@example.com", PASSWORD).await;
    assert!(res.json::<Value>().await.unwrap()["tokens"]["access_token"].is_string());
}

#[tokio::test]
async fn the_audit_log_records_mfa_events_and_the_database_holds_no_plain_secret() {
    use crate::admin::{KEY, events};
    let app = spawn_with(|c| {
        c.auth
            .native
            .get_or_insert_with(Default::default)
            .enable_confirmation = false;
        c.admin.service_keys = vec![derp::config::Secret::new(KEY)];
    })
    .await;
    let e = enrolled(&app, "audit@example.com").await;
    let res = app.sign_in("audit@example.com", PASSWORD).await;
    let token = expect_mfa_required(res, &e.factor_id).await;
    challenge(&app, &token, "999999").await;
    let res = challenge(&app, &token, &e.recovery_codes[0]).await;
    assert_eq!(res.status(), StatusCode::OK);
    let res = app
        .client
        .delete(app.url(&format!("/api/v1/auth/mfa/factors/{}", e.factor_id)))
        .bearer_auth(&e.access)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    for action in [
        "mfa.enrolled",
        "mfa.challenge.failure",
        "mfa.recovery_code.used",
        "mfa.removed",
    ] {
        let found = events(&app, &format!("action={action}")).await;
        assert_eq!(found.len(), 1, "{action}");
    }

    // The secret is sealed: neither its bytes nor its base32 are in the
    // database files; the key is in data_dir/secrets.key, 0600.
    let f = enrolled(&app, "sealed@example.com").await;
    let raw = totp_rs::Secret::try_from_base32(&f.secret).unwrap();
    let data = app._dir.path().join("data");
    for name in ["derp.db", "derp.db-wal"] {
        let bytes = std::fs::read(data.join(name)).unwrap_or_default();
        assert!(
            !bytes.windows(raw.len()).any(|w| w == raw.as_ref()),
            "{name}"
        );
        assert!(
            !bytes
                .windows(f.secret.len())
                .any(|w| w == f.secret.as_bytes()),
            "{name}"
        );
    }
    use std::os::unix::fs::PermissionsExt;
    let meta = std::fs::metadata(data.join("secrets.key")).unwrap();
    assert_eq!(meta.len(), 32);
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);
}

#[tokio::test]
async fn derp_mfa_reset_removes_every_factor_of_a_user() {
    let app = mfa_app().await;
    let e = enrolled(&app, "lost@example.com").await;
    let data = app._dir.path().join("data");
    let file = app._dir.path().join("derp.toml");
    let storage = storage_toml(&data).await;
    std::fs::write(
        &file,
        format!(
            "[server]\ndata_dir = \"{}\"\n[auth.native]\n{storage}",
            data.display()
        ),
    )
    .unwrap();
    let run = |email: &str| {
        std::process::Command::new(env!("CARGO_BIN_EXE_derp"))
            .env_remove("DERP_CONFIG")
            .env_remove("DERP_BIND")
            .args(["mfa", "reset", "--email", email, "--config"])
            .arg(&file)
            .output()
            .unwrap()
    };
    let out = run("nobody@example.com");
    assert!(!out.status.success());
    let out = run("lost@example.com");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("1 second factor"));
    let res = app.sign_in("lost@example.com", PASSWORD).await;
    let body: Value = res.json().await.unwrap();
    assert!(body["tokens"]["access_token"].is_string(), "{body}");
    let listed: Value = app
        .get_bearer("/api/v1/auth/mfa/factors", &e.access)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(listed["factors"], json!([]));
}
