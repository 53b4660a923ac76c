//! Second-factor policies over real HTTP: an org's `require_mfa` (owners
//! set it; making the org active without `mfa` in the session is 403
//! `mfa_required`, on the API and the pages) and the instance policy
//! `[auth.native.mfa] required` (a first factor of a user without a factor
//! answers 403 `mfa_enrollment_required`; its token enrolls and signs in).

use crate::helpers::*;
use crate::mfa::{
    APP, amr, challenge, enroll, expect_mfa_required, location, mfa_app, next_code, now, page,
    post_form, query_param, totp, urlencode,
};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

fn access(body: &Value) -> String {
    body["tokens"]["access_token"].as_str().unwrap().to_string()
}

async fn active_org(app: &TestApp, access: &str, org: &str) -> reqwest::Response {
    app.post_bearer("/api/v1/auth/active-org", access, json!({"org_id": org}))
        .await
}

async fn set_policy(app: &TestApp, access: &str, org: &str, on: bool) -> reqwest::Response {
    call_as(
        app,
        Method::PATCH,
        format!("/api/v1/orgs/{org}"),
        Some(access),
        Some(json!({"require_mfa": on})),
    )
    .await
}

#[tokio::test]
async fn an_org_that_requires_mfa_is_closed_to_sessions_without_a_second_factor() {
    let app = mfa_app().await;
    let owner = app.sign_up("owner@example.com").await;
    let owner_access = access(&owner);
    let res = app
        .post_bearer(
            "/api/v1/orgs",
            &owner_access,
            json!({"name": "Acme", "slug": "acme"}),
        )
        .await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let org: Value = res.json().await.unwrap();
    assert_eq!(org["require_mfa"], false);
    let org_id = org["id"].as_str().unwrap().to_string();
    let admin = app.sign_up("admin@example.com").await;
    let member = app.sign_up("member@example.com").await;
    for (who, role) in [(&admin, "admin"), (&member, "member")] {
        let res = app
            .post_bearer(
                &format!("/api/v1/orgs/{org_id}/members"),
                &owner_access,
                json!({"user_id": who["user"]["id"], "role": role}),
            )
            .await;
        assert_eq!(res.status(), StatusCode::CREATED);
    }
    // The member makes the org active before the policy exists.
    let res = active_org(&app, &access(&member), &org_id).await;
    assert_eq!(res.status(), StatusCode::OK);
    let member_tokens: Value = res.json().await.unwrap();
    assert_eq!(claims(&access(&member_tokens))["org_id"], org_id.as_str());

    // Only an owner sets the policy: an admin may rename, not this.
    let res = set_policy(&app, &access(&admin), &org_id, true).await;
    expect_error(res, StatusCode::FORBIDDEN, "forbidden").await;
    let res = set_policy(&app, &owner_access, &org_id, true).await;
    assert_eq!(res.status(), StatusCode::OK);
    let updated: Value = res.json().await.unwrap();
    assert_eq!(updated["require_mfa"], true);
    let res = app
        .get_bearer(&format!("/api/v1/orgs/{org_id}"), &access(&admin))
        .await;
    let seen: Value = res.json().await.unwrap();
    assert_eq!(seen["require_mfa"], true);
    // A wrong type is a clear 400 naming nothing else.
    let res = call_as(
        &app,
        Method::PATCH,
        format!("/api/v1/orgs/{org_id}"),
        Some(&owner_access),
        Some(json!({"require_mfa": "yes"})),
    )
    .await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);

    // Sessions signed in with a password only: refused, the owner too.
    for who in [&owner_access, &access(&admin)] {
        let res = active_org(&app, who, &org_id).await;
        expect_error(res, StatusCode::FORBIDDEN, "mfa_required").await;
    }
    // A session that had the org active loses it at its next refresh.
    let res = app
        .refresh(member_tokens["tokens"]["refresh_token"].as_str().unwrap())
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    let refreshed: Value = res.json().await.unwrap();
    assert!(
        claims(&access(&refreshed))
            .get("org_id")
            .is_none_or(Value::is_null)
    );

    // Enrolling from the (recent) session shows both factors: the org opens.
    let e = enroll(&app, &owner_access).await;
    let res = active_org(&app, &owner_access, &org_id).await;
    assert_eq!(res.status(), StatusCode::OK);
    let t: Value = res.json().await.unwrap();
    let c = claims(&access(&t));
    assert_eq!(c["org_id"], org_id.as_str());
    assert!(amr(&access(&t)).contains(&"mfa".to_string()), "{c}");

    // A later sign-in with both factors opens it too; a password-only one
    // cannot exist for this user any more.
    let res = app.sign_in("owner@example.com", PASSWORD).await;
    let token = expect_mfa_required(res, &e.factor_id).await;
    let res = challenge(&app, &token, &next_code(&app, &e.secret)).await;
    assert_eq!(res.status(), StatusCode::OK);
    let signed: Value = res.json().await.unwrap();
    let res = active_org(&app, &access(&signed), &org_id).await;
    assert_eq!(res.status(), StatusCode::OK);

    // Turning the policy off opens it to password sessions again.
    let res = set_policy(&app, &owner_access, &org_id, false).await;
    assert_eq!(res.status(), StatusCode::OK);
    let res = active_org(&app, &access(&admin), &org_id).await;
    assert_eq!(res.status(), StatusCode::OK);
}

