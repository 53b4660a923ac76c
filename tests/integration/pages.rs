//! Hosted pages over real HTTP: forms, CSRF, cookies, headers, and the
//! redirect-back code flow with PKCE.

use crate::helpers::*;
use base64::Engine;
use reqwest::{Response, StatusCode};
use serde_json::{Value, json};
use sha2::Digest;

const APP: &str = "https://app.example.com/auth/callback";

async fn pages_app() -> TestApp {
    spawn_with(|c| {
        c.hosted.allowed_redirect_urls = vec!["https://app.example.com/auth/".into()];
        c.hosted.product_name = "Acme".into();
        c.hosted.primary_color = "#0f766e".into();
        let n = c.auth.native.get_or_insert_with(Default::default);
        n.enable_confirmation = false;
        n.enable_magic_link = true;
    })
    .await
}

async fn get_page(app: &TestApp, path: &str) -> (StatusCode, String) {
    let res = app.client.get(app.url(path)).send().await.unwrap();
    let status = res.status();
    (status, res.text().await.unwrap())
}

async fn csrf(app: &TestApp, path: &str) -> String {
    let (status, html) = get_page(app, path).await;
    assert_eq!(status, StatusCode::OK, "{path}");
    hidden(&html, "csrf_token")
}

async fn post_form(app: &TestApp, path: &str, form: &[(&str, &str)]) -> Response {
    app.client
        .post(app.url(path))
        .form(form)
        .send()
        .await
        .unwrap()
}

fn location(res: &Response) -> String {
    res.headers()
        .get("location")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default()
}

async fn sign_in_page(app: &TestApp, email: &str) -> Response {
    let token = csrf(app, "/login").await;
    post_form(
        app,
        "/login",
        &[
            ("csrf_token", &token),
            ("email", email),
            ("password", PASSWORD),
        ],
    )
    .await
}

fn pkce() -> (String, String) {
    let verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wNMYr4p-G3Hk-and-some-more".to_string();
    let challenge = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(sha2::Sha256::digest(verifier.as_bytes()));
    (verifier, challenge)
}

