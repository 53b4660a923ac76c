//! The hosted pages and the console as a product: admins find their way in,
//! a reset link keeps the app, browsers get pages (not JSON) for unknown
//! paths, and any brand colour stays readable.

use crate::admin::{KEY, admin_token};
use crate::helpers::*;
use derp::config::Secret;
use reqwest::{Response, StatusCode};

const APP: &str = "https://app.example.com/auth/callback";

async fn app_with(color: &str) -> TestApp {
    let color = color.to_string();
    spawn_with(move |c| {
        c.hosted.allowed_redirect_urls = vec!["https://app.example.com/auth/".into()];
        c.hosted.product_name = "Acme".into();
        c.hosted.primary_color = color;
        c.admin.service_keys = vec![Secret::new(KEY)];
        c.auth
            .native
            .get_or_insert_with(Default::default)
            .enable_confirmation = false;
    })
    .await
}

fn location(res: &Response) -> String {
    res.headers()
        .get("location")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default()
}

async fn page(app: &TestApp, path: &str) -> (StatusCode, String) {
    let res = app
        .client
        .get(app.url(path))
        .header("accept", "text/html")
        .send()
        .await
        .unwrap();
    (res.status(), res.text().await.unwrap())
}

async fn sign_in_form(app: &TestApp, email: &str, redirect_to: Option<&str>) -> Response {
    let path = match redirect_to {
        Some(r) => format!("/login?redirect_to={}", urlencode(r)),
        None => "/login".into(),
    };
    let (_, html) = page(app, &path).await;
    let mut form = vec![
        ("csrf_token".to_string(), hidden(&html, "csrf_token")),
        ("email".to_string(), email.to_string()),
        ("password".to_string(), PASSWORD.to_string()),
    ];
    if let Some(r) = redirect_to {
        form.push(("redirect_to".into(), r.into()));
    }
    app.client
        .post(app.url("/login"))
        .form(&form)
        .send()
        .await
        .unwrap()
}

fn urlencode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

#[tokio::test]
async fn an_admin_signing_in_from_the_console_returns_to_it_and_the_header_links_it() {
    let app = app_with("#4f46e5").await;
    admin_token(&app, "boss@example.com").await;
    let res = app
        .client
        .get(app.url("/admin/users?q=x"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let to = location(&res);
    let back = format!("{}/admin/users?q=x", app.base);
    assert_eq!(to, format!("/login?redirect_to={}", urlencode(&back)));
    let res = sign_in_form(&app, "boss@example.com", Some(&back)).await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&res), back, "back to the console, not /account");
    let (_, html) = page(&app, "/account").await;
    assert!(
        html.contains("<a href=\"/admin\">Admin</a>"),
        "the header links the console"
    );
}

#[tokio::test]
async fn a_signed_in_user_who_is_not_an_admin_is_told_so() {
    let app = app_with("#4f46e5").await;
    app.sign_up("plain@example.com").await;
    let res = sign_in_form(&app, "plain@example.com", None).await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let (status, html) = page(&app, "/admin").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(
        html.contains("plain@example.com is not an admin of Acme"),
        "{html}"
    );
    let (_, account) = page(&app, "/account").await;
    assert!(
        !account.contains("href=\"/admin\""),
        "no console link for non-admins"
    );
}