#[tokio::test]
async fn the_org_pages_offer_enrollment_when_the_org_requires_mfa() {
    let app = mfa_app().await;
    let owner = app.sign_up("pageowner@example.com").await;
    let res = app
        .post_bearer(
            "/api/v1/orgs",
            &access(&owner),
            json!({"name": "Paged", "slug": "paged"}),
        )
        .await;
    assert_eq!(res.status(), StatusCode::CREATED);
    // Sign in on the pages (password only).
    let (_, html) = page(&app, "/login").await;
    let csrf = hidden(&html, "csrf_token");
    let res = post_form(
        &app,
        "/login",
        &[
            ("csrf_token", &csrf),
            ("email", "pageowner@example.com"),
            ("password", PASSWORD),
        ],
    )
    .await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let (status, html) = page(&app, "/orgs/paged").await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        html.contains("/orgs/paged/require-mfa"),
        "owners see the policy"
    );
    let csrf = hidden(&html, "csrf_token");
    // Without a CSRF token the policy form is refused.
    let res = post_form(&app, "/orgs/paged/require-mfa", &[("require_mfa", "on")]).await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    let res = post_form(
        &app,
        "/orgs/paged/require-mfa",
        &[("csrf_token", &csrf), ("require_mfa", "on")],
    )
    .await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let (_, html) = page(&app, "/orgs/paged").await;
    assert!(html.contains("Two-step verification required"), "{html}");
    // Making it active sends to the security page with an explanation.
    let res = post_form(&app, "/orgs/paged/activate", &[("csrf_token", &csrf)]).await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&res), "/account/security");
    let (_, html) = page(&app, "/account/security").await;
    assert!(html.contains("requires two-step verification"), "{html}");
    assert!(
        html.contains("/account/security/totp"),
        "enrollment offered"
    );
    let (_, html) = page(&app, "/orgs/paged").await;
    assert!(!html.contains("badge\">active"), "not active");
}

async fn required_app() -> TestApp {
    spawn_with(|c| {
        c.hosted.allowed_redirect_urls = vec!["https://app.example.com/auth/".into()];
        let n = c.auth.native.get_or_insert_with(Default::default);
        n.enable_confirmation = false;
        n.enable_magic_link = true;
        n.mfa.required = true;
    })
    .await
}

async fn enroll_with(app: &TestApp, token: &str) -> reqwest::Response {
    app.post(
        "/api/v1/auth/mfa/totp/enroll",
        json!({"enrollment_token": token}),
    )
    .await
}

async fn verify_with(app: &TestApp, token: &str, factor: &str, code: &str) -> reqwest::Response {
    app.post(
        "/api/v1/auth/mfa/totp/verify",
        json!({"enrollment_token": token, "factor_id": factor, "code": code}),
    )
    .await
}

