//! The admin console as a product: lists with totals, sorting, filters and
//! pages both ways; people and orgs named; readable audit details; the
//! configuration without secrets; the overview's counts and chart; one
//! confirmation step before every destructive action; forms that keep what
//! was typed.

use crate::admin::{KEY, admin_app, admin_token};
use crate::helpers::*;
use derp::clock::Clock;
use reqwest::StatusCode;
use serde_json::json;

async fn page(app: &TestApp, path: &str) -> (StatusCode, String) {
    let res = app.client.get(app.url(path)).send().await.unwrap();
    let status = res.status();
    (status, res.text().await.unwrap())
}

/// An admin app with `boss@example.com` signed in through the pages.
async fn console() -> TestApp {
    let app = admin_app().await;
    admin_token(&app, "boss@example.com").await;
    app.sign_in_through_pages("boss@example.com").await;
    app
}

async fn post_form(app: &TestApp, path: &str, form: &[(&str, &str)]) -> reqwest::Response {
    let (_, html) = page(app, "/admin").await;
    let csrf = hidden(&html, "csrf_token");
    let mut fields = vec![("csrf_token", csrf.as_str())];
    fields.extend_from_slice(form);
    app.client
        .post(app.url(path))
        .form(&fields)
        .send()
        .await
        .unwrap()
}

fn pos(html: &str, needle: &str) -> usize {
    html.find(needle)
        .unwrap_or_else(|| panic!("{needle} not in page"))
}

fn ymd(unix: i64) -> String {
    let f = time::macros::format_description!("[year]-[month]-[day]");
    derp::clock::from_unix(unix).format(&f).unwrap()
}