#[tokio::test]
async fn a_password_reset_started_from_an_app_returns_to_the_app() {
    let app = app_with("#4f46e5").await;
    app.sign_up("reset@example.com").await;
    let (_, html) = page(
        &app,
        &format!("/forgot-password?redirect_to={}", urlencode(APP)),
    )
    .await;
    let res = app
        .client
        .post(app.url("/forgot-password"))
        .form(&[
            ("csrf_token", hidden(&html, "csrf_token").as_str()),
            ("email", "reset@example.com"),
            ("redirect_to", APP),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let mail = app.mails_to("reset@example.com", 1).await.remove(0);
    assert!(
        mail.text.contains(&urlencode(APP)),
        "the link carries the app: {}",
        mail.text
    );
    let start = mail.text.find("/reset-password?").unwrap();
    let link: String = mail.text[start..]
        .chars()
        .take_while(|c| !c.is_whitespace())
        .collect();
    let (status, html) = page(&app, &link).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(hidden(&html, "redirect_to"), APP);
    let res = app
        .client
        .post(app.url("/reset-password"))
        .form(&[
            ("csrf_token", hidden(&html, "csrf_token").as_str()),
            ("token", hidden(&html, "token").as_str()),
            ("password", "a brand new password"),
            ("redirect_to", APP),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let to = location(&res);
    assert!(
        to.starts_with(&format!("{APP}?code=")),
        "back in the app: {to}"
    );
}

#[tokio::test]
async fn browsers_get_a_page_for_unknown_paths_and_the_api_keeps_json() {
    let app = app_with("#4f46e5").await;
    let (status, html) = page(&app, "/no/such/page").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(html.contains("<h1>Not found</h1>") && html.contains("/static/favicon.svg"));
    let res = app
        .client
        .get(app.url("/no/such/page"))
        .send()
        .await
        .unwrap();
    expect_error(res, StatusCode::NOT_FOUND, "not_found").await;
    let res = app
        .client
        .get(app.url("/api/v1/nothing"))
        .header("accept", "text/html")
        .send()
        .await
        .unwrap();
    expect_error(res, StatusCode::NOT_FOUND, "not_found").await;
    let res = app
        .client
        .get(app.url("/favicon.ico"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::MOVED_PERMANENTLY);
    assert_eq!(location(&res), "/static/favicon.svg");
    let res = app
        .client
        .get(app.url("/static/favicon.svg"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.headers()["content-type"], "image/svg+xml");
}

#[tokio::test]
async fn a_light_brand_colour_gets_dark_text_and_darker_links() {
    let app = app_with("#ffd500").await;
    let css = app
        .client
        .get(app.url("/static/theme.css"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(css.contains("--primary: #ffd500;"), "{css}");
    assert!(
        css.contains("--on-primary: #111827;"),
        "dark text on yellow: {css}"
    );
    let light = css.lines().next().unwrap();
    assert!(
        !light.contains("--link: #ffd500;"),
        "links are darkened on white: {css}"
    );
    assert!(css.contains("prefers-color-scheme: dark"), "{css}");
    let app = app_with("#4f46e5").await;
    let css = app
        .client
        .get(app.url("/static/theme.css"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        css.contains("--on-primary: #ffffff;") && css.contains("--link: #4f46e5;"),
        "{css}"
    );
}

#[tokio::test]
async fn sign_in_errors_say_what_to_do_next() {
    let app = spawn_with(|c| {
        c.rate_limit.sign_in_per_ip = 2;
        c.auth
            .native
            .get_or_insert_with(Default::default)
            .enable_confirmation = false;
    })
    .await;
    app.sign_up("human@example.com").await;
    let (_, html) = page(&app, "/login").await;
    let csrf = hidden(&html, "csrf_token");
    let mut last = String::new();
    for _ in 0..3 {
        let res = app
            .client
            .post(app.url("/login"))
            .form(&[
                ("csrf_token", csrf.as_str()),
                ("email", "human@example.com"),
                ("password", "not the password"),
            ])
            .send()
            .await
            .unwrap();
        last = res.text().await.unwrap();
        if !last.contains("Too many attempts") {
            assert!(
                last.contains(
                    "That email and password do not match. Check both, or reset your password"
                ),
                "{last}"
            );
            assert!(
                !last.contains("invalid email or password"),
                "not the API's words"
            );
        }
    }
    assert!(last.contains("Too many attempts. Try again in "), "{last}");
    assert!(!last.contains("retry in"), "no raw seconds: {last}");
}

#[tokio::test]
async fn the_only_owner_is_not_offered_a_leave_that_would_fail() {
    let app = app_with("#4f46e5").await;
    let owner = app.sign_up("only-owner@example.com").await;
    let token = owner["tokens"]["access_token"].as_str().unwrap();
    let res = app
        .post_bearer(
            "/api/v1/orgs",
            token,
            serde_json::json!({"name": "Solo", "slug": "solo"}),
        )
        .await;
    assert_eq!(res.status(), StatusCode::CREATED);
    app.sign_in_through_pages("only-owner@example.com").await;
    let (status, html) = page(&app, "/orgs/solo").await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("You are the only owner"), "{html}");
    assert!(!html.contains("action=\"/orgs/solo/leave\""));
    // With a second owner, leaving is offered again.
    app.sign_up("second@example.com").await;
    let res = app
        .post_bearer(
            "/api/v1/orgs/solo/members",
            token,
            serde_json::json!({"email": "second@example.com", "role": "owner"}),
        )
        .await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let (_, html) = page(&app, "/orgs/solo").await;
    assert!(html.contains("action=\"/orgs/solo/leave\""));
}

#[tokio::test]
async fn an_unconfirmed_address_is_offered_a_new_link_that_keeps_the_app() {
    let app = spawn_with(|c| {
        c.hosted.allowed_redirect_urls = vec!["https://app.example.com/auth/".into()];
        c.auth
            .native
            .get_or_insert_with(Default::default)
            .enable_confirmation = true;
    })
    .await;
    let res = app
        .post(
            "/api/v1/auth/sign-up",
            serde_json::json!({"email": "later@example.com", "password": PASSWORD}),
        )
        .await;
    assert_eq!(res.status(), StatusCode::CREATED);
    app.mails_to("later@example.com", 1).await;
    let path = format!("/login?redirect_to={}", urlencode(APP));
    let (_, html) = page(&app, &path).await;
    let csrf = hidden(&html, "csrf_token");
    let res = app
        .client
        .post(app.url("/login"))
        .form(&[
            ("csrf_token", csrf.as_str()),
            ("email", "later@example.com"),
            ("password", PASSWORD),
            ("redirect_to", APP),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    let html = res.text().await.unwrap();
    assert!(html.contains("Confirm your email address first"), "{html}");
    assert!(
        html.contains("formaction=\"/confirm/resend\""),
        "a way forward"
    );
    let res = app
        .client
        .post(app.url("/confirm/resend"))
        .form(&[
            ("csrf_token", csrf.as_str()),
            ("email", "later@example.com"),
            ("redirect_to", APP),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert!(
        res.text()
            .await
            .unwrap()
            .contains("a new confirmation link is on its way")
    );
    let mails = app.mails_to("later@example.com", 2).await;
    assert_eq!(mails.len(), 2);
    assert!(
        mails[1].text.contains("/confirm?") && mails[1].text.contains(&urlencode(APP)),
        "the new link keeps the app: {}",
        mails[1].text
    );
}

#[tokio::test]
async fn a_blank_org_slug_is_made_from_the_name_and_a_bad_one_keeps_the_typed_values() {
    let app = app_with("#4f46e5").await;
    app.sign_up("maker@example.com").await;
    sign_in_form(&app, "maker@example.com", None).await;
    let (_, html) = page(&app, "/orgs/new").await;
    assert!(html.contains("maxlength=\"100\"") && html.contains("maxlength=\"63\""));
    assert!(
        html.contains("Leave it empty"),
        "the limits and the rule show before sending"
    );
    let csrf = hidden(&html, "csrf_token");
    let res = app
        .client
        .post(app.url("/orgs/new"))
        .form(&[
            ("csrf_token", csrf.as_str()),
            ("name", "Bad Slug Co"),
            ("slug", "No Good"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    let html = res.text().await.unwrap();
    assert!(html.contains("value=\"Bad Slug Co\"") && html.contains("value=\"No Good\""));
    assert!(
        html.contains("id=\"slug-error\""),
        "the error is at the field"
    );
    let res = app
        .client
        .post(app.url("/orgs/new"))
        .form(&[
            ("csrf_token", csrf.as_str()),
            ("name", "Müller & Söhne"),
            ("slug", ""),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&res), "/orgs/muller-sohne");
}

#[tokio::test]
async fn account_sessions_show_readable_device_names() {
    let app = app_with("#4f46e5").await;
    app.sign_up("dev@example.com").await;
    // A session from a Mac running Chrome, made through the API.
    app.client
        .post(app.url("/api/v1/auth/sign-in"))
        .header(
            "user-agent",
            "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36",
        )
        .json(&serde_json::json!({"email": "dev@example.com", "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    sign_in_form(&app, "dev@example.com", None).await;
    let (_, html) = page(&app, "/account").await;
    assert!(html.contains(">Chrome on macOS</td>"), "{html}");
    let res = app
        .client
        .get(app.url("/account"))
        .header("accept-language", "de")
        .send()
        .await
        .unwrap();
    assert!(res.text().await.unwrap().contains(">Chrome auf macOS</td>"));
}
