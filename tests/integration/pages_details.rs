//! The hosted pages' details: times as `<time datetime>` (shown in the
//! browser's zone by `static/local-time.js`, allowed by the CSP), the
//! password policy and input limits shown before submitting, the slug
//! script, and refusals in the page's language with the next step while
//! the JSON API keeps its codes and English messages.

use crate::helpers::*;
use reqwest::StatusCode;
use serde_json::json;

async fn get(app: &TestApp, path: &str) -> (StatusCode, String) {
    let res = app.client.get(app.url(path)).send().await.unwrap();
    (res.status(), res.text().await.unwrap())
}

async fn post_form(
    app: &TestApp,
    path: &str,
    csrf_from: &str,
    fields: &[(&str, &str)],
) -> (StatusCode, String) {
    let mut form = vec![("csrf_token".to_string(), hidden(csrf_from, "csrf_token"))];
    form.extend(fields.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    let res = app
        .client
        .post(app.url(path))
        .form(&form)
        .send()
        .await
        .unwrap();
    (res.status(), res.text().await.unwrap())
}

/// Every `<time datetime="…">` value in `html`.
fn datetimes(html: &str) -> Vec<String> {
    html.split("<time ")
        .skip(1)
        .filter_map(|t| {
            let rest = &t[t.find("datetime=\"")? + 10..];
            Some(rest[..rest.find('"')?].to_string())
        })
        .collect()
}

#[tokio::test]
async fn account_times_are_time_elements_with_rfc3339_and_utc_text() {
    let app = spawn_app().await;
    app.sign_up("tia@example.com").await;
    app.sign_in_through_pages("tia@example.com").await;
    let res = app.client.get(app.url("/account")).send().await.unwrap();
    let csp = res.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_string();
    let html = res.text().await.unwrap();
    let found = datetimes(&html);
    assert!(found.len() >= 2, "signed in and last used: {html}");
    for d in &found {
        let t = time::OffsetDateTime::parse(d, &time::format_description::well_known::Rfc3339);
        assert!(t.is_ok(), "{d} is RFC 3339");
        assert!(d.ends_with('Z'), "{d} is in UTC");
    }
    // Without JavaScript the text says the time in UTC.
    assert!(html.contains(" UTC</time>"), "{html}");
    // The script is ours, from /static, and the CSP admits it; no inline script.
    assert!(html.contains(r#"<script src="/static/local-time.js" defer></script>"#));
    assert!(!html.contains("<script>"), "no inline script");
    assert!(csp.contains("script-src 'self'"), "{csp}");
    let js = app
        .client
        .get(app.url("/static/local-time.js"))
        .send()
        .await
        .unwrap();
    assert_eq!(js.status(), StatusCode::OK);
    let ct = js.headers()["content-type"].to_str().unwrap().to_string();
    assert!(ct.contains("javascript"), "{ct}");
    assert!(js.text().await.unwrap().contains("Intl.DateTimeFormat"));
}

#[tokio::test]
async fn the_password_policy_and_input_limits_are_shown_before_submitting() {
    let app = spawn_with(|c| {
        let native = c.auth.native.get_or_insert_with(Default::default);
        native.enable_confirmation = false;
        native.password.min_length = 12;
        native.password.max_length = 64;
        native.password.require_uppercase = true;
        native.password.require_digit = true;
    })
    .await;
    let (_, signup) = get(&app, "/signup").await;
    assert!(
        signup.contains(r#"minlength="12" maxlength="64""#),
        "{signup}"
    );
    assert!(
        signup.contains("At least 12 characters. Include an uppercase letter and a digit."),
        "{signup}"
    );
    assert!(
        signup.contains(r#"type="email" maxlength="254""#),
        "{signup}"
    );
    let (_, reset) = get(&app, "/reset-password?token=abc").await;
    assert!(
        reset.contains(r#"minlength="12" maxlength="64""#),
        "{reset}"
    );
    assert!(reset.contains("At least 12 characters. Include an uppercase letter and a digit."));
    let (_, german) = get(&app, "/signup?lang=de").await;
    assert!(
        german.contains("Mindestens 12 Zeichen. Mit einem Großbuchstaben und einer Ziffer."),
        "{german}"
    );
    let (_, french) = get(&app, "/signup?lang=fr").await;
    assert!(
        french.contains("Au moins 12 caractères. Avec une majuscule et un chiffre."),
        "{french}"
    );

    // The change-password form and the new-org form, signed in (in English).
    let (_, _) = get(&app, "/login?lang=en").await;
    let res = app
        .post(
            "/api/v1/auth/sign-up",
            json!({"email": "pia@example.com", "password": "Correct horse battery 9"}),
        )
        .await;
    assert!(res.status().is_success(), "{}", res.status());
    let (_, login) = get(&app, "/login").await;
    let (status, _) = post_form(
        &app,
        "/login",
        &login,
        &[
            ("email", "pia@example.com"),
            ("password", "Correct horse battery 9"),
        ],
    )
    .await;
    assert!(status.is_success() || status.is_redirection(), "{status}");
    let (_, account) = get(&app, "/account").await;
    assert!(
        account.contains(r#"autocomplete="new-password" minlength="12" maxlength="64""#),
        "{account}"
    );
    assert!(account.contains("At least 12 characters. Include an uppercase letter and a digit."));
    let (_, new_org) = get(&app, "/orgs/new").await;
    assert!(
        new_org.contains(r#"id="name" name="name" type="text" value="" maxlength="100""#),
        "{new_org}"
    );
    assert!(
        new_org.contains(r#"maxlength="63" data-slug-from="name""#),
        "{new_org}"
    );
    assert!(new_org.contains(r#"<script src="/static/slug.js" defer></script>"#));
    let js = app
        .client
        .get(app.url("/static/slug.js"))
        .send()
        .await
        .unwrap();
    assert_eq!(js.status(), StatusCode::OK);
}

#[tokio::test]
async fn refusals_on_german_pages_are_german_with_the_next_step_and_the_api_stays_english() {
    let app = spawn_app().await;
    app.sign_up("taken@example.com").await;

    // A taken email on /signup, beside the field.
    let (_, form) = get(&app, "/signup?lang=de").await;
    let (status, html) = post_form(
        &app,
        "/signup",
        &form,
        &[("email", "taken@example.com"), ("password", PASSWORD)],
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert!(
        html.contains("Zu dieser E-Mail-Adresse gibt es schon ein Konto. Melden Sie sich an"),
        "{html}"
    );
    assert!(
        html.contains(r#"id="email-error""#),
        "beside the field: {html}"
    );
    assert!(!html.contains("already exists"), "no English: {html}");
    // An address that is none, in words of the field.
    let (_, form) = get(&app, "/signup").await;
    let (_, html) = post_form(
        &app,
        "/signup",
        &form,
        &[("email", "nope"), ("password", PASSWORD)],
    )
    .await;
    assert!(html.contains("Geben Sie eine E-Mail-Adresse ein"), "{html}");

    // A taken slug and a reserved one on /orgs/new.
    app.sign_in_through_pages("taken@example.com").await;
    let (_, form) = get(&app, "/orgs/new").await;
    let (status, _) = post_form(
        &app,
        "/orgs/new",
        &form,
        &[("name", "Rocket"), ("slug", "rocket")],
    )
    .await;
    assert!(status.is_redirection(), "{status}");
    let (_, form) = get(&app, "/orgs/new").await;
    let (status, html) = post_form(
        &app,
        "/orgs/new",
        &form,
        &[("name", "Rocket two"), ("slug", "rocket")],
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert!(html.contains("Dieses Kürzel ist vergeben."), "{html}");
    assert!(html.contains(r#"id="slug-error""#), "{html}");
    let (_, form) = get(&app, "/orgs/new").await;
    let (status, html) = post_form(
        &app,
        "/orgs/new",
        &form,
        &[("name", "Admins"), ("slug", "admin")],
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        html.contains("Einige Wörter wie „admin“ sind reserviert."),
        "{html}"
    );
    assert!(!html.contains("is reserved"), "{html}");

    // Leaving as the only owner: told why and what to do, in German.
    let (_, org) = get(&app, "/orgs/rocket").await;
    let (status, html) = post_form(&app, "/orgs/rocket/leave", &org, &[("confirmed", "yes")]).await;
    assert!(status.is_client_error(), "{status}");
    assert!(
        html.contains("Eine Organisation braucht mindestens einen Inhaber."),
        "{html}"
    );

    // The JSON API keeps its code and English message.
    let res = app
        .post(
            "/api/v1/auth/sign-up",
            json!({"email": "taken@example.com", "password": PASSWORD}),
        )
        .await;
    let body = expect_error(res, StatusCode::CONFLICT, "email_exists").await;
    assert!(body.to_string().contains("already exists"), "{body}");
}