fn query_param(url: &str, name: &str) -> Option<String> {
    url::Url::parse(url)
        .ok()?
        .query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

#[tokio::test]
async fn pages_carry_security_headers_and_a_safe_cookie() {
    let app = pages_app().await;
    let res = app.client.get(app.url("/login")).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let h = res.headers();
    let csp = h["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("frame-ancestors 'none'") && csp.contains("script-src 'self'"));
    assert!(!csp.contains("unsafe-inline"));
    assert!(
        csp.contains("form-action 'self' https://app.example.com"),
        "{csp}"
    );
    assert_eq!(h["x-content-type-options"], "nosniff");
    assert_eq!(h["referrer-policy"], "no-referrer");
    assert_eq!(h["x-frame-options"], "DENY");
    let cookie = h["set-cookie"].to_str().unwrap();
    assert!(
        cookie.starts_with("derp_session=")
            && cookie.contains("HttpOnly")
            && cookie.contains("SameSite=Lax")
    );
    assert!(!cookie.contains("Secure"), "plain http here");
    let html = res.text().await.unwrap();
    assert!(html.contains("<label for=\"email\">") && html.contains("Acme"));
    assert!(!html.contains("<script"), "works without JavaScript");

    let https = spawn_with(|c| c.server.public_url = Some("https://auth.example.com".into())).await;
    let res = https.client.get(https.url("/login")).send().await.unwrap();
    assert!(
        res.headers()["set-cookie"]
            .to_str()
            .unwrap()
            .contains("Secure")
    );

    let css = app
        .client
        .get(app.url("/static/theme.css"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(css.contains("#0f766e"));
    let res = app
        .client
        .get(app.url("/static/derp.css"))
        .send()
        .await
        .unwrap();
    let etag = res.headers()["etag"].to_str().unwrap().to_string();
    assert!(
        res.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/css")
    );
    let again = app
        .client
        .get(app.url("/static/derp.css"))
        .header("if-none-match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), StatusCode::NOT_MODIFIED);
}

#[tokio::test]
async fn forms_without_the_right_csrf_token_are_refused() {
    let app = pages_app().await;
    app.sign_up("csrf@example.com").await;
    let _ = csrf(&app, "/login").await;
    for form in [
        vec![("email", "csrf@example.com"), ("password", PASSWORD)],
        vec![
            ("csrf_token", "forged"),
            ("email", "csrf@example.com"),
            ("password", PASSWORD),
        ],
    ] {
        let res = post_form(&app, "/login", &form).await;
        assert_eq!(res.status(), StatusCode::FORBIDDEN);
        assert!(res.text().await.unwrap().contains("form has expired"));
    }
    // A fresh browser (no cookie) with a token copied from another session.
    let token = csrf(&app, "/login").await;
    let stranger = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let res = stranger
        .post(app.url("/login"))
        .form(&[
            ("csrf_token", token.as_str()),
            ("email", "csrf@example.com"),
            ("password", PASSWORD),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn sign_in_renews_the_page_session_and_shows_errors_beside_fields() {
    let app = pages_app().await;
    app.sign_up("page@example.com").await;
    let before = csrf(&app, "/login").await;
    let res = post_form(
        &app,
        "/login",
        &[
            ("csrf_token", &before),
            ("email", "page@example.com"),
            ("password", "wrong password"),
        ],
    )
    .await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    let html = res.text().await.unwrap();
    assert!(
        html.contains("That email and password do not match")
            && html.contains("value=\"page@example.com\"")
    );
    let res = post_form(
        &app,
        "/login",
        &[
            ("csrf_token", &before),
            ("email", "not an email"),
            ("password", "x"),
        ],
    )
    .await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    assert!(res.text().await.unwrap().contains("id=\"email-error\""));

    let res = post_form(
        &app,
        "/login",
        &[
            ("csrf_token", &before),
            ("email", "page@example.com"),
            ("password", PASSWORD),
        ],
    )
    .await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&res), "/account");
    let (status, html) = get_page(&app, "/account").await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("page@example.com"));
    assert_ne!(
        hidden(&html, "csrf_token"),
        before,
        "a new session and CSRF token at sign-in"
    );
}

#[tokio::test]
async fn redirects_only_to_allow_listed_apps() {
    let app = pages_app().await;
    for bad in [
        "https://evil.example.com/auth/callback",
        "https://app.example.com/other",
        "javascript:alert(1)",
        "//evil.example.com",
    ] {
        let res = app
            .client
            .get(app.url(&format!("/login?redirect_to={}", urlencode(bad))))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::BAD_REQUEST, "{bad}");
        assert!(res.headers().get("location").is_none());
        assert!(res.text().await.unwrap().contains("not allowed"));
    }
    let res = app
        .client
        .get(app.url(&format!(
            "/login?redirect_to={}&code_challenge=abc&code_challenge_method=plain",
            urlencode(APP)
        )))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
}

fn urlencode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

#[tokio::test]
async fn the_code_flow_with_pkce_returns_to_the_app_once() {
    let app = pages_app().await;
    let up = app.sign_up("flow@example.com").await;
    let (verifier, challenge) = pkce();
    let path = format!(
        "/login?redirect_to={}&state=st-123&code_challenge={challenge}&code_challenge_method=S256",
        urlencode(APP)
    );
    let (status, html) = get_page(&app, &path).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(hidden(&html, "redirect_to"), APP);
    assert_eq!(hidden(&html, "code_challenge"), challenge);
    let token = hidden(&html, "csrf_token");
    let form = [
        ("csrf_token", token.as_str()),
        ("email", "flow@example.com"),
        ("password", PASSWORD),
        ("redirect_to", APP),
        ("state", "st-123"),
        ("code_challenge", challenge.as_str()),
        ("code_challenge_method", "S256"),
    ];
    let res = post_form(&app, "/login", &form).await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let back = location(&res);
    assert!(back.starts_with(APP), "{back}");
    assert_eq!(query_param(&back, "state").as_deref(), Some("st-123"));
    let code = query_param(&back, "code").unwrap();

    let exchange = |code: &str, verifier: Option<&str>, redirect: &str| {
        app.post("/api/v1/auth/token", json!({"grant_type": "authorization_code", "code": code, "code_verifier": verifier, "redirect_uri": redirect}))
    };
    let res = exchange(&code, Some(&verifier), APP).await;
    assert_eq!(res.status(), StatusCode::OK);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["user"]["id"], up["user"]["id"]);
    assert_eq!(
        app.session(body["tokens"]["access_token"].as_str().unwrap())
            .await
            .status(),
        StatusCode::OK
    );
    expect_error(
        exchange(&code, Some(&verifier), APP).await,
        StatusCode::UNAUTHORIZED,
        "invalid_token",
    )
    .await;

    // Already signed in: /login goes straight back with a new code.
    let res = app.client.get(app.url(&path)).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let code2 = query_param(&location(&res), "code").unwrap();
    expect_error(
        exchange(
            &code2,
            Some("a-wrong-verifier-of-enough-length-0123456789"),
            APP,
        )
        .await,
        StatusCode::UNAUTHORIZED,
        "invalid_token",
    )
    .await;
    expect_error(
        exchange(&code2, Some(&verifier), APP).await,
        StatusCode::UNAUTHORIZED,
        "invalid_token",
    )
    .await; // spent by the failure

    let code3 = query_param(
        &location(&app.client.get(app.url(&path)).send().await.unwrap()),
        "code",
    )
    .unwrap();
    expect_error(
        exchange(&code3, None, APP).await,
        StatusCode::UNAUTHORIZED,
        "invalid_token",
    )
    .await;
    let code4 = query_param(
        &location(&app.client.get(app.url(&path)).send().await.unwrap()),
        "code",
    )
    .unwrap();
    expect_error(
        exchange(
            &code4,
            Some(&verifier),
            "https://app.example.com/auth/other",
        )
        .await,
        StatusCode::UNAUTHORIZED,
        "invalid_token",
    )
    .await;
    let code5 = query_param(
        &location(&app.client.get(app.url(&path)).send().await.unwrap()),
        "code",
    )
    .unwrap();
    app.advance(61);
    expect_error(
        exchange(&code5, Some(&verifier), APP).await,
        StatusCode::UNAUTHORIZED,
        "invalid_token",
    )
    .await;
    let res = app
        .post(
            "/api/v1/auth/token",
            json!({"grant_type": "password", "code": "x", "redirect_uri": APP}),
        )
        .await;
    assert!(expect_error(res, StatusCode::BAD_REQUEST, "invalid_request").await["error"]["fields"]["grant_type"].is_string());
}

#[tokio::test]
async fn sign_up_with_confirmation_then_the_mail_link_returns_to_the_app() {
    let app = spawn_with(|c| {
        c.hosted.allowed_redirect_urls = vec!["https://app.example.com/auth/".into()]
    })
    .await;
    let path = format!("/signup?redirect_to={}&state=s1", urlencode(APP));
    let token = csrf(&app, &path).await;
    let res = post_form(
        &app,
        "/signup",
        &[
            ("csrf_token", &token),
            ("email", "newbie@example.com"),
            ("password", "short"),
            ("redirect_to", APP),
            ("state", "s1"),
        ],
    )
    .await;
    assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(res.text().await.unwrap().contains("id=\"password-error\""));
    let res = post_form(
        &app,
        "/signup",
        &[
            ("csrf_token", &token),
            ("email", "newbie@example.com"),
            ("password", PASSWORD),
            ("redirect_to", APP),
            ("state", "s1"),
        ],
    )
    .await;
    assert_eq!(res.status(), StatusCode::OK);
    assert!(res.text().await.unwrap().contains("Check your email"));

    let mail = app.mails_to("newbie@example.com", 1).await.remove(0);
    let start = mail.text.find(&app.base).unwrap();
    let link: String = mail.text[start..]
        .split_whitespace()
        .next()
        .unwrap()
        .to_string();
    assert!(link.contains("/confirm?") && link.contains("redirect_to="));
    let relative = link.trim_start_matches(&app.base).to_string();
    for _ in 0..2 {
        // Opening the link (a mail scanner too) does not spend it.
        let (status, html) = get_page(&app, &relative).await;
        assert_eq!(status, StatusCode::OK);
        assert!(html.contains("Confirm my email"));
    }
    let (_, html) = get_page(&app, &relative).await;
    let form = [
        ("csrf_token", hidden(&html, "csrf_token")),
        ("token", hidden(&html, "token")),
        ("redirect_to", hidden(&html, "redirect_to")),
        ("state", hidden(&html, "state")),
    ];
    let res = app
        .client
        .post(app.url("/confirm"))
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let back = location(&res);
    assert!(
        back.starts_with(APP) && query_param(&back, "code").is_some(),
        "{back}"
    );
    assert_eq!(query_param(&back, "state").as_deref(), Some("s1"));
    // The page session was renewed at sign-in: the old CSRF token is dead…
    let res = app
        .client
        .post(app.url("/confirm"))
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    // …and with a fresh one, the link itself is spent.
    let (_, html) = get_page(&app, &relative).await;
    let mut form = form;
    form[0].1 = hidden(&html, "csrf_token");
    let res = app
        .client
        .post(app.url("/confirm"))
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::BAD_REQUEST, "the link works once");
    assert!(
        res.text()
            .await
            .unwrap()
            .contains("expired or was already used")
    );
}

#[tokio::test]
async fn forgot_and_reset_password_through_the_pages() {
    let app = pages_app().await;
    app.sign_up("forgot@example.com").await;
    let token = csrf(&app, "/forgot-password").await;
    for email in ["forgot@example.com", "unknown@example.com"] {
        let res = post_form(
            &app,
            "/forgot-password",
            &[("csrf_token", &token), ("email", email)],
        )
        .await;
        assert_eq!(res.status(), StatusCode::OK);
        assert!(
            res.text()
                .await
                .unwrap()
                .contains("If an account uses this address")
        );
    }
    let mail = app.mails_to("forgot@example.com", 1).await.remove(0);
    let reset = token_from(&mail);
    let (status, html) = get_page(&app, &format!("/reset-password?token={reset}")).await;
    assert_eq!(status, StatusCode::OK);
    let csrf_token = hidden(&html, "csrf_token");
    let res = post_form(
        &app,
        "/reset-password",
        &[
            ("csrf_token", &csrf_token),
            ("token", &reset),
            ("password", "x"),
        ],
    )
    .await;
    assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let res = post_form(
        &app,
        "/reset-password",
        &[
            ("csrf_token", &csrf_token),
            ("token", &reset),
            ("password", "a brand new password"),
        ],
    )
    .await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&res), "/account");
    assert_eq!(
        app.sign_in("forgot@example.com", "a brand new password")
            .await
            .status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn magic_link_pages() {
    let app = pages_app().await;
    let token = csrf(&app, "/magic-link").await;
    let res = post_form(
        &app,
        "/magic-link",
        &[("csrf_token", &token), ("email", "magic@example.com")],
    )
    .await;
    assert_eq!(res.status(), StatusCode::OK);
    let mail = app.mails_to("magic@example.com", 1).await.remove(0);
    let link_token = token_from(&mail);
    let (_, html) = get_page(&app, &format!("/magic-link?token={link_token}")).await;
    assert!(html.contains("Sign me in"));
    let res = post_form(
        &app,
        "/magic-link/verify",
        &[
            ("csrf_token", &hidden(&html, "csrf_token")),
            ("token", &link_token),
        ],
    )
    .await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&res), "/account");

    let off = spawn_app().await;
    assert_eq!(get_page(&off, "/magic-link").await.0, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn account_page_changes_password_and_manages_sessions() {
    let app = pages_app().await;
    app.sign_up("acct@example.com").await;
    let other: Value = app
        .sign_in("acct@example.com", PASSWORD)
        .await
        .json()
        .await
        .unwrap();
    let res = app.client.get(app.url("/account")).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&res), "/login");

    sign_in_page(&app, "acct@example.com").await;
    let (_, html) = get_page(&app, "/account").await;
    assert!(html.contains("this browser"));
    let token = hidden(&html, "csrf_token");
    let res = post_form(
        &app,
        "/account/password",
        &[
            ("csrf_token", &token),
            ("current_password", "nope"),
            ("password", "another good password"),
        ],
    )
    .await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    assert!(res.text().await.unwrap().contains("id=\"current-error\""));

    let other_sid = claims(other["tokens"]["access_token"].as_str().unwrap())["sid"]
        .as_str()
        .unwrap()
        .to_string();
    // The first POST only asks; nothing is signed out yet.
    let res = post_form(
        &app,
        &format!("/account/sessions/{other_sid}/revoke"),
        &[("csrf_token", &token)],
    )
    .await;
    assert_eq!(res.status(), StatusCode::OK);
    let ask = res.text().await.unwrap();
    assert!(ask.contains("Are you sure?") && ask.contains("name=\"confirmed\" value=\"yes\""));
    assert_eq!(
        app.session(other["tokens"]["access_token"].as_str().unwrap())
            .await
            .status(),
        StatusCode::OK,
        "not signed out before the confirmation"
    );
    let res = post_form(
        &app,
        &format!("/account/sessions/{other_sid}/revoke"),
        &[("csrf_token", &token), ("confirmed", "yes")],
    )
    .await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        app.session(other["tokens"]["access_token"].as_str().unwrap())
            .await
            .status(),
        StatusCode::UNAUTHORIZED
    );

    let res = post_form(
        &app,
        "/account/password",
        &[
            ("csrf_token", &token),
            ("current_password", PASSWORD),
            ("password", "another good password"),
        ],
    )
    .await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let (_, html) = get_page(&app, "/account").await;
    assert!(
        html.contains("Password changed"),
        "flash after the redirect"
    );

    let res = post_form(&app, "/account/sign-out-all", &[("csrf_token", &token)]).await;
    assert_eq!(res.status(), StatusCode::OK, "asks first");
    let (status, _) = get_page(&app, "/account").await;
    assert_eq!(status, StatusCode::OK, "still signed in");
    let res = post_form(
        &app,
        "/account/sign-out-all",
        &[("csrf_token", &token), ("confirmed", "yes")],
    )
    .await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let res = app.client.get(app.url("/account")).send().await.unwrap();
    assert_eq!(location(&res), "/login", "signed out here too");
}