#[tokio::test]
async fn when_the_instance_requires_mfa_every_sign_in_enrolls_first() {
    let app = required_app().await;
    // Sign-up creates the account; no tokens until a factor is enrolled.
    let res = app
        .post(
            "/api/v1/auth/sign-up",
            json!({"email": "req@example.com", "password": PASSWORD}),
        )
        .await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let up: Value = res.json().await.unwrap();
    assert!(up["tokens"].is_null(), "{up}");
    assert_eq!(up["mfa_enrollment_required"], true);
    assert!(up["enrollment_token"].is_string());

    // A password sign-in: 403 with a token, and no tokens.
    let res = app.sign_in("req@example.com", PASSWORD).await;
    let body = expect_error(res, StatusCode::FORBIDDEN, "mfa_enrollment_required").await;
    assert!(body.get("tokens").is_none(), "{body}");
    let token = body["error"]["enrollment_token"]
        .as_str()
        .unwrap()
        .to_string();

    // Neither a token nor a session: 401; a made-up token: 401.
    let res = app.post("/api/v1/auth/mfa/totp/enroll", json!({})).await;
    expect_error(res, StatusCode::UNAUTHORIZED, "unauthenticated").await;
    let res = enroll_with(&app, "not-a-token").await;
    expect_error(res, StatusCode::UNAUTHORIZED, "invalid_token").await;
    // The enrollment token is not an `mfa_token`.
    let res = challenge(&app, &token, "123456").await;
    expect_error(res, StatusCode::UNAUTHORIZED, "invalid_token").await;

    let res = enroll_with(&app, &token).await;
    assert_eq!(res.status(), StatusCode::OK);
    let e: Value = res.json().await.unwrap();
    let (secret, factor) = (
        e["secret"].as_str().unwrap().to_string(),
        e["factor_id"].as_str().unwrap().to_string(),
    );
    let res = verify_with(&app, &token, &factor, "000000").await;
    expect_error(res, StatusCode::BAD_REQUEST, "invalid_request").await;
    let res = verify_with(&app, &token, &factor, &totp(&secret, now(&app))).await;
    assert_eq!(res.status(), StatusCode::OK);
    let done: Value = res.json().await.unwrap();
    assert_eq!(done["user"]["email"], "req@example.com");
    assert_eq!(done["recovery_codes"].as_array().unwrap().len(), 10);
    assert_eq!(done["factor"]["id"], factor.as_str());
    assert_eq!(amr(&access(&done)), ["pwd", "otp", "mfa"]);
    // Spent: the token enrolls nothing more.
    let res = enroll_with(&app, &token).await;
    expect_error(res, StatusCode::UNAUTHORIZED, "invalid_token").await;

    // Next time the sign-in asks for the factor like any other.
    let res = app.sign_in("req@example.com", PASSWORD).await;
    let mfa_token = expect_mfa_required(res, &factor).await;
    // An `mfa_token` is not an enrollment token: no second factor can be
    // added with the password alone.
    let res = enroll_with(&app, &mfa_token).await;
    expect_error(res, StatusCode::UNAUTHORIZED, "invalid_token").await;
    let res = challenge(&app, &mfa_token, &next_code(&app, &secret)).await;
    assert_eq!(res.status(), StatusCode::OK);

    // The magic link of a user without a factor asks for enrollment too.
    let up = app
        .post(
            "/api/v1/auth/sign-up",
            json!({"email": "link@example.com", "password": PASSWORD}),
        )
        .await;
    assert_eq!(up.status(), StatusCode::CREATED);
    let res = app
        .post(
            "/api/v1/auth/magic-link",
            json!({"email": "link@example.com"}),
        )
        .await;
    assert!(res.status().is_success(), "{}", res.status());
    let mail = app.mails_to("link@example.com", 1).await;
    let link = token_from(mail.last().unwrap());
    let res = app
        .post("/api/v1/auth/magic-link/verify", json!({"token": link}))
        .await;
    let body = expect_error(res, StatusCode::FORBIDDEN, "mfa_enrollment_required").await;
    assert!(body["error"]["enrollment_token"].is_string());
}

#[tokio::test]
async fn five_wrong_codes_kill_an_enrollment_token() {
    let app = required_app().await;
    let up = app
        .post(
            "/api/v1/auth/sign-up",
            json!({"email": "wrong@example.com", "password": PASSWORD}),
        )
        .await;
    let up: Value = up.json().await.unwrap();
    let token = up["enrollment_token"].as_str().unwrap().to_string();
    let e: Value = enroll_with(&app, &token).await.json().await.unwrap();
    let (secret, factor) = (
        e["secret"].as_str().unwrap().to_string(),
        e["factor_id"].as_str().unwrap().to_string(),
    );
    for _ in 0..5 {
        let res = verify_with(&app, &token, &factor, "000000").await;
        expect_error(res, StatusCode::BAD_REQUEST, "invalid_request").await;
    }
    let res = verify_with(&app, &token, &factor, &totp(&secret, now(&app))).await;
    expect_error(res, StatusCode::UNAUTHORIZED, "invalid_token").await;
    // It lives 15 minutes: a fresh one from a new sign-in, then too late.
    let res = app.sign_in("wrong@example.com", PASSWORD).await;
    let body = expect_error(res, StatusCode::FORBIDDEN, "mfa_enrollment_required").await;
    let token = body["error"]["enrollment_token"]
        .as_str()
        .unwrap()
        .to_string();
    app.advance(15 * 60 + 1);
    let res = enroll_with(&app, &token).await;
    expect_error(res, StatusCode::UNAUTHORIZED, "invalid_token").await;
}

