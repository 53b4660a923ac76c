//! Guards that hold for every route of a kind: each page form refuses a
//! POST without the page session's CSRF token, and an admin cannot lock
//! themself out through the JSON API any more than through the pages.

use crate::admin::{KEY, admin_app, admin_token, call};
use crate::helpers::*;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

/// Every `web::resource("…")` with a `.post(` in the page and admin-page
/// modules: the form routes, read from the source so a new one is covered.
fn page_form_routes() -> Vec<String> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/http");
    fn walk(dir: &std::path::Path, files: &mut Vec<std::path::PathBuf>) {
        for e in std::fs::read_dir(dir).unwrap().flatten() {
            let (path, name) = (e.path(), e.file_name().to_string_lossy().to_string());
            if path.is_dir() {
                walk(&path, files);
            } else if name.ends_with(".rs") && !path.to_string_lossy().contains("admin/api/") {
                // The JSON admin API takes bearer tokens, not forms.
                files.push(path);
            }
        }
    }
    let mut files = Vec::new();
    walk(&root.join("pages"), &mut files);
    walk(&root.join("admin"), &mut files);
    let mut routes = Vec::new();
    for f in files {
        let mut text = std::fs::read_to_string(f).unwrap();
        // JSON routes registered beside pages (`fn api_routes`) take bearer tokens.
        if let Some(start) = text.find("fn api_routes(") {
            let end = text[start..]
                .find("\n}\n")
                .map_or(text.len(), |e| start + e);
            text.replace_range(start..end, "");
        }
        for (i, _) in text.match_indices("web::resource(\"") {
            let rest = &text[i + 15..];
            let path = &rest[..rest.find('"').unwrap()];
            // The handlers chained on this resource, up to the next one.
            let chain = &rest[..rest.find(".service(").unwrap_or(rest.len())];
            // The authorization request may come as a form (OpenID Connect
            // Core 3.1.2.1): answered with its GET, it changes nothing.
            if chain.contains(".post(") && path != "/oauth2/authorize" {
                routes.push(path.replace(['{', '}'], ""));
            }
        }
    }
    routes.sort();
    routes
}

#[tokio::test]
async fn every_page_form_refuses_a_post_without_the_csrf_token() {
    let app = admin_app().await;
    admin_token(&app, "boss@example.com").await;
    // Signed in through the pages, so that a forged form would matter.
    app.sign_in_through_pages("boss@example.com").await;

    let routes = page_form_routes();
    for expected in [
        "/login",
        "/logout",
        "/account/password",
        "/admin/users/id/action",
        "/admin/webhooks/id/deliveries/delivery/retry",
    ] {
        assert!(
            routes.iter().any(|r| r == expected),
            "{expected} in {routes:?}"
        );
    }
    for path in &routes {
        let no_body = app.client.post(app.url(path)).send().await.unwrap();
        assert_eq!(
            no_body.status(),
            StatusCode::FORBIDDEN,
            "{path} without a body"
        );
        let empty = app
            .client
            .post(app.url(path))
            .header("content-type", "application/x-www-form-urlencoded")
            .body("")
            .send()
            .await
            .unwrap();
        assert_eq!(
            empty.status(),
            StatusCode::FORBIDDEN,
            "{path} with an empty body"
        );
        let no_token = app
            .client
            .post(app.url(path))
            .form(&[("email", "x@example.com"), ("confirm", "x")])
            .send()
            .await
            .unwrap();
        assert_eq!(
            no_token.status(),
            StatusCode::FORBIDDEN,
            "{path} without a token"
        );
        let forged = app
            .client
            .post(app.url(path))
            .form(&[("csrf_token", "forged")])
            .send()
            .await
            .unwrap();
        assert_eq!(
            forged.status(),
            StatusCode::FORBIDDEN,
            "{path} with a forged token"
        );
    }
    // None of them took effect: still signed in, at the pages and the admin.
    let account = app.client.get(app.url("/account")).send().await.unwrap();
    assert_eq!(account.status(), StatusCode::OK);
    let admin = app
        .client
        .get(app.url("/admin/users"))
        .send()
        .await
        .unwrap();
    assert_eq!(admin.status(), StatusCode::OK);
}

#[tokio::test]
async fn the_admin_api_refuses_an_admin_disabling_demoting_or_deleting_themself() {
    let app = admin_app().await;
    let token = admin_token(&app, "boss@example.com").await;
    let me: Value = app.session(&token).await.json().await.unwrap();
    let me = me["user_id"].as_str().unwrap().to_string();
    let path = format!("/api/v1/admin/users/{me}");

    for (body, what) in [
        (json!({"disabled": true}), "disable"),
        (json!({"role": "default"}), "demote"),
    ] {
        let res = call(&app, Method::PATCH, &path, Some(&token), Some(body)).await;
        let err = expect_error(res, StatusCode::FORBIDDEN, "forbidden").await;
        assert!(
            err["error"]["message"]
                .as_str()
                .unwrap()
                .contains("yourself")
                || err["error"]["message"]
                    .as_str()
                    .unwrap()
                    .contains("your own"),
            "{what}: {err}"
        );
    }
    let res = call(&app, Method::DELETE, &path, Some(&token), None).await;
    expect_error(res, StatusCode::FORBIDDEN, "forbidden").await;

    // Nothing changed: still an enabled admin whose token works.
    let res = call(&app, Method::GET, &path, Some(KEY), None).await;
    let user: Value = res.json().await.unwrap();
    assert_eq!(user["role"], "admin", "{user}");
    assert_eq!(user["disabled"], false, "{user}");
    assert_eq!(app.session(&token).await.status(), StatusCode::OK);

    // Another admin may do all three to this one.
    let other = admin_token(&app, "deputy@example.com").await;
    let res = call(
        &app,
        Method::PATCH,
        &path,
        Some(&other),
        Some(json!({"role": "default"})),
    )
    .await;
    assert_eq!(res.status(), StatusCode::OK);
    let res = call(&app, Method::DELETE, &path, Some(&other), None).await;
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
}