#[tokio::test]
async fn logout_needs_a_post_with_the_token() {
    let app = pages_app().await;
    app.sign_up("bye@example.com").await;
    sign_in_page(&app, "bye@example.com").await;
    let (status, html) = get_page(&app, "/logout").await;
    assert_eq!(status, StatusCode::OK, "GET only asks");
    assert_eq!(get_page(&app, "/account").await.0, StatusCode::OK);
    assert_eq!(
        post_form(&app, "/logout", &[]).await.status(),
        StatusCode::FORBIDDEN
    );
    let res = post_form(
        &app,
        "/logout",
        &[("csrf_token", &hidden(&html, "csrf_token"))],
    )
    .await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let res = app.client.get(app.url("/account")).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn org_pages_create_invite_and_accept() {
    let app = pages_app().await;
    app.sign_up("chief@example.com").await;
    sign_in_page(&app, "chief@example.com").await;
    let token = csrf(&app, "/orgs/new").await;
    let res = post_form(
        &app,
        "/orgs/new",
        &[
            ("csrf_token", &token),
            ("name", "Web Team"),
            ("slug", "Bad Slug"),
        ],
    )
    .await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    assert!(res.text().await.unwrap().contains("id=\"slug-error\""));
    let res = post_form(
        &app,
        "/orgs/new",
        &[
            ("csrf_token", &token),
            ("name", "Web Team"),
            ("slug", "web-team"),
        ],
    )
    .await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&res), "/orgs/web-team");
    let (_, html) = get_page(&app, "/orgs/web-team").await;
    assert!(
        html.contains("Web Team")
            && html.contains("chief@example.com")
            && html.contains("Invite someone")
    );
    let res = post_form(
        &app,
        "/orgs/web-team/invitations",
        &[
            ("csrf_token", &token),
            ("email", "mate@example.com"),
            ("role", "admin"),
        ],
    )
    .await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let mail = app.mails_to("mate@example.com", 1).await.remove(0);
    let start = mail.text.find("/invitations/").unwrap();
    let path: String = mail.text[start..]
        .split_whitespace()
        .next()
        .unwrap()
        .to_string();

    // The invitee, in another browser.
    let invitee = spawn_client();
    let res = invitee.get(app.url(&path)).send().await.unwrap();
    let html = res.text().await.unwrap();
    assert!(html.contains("Join Web Team") && html.contains("Sign in to accept"));
    app.sign_up("mate@example.com").await;
    let login = invitee
        .get(app.url("/login"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    invitee
        .post(app.url("/login"))
        .form(&[
            ("csrf_token", hidden(&login, "csrf_token").as_str()),
            ("email", "mate@example.com"),
            ("password", PASSWORD),
        ])
        .send()
        .await
        .unwrap();
    let html = invitee
        .get(app.url(&path))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let res = invitee
        .post(app.url(&path))
        .form(&[("csrf_token", hidden(&html, "csrf_token"))])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&res), "/orgs/web-team");
    let (_, html) = get_page(&app, "/orgs/web-team").await;
    assert!(html.contains("mate@example.com"));
    // The last owner cannot leave: the page says why.
    let res = post_form(&app, "/orgs/web-team/leave", &[("csrf_token", &token)]).await;
    assert_eq!(res.status(), StatusCode::OK, "asks first");
    assert!(res.text().await.unwrap().contains("Leave Web Team?"));
    let res = post_form(
        &app,
        "/orgs/web-team/leave",
        &[("csrf_token", &token), ("confirmed", "yes")],
    )
    .await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    assert!(res.text().await.unwrap().contains("at least one owner"));
}