#[tokio::test]
async fn the_login_page_walks_a_user_through_enrollment_then_returns_to_the_app() {
    let app = required_app().await;
    let res = app
        .post(
            "/api/v1/auth/sign-up",
            json!({"email": "walk@example.com", "password": PASSWORD}),
        )
        .await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let path = format!("/login?redirect_to={}&state=st-9", urlencode(APP));
    let (_, html) = page(&app, &path).await;
    let csrf = hidden(&html, "csrf_token");
    let res = post_form(
        &app,
        "/login",
        &[
            ("csrf_token", &csrf),
            ("email", "walk@example.com"),
            ("password", PASSWORD),
            ("redirect_to", APP),
            ("state", "st-9"),
        ],
    )
    .await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let next = location(&res);
    assert!(next.starts_with("/mfa/enroll?"), "{next}");
    // Not signed in yet.
    let res = app.client.get(app.url("/account")).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::SEE_OTHER);

    let (status, html) = page(&app, &next).await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("<svg"), "a QR code");
    let secret = html
        .split("id=\"totp-secret\">")
        .nth(1)
        .and_then(|s| s.split('<').next())
        .unwrap()
        .to_string();
    let factor = hidden(&html, "factor_id");
    let csrf = hidden(&html, "csrf_token");
    let res = post_form(
        &app,
        "/mfa/enroll",
        &[("factor_id", &factor), ("code", "1")],
    )
    .await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN, "no CSRF token");
    let res = post_form(
        &app,
        "/mfa/enroll",
        &[
            ("csrf_token", &csrf),
            ("factor_id", &factor),
            ("code", "000000"),
            ("secret", &secret),
            ("otpauth_url", &hidden(&html, "otpauth_url")),
            ("redirect_to", APP),
            ("state", "st-9"),
        ],
    )
    .await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    let res = post_form(
        &app,
        "/mfa/enroll",
        &[
            ("csrf_token", &csrf),
            ("factor_id", &factor),
            ("code", &totp(&secret, now(&app))),
            ("redirect_to", APP),
            ("state", "st-9"),
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
    assert!(
        done.starts_with("/login?") && done.contains("state=st-9"),
        "{done}"
    );
    // Done: back to the app with a code whose tokens carry both factors.
    let res = app.client.get(app.url(&done)).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let back = location(&res);
    assert!(back.starts_with(APP), "{back}");
    assert_eq!(
        query_param(&back, "state").as_deref(),
        Some("st-9"),
        "{back} from {done}"
    );
    let res = crate::mfa::exchange(&app, &query_param(&back, "code").unwrap()).await;
    assert_eq!(res.status(), StatusCode::OK);
    let body: Value = res.json().await.unwrap();
    assert_eq!(amr(&access(&body)), ["pwd", "otp", "mfa"]);
}

#[tokio::test]
async fn totp_off_hides_enrollment_on_the_security_page() {
    let app = spawn_with(|c| {
        let n = c.auth.native.get_or_insert_with(Default::default);
        n.enable_confirmation = false;
        n.mfa.totp = false;
    })
    .await;
    app.sign_up("hidden@example.com").await;
    let (_, html) = page(&app, "/login").await;
    let csrf = hidden(&html, "csrf_token");
    let res = post_form(
        &app,
        "/login",
        &[
            ("csrf_token", &csrf),
            ("email", "hidden@example.com"),
            ("password", PASSWORD),
        ],
    )
    .await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let (status, html) = page(&app, "/account/security").await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        !html.contains("action=\"/account/security/totp\""),
        "{html}"
    );
    let csrf = hidden(&html, "csrf_token");
    // The form's target refuses too.
    let res = post_form(&app, "/account/security/totp", &[("csrf_token", &csrf)]).await;
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn admins_see_a_users_factors_and_remove_them_all_with_a_mail_and_an_audit_event() {
    use crate::admin::{KEY, admin_app, admin_token};
    let app = admin_app().await;
    let up = app.sign_up("lost@example.com").await;
    let user_id = up["user"]["id"].as_str().unwrap().to_string();
    let e = enroll(&app, &access(&up)).await;
    let plain = app.sign_up("plain@example.com").await;

    let res = call_as(
        &app,
        Method::GET,
        format!("/api/v1/admin/users/{user_id}"),
        Some(KEY),
        None,
    )
    .await;
    assert_eq!(res.status(), StatusCode::OK);
    let detail: Value = res.json().await.unwrap();
    assert_eq!(detail["factors"][0]["id"], e.factor_id.as_str());
    assert_eq!(detail["factors"][0]["type"], "totp");
    assert!(detail["factors"][0].get("secret").is_none(), "{detail}");
    let res = call_as(&app, Method::GET, "/api/v1/admin/overview", Some(KEY), None).await;
    let overview: Value = res.json().await.unwrap();
    assert_eq!(overview["users_with_mfa"], 1, "{overview}");

    // Only admins: no credentials, a plain user, then an unknown user.
    let path = format!("/api/v1/admin/users/{user_id}/mfa");
    let res = call_as(&app, Method::DELETE, path.clone(), None, None).await;
    expect_error(res, StatusCode::FORBIDDEN, "forbidden").await;
    let res = call_as(
        &app,
        Method::DELETE,
        path.clone(),
        Some(&access(&plain)),
        None,
    )
    .await;
    expect_error(res, StatusCode::FORBIDDEN, "forbidden").await;
    let res = call_as(
        &app,
        Method::DELETE,
        "/api/v1/admin/users/no-such-user/mfa",
        Some(KEY),
        None,
    )
    .await;
    expect_error(res, StatusCode::NOT_FOUND, "not_found").await;
    let res = app.sign_in("lost@example.com", PASSWORD).await;
    expect_mfa_required(res, &e.factor_id).await;

    let res = call_as(&app, Method::DELETE, path.clone(), Some(KEY), None).await;
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    let detail: Value = call_as(
        &app,
        Method::GET,
        format!("/api/v1/admin/users/{user_id}"),
        Some(KEY),
        None,
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(detail["factors"], json!([]));
    // The password alone signs in again, and neither the TOTP nor a
    // recovery code is a factor any more.
    let res = app.sign_in("lost@example.com", PASSWORD).await;
    assert_eq!(res.status(), StatusCode::OK);
    let body: Value = res.json().await.unwrap();
    assert!(body["tokens"]["access_token"].is_string(), "{body}");
    let mail = app.mails_to("lost@example.com", 1).await;
    let notice = mail
        .iter()
        .find(|m| m.kind == "mfa_removed")
        .expect("a notice");
    assert!(notice.text.contains("/account/security"), "{}", notice.text);
    let events = crate::admin::events(&app, &format!("user_id={user_id}&action=mfa.removed")).await;
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0]["detail"]["by"], "admin");
    assert_eq!(events[0]["detail"]["factors"], 1);
    assert!(
        events[0]["actor_id"]
            .as_str()
            .unwrap()
            .starts_with("service_key:"),
        "{events:?}"
    );

    // On the pages: the factor is listed and removed with a CSRF'd button.
    let e = enroll(&app, &access(&body)).await;
    admin_token(&app, "chief@example.com").await;
    let admin = spawn_client();
    let login = admin
        .get(app.url("/login"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    admin
        .post(app.url("/login"))
        .form(&[
            ("csrf_token", hidden(&login, "csrf_token").as_str()),
            ("email", "chief@example.com"),
            ("password", PASSWORD),
        ])
        .send()
        .await
        .unwrap();
    let page_path = format!("/admin/users/{user_id}");
    let html = admin
        .get(app.url(&page_path))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(html.contains("Remove all second factors"), "{html}");
    assert!(html.contains("Phone"), "the factor's name is listed");
    let action = format!("/admin/users/{user_id}/reset-mfa");
    let res = admin
        .post(app.url(&action))
        .form(&[("x", "y")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::FORBIDDEN, "no CSRF token");
    let res = app.sign_in("lost@example.com", PASSWORD).await;
    expect_mfa_required(res, &e.factor_id).await;
    let res = admin
        .post(app.url(&action))
        .form(&[
            ("csrf_token", hidden(&html, "csrf_token").as_str()),
            ("confirmed", "yes"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let html = admin
        .get(app.url(&page_path))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!html.contains("Remove all second factors"), "{html}");
    let res = app.sign_in("lost@example.com", PASSWORD).await;
    assert_eq!(res.status(), StatusCode::OK);
    let body: Value = res.json().await.unwrap();
    assert!(body["tokens"]["access_token"].is_string(), "{body}");
    let events = crate::admin::events(&app, &format!("user_id={user_id}&action=mfa.removed")).await;
    assert_eq!(events.len(), 2);
}