#[tokio::test]
async fn users_are_listed_newest_first_with_totals_sorting_and_pages_both_ways() {
    let app = console().await;
    for i in 0..54 {
        app.advance(2);
        app.sign_up(&format!("u{i:02}@example.com")).await;
    }
    let (status, html) = page(&app, "/admin/users").await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("1–50 of 55"), "a total is shown");
    assert!(
        pos(&html, "u53@example.com") < pos(&html, "u52@example.com"),
        "newest first"
    );
    assert!(
        !html.contains("u03@example.com"),
        "the oldest are on page 2"
    );
    assert!(html.contains(r#"href="/admin/users" aria-current="page""#));
    assert!(html.contains(r#"rel="next""#) && !html.contains(r#"rel="prev""#));
    assert!(
        pos(&html, "New user") < pos(&html, "u53@example.com"),
        "the create form comes before the list"
    );

    let (_, html) = page(&app, "/admin/users?sort=created&dir=desc&page=2").await;
    assert!(html.contains("51–55 of 55"), "page 2 of 2");
    assert!(html.contains("u00@example.com") && html.contains("boss@example.com"));
    assert!(html.contains(r#"rel="prev""#) && !html.contains(r#"rel="next""#));
    assert!(
        html.contains(r#"href="/admin/users?q=&#38;sort=created&#38;dir=desc" rel="prev""#),
        "back to page 1 with the same sort"
    );

    let (_, html) = page(&app, "/admin/users?sort=email&dir=asc").await;
    assert!(pos(&html, "boss@example.com") < pos(&html, "u00@example.com"));
    assert!(pos(&html, "u00@example.com") < pos(&html, "u01@example.com"));
    assert!(html.contains(r#"aria-sort="ascending""#));
    assert!(
        html.contains("sort=email&#38;dir=desc"),
        "the column's header turns the order around"
    );

    let (_, html) = page(&app, "/admin/users?q=u1").await;
    assert!(html.contains("1–10 of 10"), "a search has its own total");

    // The audit log pages both ways too.
    let (_, html) = page(&app, "/admin/audit?action=sign_up").await;
    assert!(html.contains("1–50 of 54"), "audit total");
    assert!(pos(&html, ">u53@example.com<") < pos(&html, ">u52@example.com<"));
    let (_, html) = page(&app, "/admin/audit?action=sign_up&page=2").await;
    assert!(html.contains("51–54 of 54") && html.contains(r#"rel="prev""#));
    assert!(html.contains(">u00@example.com<"));
}

#[tokio::test]
async fn forms_keep_what_was_typed_and_show_errors_at_the_field() {
    let app = console().await;
    app.sign_up("taken@example.com").await;
    let res = post_form(
        &app,
        "/admin/users",
        &[
            ("email", "taken@example.com"),
            ("role", "admin"),
            ("email_confirmed", "true"),
        ],
    )
    .await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    let html = res.text().await.unwrap();
    assert!(
        html.contains(r#"id="email-error""#),
        "the error is at the field"
    );
    assert!(
        html.contains(r#"value="taken@example.com""#),
        "the email is kept"
    );
    assert!(
        html.contains(r#"<option value="admin" selected>"#),
        "the role is kept"
    );
    assert!(
        html.contains(r#"value="true" checked"#),
        "the box stays ticked"
    );

    // Organizations: made with a slug from the name; a taken slug and an
    // unknown owner are said at their fields, with the rest kept.
    let res = post_form(
        &app,
        "/admin/orgs",
        &[
            ("name", "Rocket Team"),
            ("slug", ""),
            ("owner", "taken@example.com"),
        ],
    )
    .await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let res = post_form(
        &app,
        "/admin/orgs",
        &[
            ("name", "Rocket Team"),
            ("slug", ""),
            ("owner", "taken@example.com"),
        ],
    )
    .await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    let html = res.text().await.unwrap();
    assert!(html.contains(r#"id="slug-error""#) && html.contains("rocket-team is taken"));
    assert!(
        html.contains(r#"value="Rocket Team""#) && html.contains(r#"value="taken@example.com""#)
    );
    let res = post_form(
        &app,
        "/admin/orgs",
        &[
            ("name", "Other"),
            ("slug", "other"),
            ("owner", "nobody@example.com"),
        ],
    )
    .await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    let html = res.text().await.unwrap();
    assert!(html.contains(r#"id="owner-error""#) && html.contains(r#"value="Other""#));

    // Webhooks keep name, URL and events too.
    let res = post_form(
        &app,
        "/admin/webhooks",
        &[
            ("name", "billing"),
            ("url", "not a url"),
            ("events", "user.*"),
        ],
    )
    .await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    let html = res.text().await.unwrap();
    assert!(html.contains(r#"id="url-error""#));
    assert!(html.contains(r#"value="billing""#) && html.contains(r#"value="user.*""#));

    // The org list counts members.
    let (_, html) = page(&app, "/admin/orgs").await;
    assert!(html.contains("1–1 of 1"));
    assert!(
        html.contains(r#"<td class="num" data-label="Members">1</td>"#),
        "one member"
    );
}

#[tokio::test]
async fn audit_names_people_and_orgs_reads_details_and_filters_by_picking() {
    let app = console().await;
    let bob = app.sign_up("bob@example.com").await;
    let bob_id = bob["user"]["id"].as_str().unwrap().to_string();
    app.sign_up("alice@example.com").await;
    let res = post_form(
        &app,
        &format!("/admin/users/{bob_id}/disable"),
        &[("confirmed", "yes")],
    )
    .await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);

    let (status, html) = page(&app, "/admin/audit?action=admin.user.disabled").await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("1–1 of 1"));
    assert!(
        html.contains(&format!(
            r#"<a href="/admin/users/{bob_id}" class="name">bob@example.com</a>"#
        )),
        "the user by email, linked"
    );
    assert!(html.contains(">boss@example.com</a>"), "the actor by email");
    assert!(html.contains(r#"<dl class="fields">"#), "details as fields");
    assert!(
        !html.contains("{&quot;") && !html.contains("{\""),
        "no raw JSON"
    );
    assert!(
        html.contains(r#"<option value="admin.user.disabled" selected>"#),
        "actions are picked from a list of known ones"
    );
    assert!(!html.contains(&format!(">{bob_id}<")), "no raw ids shown");

    let (_, html) = page(&app, "/admin/audit?user=alice%40example.com").await;
    assert!(html.contains(">alice@example.com<") && !html.contains("bob@example.com"));
    let (status, html) = page(&app, "/admin/audit?user=nobody%40example.com").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(html.contains(r#"id="user-error""#) && html.contains("No user has this email."));

    // A date range: yesterday's events are left out of "from today".
    let before = ymd(app.clock.unix());
    app.advance(2 * 86_400);
    app.sign_up("carol@example.com").await;
    let today = ymd(app.clock.unix());
    let (_, html) = page(&app, &format!("/admin/audit?action=sign_up&from={today}")).await;
    assert!(html.contains("1–1 of 1") && html.contains(">carol@example.com<"));
    let (_, html) = page(&app, &format!("/admin/audit?action=sign_up&to={before}")).await;
    assert!(html.contains("1–2 of 2") && !html.contains("carol@example.com"));
    let (status, html) = page(&app, "/admin/audit?from=yesterday").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(html.contains(r#"id="from-error""#));

    // Orgs by name.
    let res = post_form(
        &app,
        "/admin/orgs",
        &[
            ("name", "Blue Moon"),
            ("slug", ""),
            ("owner", "alice@example.com"),
        ],
    )
    .await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let (_, html) = page(&app, "/admin/audit?org=blue+moon").await;
    assert!(html.contains("org.created") && html.contains(">Blue Moon</a>"));
}

#[tokio::test]
async fn the_configuration_is_a_summary_without_secrets() {
    let app = spawn_with(|c| {
        let native = c.auth.native.get_or_insert_with(Default::default);
        native.enable_confirmation = false;
        native.jwt.secret = Some(derp::config::Secret::new(
            "a-jwt-secret-nobody-may-see-0123456789abcdef",
        ));
        c.admin.service_keys = vec![derp::config::Secret::new(KEY)];
        c.auth.org_context_secret = Some(derp::config::Secret::new(
            "an-org-context-secret-nobody-may-see-0123456789",
        ));
    })
    .await;
    admin_token(&app, "boss@example.com").await;
    app.sign_in_through_pages("boss@example.com").await;
    let (status, html) = page(&app, "/admin/config").await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains(r#"href="/admin/config" aria-current="page""#));
    assert!(
        html.contains("<code>[server]</code>") && html.contains("<code>[auth.native.jwt]</code>")
    );
    assert!(html.contains("<code>service_keys</code>") && html.contains("1 set"));
    assert!(
        html.contains(r#"<span class="badge">set</span>"#),
        "the JWT secret is set"
    );
    for secret in [
        KEY,
        "a-jwt-secret-nobody-may-see-0123456789abcdef",
        "an-org-context-secret-nobody-may-see-0123456789",
    ] {
        assert!(!html.contains(secret), "no secret value in the page");
    }
    assert!(
        !html.contains("[redacted]") && !html.contains("Config {"),
        "not a debug dump"
    );
}

#[tokio::test]
async fn the_overview_counts_and_charts_sign_ins_and_sign_ups_per_day() {
    let app = console().await;
    let first_day = ymd(app.clock.unix());
    app.sign_up("a@example.com").await;
    app.sign_up("b@example.com").await;
    app.advance(86_400 + 3_600);
    let second_day = ymd(app.clock.unix());
    for _ in 0..3 {
        assert_eq!(
            app.sign_in("a@example.com", PASSWORD).await.status(),
            StatusCode::OK
        );
    }
    let (status, html) = page(&app, "/admin").await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains(r#"<svg class="chart""#) && html.contains(r#"role="img""#));
    assert!(html.contains(
        r#"<title id="chart-title">Sign-ins and sign-ups per day, last 30 days</title>"#
    ));
    assert!(!html.contains("<script"), "no chart library");
    assert!(html.contains(&format!("<title>{second_day}: 3 sign-ins</title>")));
    assert!(html.contains(&format!("<title>{first_day}: 2 sign-ups</title>")));
    assert!(html.contains(&format!(
        r#"<tr><th scope="row">{second_day}</th><td>3</td><td>0</td></tr>"#
    )));
    assert!(html.contains("<strong><a href=\"/admin/users\">3</a></strong><span>users</span>"));
    assert!(html.contains("<strong>3</strong><span>sign-ins in 24 hours</span>"));
}

#[tokio::test]
async fn every_destructive_action_asks_first_and_the_first_post_changes_nothing() {
    let app = console().await;
    let bob = app.sign_up("bob@example.com").await;
    let bob_id = bob["user"]["id"].as_str().unwrap().to_string();
    let bob_token = bob["tokens"]["access_token"].as_str().unwrap().to_string();
    app.sign_up("alice@example.com").await;
    let res = post_form(
        &app,
        "/admin/orgs",
        &[
            ("name", "Crew"),
            ("slug", "crew"),
            ("owner", "alice@example.com"),
        ],
    )
    .await;
    let org_path = res.headers()["location"].to_str().unwrap().to_string();
    let org_id = org_path.trim_start_matches("/admin/orgs/").to_string();
    // Bob joins the org (as an admin would add him through the API).
    let res = app
        .client
        .post(app.url(&format!("/api/v1/admin/orgs/{org_id}/members")))
        .bearer_auth(KEY)
        .json(&json!({"user_id": bob_id, "role": "member"}))
        .send()
        .await
        .unwrap();
    assert!(res.status().is_success(), "{}", res.status());
    let res = app
        .client
        .post(app.url("/api/v1/admin/webhooks"))
        .bearer_auth(KEY)
        .json(&json!({"name": "hook", "url": "http://127.0.0.1:9/h", "events": ["*"]}))
        .send()
        .await
        .unwrap();
    assert!(res.status().is_success(), "{}", res.status());
    let hook: serde_json::Value = res.json().await.unwrap();
    let hook_id = hook["endpoint"]["id"].as_str().unwrap().to_string();

    let actions = [
        (
            format!("/admin/users/{bob_id}/disable"),
            "Disable bob@example.com?",
        ),
        (
            format!("/admin/users/{bob_id}/sign-out"),
            "Sign bob@example.com out everywhere?",
        ),
        (
            format!("/admin/users/{bob_id}/reset-mfa"),
            "Remove every second factor of bob@example.com?",
        ),
        (
            format!("/admin/users/{bob_id}/delete"),
            "Delete bob@example.com?",
        ),
        (
            format!("/admin/orgs/{org_id}/members/{bob_id}/remove"),
            "Remove bob@example.com from Crew?",
        ),
        (format!("/admin/orgs/{org_id}/delete"), "Delete Crew?"),
        (
            format!("/admin/webhooks/{hook_id}/delete"),
            "Delete the webhook hook?",
        ),
    ];
    for (path, title) in &actions {
        let res = post_form(&app, path, &[]).await;
        assert_eq!(res.status(), StatusCode::OK, "{path}");
        let html = res.text().await.unwrap();
        assert!(html.contains(title), "{path}: {title}");
        assert!(
            html.contains(r#"<input type="hidden" name="confirmed" value="yes">"#)
                && html.contains(&format!(r#"action="{path}""#)),
            "{path}: the confirmation posts the same action"
        );
        assert!(
            html.contains("What happens"),
            "{path}: the consequence is spelled out"
        );
    }
    // Nothing changed.
    assert_eq!(
        app.session(&bob_token).await.status(),
        StatusCode::OK,
        "bob is still signed in"
    );
    let (status, html) = page(&app, &org_path).await;
    assert_eq!(status, StatusCode::OK, "the org is still there");
    assert!(
        html.contains(">bob@example.com</a>"),
        "bob is still a member"
    );
    let (status, _) = page(&app, &format!("/admin/webhooks/{hook_id}")).await;
    assert_eq!(status, StatusCode::OK, "the webhook is still there");

    // Deleting also needs the name typed; a wrong one changes nothing.
    let res = post_form(
        &app,
        &format!("/admin/orgs/{org_id}/delete"),
        &[("confirmed", "yes"), ("confirm", "not-crew")],
    )
    .await;
    assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(res.text().await.unwrap().contains("Type crew exactly"));

    // Confirmed, each one happens.
    let res = post_form(
        &app,
        &format!("/admin/orgs/{org_id}/members/{bob_id}/remove"),
        &[("confirmed", "yes")],
    )
    .await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let res = post_form(
        &app,
        &format!("/admin/users/{bob_id}/sign-out"),
        &[("confirmed", "yes")],
    )
    .await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        app.session(&bob_token).await.status(),
        StatusCode::UNAUTHORIZED
    );
    let res = post_form(
        &app,
        &format!("/admin/orgs/{org_id}/delete"),
        &[("confirmed", "yes"), ("confirm", "crew")],
    )
    .await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let (status, _) = page(&app, &org_path).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let res = post_form(
        &app,
        &format!("/admin/webhooks/{hook_id}/delete"),
        &[("confirmed", "yes")],
    )
    .await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn sessions_show_readable_devices() {
    let app = console().await;
    let res = app
        .client
        .post(app.url("/api/v1/auth/sign-up"))
        .header(
            "user-agent",
            "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
        )
        .json(&json!({"email": "mac@example.com", "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    let body: serde_json::Value = res.json().await.unwrap();
    let id = body["user"]["id"].as_str().unwrap();
    let (_, html) = page(&app, &format!("/admin/users/{id}")).await;
    assert!(
        html.contains(">Chrome on macOS</span>"),
        "a readable device name"
    );
    let (_, html) = page(&app, "/admin/audit?user=mac%40example.com").await;
    assert!(html.contains("Chrome on macOS"), "and in the audit log");
}

#[tokio::test]
async fn the_navigation_marks_the_current_section_and_dates_stay_short() {
    let app = console().await;
    app.sign_up("dated@example.com").await;
    for (path, section) in [
        ("/admin", "/admin"),
        ("/admin/users", "/admin/users"),
        ("/admin/orgs", "/admin/orgs"),
        ("/admin/lockouts", "/admin/lockouts"),
        ("/admin/webhooks", "/admin/webhooks"),
        ("/admin/audit", "/admin/audit"),
        ("/admin/outbox", "/admin/outbox"),
        ("/admin/config", "/admin/config"),
    ] {
        let (status, html) = page(&app, path).await;
        assert_eq!(status, StatusCode::OK, "{path}");
        assert_eq!(html.matches(r#"aria-current="page""#).count(), 1, "{path}");
        assert!(
            html.contains(&format!(r#"href="{section}" aria-current="page""#)),
            "{path} marks {section}"
        );
    }
    let (_, html) = page(&app, "/admin/users").await;
    let at = pos(&html, r#"<time class="when" datetime=""#);
    let tag = &html[at..at + 160];
    assert!(
        tag.contains(r#"title=""#) && tag.contains(" UTC\""),
        "the full time is the title: {tag}"
    );
}

#[test]
fn slugs_are_made_from_names() {
    use derp::http::admin::pages::slug_from;
    assert_eq!(slug_from("Rocket Team"), "rocket-team");
    assert_eq!(slug_from("  Ünïcode & Co. 2026 "), "n-code-co-2026");
    assert_eq!(slug_from("---"), "");
}
